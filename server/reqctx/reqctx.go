package reqctx

import (
	"context"
	"log/slog"
)

type key int

const (
	requestIDKey key = iota
	workspaceKey
)

// WithRequestID returns ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// WithWorkspace returns ctx carrying the workspace id the request is about.
func WithWorkspace(ctx context.Context, ws string) context.Context {
	return context.WithValue(ctx, workspaceKey, ws)
}

// Workspace returns the workspace id in ctx, or "".
func Workspace(ctx context.Context) string {
	s, _ := ctx.Value(workspaceKey).(string)
	return s
}

// Handler is a slog.Handler that adds request_id and workspace from the
// record's context to every record before passing it on.
type Handler struct {
	next slog.Handler
}

// NewHandler wraps next. Wrapping a Handler again returns it unchanged.
func NewHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(*Handler); ok {
		return h
	}
	return &Handler{next: next}
}

// NewLogger returns a logger whose handler is wrapped by NewHandler.
func NewLogger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(*Handler); ok {
		return l
	}
	return slog.New(NewHandler(l.Handler()))
}

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the context's request id and workspace, then forwards r.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := RequestID(ctx); id != "" {
			r.AddAttrs(slog.String("request_id", id))
		}
		if ws := Workspace(ctx); ws != "" {
			r.AddAttrs(slog.String("workspace", ws))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a wrapped handler with the attributes added.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs)}
}

// WithGroup returns a wrapped handler with the group opened.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name)}
}
