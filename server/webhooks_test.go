package server_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/server/webhooks"
	"github.com/scimjit/scimjit/server/webhooks/webhookstest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// webhookEnv is a server with its queue and dispatcher running on a fast
// retry schedule, deliveries to loopback allowed; store, when not nil,
// replaces the redis-server store.
func webhookEnv(t *testing.T, store ...storage.Store) *servertest.Env {
	env := servertest.New(t, func(c *server.Config) {
		if len(store) > 0 {
			c.Store = store[0]
		}
		c.Webhooks = server.WebhooksConfig{AllowPrivate: true, PollInterval: 50 * time.Millisecond, Timeout: 2 * time.Second}
		c.Queue = queue.Config{PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
			Backoff: queue.Backoff{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond, Retries: 50}}
	})
	return env
}

// createEndpoint creates an endpoint for r's URL and gives r its secret.
func createEndpoint(t *testing.T, env *servertest.Env, ws string, r *webhookstest.Receiver, types ...string) server.WebhookJSON {
	t.Helper()
	req := map[string]any{"url": r.Server.URL + "/hook", "description": "test receiver"}
	if types != nil {
		req["types"] = types
	}
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces/"+ws+"/webhooks", req)
	wantStatus(t, resp, body, http.StatusCreated)
	var w server.WebhookJSON
	if err := json.Unmarshal(body, &w); err != nil || !strings.HasPrefix(w.Secret, "whsec_") {
		t.Fatalf("created endpoint %s: want a whsec_ secret", body)
	}
	r.SetSecret(w.Secret)
	return w
}

// scimSequence runs create → patch → group with the user → add … the
// SCIM sequence of the end-to-end tests, and returns the user's id and the
// types it causes.
func scimSequence(t *testing.T, env *servertest.Env, tok, ws string) (string, []string) {
	t.Helper()
	base := "/scim/v2/" + ws
	resp, body := env.Do(t, http.MethodPost, base+"/Users", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "ada@example.com",
		"name": map[string]any{"givenName": "Ada", "familyName": "Lovelace"}, "active": true})
	wantStatus(t, resp, body, http.StatusCreated)
	var u struct{ ID string }
	_ = json.Unmarshal(body, &u)
	patch := func(path string, ops ...map[string]any) {
		t.Helper()
		resp, body := env.Do(t, http.MethodPatch, base+path, tok, map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops})
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH %s: %d %s", path, resp.StatusCode, body)
		}
	}
	patch("/Users/"+u.ID, map[string]any{"op": "replace", "path": "displayName", "value": "Ada L."})
	resp, body = env.Do(t, http.MethodPost, base+"/Groups", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Engineers"})
	wantStatus(t, resp, body, http.StatusCreated)
	var g struct{ ID string }
	_ = json.Unmarshal(body, &g)
	patch("/Groups/"+g.ID, map[string]any{"op": "add", "path": "members", "value": []map[string]any{{"value": u.ID}}})
	patch("/Users/"+u.ID, map[string]any{"op": "replace", "path": "active", "value": false})
	resp, body = env.Do(t, http.MethodDelete, base+"/Users/"+u.ID, tok, nil)
	wantStatus(t, resp, body, http.StatusNoContent)
	return u.ID, []string{"user.created", "user.updated", "group.created", "group.member_added", "user.deactivated", "user.deleted"}
}

// TestWebhooksEndToEnd: a SCIM sequence reaches a receiver as signed
// deliveries (verified independently) of the right types, with payloads
// valid against the documented schemas, and the attempts are listed; on
// a redis-server and on the embedded store of demo mode.
func TestWebhooksEndToEnd(t *testing.T) {
	t.Run("redis", func(t *testing.T) { testWebhooksEndToEnd(t, webhookEnv(t)) })
	t.Run("embedded", func(t *testing.T) {
		s, err := redisstore.OpenEmbedded(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		testWebhooksEndToEnd(t, webhookEnv(t, s))
	})
}

func testWebhooksEndToEnd(t *testing.T, env *servertest.Env) {
	tok := env.CreateWorkspace(t, "acme", nil)
	r := webhookstest.NewReceiver(t)
	ep := createEndpoint(t, env, "acme", r)
	// An endpoint that wants group events only.
	r2 := webhookstest.NewReceiver(t)
	createEndpoint(t, env, "acme", r2, "group.*")

	uid, want := scimSequence(t, env, tok, "acme")
	// The sign-in side's events, appended as the SAML service records
	// them (its own tests cover when it does), and a user that exists.
	resp, body := env.Do(t, http.MethodPost, "/scim/v2/acme/Users", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "grace@example.com"})
	wantStatus(t, resp, body, http.StatusCreated)
	var grace struct{ ID string }
	_ = json.Unmarshal(body, &grace)
	if _, err := env.Store.AppendEvents(t.Context(), "acme",
		storage.Event{Type: "role.synced", Actor: "saml", UserID: grace.ID, Detail: map[string]string{"roles": "Admin"}},
		storage.Event{Type: "join.pending", Actor: "saml", AccountID: "acct1", Detail: map[string]string{"email": "x@example.com"}},
		storage.Event{Type: "join.verified", Actor: "saml", UserID: grace.ID, AccountID: "acct1"},
		storage.Event{Type: "login.succeeded", UserID: grace.ID, AccountID: "acct1"},
		storage.Event{Type: "login.refused", Detail: map[string]string{"reason": "signature"}},
		storage.Event{Type: "admin.workspace.updated", Actor: "admin"}, // no webhook
	); err != nil {
		t.Fatal(err)
	}
	want = append(want, "user.created", "membership.roles_changed", "join.pending", "join.verified",
		"signin.succeeded", "signin.refused")
	got := r.WaitTypes(want, 20*time.Second)
	r2.WaitTypes([]string{"group.created", "group.member_added"}, 20*time.Second)
	validate := webhookstest.Schemas(t)
	for id, d := range got {
		if err := validate(d.Type, d.Body); err != nil {
			t.Errorf("%s payload %s not valid against its schema: %v", d.Type, d.Body, err)
		}
		if d.Env["id"] != id || d.Env["workspace"] != "acme" {
			t.Errorf("envelope %s: id or workspace wrong", d.Body)
		}
		data, _ := d.Env["data"].(map[string]any)
		switch d.Type {
		case "user.updated", "user.deactivated", "user.deleted":
			if data["id"] != uid {
				t.Errorf("%s: data %v, want user %s", d.Type, data, uid)
			}
		case "membership.roles_changed", "signin.succeeded":
			if data["id"] != grace.ID && data["userId"] != grace.ID {
				t.Errorf("%s: data %v, want user %s", d.Type, data, grace.ID)
			}
		case "group.member_added":
			if m, _ := data["members"].([]any); len(m) != 1 || m[0].(map[string]any)["value"] != uid {
				t.Errorf("member_added data %v, want member %s", data, uid)
			}
		}
		if d.Type == "user.created" && d.Env["cause"] != "scim.user.created" {
			t.Errorf("user.created cause %v", d.Env["cause"])
		}
	}
	// Every delivery is recorded as an attempt of the endpoint.
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/deliveries", nil)
	wantStatus(t, resp, body, http.StatusOK)
	var list struct{ Deliveries []server.DeliveryJSON }
	_ = json.Unmarshal(body, &list)
	if len(list.Deliveries) < len(want) || list.Deliveries[0].Status != http.StatusNoContent {
		t.Fatalf("deliveries %s, want %d attempts with 204", body, len(want))
	}
}

// TestWebhooksReceiverDownThenUp: the receiver refuses connections, then
// answers 500, then times out, then recovers: every event still arrives,
// a redelivered one with the webhook-id of its first attempt, and the
// failed attempts are listed with their errors.
func TestWebhooksReceiverDownThenUp(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) {
		c.Webhooks = server.WebhooksConfig{AllowPrivate: true, PollInterval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond}
		c.Queue = queue.Config{PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
			Backoff: queue.Backoff{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond, Retries: 100}}
	})
	tok := env.CreateWorkspace(t, "acme", nil)
	// The receiver's address, with nothing listening yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	r := webhookstest.NewReceiver(t)
	r.Server.Close()
	r.Server.URL = "http://" + addr
	ep := createEndpoint(t, env, "acme", r)

	_, want := scimSequence(t, env, tok, "acme")
	time.Sleep(time.Second) // deliveries fail with connection refused meanwhile
	failures := 0
	r.SetFail(func(w http.ResponseWriter) bool {
		failures++
		switch {
		case failures <= 5:
			w.WriteHeader(http.StatusInternalServerError)
			return true
		case failures <= 8:
			time.Sleep(500 * time.Millisecond) // past the delivery timeout
			w.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	})
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the receiver's port was taken meanwhile: %v", err)
	}
	r.Server = httptest.NewUnstartedServer(r.Server.Config.Handler)
	r.Server.Listener = ln
	r.Server.Start()
	t.Cleanup(r.Server.Close)

	r.WaitTypes(want, 30*time.Second)
	resp, body := env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/deliveries?limit=1000", nil)
	wantStatus(t, resp, body, http.StatusOK)
	for _, e := range []string{"connection refused", "HTTP 500", "Timeout"} {
		if !strings.Contains(string(body), e) {
			t.Errorf("deliveries do not record a %q attempt: %s", e, body)
		}
	}
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/failed", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(string(body), `"failed":[]`) {
		t.Errorf("failed deliveries %s, want none", body)
	}
}

// TestWebhooksGoneThenRedeliver: a 410 disables the endpoint (recorded in
// the events) and archives the delivery; once re-enabled, the failed
// delivery is redelivered by hand with its webhook-id, and the events
// since a time are delivered again.
func TestWebhooksGoneThenRedeliver(t *testing.T) {
	env := webhookEnv(t)
	tok := env.CreateWorkspace(t, "acme", nil)
	r := webhookstest.NewReceiver(t)
	ep := createEndpoint(t, env, "acme", r)
	r.SetFail(func(w http.ResponseWriter) bool { w.WriteHeader(http.StatusGone); return true })
	start := time.Now()
	resp, body := env.Do(t, http.MethodPost, "/scim/v2/acme/Users", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "grace@example.com"})
	wantStatus(t, resp, body, http.StatusCreated)

	var failed struct{ Failed []server.FailedJSON }
	deadline := time.Now().Add(15 * time.Second)
	for len(failed.Failed) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the 410 delivery was not archived")
		}
		time.Sleep(50 * time.Millisecond) // polling the archive
		resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/failed", nil)
		wantStatus(t, resp, body, http.StatusOK)
		_ = json.Unmarshal(body, &failed)
	}
	f := failed.Failed[0]
	if f.Type != "user.created" || f.Attempts != 1 || !strings.Contains(f.LastError, "410") {
		t.Fatalf("failed delivery %+v", f)
	}
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/webhooks/"+ep.ID, nil)
	wantStatus(t, resp, body, http.StatusOK)
	var got server.WebhookJSON
	_ = json.Unmarshal(body, &got)
	if got.Enabled || got.DisabledReason == "" || got.Secret != "" {
		t.Fatalf("endpoint after 410: %s, want disabled with a reason and no secret", body)
	}
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/events", nil)
	if !strings.Contains(string(body), "webhook.endpoint.disabled") {
		t.Fatalf("events %s: want the disabling recorded", body)
	}
	// Redelivery to a disabled endpoint is refused; enabled again, the
	// failed delivery goes out with the event's id.
	resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/redeliver",
		map[string]any{"since": start.Add(-time.Second).Format(time.RFC3339Nano)})
	wantStatus(t, resp, body, http.StatusConflict)
	r.SetFail(nil)
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme/webhooks/"+ep.ID, map[string]any{"enabled": true})
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/failed/"+f.EventID+"/redeliver", nil)
	wantStatus(t, resp, body, http.StatusAccepted)
	first := r.WaitTypes([]string{"user.created"}, 15*time.Second)
	if _, ok := first[f.EventID]; !ok {
		t.Fatalf("redelivered with ids %v, want %s", first, f.EventID)
	}
	resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/failed/"+f.EventID+"/redeliver", nil)
	wantStatus(t, resp, body, http.StatusNotFound)
	// Redeliver since: the same event once more, same webhook-id.
	resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/redeliver",
		map[string]any{"since": start.Add(-time.Second).Format(time.RFC3339Nano)})
	wantStatus(t, resp, body, http.StatusAccepted)
	if !strings.Contains(string(body), `"queued":1`) {
		t.Fatalf("redeliver since: %s, want 1 queued", body)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		n := len(r.Got())
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries, want the redelivery too", n)
		}
		time.Sleep(50 * time.Millisecond) // polling the receiver
	}
	if got := r.Got(); got[1].ID != f.EventID {
		t.Fatalf("redelivery since has id %s, want %s", got[1].ID, f.EventID)
	}
}

// TestWebhookSecretRotation: after a rotation with an overlap both the
// new and the old secret verify deliveries; the secret is shown only in
// the answers of create and rotate.
func TestWebhookSecretRotation(t *testing.T) {
	env := webhookEnv(t)
	tok := env.CreateWorkspace(t, "acme", nil)
	r := webhookstest.NewReceiver(t)
	ep := createEndpoint(t, env, "acme", r)
	old := ep.Secret
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/webhooks/"+ep.ID+"/rotate-secret",
		map[string]any{"overlap": "1h"})
	wantStatus(t, resp, body, http.StatusOK)
	var rot server.WebhookJSON
	_ = json.Unmarshal(body, &rot)
	if rot.Secret == "" || rot.Secret == old || len(rot.PreviousSecretsExpireAt) != 1 {
		t.Fatalf("rotated: %s", body)
	}
	resp, body = env.Do(t, http.MethodPost, "/scim/v2/acme/Users", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "rot@example.com"})
	wantStatus(t, resp, body, http.StatusCreated)
	// r verifies with the old secret, r2 with the new one.
	r.WaitTypes([]string{"user.created"}, 15*time.Second)
	r2 := webhookstest.NewReceiver(t)
	r2.SetSecret(rot.Secret)
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme/webhooks/"+ep.ID,
		map[string]any{"url": r2.Server.URL + "/hook"})
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = env.Do(t, http.MethodPost, "/scim/v2/acme/Users", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "rot2@example.com"})
	wantStatus(t, resp, body, http.StatusCreated)
	r2.WaitTypes([]string{"user.created"}, 15*time.Second)
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/webhooks", nil)
	if strings.Contains(string(body), "whsec_") {
		t.Fatalf("list shows a secret: %s", body)
	}
}

// TestWebhooksSurviveRedisRestart: with the receiver down, the SCIM
// writes are acknowledged, then Redis (append-only, fsync always) is
// killed and restarted; once the receiver is up every event arrives:
// nothing acknowledged was lost, neither the outbox entries nor the
// queued deliveries.
func TestWebhooksSurviveRedisRestart(t *testing.T) {
	rs := redistest.StartDurable(t)
	store := redistest.OpenStore(t, rs)
	env := servertest.New(t, func(c *server.Config) {
		c.Store = store
		c.Webhooks = server.WebhooksConfig{AllowPrivate: true, PollInterval: 50 * time.Millisecond, Timeout: time.Second}
		c.Queue = queue.Config{PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
			Backoff: queue.Backoff{Base: 100 * time.Millisecond, Max: 300 * time.Millisecond, Retries: 200}}
	})
	tok := env.CreateWorkspace(t, "acme", nil)
	r := webhookstest.NewReceiver(t)
	// 503 with Retry-After: each delivery waits about 3 s between
	// attempts, so at the restart the tasks are almost surely waiting in
	// Redis rather than running. (A task running at the kill is not lost
	// either: its lease runs out and the queue takes it back, but that
	// takes about a minute.)
	r.SetFail(func(w http.ResponseWriter) bool {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	createEndpoint(t, env, "acme", r)
	_, want := scimSequence(t, env, tok, "acme")
	time.Sleep(500 * time.Millisecond) // the deliveries dispatched and failed once

	rs.Restart(t)
	r.SetFail(nil)
	r.WaitTypes(want, 150*time.Second)
}

// metricsEnv is a server with a metrics registry, the workspace acme (tok
// is its SCIM token) and an endpoint to r.
func metricsEnv(t *testing.T) (env *servertest.Env, reg *prometheus.Registry, tok string, r *webhookstest.Receiver) {
	reg = prometheus.NewRegistry()
	env = servertest.New(t, func(c *server.Config) {
		c.Metrics = reg
		c.Webhooks = server.WebhooksConfig{AllowPrivate: true, PollInterval: 50 * time.Millisecond}
		c.Queue = queue.Config{PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second}
	})
	tok = env.CreateWorkspace(t, "acme", nil)
	r = webhookstest.NewReceiver(t)
	createEndpoint(t, env, "acme", r)
	return env, reg, tok, r
}

// gatherMetric is the value of the counter or gauge name of reg (with
// label, when not "", as its first label's value), or -1 without it.
func gatherMetric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() != name {
				continue
			}
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestWebhookMetrics: attempts are counted by outcome and the queue
// gauges read the queue (a delivery waiting for its retry counts in the
// depth).
func TestWebhookMetrics(t *testing.T) {
	env, reg, tok, r := metricsEnv(t)
	r.SetFail(func(w http.ResponseWriter) bool { w.WriteHeader(http.StatusInternalServerError); return true })
	resp, body := env.Do(t, http.MethodPost, "/scim/v2/acme/Users", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "m1@example.com"})
	wantStatus(t, resp, body, http.StatusCreated)
	metric := func(name, label string) float64 { return gatherMetric(t, reg, name, label) }
	// The first attempt fails; with the default schedule the retry waits
	// at least 15 s, so the delivery sits in the queue.
	waitUntil(t, func() bool { return metric("scimjit_webhook_deliveries_total", "failed") == 1 })
	if d := metric("scimjit_queue_depth", ""); d != 1 {
		t.Fatalf("queue depth %v, want the one delivery waiting for its retry", d)
	}
	if a := metric("scimjit_queue_archived", ""); a != 0 {
		t.Fatalf("archived %v", a)
	}
	if o := metric("scimjit_queue_oldest_pending_seconds", ""); o < 0 {
		t.Fatalf("oldest pending %v", o)
	}
}

// TestDemoReceiverIsTheOnlyPrivateTarget: in demo mode without
// AllowPrivate, the endpoint whose URL is the server's own demo receiver
// gets its deliveries over http on loopback (the receiver records them as
// verified), while an endpoint a user points at another loopback address
// is refused: http is refused when it is created, and an https one on
// loopback is refused at the dialler.
func TestDemoReceiverIsTheOnlyPrivateTarget(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) {
		c.Demo = true
		c.Webhooks = server.WebhooksConfig{PollInterval: 50 * time.Millisecond, Timeout: 2 * time.Second}
		c.Queue = queue.Config{PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
			Backoff: queue.Backoff{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond, Retries: 50}}
	})
	tok := env.CreateWorkspace(t, "demo", nil)
	_, stored, err := webhooks.NewEndpointSecret("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.CreateWebhook(t.Context(), "demo", storage.Webhook{ID: saml.DemoWebhookEndpoint,
		URL: env.Server.SAML().DemoWebhookURL(), Enabled: true, Secrets: []storage.WebhookSecret{stored}}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(env.Server.SAML().DemoWebhookURL(), "http://127.0.0.1:") {
		t.Fatalf("demo receiver URL %s, want http on loopback", env.Server.SAML().DemoWebhookURL())
	}
	r := webhookstest.NewReceiver(t)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces/demo/webhooks",
		map[string]any{"url": r.Server.URL + "/hook"})
	wantStatus(t, resp, body, http.StatusBadRequest)
	tlsRecv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a user's endpoint on loopback was reached")
	}))
	defer tlsRecv.Close()
	resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces/demo/webhooks", map[string]any{"url": tlsRecv.URL + "/hook"})
	wantStatus(t, resp, body, http.StatusCreated)
	var user server.WebhookJSON
	_ = json.Unmarshal(body, &user)

	resp, body = env.Do(t, http.MethodPost, "/scim/v2/demo/Users", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "demo@example.com"})
	wantStatus(t, resp, body, http.StatusCreated)
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := env.Store.ListReceivedWebhooks(t.Context(), "demo", 10)
		if err != nil {
			t.Fatal(err)
		}
		resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/demo/webhooks/"+user.ID+"/deliveries", nil)
		refused := strings.Contains(string(body), "refused to connect to a loopback address")
		if len(got) == 1 && refused {
			if !got[0].Verified || got[0].Type != "user.created" {
				t.Fatalf("the demo receiver got %+v, want user.created verified", got[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo receiver got %+v; user endpoint attempts %s (want refused)", got, body)
		}
		time.Sleep(50 * time.Millisecond) // polling the store and the attempts
	}
}

// TestWebhookOutboxDroppedReported: events that found the outbox full
// (counted by the store; the count is set here, as filling an outbox to
// its cap is the store's own test) are reported by the dispatcher once it
// finds a backlog in the outbox: a webhook.outbox.dropped workspace event
// with the count, the dropped metric, and the count reset so that it is
// reported once.
func TestWebhookOutboxDroppedReported(t *testing.T) {
	env, reg, tok, r := metricsEnv(t)
	if err := env.Config.Redis.IncrBy(t.Context(), "sj:{ws:acme}:outbox:dropped", 7).Err(); err != nil {
		t.Fatal(err)
	}
	// A few entries wait in the outbox: no backlog, nothing reported yet.
	resp, body := env.Do(t, http.MethodPost, "/scim/v2/acme/Users", tok, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "d1@example.com"})
	wantStatus(t, resp, body, http.StatusCreated)
	r.WaitTypes([]string{"user.created"}, 15*time.Second)
	// A backlog (as a dispatcher that resumes finds it): 150 events at once.
	backlog := make([]storage.Event, 150)
	for i := range backlog {
		backlog[i] = storage.Event{Type: "login.refused", Detail: map[string]string{"reason": "signature"}}
	}
	if _, err := env.Store.AppendEvents(t.Context(), "acme", backlog...); err != nil {
		t.Fatal(err)
	}
	want := []string{"user.created"}
	for range backlog {
		want = append(want, "signin.refused")
	}
	r.WaitTypes(want, 30*time.Second)
	evs, err := env.Store.ListEvents(t.Context(), "acme", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var reports []map[string]string
	for _, e := range evs {
		if e.Type == "webhook.outbox.dropped" {
			reports = append(reports, e.Detail)
		}
	}
	if len(reports) != 1 || reports[0]["count"] != "7" {
		t.Fatalf("webhook.outbox.dropped events %v, want one with count 7", reports)
	}
	if dropped := gatherMetric(t, reg, "scimjit_webhook_outbox_dropped_total", ""); dropped != 7 {
		t.Fatalf("scimjit_webhook_outbox_dropped_total = %v, want 7", dropped)
	}
	if n, err := env.Store.TakeOutboxDropped(t.Context(), "acme"); err != nil || n != 0 {
		t.Fatalf("dropped count after the report = %d, %v; want 0", n, err)
	}
}
