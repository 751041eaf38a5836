package webhooks

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestFailedBeyondOnePage: an endpoint's failed deliveries are listed and
// redeliverable by event id even when more than a page of newer failures
// of another endpoint came after them, and a failed redelivery since a
// time (a task id of its own) is redeliverable by its event id too.
func TestFailedBeyondOnePage(t *testing.T) {
	store := redistest.NewRedisStore(t)
	ctx := t.Context()
	if _, err := store.CreateWorkspace(ctx, storage.Workspace{ID: "acme", Name: "Acme", Settings: storage.DefaultSettings()}); err != nil {
		t.Fatal(err)
	}
	// Disabled endpoints: every delivery fails for good at once.
	_, sec, _ := NewEndpointSecret("")
	var eps []string
	for range 2 {
		w, err := store.CreateWebhook(ctx, "acme", storage.Webhook{URL: "https://a.example", Secrets: []storage.WebhookSecret{sec}})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, w.ID)
	}
	q, err := queue.New(store.Client(), queue.Config{Concurrency: 20, PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: store, Queue: q, Render: goneRenderer{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer q.Shutdown()
	waitArchived := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			st, err := q.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Archived == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d tasks archived, want %d", st.Archived, n)
			}
			time.Sleep(20 * time.Millisecond) // polling the queue
		}
	}
	enqueue := func(ep, event, id string) {
		t.Helper()
		if err := s.enqueue(ctx, id, task{Workspace: "acme", Endpoint: ep, EventID: event, Type: "user.created",
			Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(eps[0], "1-0", taskID("acme", eps[0], "1-0"))
	enqueue(eps[0], "2-0", taskID("acme", eps[0], "2-0")+"/rtag")
	waitArchived(2)
	for i := range failedPage + 5 {
		e := strconv.Itoa(100+i) + "-0"
		enqueue(eps[1], e, taskID("acme", eps[1], e))
	}
	waitArchived(failedPage + 7)

	list, err := s.Failed(ctx, "acme", eps[0], 100)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, f := range list {
		events = append(events, f.EventID)
	}
	slices.Sort(events)
	if !slices.Equal(events, []string{"1-0", "2-0"}) {
		t.Fatalf("failed of the first endpoint = %v, want events 1-0 and 2-0", events)
	}
	if other, err := s.Failed(ctx, "acme", eps[1], 3); err != nil || len(other) != 3 {
		t.Fatalf("failed of the second endpoint with limit 3 = %d, %v", len(other), err)
	}
	for _, e := range []string{"1-0", "2-0"} {
		if err := s.Redeliver(ctx, "acme", eps[0], e); err != nil {
			t.Fatalf("redeliver %s: %v", e, err)
		}
	}
	if err := s.Redeliver(ctx, "acme", eps[0], "100-0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("redeliver another endpoint's event: %v, want ErrNotFound", err)
	}
	// Both run again and fail again (the endpoint is still disabled).
	waitArchived(failedPage + 7)
}
