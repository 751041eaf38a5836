package reqctx

import (
	"context"
	"log/slog"
)

// key is the context key of the request values.
type key struct{}

// values are the request-scoped values. They travel together as one value
// so that the middleware derives the request context once per request and
// a log record finds both with one lookup.
type values struct {
	requestID string
	workspace string
	// adminToken is the name of the admin token that authenticated the
	// request (never its value).
	adminToken string
	// person is the actor of a request made by a signed-in person
	// (the admin console's "user:<id>").
	person string
}

// valuesCtx is a context.Context carrying values: context.WithValue with
// the values stored inline, so that deriving it is one allocation.
type valuesCtx struct {
	context.Context
	v values
}

// Value returns the request values for key{} and defers to the parent
// context for every other key.
func (c *valuesCtx) Value(k any) any {
	if _, ok := k.(key); ok {
		return &c.v
	}
	return c.Context.Value(k)
}

// String describes the context, like context.WithValue's does.
func (c *valuesCtx) String() string {
	return "reqctx.WithValues(request_id=" + c.v.requestID + ", workspace=" + c.v.workspace + ")"
}

// get returns the values in ctx, or zero values.
func get(ctx context.Context) values {
	if v, ok := ctx.Value(key{}).(*values); ok {
		return *v
	}
	return values{}
}

func with(ctx context.Context, v values) context.Context {
	return &valuesCtx{Context: ctx, v: v}
}

// WithRequestID returns ctx carrying the request id. The workspace in ctx,
// if any, is kept.
func WithRequestID(ctx context.Context, id string) context.Context {
	v := get(ctx)
	v.requestID = id
	return with(ctx, v)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	return get(ctx).requestID
}

// WithWorkspace returns ctx carrying the workspace id the request is about.
// The request id in ctx, if any, is kept.
func WithWorkspace(ctx context.Context, ws string) context.Context {
	v := get(ctx)
	v.workspace = ws
	return with(ctx, v)
}

// WithRequest returns ctx carrying the request id and, when ws is not
// empty, the workspace (otherwise the workspace in ctx, if any, is kept). It
// is WithWorkspace(WithRequestID(ctx, id), ws) in a single derivation, for
// the middleware that starts every request.
func WithRequest(ctx context.Context, id, ws string) context.Context {
	v := get(ctx)
	v.requestID = id
	if ws != "" {
		v.workspace = ws
	}
	return with(ctx, v)
}

// Workspace returns the workspace id in ctx, or "".
func Workspace(ctx context.Context) string {
	return get(ctx).workspace
}

// WithAdminToken returns ctx carrying the name of the admin token that
// authenticated the request, for the access log and the actor of admin
// events. The other values in ctx are kept.
func WithAdminToken(ctx context.Context, name string) context.Context {
	v := get(ctx)
	v.adminToken = name
	return with(ctx, v)
}

// AdminToken returns the admin token name in ctx, or "".
func AdminToken(ctx context.Context) string {
	return get(ctx).adminToken
}

// WithPerson returns ctx carrying the actor of a request made by a
// signed-in person ("user:<id>"). The other values in ctx are kept.
func WithPerson(ctx context.Context, actor string) context.Context {
	v := get(ctx)
	v.person = actor
	return with(ctx, v)
}

// Actor is who made the request, as events record it: the person
// (WithPerson), else "admin:<name>" of the admin token (WithAdminToken),
// else "".
func Actor(ctx context.Context) string {
	v := get(ctx)
	switch {
	case v.person != "":
		return v.person
	case v.adminToken != "":
		return "admin:" + v.adminToken
	}
	return ""
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
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	// One lookup, and one AddAttrs call when both are set: each call may
	// grow the record's attribute slice.
	switch v := get(ctx); {
	case v.requestID != "" && v.workspace != "":
		r.AddAttrs(slog.String("request_id", v.requestID), slog.String("workspace", v.workspace))
	case v.requestID != "":
		r.AddAttrs(slog.String("request_id", v.requestID))
	case v.workspace != "":
		r.AddAttrs(slog.String("workspace", v.workspace))
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
