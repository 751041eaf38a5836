package conformance

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// webhookCases are the cases of webhook endpoints, their outbox and their
// attempts.
var webhookCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"WebhookCRUD", testWebhookCRUD},
	{"WebhookOutbox", testWebhookOutbox},
	{"WebhookAttempts", testWebhookAttempts},
	{"ReceivedWebhooks", testReceivedWebhooks},
}

func testWebhookCRUD(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	_, err := s.CreateWebhook(ctx, "no-such-ws", storage.Webhook{URL: "https://x.example"})
	wantErr(t, err, storage.ErrNotFound, "create in a missing workspace")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	w, err := s.CreateWebhook(ctx, wsA, storage.Webhook{URL: "https://a.example/hook", Description: "app",
		Types: []string{"user.*", "group.created"}, Enabled: true,
		Secrets: []storage.WebhookSecret{{Sealed: []byte("new")}, {Sealed: []byte("old"), ExpiresAt: exp}}})
	must(t, err, "create")
	if w.ID == "" || w.CreatedAt.IsZero() {
		t.Fatalf("created = %+v, want an id and a time", w)
	}
	_, err = s.CreateWebhook(ctx, wsA, storage.Webhook{ID: w.ID, URL: "https://b.example"})
	wantErr(t, err, storage.ErrAlreadyExists, "create with a taken id")
	got, err := s.GetWebhook(ctx, wsA, w.ID)
	must(t, err, "get")
	if got.URL != w.URL || got.Description != "app" || !slices.Equal(got.Types, w.Types) || !got.Enabled ||
		len(got.Secrets) != 2 || string(got.Secrets[1].Sealed) != "old" || !got.Secrets[1].ExpiresAt.Equal(exp) ||
		!got.Secrets[0].ExpiresAt.IsZero() {
		t.Fatalf("got %+v, want what was created", got)
	}
	_, err = s.GetWebhook(ctx, wsB, w.ID)
	wantErr(t, err, storage.ErrNotFound, "get from the other workspace")
	w2, err := s.CreateWebhook(ctx, wsA, storage.Webhook{URL: "https://c.example"})
	must(t, err, "create second")
	list, err := s.ListWebhooks(ctx, wsA)
	must(t, err, "list")
	if len(list) != 2 || list[0].ID > list[1].ID {
		t.Fatalf("list = %+v, want two ordered by id", list)
	}
	if other, err := s.ListWebhooks(ctx, wsB); err != nil || len(other) != 0 {
		t.Fatalf("other workspace lists %v, %v", other, err)
	}
	up, err := s.UpdateWebhook(ctx, wsA, w.ID, func(x *storage.Webhook) error {
		x.Enabled, x.DisabledReason = false, "410 Gone"
		return nil
	})
	must(t, err, "update")
	if up.Enabled || up.DisabledReason != "410 Gone" || up.URL != w.URL {
		t.Fatalf("updated = %+v", up)
	}
	_, err = s.UpdateWebhook(ctx, wsA, "missing", func(*storage.Webhook) error { return nil })
	wantErr(t, err, storage.ErrNotFound, "update missing")
	must(t, s.DeleteWebhook(ctx, wsA, w2.ID), "delete")
	wantErr(t, s.DeleteWebhook(ctx, wsA, w2.ID), storage.ErrNotFound, "delete again")
	_, err = s.GetWebhook(ctx, wsA, w2.ID)
	wantErr(t, err, storage.ErrNotFound, "get deleted")
	reg, err := s.WebhookWorkspaces(ctx)
	must(t, err, "registry")
	if !slices.Contains(reg, wsA) || slices.Contains(reg, wsB) {
		t.Fatalf("registry = %v, want %s and not %s", reg, wsA, wsB)
	}
}

// testWebhookOutbox: events reach the outbox only while the workspace has
// endpoints, with their event ids; an entry read and not acknowledged is
// claimed by another consumer once idle; acknowledged entries are gone;
// nothing is counted as dropped below the cap (the store's own tests fill
// an outbox to its cap).
func testWebhookOutbox(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	_, err := s.AppendEvents(ctx, wsA, storage.Event{Type: "scim.user.created", UserID: "before"})
	must(t, err, "append before endpoints")
	if got, err := s.ReadOutbox(ctx, wsA, "c1", 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("outbox without endpoints = %v, %v; want empty", got, err)
	}
	_, err = s.CreateWebhook(ctx, wsA, storage.Webhook{URL: "https://a.example", Enabled: true})
	must(t, err, "create endpoint")
	evs, err := s.AppendEvents(ctx, wsA, storage.Event{Type: "scim.user.created", UserID: "u1", Actor: "scim"},
		storage.Event{Type: "login.succeeded", UserID: "u1", Detail: map[string]string{"k": "v"}})
	must(t, err, "append")
	_, err = s.AppendEvents(ctx, wsB, storage.Event{Type: "scim.user.created", UserID: "other"})
	must(t, err, "append other workspace")
	got, err := s.ReadOutbox(ctx, wsA, "c1", 10, 0)
	must(t, err, "read")
	if len(got) != 2 || got[0].Event.ID != evs[0].ID || got[1].Event.ID != evs[1].ID ||
		got[0].Event.UserID != "u1" || got[0].Event.Actor != "scim" || got[1].Event.Type != "login.succeeded" ||
		got[1].Event.Detail["k"] != "v" || !got[0].Event.Time.Equal(evs[0].Time) {
		t.Fatalf("outbox = %+v, want the two events %+v", got, evs)
	}
	if again, err := s.ReadOutbox(ctx, wsA, "c2", 10, time.Hour); err != nil || len(again) != 0 {
		t.Fatalf("second consumer read %v, %v; want nothing (delivered to c1, not idle)", again, err)
	}
	time.Sleep(20 * time.Millisecond) // the entries' idle time must pass claimIdle
	claimed, err := s.ReadOutbox(ctx, wsA, "c2", 1, 10*time.Millisecond)
	must(t, err, "claim")
	if len(claimed) != 1 || claimed[0].ID != got[0].ID {
		t.Fatalf("claimed %+v, want the first entry", claimed)
	}
	must(t, s.AckOutbox(ctx, wsA, got[0].ID, got[1].ID), "ack")
	time.Sleep(20 * time.Millisecond)
	if rest, err := s.ReadOutbox(ctx, wsA, "c3", 10, time.Millisecond); err != nil || len(rest) != 0 {
		t.Fatalf("after ack: %v, %v; want empty", rest, err)
	}
	if b, err := s.ReadOutbox(ctx, wsB, "c1", 10, time.Millisecond); err != nil || len(b) != 0 {
		t.Fatalf("other workspace outbox = %v, %v", b, err)
	}
	// Far below the cap nothing is dropped, in either workspace.
	for _, ws := range []string{wsA, wsB} {
		if n, err := s.TakeOutboxDropped(ctx, ws); err != nil || n != 0 {
			t.Fatalf("dropped in %s = %d, %v; want 0", ws, n, err)
		}
	}
	_, err = s.TakeOutboxDropped(ctx, "no such ws!")
	wantErr(t, err, storage.ErrNotFound, "dropped of an invalid workspace")
}

func testWebhookAttempts(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	w, err := s.CreateWebhook(ctx, wsA, storage.Webhook{URL: "https://a.example", Enabled: true})
	must(t, err, "create")
	for i := range 3 {
		must(t, s.AppendWebhookAttempt(ctx, wsA, w.ID, storage.WebhookAttempt{EventID: "1-0", EventType: "user.created",
			Attempt: i + 1, Status: 500 + i, Latency: time.Duration(i+1) * time.Millisecond, Error: "bad"}), "append")
	}
	got, err := s.ListWebhookAttempts(ctx, wsA, w.ID, 2)
	must(t, err, "list")
	if len(got) != 2 || got[0].Attempt != 3 || got[0].Status != 502 || got[0].Latency != 3*time.Millisecond ||
		got[0].Error != "bad" || got[0].EventType != "user.created" || got[0].Time.IsZero() || got[1].Attempt != 2 {
		t.Fatalf("attempts = %+v, want the newest two, newest first", got)
	}
	wantErr(t, s.AppendWebhookAttempt(ctx, wsA, "missing", storage.WebhookAttempt{}), storage.ErrNotFound, "append to missing")
	must(t, s.DeleteWebhook(ctx, wsA, w.ID), "delete")
	if got, err := s.ListWebhookAttempts(ctx, wsA, w.ID, 10); err != nil || len(got) != 0 {
		t.Fatalf("attempts after delete = %v, %v", got, err)
	}
}

// testReceivedWebhooks: the demo receiver's list keeps the newest
// ReceivedWebhooksKept deliveries, newest first, per workspace.
func testReceivedWebhooks(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	wantErr(t, s.AppendReceivedWebhook(ctx, "no-such-ws", storage.ReceivedWebhook{ID: "x"}), storage.ErrNotFound,
		"append in a missing workspace")
	n := storage.ReceivedWebhooksKept + 3
	for i := range n {
		r := storage.ReceivedWebhook{ID: "msg_" + strconv.Itoa(i), Type: "user.created", Verified: i%2 == 0,
			Body: "{\n  \"n\": " + strconv.Itoa(i) + "\n}"}
		if !r.Verified {
			r.Problem = "no matching signature"
		}
		must(t, s.AppendReceivedWebhook(ctx, wsA, r), "append")
	}
	got, err := s.ListReceivedWebhooks(ctx, wsA, 2)
	must(t, err, "list two")
	last := n - 1
	if len(got) != 2 || got[0].ID != "msg_"+strconv.Itoa(last) || got[1].ID != "msg_"+strconv.Itoa(last-1) ||
		got[0].Verified != (last%2 == 0) || got[1].Problem != map[bool]string{true: "", false: "no matching signature"}[(last-1)%2 == 0] ||
		got[0].Type != "user.created" || got[0].Time.IsZero() || !strings.Contains(got[0].Body, strconv.Itoa(last)) {
		t.Fatalf("newest two = %+v, want msg_%d and msg_%d, newest first", got, last, last-1)
	}
	all, err := s.ListReceivedWebhooks(ctx, wsA, 1000)
	must(t, err, "list all")
	if len(all) != storage.ReceivedWebhooksKept || all[len(all)-1].ID != "msg_3" {
		t.Fatalf("kept %d, the oldest %v; want the newest %d, down to msg_3", len(all), all[len(all)-1].ID,
			storage.ReceivedWebhooksKept)
	}
	if other, err := s.ListReceivedWebhooks(ctx, wsB, 10); err != nil || len(other) != 0 {
		t.Fatalf("other workspace lists %v, %v; want nothing", other, err)
	}
}
