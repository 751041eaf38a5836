package saml_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/webhooks/webhookstest"
)

// receiverFor creates a webhook endpoint of ws (every event type) that
// delivers to a new test receiver verifying with the endpoint's secret.
func receiverFor(t *testing.T, je *joinEnv, ws string) *webhookstest.Receiver {
	t.Helper()
	r := webhookstest.NewReceiver(t)
	resp, body := je.Admin(t, http.MethodPost, "/admin/v1/workspaces/"+ws+"/webhooks",
		map[string]any{"url": r.Server.URL + "/hook", "description": "test receiver"})
	var w server.WebhookJSON
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &w) != nil || w.Secret == "" {
		t.Fatalf("create endpoint in %s: %d %s", ws, resp.StatusCode, body)
	}
	r.SetSecret(w.Secret)
	return r
}

// TestWebhooksOfJITSignInAndJoin: a real SAML JIT sign-in and a join with
// email verification, driven by signed assertions and the emailed link,
// reach the workspaces' receivers as deliveries that an independent
// Standard Webhooks verifier accepts, on a redis-server; every payload is
// valid against its documented schema and names the account and the
// membership the sign-ins made.
func TestWebhooksOfJITSignInAndJoin(t *testing.T) {
	je := newJoinEnv(t, joinOptions{webhooks: true})
	je.workspace(t, "fin", nil)
	je.workspace(t, "hr", nil) // joins need email verification (the default)
	fin, hr := receiverFor(t, je, "fin"), receiverFor(t, je, "hr")
	validate := webhookstest.Schemas(t)
	check := func(ws string, got map[string]webhookstest.Delivery, userID, accountID string) {
		t.Helper()
		for id, d := range got {
			if err := validate(d.Type, d.Body); err != nil {
				t.Errorf("%s %s payload %s not valid against its schema: %v", ws, d.Type, d.Body, err)
			}
			data, _ := d.Env["data"].(map[string]any)
			if d.Env["id"] != id || d.Env["workspace"] != ws || d.Env["actor"] != "saml" {
				t.Errorf("%s %s envelope %s: want id %s, workspace %s, actor saml", ws, d.Type, d.Body, id, ws)
			}
			switch d.Type {
			case "user.created":
				if data["id"] != userID || data["userName"] != jane.Email {
					t.Errorf("%s user.created data %v, want user %s (%s)", ws, data, userID, jane.Email)
				}
			case "join.pending":
				if data["accountId"] != accountID {
					t.Errorf("%s %s data %v, want account %s", ws, d.Type, data, accountID)
				}
			default:
				if data["accountId"] != accountID || data["userId"] != userID {
					t.Errorf("%s %s data %v, want account %s and user %s", ws, d.Type, data, accountID, userID)
				}
			}
		}
	}

	// The JIT sign-in to fin: the user created by JIT, then the sign-in.
	b := signInToA(t, je)
	acct := account(t, je, jane.Email)
	finUser, err := je.Store.GetUserByAccount(t.Context(), "fin", acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := fin.WaitTypes([]string{"user.created", "signin.succeeded"}, 20*time.Second)
	check("fin", got, finUser.ID, acct.ID)
	for _, d := range got {
		if d.Type == "user.created" && d.Env["cause"] != "jit.user.created" {
			t.Errorf("fin user.created cause %v, want jit.user.created", d.Env["cause"])
		}
	}

	// The join of hr: pending at the sign-in, verified by the link.
	pendingJoin(t, b, "hr", janeInHR)
	link := joinLink(t, je.nextMail(t))
	if pg := confirm(t, b, link); pg.status != http.StatusOK {
		t.Fatalf("confirm: %d %s\n%s", pg.status, pg.url, pg.body)
	}
	hrUser, err := je.Store.GetUserByAccount(t.Context(), "hr", acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	got = hr.WaitTypes([]string{"join.pending", "join.verified"}, 20*time.Second)
	check("hr", got, hrUser.ID, acct.ID)
	if n := len(fin.Got()); n != 2 {
		t.Errorf("fin's receiver got %d deliveries, want only the 2 of its own sign-in", n)
	}
}
