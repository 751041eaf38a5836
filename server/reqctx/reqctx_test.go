package reqctx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
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

// TestClientKey: IPv4 (also IPv4-mapped) per address, IPv6 per /64,
// everything that is not an IP in one bucket, and no address in the key.
func TestClientKey(t *testing.T) {
	same := [][2]string{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"},
		{"fe80::1%eth0", "fe80::1"},
		{"not an ip", ""},
	}
	for _, p := range same {
		if reqctx.ClientKey(p[0]) != reqctx.ClientKey(p[1]) {
			t.Errorf("ClientKey(%q) != ClientKey(%q)", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.1", "not an ip"},
	}
	for _, p := range differ {
		if reqctx.ClientKey(p[0]) == reqctx.ClientKey(p[1]) {
			t.Errorf("ClientKey(%q) == ClientKey(%q)", p[0], p[1])
		}
	}
	if k := reqctx.ClientKey("192.0.2.1"); strings.Contains(k, "192") || len(k) != 64 {
		t.Errorf("ClientKey = %q, want a hex SHA-256", k)
	}
}
