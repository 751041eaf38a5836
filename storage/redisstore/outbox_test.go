package redisstore_test

import (
	"testing"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestOutboxCap: a workspace's webhook outbox holds at most OutboxMax
// entries; events that find it full still reach the workspace's events
// but not the outbox, and are counted exactly once by TakeOutboxDropped;
// once a dispatcher removes an entry, the next event is added again.
// Another workspace sees no drops. (On a redis-server only: the embedded
// server runs the same script, but 100,000 appends take minutes there.)
func TestOutboxCap(t *testing.T) {
	s := redistest.NewRedisStore(t)
	ctx := t.Context()
	for _, ws := range []string{"cap", "other"} {
		if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: ws, Name: ws, Settings: storage.DefaultSettings()}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateWebhook(ctx, ws, storage.Webhook{URL: "https://a.example", Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	appendN := func(n int) []storage.Event {
		t.Helper()
		var out []storage.Event
		for n > 0 {
			batch := make([]storage.Event, min(n, 1000))
			for i := range batch {
				batch[i] = storage.Event{Type: "scim.user.updated", UserID: "u"}
			}
			evs, err := s.AppendEvents(ctx, "cap", batch...)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, evs...)
			n -= len(batch)
		}
		return out
	}
	outboxLen := func() int64 {
		t.Helper()
		n, err := s.Client().XLen(ctx, "sj:{ws:cap}:outbox").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	dropped := func(ws string) int64 {
		t.Helper()
		n, err := s.TakeOutboxDropped(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	appendN(redisstore.OutboxMax)
	if n := outboxLen(); n != redisstore.OutboxMax {
		t.Fatalf("outbox holds %d after %d events, want all of them", n, redisstore.OutboxMax)
	}
	if d := dropped("cap"); d != 0 {
		t.Fatalf("dropped %d before the cap was reached", d)
	}
	over := appendN(3)
	if n := outboxLen(); n != redisstore.OutboxMax {
		t.Fatalf("outbox holds %d, want the cap %d", n, redisstore.OutboxMax)
	}
	if d := dropped("cap"); d != 3 {
		t.Fatalf("dropped %d, want the 3 events past the cap", d)
	}
	if d := dropped("cap"); d != 0 {
		t.Fatalf("dropped %d on the second take, want 0", d)
	}
	if d := dropped("other"); d != 0 {
		t.Fatalf("the other workspace has %d dropped", d)
	}
	// The dropped events are still in the workspace's events.
	if got, err := s.ListEvents(ctx, "cap", over[0].ID, 10); err != nil || len(got) != 2 || got[1].ID != over[2].ID {
		t.Fatalf("events after %s = %v, %v; want the last two dropped ones", over[0].ID, got, err)
	}
	entries, err := s.ReadOutbox(ctx, "cap", "c1", 1, 0)
	if err != nil || len(entries) != 1 {
		t.Fatalf("read outbox: %v, %v", entries, err)
	}
	if err := s.AckOutbox(ctx, "cap", entries[0].ID); err != nil {
		t.Fatal(err)
	}
	next := appendN(1)
	if n, d := outboxLen(), dropped("cap"); n != redisstore.OutboxMax || d != 0 {
		t.Fatalf("after one entry left: outbox %d, dropped %d; want the new event added", n, d)
	}
	last, err := s.Client().XRevRangeN(ctx, "sj:{ws:cap}:outbox", "+", "-", 1).Result()
	if err != nil || len(last) != 1 || last[0].Values["e"] != next[0].ID {
		t.Fatalf("newest outbox entry %v, %v; want event %s", last, err, next[0].ID)
	}
	if _, err := s.TakeOutboxDropped(ctx, "no such ws!"); err != storage.ErrNotFound {
		t.Fatalf("invalid workspace: %v, want ErrNotFound", err)
	}
}
