package reqctx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/scimjit/scimjit/server/reqctx"
)

func TestHandlerAddsRequestIDAndWorkspace(t *testing.T) {
	var buf bytes.Buffer
	log := reqctx.NewLogger(slog.New(slog.NewJSONHandler(&buf, nil)).With("component", "x"))
	if reqctx.NewLogger(log) != log {
		t.Error("wrapping twice made a new logger")
	}
	ctx := reqctx.WithWorkspace(reqctx.WithRequestID(context.Background(), "rid-1"), "finance")
	log.InfoContext(ctx, "hello", "k", "v")
	log.Info("no context")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &second); err != nil {
		t.Fatal(err)
	}
	if first["request_id"] != "rid-1" || first["workspace"] != "finance" || first["k"] != "v" || first["component"] != "x" {
		t.Errorf("record with context: %v", first)
	}
	if _, ok := second["request_id"]; ok {
		t.Errorf("record without context has a request id: %v", second)
	}
	if reqctx.RequestID(context.Background()) != "" || reqctx.Workspace(ctx) != "finance" {
		t.Error("accessors")
	}
}
