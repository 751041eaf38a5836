package server_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/webhooks"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestBootstrapWebhooks: declared endpoints are created once (known by
// URL), with the secret of the environment variable or a generated one
// that is logged nowhere; applying again changes nothing; a new declared
// secret rotates the endpoint's; an admin change of a declared field is
// put back, of an undeclared one kept.
func TestBootstrapWebhooks(t *testing.T) {
	store := redistest.NewStore(t)
	ctx := t.Context()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const key = "bootstrap-test-secret-key-0123456789abcdef"
	first := webhooks.NewSecret()
	env := map[string]string{"APP_HOOK_SECRET": first}
	src := func() server.SecretSource {
		s := secrets(env, nil)
		s.SecretKey, s.WebhooksAllowPrivate = key, true
		return s
	}
	b, err := server.ParseBootstrap([]byte(`
workspaces:
  - id: finance
    name: Finance
    webhooks:
      - url: http://127.0.0.1:1/app
        description: HR app
        types: [user.*, group.member_added]
        secretEnv: APP_HOOK_SECRET
      - url: http://127.0.0.1:1/audit
        enabled: false
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := server.ApplyBootstrap(ctx, store, log, b, src()); err != nil {
		t.Fatal(err)
	}
	byURL := func() map[string]storage.Webhook {
		t.Helper()
		list, err := store.ListWebhooks(ctx, "finance")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]storage.Webhook{}
		for _, ep := range list {
			m[strings.TrimPrefix(ep.URL, "http://127.0.0.1:1/")] = ep
		}
		return m
	}
	eps := byURL()
	app, audit := eps["app"], eps["audit"]
	if len(eps) != 2 || !app.Enabled || app.Description != "HR app" || strings.Join(app.Types, ",") != "user.*,group.member_added" ||
		audit.Enabled || len(audit.Types) != 0 || len(audit.Secrets) != 1 {
		t.Fatalf("endpoints %+v", eps)
	}
	if cur, err := webhooks.CurrentSecret(app, key); err != nil || cur != first {
		t.Errorf("app's secret is not the declared one: %v", err)
	}
	auditSecret, err := webhooks.CurrentSecret(audit, key)
	if err != nil || !strings.HasPrefix(auditSecret, "whsec_") {
		t.Errorf("audit's generated secret: %v", err)
	}
	if strings.Contains(logs.String(), first) || strings.Contains(logs.String(), auditSecret) ||
		!strings.Contains(logs.String(), "rotate-secret") {
		t.Errorf("log shows a secret or does not say how to get one:\n%s", logs.String())
	}

	// Again: nothing changes.
	events, _ := store.ListEvents(ctx, "finance", "", 100)
	if err := server.ApplyBootstrap(ctx, store, log, b, src()); err != nil {
		t.Fatal(err)
	}
	again := byURL()
	events2, _ := store.ListEvents(ctx, "finance", "", 100)
	if len(again) != 2 || !again["app"].UpdatedAt.Equal(app.UpdatedAt) || !again["audit"].UpdatedAt.Equal(audit.UpdatedAt) ||
		len(events2) != len(events) {
		t.Fatalf("second apply changed things: %+v, %d events then %d", again, len(events), len(events2))
	}

	// An admin's description is put back, an admin's enabling of audit
	// (enabled is declared) undone; a new secret in the environment
	// rotates app's, the old one signing on.
	for _, ep := range []storage.Webhook{app, audit} {
		if _, err := store.UpdateWebhook(ctx, "finance", ep.ID, func(w *storage.Webhook) error {
			w.Description, w.Enabled = "changed", true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	second := webhooks.NewSecret()
	env["APP_HOOK_SECRET"] = second
	if err := server.ApplyBootstrap(ctx, store, log, b, src()); err != nil {
		t.Fatal(err)
	}
	eps = byURL()
	app, audit = eps["app"], eps["audit"]
	if cur, _ := webhooks.CurrentSecret(app, key); cur != second || len(app.Secrets) != 2 || app.Description != "HR app" {
		t.Errorf("app after a new secret: %d secrets, %q", len(app.Secrets), app.Description)
	}
	if audit.Enabled || audit.Description != "changed" {
		t.Errorf("audit: enabled %v (declared false), description %q (undeclared: kept)", audit.Enabled, audit.Description)
	}
	if cur, _ := webhooks.CurrentSecret(audit, key); cur != auditSecret {
		t.Error("audit's generated secret was replaced")
	}
}

func TestBootstrapWebhooksAreCheckedBeforeWriting(t *testing.T) {
	_, err := server.ParseBootstrap([]byte(`
workspaces:
  - id: a
    name: A
    webhooks:
      - description: no url
      - {url: "https://x.example/h", secretEnv: A, secretFile: /b}
      - {url: "https://x.example/h"}
`))
	for _, want := range []string{"webhooks[0]: url is required", "webhooks[1]: set at most one of secretEnv, secretFile",
		`webhooks[2]: url "https://x.example/h" is declared twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse error does not say %q: %v", want, err)
		}
	}

	store := redistest.NewStore(t)
	b, err := server.ParseBootstrap([]byte(`
workspaces:
  - id: a
    name: A
    webhooks:
      - {url: "http://127.0.0.1:1/h"}
      - {url: "https://x.example/weak", secretEnv: WEAK}
      - {url: "https://x.example/types", types: [nope]}
      - {url: "https://x.example/file", secretFile: /missing}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = server.ApplyBootstrap(t.Context(), store, slog.New(slog.DiscardHandler), b,
		secrets(map[string]string{"WEAK": "whsec_c2hvcnQ="}, nil))
	for _, want := range []string{"webhooks[0]", "webhooks[1] (a): a webhook secret is", `"nope"`, "/missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("apply error does not say %q: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "c2hvcnQ") {
		t.Errorf("the error shows the secret: %v", err)
	}
	if _, err := store.GetWorkspace(t.Context(), "a"); err == nil {
		t.Error("workspace a was created although the file could not be applied")
	}
}
