package webhooks

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
	"github.com/scimjit/scimjit/storage/redistest"
)

// goneRenderer renders every resource as deleted.
type goneRenderer struct{}

func (goneRenderer) RenderUser(context.Context, string, string) (json.RawMessage, error) {
	return nil, storage.ErrNotFound
}
func (goneRenderer) RenderGroup(context.Context, string, string) (json.RawMessage, error) {
	return nil, storage.ErrNotFound
}

// TestDispatchClaimsDeadConsumer: an outbox entry a dead dispatcher read
// and never acknowledged is taken over once idle past ClaimIdle and
// queued once; dispatching it again queues nothing more (task id), and
// the outbox ends empty. The queue is not started: tasks stay pending.
func TestDispatchClaimsDeadConsumer(t *testing.T) {
	store := redistest.NewRedisStore(t)
	ctx := t.Context()
	if _, err := store.CreateWorkspace(ctx, storage.Workspace{ID: "acme", Name: "Acme", Settings: storage.DefaultSettings()}); err != nil {
		t.Fatal(err)
	}
	_, sec, _ := NewEndpointSecret("")
	for _, types := range [][]string{nil, {"group.*"}} {
		if _, err := store.CreateWebhook(ctx, "acme", storage.Webhook{URL: "https://a.example", Enabled: true,
			Types: types, Secrets: []storage.WebhookSecret{sec}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.AppendEvents(ctx, "acme", storage.Event{Type: "scim.user.created", UserID: "u1"},
		storage.Event{Type: "admin.workspace.updated"}); err != nil {
		t.Fatal(err)
	}
	if got, err := store.ReadOutbox(ctx, "acme", "dead", 10, 0); err != nil || len(got) != 2 {
		t.Fatalf("dead consumer read %v, %v", got, err)
	}
	q, err := queue.New(store.Client(), queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: store, Queue: q, Render: goneRenderer{}, ClaimIdle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		st, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Pending
	}
	s.DispatchAll(ctx)
	if n := pending(); n != 0 {
		t.Fatalf("%d tasks queued while the dead consumer's claim is fresh", n)
	}
	time.Sleep(150 * time.Millisecond) // past ClaimIdle
	s.DispatchAll(ctx)
	// One user.created for the endpoint without a filter; none for the
	// group.* one; none for the admin event.
	if n := pending(); n != 1 {
		t.Fatalf("%d tasks queued, want 1", n)
	}
	if rest, err := store.ReadOutbox(ctx, "acme", "other", 10, time.Millisecond); err != nil || len(rest) != 0 {
		t.Fatalf("outbox after dispatch: %v, %v", rest, err)
	}
	// The same event dispatched again (a crash between queueing and
	// acknowledging) queues nothing new.
	evs, _ := store.ListEvents(ctx, "acme", "", 10)
	eps, _ := store.ListWebhooks(ctx, "acme")
	if err := s.enqueueEvent(ctx, "acme", evs[0], eps); err != nil {
		t.Fatal(err)
	}
	if n := pending(); n != 1 {
		t.Fatalf("%d tasks after a second dispatch, want still 1", n)
	}
}
