package main

import (
	"io"
	"log/slog"

	"github.com/scimjit/scimjit/server/reqctx"
)

// newLogger builds the process logger: text or JSON on w at level, with
// request_id and workspace added from the context to every record.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(reqctx.NewHandler(h))
}
