package saml_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// TestConcurrentReplayIsAcceptedOnce: the same signed response posted by
// several browsers at once (the ACS consumes the assertion ID while it
// looks the person up) signs in exactly one of them, creates the person
// once and records every refusal as "replayed".
func TestConcurrentReplayIsAcceptedOnce(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "tiles", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowIdPInitiated = true })
	// Round 0 is a JIT creation, round 1 a sign-in of the now existing
	// member; each with a fresh response posted n times at once.
	for round := 0; round < 2; round++ {
		req := idp.idpInitiated(t, spEntityID(env, "tiles"), "")
		resp := idp.respond(t, req, assertionOpts{NameID: "new@acme.example"})
		const n = 6
		pages := make([]ssoPage, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pages[i] = newSSOBrowser(env).acs(t, "tiles", resp, "")
			}()
		}
		wg.Wait()
		ok, refused := 0, 0
		for _, pg := range pages {
			switch pg.Status {
			case http.StatusSeeOther:
				ok++
				if len(pg.Header.Values("Set-Cookie")) == 0 {
					t.Error("accepted sign-in without a session cookie")
				}
			case http.StatusForbidden:
				refused++
				if len(pg.Header.Values("Set-Cookie")) != 0 {
					t.Errorf("refused replay set a cookie: %v", pg.Header.Values("Set-Cookie"))
				}
			default:
				t.Fatalf("status %d: %s", pg.Status, pg.Body)
			}
		}
		if ok != 1 || refused != n-1 {
			t.Fatalf("%d accepted, %d refused; want 1 and %d", ok, refused, n-1)
		}
	}
	if _, total, err := env.Store.ListUsers(t.Context(), "tiles", 0, 10); err != nil || total != 1 {
		t.Fatalf("users = %d, %v; want 1", total, err)
	}
	if got := len(events(t, env, "tiles", "jit.user.created")); got != 1 {
		t.Errorf("jit.user.created events = %d, want 1", got)
	}
	if got := len(events(t, env, "tiles", "login.succeeded")); got != 2 {
		t.Errorf("login.succeeded events = %d, want 2", got)
	}
	refusals := events(t, env, "tiles", "login.refused")
	if len(refusals) != 10 {
		t.Errorf("login.refused events = %d, want 10", len(refusals))
	}
	for _, e := range refusals {
		if e.Detail["reason"] != "replayed" {
			t.Errorf("refusal reason %q, want replayed", e.Detail["reason"])
		}
	}
}
