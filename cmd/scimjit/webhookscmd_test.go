package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
)

// TestWebhooksCommand drives every "scimjit webhooks" command against a
// server on real Redis that delivers to a local receiver: create prints
// the secret once, list never; update changes only what is given; the
// deliveries of a SCIM create show up; a receiver answering 500 leaves a
// failed delivery that redeliver queues again, one by one and since a
// time; rotate-secret prints a new secret; delete; the server's error
// message reaches the user.
func TestWebhooksCommand(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" && failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	e := cliEnv{servertest.New(t, func(c *server.Config) { c.Webhooks.AllowPrivate = true }), t}
	scimToken := e.CreateWorkspace(t, "legal", nil)

	var ep server.WebhookJSON
	out := e.ok("webhooks", "create", "legal", "--url", receiver.URL+"/ok", "--type", "user.*", "--description", "app", "-o", "json")
	if err := json.Unmarshal([]byte(out), &ep); err != nil || !strings.HasPrefix(ep.Secret, "whsec_") || ep.Types[0] != "user.*" {
		t.Fatalf("create -o json: %v\n%s", err, out)
	}
	code, out, errOut := e.run(nil, "webhooks", "create", "legal", "--url", receiver.URL+"/fail")
	if code != 0 || !regexp.MustCompile(`(?m)^Secret: +whsec_`).MatchString(out) || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("create: %d\n%s%s", code, out, errOut)
	}
	failID := regexp.MustCompile(`(?m)^ID: +(\S+)`).FindStringSubmatch(out)[1]

	out = e.ok("webhooks", "list", "legal")
	rows := parseTable(t, out)
	if len(rows) != 2 || strings.Contains(out, "whsec_") {
		t.Fatalf("list:\n%s", out)
	}
	for _, r := range rows {
		switch r["ID"] {
		case ep.ID:
			if r["TYPES"] != "user.*" || r["ENABLED"] != "yes" || r["DESCRIPTION"] != "app" {
				t.Errorf("row %v", r)
			}
		case failID:
			if r["TYPES"] != "all" || r["URL"] != receiver.URL+"/fail" {
				t.Errorf("row %v", r)
			}
		default:
			t.Errorf("unknown row %v", r)
		}
	}

	out = e.ok("webhooks", "update", "legal", ep.ID, "--disable", "--description", "paused")
	if !regexp.MustCompile(`(?m)^Enabled: +no$`).MatchString(out) || !strings.Contains(out, "paused") || !strings.Contains(out, "user.*") {
		t.Errorf("update --disable:\n%s", out)
	}
	out = e.ok("webhooks", "update", "legal", ep.ID, "--enable", "--type", "")
	if !regexp.MustCompile(`(?m)^Enabled: +yes$`).MatchString(out) || !regexp.MustCompile(`(?m)^Types: +all$`).MatchString(out) ||
		!strings.Contains(out, "paused") {
		t.Errorf("update --enable --type '':\n%s", out)
	}
	if out = e.ok("webhooks", "get", "legal", ep.ID); !strings.Contains(out, receiver.URL+"/ok") || strings.Contains(out, "whsec_") {
		t.Errorf("get:\n%s", out)
	}

	// A SCIM create reaches both endpoints: delivered to one, failing at
	// the other until its retries end.
	if code, body := httpDo(t, http.MethodPost, e.URL+"/scim/v2/legal/Users", scimToken, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "jane@example.com"}); code != http.StatusCreated {
		t.Fatalf("SCIM create: %d %s", code, body)
	}
	var delivered map[string]string
	waitFor(t, "the delivery of user.created", func() bool {
		for _, r := range parseTable(t, e.ok("webhooks", "deliveries", "legal", ep.ID)) {
			if r["TYPE"] == "user.created" && r["STATUS"] == "204" && strings.HasSuffix(r["LATENCY"], "ms") && r["ERROR"] == "-" {
				delivered = r
				return true
			}
		}
		return false
	})
	var failedRows []map[string]string
	waitFor(t, "the failed delivery", func() bool {
		out := e.ok("webhooks", "failed", "legal", failID)
		failedRows = nil
		if strings.Count(out, "\n") > 1 {
			failedRows = parseTable(t, out)
		}
		return len(failedRows) > 0
	})
	if f := failedRows[0]; f["EVENT"] != delivered["EVENT"] || f["TYPE"] != "user.created" || !strings.Contains(f["LAST ERROR"], "500") {
		t.Errorf("failed row %v; delivered %v", f, delivered)
	}
	out = e.ok("webhooks", "deliveries", "legal", failID, "--limit", "1")
	if rows := parseTable(t, out); len(rows) != 1 || rows[0]["STATUS"] != "500" {
		t.Errorf("deliveries --limit 1:\n%s", out)
	}

	failing.Store(false)
	if out = e.ok("webhooks", "redeliver", "legal", failID, delivered["EVENT"]); out != "1 deliveries queued\n" {
		t.Errorf("redeliver EVENT_ID: %q", out)
	}
	waitFor(t, "the redelivery", func() bool {
		return strings.Contains(e.ok("webhooks", "deliveries", "legal", failID), " 204 ")
	})
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if out = e.ok("webhooks", "redeliver", "legal", ep.ID, "--since", since); !regexp.MustCompile(`^[1-9]\d* deliveries queued\n$`).MatchString(out) {
		t.Errorf("redeliver --since: %q", out)
	}
	if code, _, errOut := e.run(nil, "webhooks", "redeliver", "legal", ep.ID); code != 2 || !strings.Contains(errOut, "EVENT_ID or --since") {
		t.Errorf("redeliver with neither: %d %s", code, errOut)
	}

	out = e.ok("webhooks", "rotate-secret", "legal", ep.ID, "--overlap", "1h")
	m := regexp.MustCompile(`(?m)^Secret: +(whsec_\S+)`).FindStringSubmatch(out)
	if m == nil || m[1] == ep.Secret || !strings.Contains(out, "Previous secrets until:") {
		t.Errorf("rotate-secret:\n%s", out)
	}

	// The server's message, not just a status.
	if code, _, errOut := e.run(nil, "webhooks", "create", "legal", "--url", receiver.URL, "--type", "nope"); code != 1 ||
		!strings.Contains(errOut, `"nope" is neither an event type`) {
		t.Errorf("bad type: %d %s", code, errOut)
	}
	if out = e.ok("webhooks", "delete", "legal", failID); out != "webhook endpoint "+failID+" deleted\n" {
		t.Errorf("delete: %q", out)
	}
	if code, _, errOut := e.run(nil, "webhooks", "get", "legal", failID); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("get after delete: %d %s", code, errOut)
	}
}
