package reqctx_test

import (
	"context"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server/reqctx"
)

type otherKey struct{}

// TestValuesKeepContextSemantics: the request id and the workspace behave
// like two independent context.WithValue keys: deriving one keeps the other,
// the parent never changes, and other values, cancellation and deadlines
// pass through.
func TestValuesKeepContextSemantics(t *testing.T) {
	type want struct{ id, ws string }
	check := func(name string, ctx context.Context, w want) {
		t.Helper()
		if got := (want{reqctx.RequestID(ctx), reqctx.Workspace(ctx)}); got != w {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
	bg := context.Background()
	check("empty", bg, want{})

	wsFirst := reqctx.WithWorkspace(bg, "finance")
	both := reqctx.WithRequestID(wsFirst, "rid-1")
	check("workspace then id", both, want{"rid-1", "finance"})
	check("parent unchanged", wsFirst, want{"", "finance"})

	other := reqctx.WithWorkspace(both, "sales")
	check("workspace replaced", other, want{"rid-1", "sales"})
	check("replaced parent unchanged", both, want{"rid-1", "finance"})
	check("workspace cleared", reqctx.WithWorkspace(both, ""), want{"rid-1", ""})
	check("id cleared", reqctx.WithRequestID(both, ""), want{"", "finance"})

	check("WithRequest", reqctx.WithRequest(bg, "rid-2", "acme"), want{"rid-2", "acme"})
	check("WithRequest keeps the workspace", reqctx.WithRequest(wsFirst, "rid-3", ""), want{"rid-3", "finance"})
	check("WithRequest replaces the workspace", reqctx.WithRequest(wsFirst, "rid-4", "acme"), want{"rid-4", "acme"})

	// Other values, across our layers, in both directions.
	withOther := context.WithValue(reqctx.WithRequestID(context.WithValue(bg, otherKey{}, "below"), "rid-5"), otherKey{}, "above")
	if withOther.Value(otherKey{}) != "above" || reqctx.RequestID(withOther) != "rid-5" {
		t.Error("values above our layer")
	}
	if v := reqctx.WithWorkspace(context.WithValue(bg, otherKey{}, "below"), "x").Value(otherKey{}); v != "below" {
		t.Errorf("value below our layer: %v", v)
	}

	// Cancellation, cause and deadline of the parent are visible; a child
	// cancel context of ours is cancelled with the parent.
	deadline := time.Now().Add(time.Hour)
	parent, cancel := context.WithDeadlineCause(bg, deadline, context.Canceled)
	ctx := reqctx.WithRequest(parent, "rid-6", "acme")
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
		t.Errorf("deadline %v %v", d, ok)
	}
	cancel()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("child not cancelled with the parent")
	}
	if ctx.Err() != context.Canceled || context.Cause(child) != context.Canceled {
		t.Errorf("err %v, cause %v", ctx.Err(), context.Cause(child))
	}
}

func BenchmarkDerive(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c := reqctx.WithRequest(ctx, "rid", "acme")
		if reqctx.RequestID(c) == "" || reqctx.Workspace(c) == "" {
			b.Fatal("lost")
		}
	}
}

// TestAdminTokenIsKeptWithTheOtherValues: the admin token name is a third
// independent value; setting it keeps the request id and workspace, and
// setting those keeps it.
func TestAdminTokenIsKeptWithTheOtherValues(t *testing.T) {
	ctx := reqctx.WithAdminToken(reqctx.WithRequest(context.Background(), "rid-1", "acme"), "ci-deploy")
	if reqctx.AdminToken(ctx) != "ci-deploy" || reqctx.RequestID(ctx) != "rid-1" || reqctx.Workspace(ctx) != "acme" {
		t.Fatalf("after WithAdminToken: %q %q %q", reqctx.AdminToken(ctx), reqctx.RequestID(ctx), reqctx.Workspace(ctx))
	}
	ctx = reqctx.WithWorkspace(ctx, "other")
	if reqctx.AdminToken(ctx) != "ci-deploy" {
		t.Fatalf("WithWorkspace dropped the admin token")
	}
	if reqctx.AdminToken(context.Background()) != "" {
		t.Fatal("admin token without one set")
	}
}
