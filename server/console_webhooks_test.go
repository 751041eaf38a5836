package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestConsoleWebhooksForms: on a server that does not allow private
// targets, an http:// URL and an unknown event type are refused next to
// their fields with every value kept; a good endpoint is created with its
// secret shown once, edited, its secret rotated (a bad overlap refused),
// a redelivery of a disabled endpoint or of an unknown failed delivery
// refused with the reason on the page, and deleted; each change is an
// event whose actor is the admin.
func TestConsoleWebhooksForms(t *testing.T) {
	env, admin, b := consoleAdmin(t)
	ctx := t.Context()

	b.do(http.MethodGet, "/console/w/acme/webhooks", nil)
	st, body := b.post("/console/w/acme/webhooks", url.Values{"url": {"http://hooks.acme.example/in"},
		"description": {"Billing"}, "types": {"user.*, group.created"}})
	if st != http.StatusBadRequest || !regexp.MustCompile(`id="wh-url-error">url must use https`).MatchString(body) ||
		!strings.Contains(body, `value="http://hooks.acme.example/in"`) || !strings.Contains(body, `value="Billing"`) ||
		!strings.Contains(body, `value="user.*, group.created"`) {
		t.Fatalf("http URL: %d\n%s", st, body)
	}
	st, body = b.post("/console/w/acme/webhooks", url.Values{"url": {"https://hooks.acme.example/in"}, "types": {"user.*, usr.created"}})
	if st != http.StatusBadRequest || !strings.Contains(body, `id="wh-types-error"`) || !strings.Contains(body, "usr.created") ||
		!strings.Contains(body, `value="https://hooks.acme.example/in"`) {
		t.Fatalf("unknown type: %d\n%s", st, body)
	}
	if hooks, _ := env.Store.ListWebhooks(ctx, "acme"); len(hooks) != 0 {
		t.Fatalf("refused forms created %d endpoints", len(hooks))
	}

	st, body = b.post("/console/w/acme/webhooks", url.Values{"url": {"https://hooks.acme.example/in"},
		"description": {"Billing"}, "types": {"user.*\ngroup.created"}})
	secret := regexp.MustCompile(`id="new-secret" value="(whsec_[^"]+)"`).FindStringSubmatch(body)
	if st != http.StatusOK || secret == nil || !strings.Contains(body, `id="endpoints"`) {
		t.Fatalf("create: %d\n%s", st, body)
	}
	hooks, err := env.Store.ListWebhooks(ctx, "acme")
	if err != nil || len(hooks) != 1 || hooks[0].URL != "https://hooks.acme.example/in" || hooks[0].Description != "Billing" ||
		strings.Join(hooks[0].Types, " ") != "user.* group.created" || !hooks[0].Enabled {
		t.Fatalf("stored endpoints %+v, %v", hooks, err)
	}
	ep := hooks[0]
	page := "/console/w/acme/webhooks/" + ep.ID
	if _, body = b.do(http.MethodGet, "/console/w/acme/webhooks", nil); strings.Contains(body, secret[1]) || !strings.Contains(body, "group.created") {
		t.Fatalf("the list shows the secret again, or not the endpoint:\n%s", body)
	}

	// Edit: a bad type keeps the form's values; then disable it.
	b.do(http.MethodGet, page, nil)
	st, body = b.post(page, url.Values{"url": {ep.URL}, "description": {"Billing v2"}, "types": {"nope"}})
	if st != http.StatusBadRequest || !strings.Contains(body, `id="wh-types-error"`) || !strings.Contains(body, `value="Billing v2"`) {
		t.Fatalf("edit with a bad type: %d\n%s", st, body)
	}
	if st, _ = b.post(page, url.Values{"url": {ep.URL}, "description": {"Billing v2"}, "types": {""}}); st != http.StatusSeeOther {
		t.Fatalf("edit: %d", st)
	}
	if _, body = b.do(http.MethodGet, page+"?done=saved", nil); !strings.Contains(body, "Endpoint saved.") || !strings.Contains(body, "Disabled") {
		t.Fatalf("after the edit:\n%s", body)
	}
	if w, err := env.Store.GetWebhook(ctx, "acme", ep.ID); err != nil || w.Enabled || w.Description != "Billing v2" || len(w.Types) != 0 {
		t.Fatalf("stored after the edit %+v, %v", w, err)
	}

	// Rotate: a bad overlap is refused; no overlap drops the old secret.
	if st, body = b.post(page+"/rotate", url.Values{"overlap": {"forever"}}); st != http.StatusBadRequest || !strings.Contains(body, `id="overlap-error"`) {
		t.Fatalf("rotate with a bad overlap: %d\n%s", st, body)
	}
	st, body = b.post(page+"/rotate", url.Values{"overlap": {"0s"}})
	rotated := regexp.MustCompile(`id="new-secret" value="(whsec_[^"]+)"`).FindStringSubmatch(body)
	if st != http.StatusOK || rotated == nil || rotated[1] == secret[1] {
		t.Fatalf("rotate: %d\n%s", st, body)
	}
	if w, _ := env.Store.GetWebhook(ctx, "acme", ep.ID); len(w.Secrets) != 1 {
		t.Fatalf("secrets after a rotation without overlap: %d", len(w.Secrets))
	}

	// Redeliveries refused with their reason.
	if st, body = b.post(page+"/redeliver", url.Values{"since": {"2026-01-31T14:05"}}); st != http.StatusBadRequest || !strings.Contains(body, `id="form-error">the endpoint is disabled`) {
		t.Fatalf("redeliver since to a disabled endpoint: %d\n%s", st, body)
	}
	if st, body = b.post(page+"/redeliver", url.Values{"since": {"soon"}}); st != http.StatusBadRequest || !strings.Contains(body, `id="since-error"`) ||
		!strings.Contains(body, `value="soon"`) {
		t.Fatalf("redeliver since an unreadable time: %d\n%s", st, body)
	}
	if st, body = b.post(page+"/failed/1-0/redeliver", nil); st != http.StatusBadRequest || !strings.Contains(body, `id="form-error">no failed delivery`) {
		t.Fatalf("redeliver an unknown failed delivery: %d\n%s", st, body)
	}

	// Delete.
	if st, _ = b.post(page+"/remove", nil); st != http.StatusSeeOther {
		t.Fatalf("delete: %d", st)
	}
	if _, err := env.Store.GetWebhook(ctx, "acme", ep.ID); err == nil {
		t.Fatal("endpoint still stored after the deletion")
	}
	if st, _ = b.do(http.MethodGet, page, nil); st != http.StatusNotFound {
		t.Fatalf("deleted endpoint's page: %d", st)
	}

	events, err := env.Store.ListEvents(ctx, "acme", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range events {
		if strings.HasPrefix(e.Type, "admin.webhook.") {
			got[e.Type] = e.Actor
		}
	}
	for _, typ := range []string{"admin.webhook.created", "admin.webhook.updated", "admin.webhook.secret_rotated", "admin.webhook.deleted"} {
		if got[typ] != "user:"+admin.ID {
			t.Errorf("event %s by %q, want user:%s", typ, got[typ], admin.ID)
		}
	}
	if len(got) != 4 {
		t.Errorf("webhook events %v: a refused change was recorded", got)
	}
}
