package saml_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// signedInBrowser signs a new browser in to ws as email with a signed
// assertion and returns it with its session cookie value.
func signedInBrowser(t *testing.T, env *servertest.Env, idp *ssoIdP, ws, email string) (*ssoBrowser, string) {
	t.Helper()
	b := newSSOBrowser(env)
	pg := b.signIn(t, idp, ws, assertionOpts{NameID: email})
	ck := cookieFrom(pg.Header, "scimjit_session")
	if pg.Status != http.StatusSeeOther || ck == nil {
		t.Fatalf("sign-in: status %d, cookie %v: %s", pg.Status, ck, pg.Body)
	}
	if me := b.get(t, "/api/v1/me"); me.Status != http.StatusOK {
		t.Fatalf("me after sign-in: %d %s", me.Status, me.Body)
	}
	return b, ck.Value
}

// sessionGone fails unless the session of cookie value secret is deleted.
func sessionGone(t *testing.T, env *servertest.Env, secret string) {
	t.Helper()
	sum := sha256.Sum256([]byte(secret))
	if _, err := env.Store.GetSession(t.Context(), hex.EncodeToString(sum[:])); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("session still stored (err %v)", err)
	}
}

// clearsCookie fails unless the response expires the session cookie.
func clearsCookie(t *testing.T, pg ssoPage) {
	t.Helper()
	if ck := cookieFrom(pg.Header, "scimjit_session"); ck == nil || ck.MaxAge >= 0 || ck.Value != "" {
		t.Errorf("session cookie not cleared: %+v", ck)
	}
}

// withCookie sends a GET with only the given session cookie (as a browser
// that kept it would).
func withCookie(t *testing.T, env *servertest.Env, path, secret string) ssoPage {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, env.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: "scimjit_session", Value: secret})
	return newSSOBrowser(env).do(t, req)
}

// TestSessionEndsWhenSCIMDeactivates: a browser session of a member whose
// SCIM user is then deactivated stops working at the next request, on
// every page that reads it (/api/v1/me: JSON 401; /: a page saying why;
// POST /switch: the same page), the session is deleted and the cookie
// cleared, and re-activating the user does not revive it.
func TestSessionEndsWhenSCIMDeactivates(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	tok := addWorkspace(t, env, "acme", idp, nil)
	const email = "sue@acme.example"
	api, apiSecret := signedInBrowser(t, env, idp, "acme", email)
	home, homeSecret := signedInBrowser(t, env, idp, "acme", email)
	sw, swSecret := signedInBrowser(t, env, idp, "acme", email)
	csrf := csrfFrom(t, sw.get(t, "/").Body)
	out, outSecret := signedInBrowser(t, env, idp, "acme", email)
	outCSRF := csrfFrom(t, out.get(t, "/").Body)

	id := mustUserID(t, env, "acme", email)
	patch := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": false}}}}
	if resp, body := env.Do(t, http.MethodPatch, "/scim/v2/acme/Users/"+id, tok, patch); resp.StatusCode != http.StatusOK {
		t.Fatalf("scim deactivate: %d %s", resp.StatusCode, body)
	}

	me := api.get(t, "/api/v1/me")
	if me.Status != http.StatusUnauthorized || !strings.Contains(me.Body, `"membership_inactive"`) ||
		!strings.HasPrefix(me.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("me after deactivation: %d %s", me.Status, me.Body)
	}
	clearsCookie(t, me)
	pg := home.get(t, "/")
	if pg.Status != http.StatusUnauthorized || !strings.Contains(pg.Body, "You have been signed out") ||
		!strings.Contains(pg.Body, "removed or deactivated") {
		t.Fatalf("home after deactivation: %d %s", pg.Status, pg.Body)
	}
	clearsCookie(t, pg)
	pg = sw.postForm(t, "/switch", url.Values{"csrf_token": {csrf}, "workspace": {"acme"}})
	if pg.Status != http.StatusUnauthorized || !strings.Contains(pg.Body, "You have been signed out") {
		t.Fatalf("switch after deactivation: %d %s", pg.Status, pg.Body)
	}
	clearsCookie(t, pg)
	// Signing out needs no active membership.
	if pg := out.postForm(t, "/logout", url.Values{"csrf_token": {outCSRF}}); pg.Status != http.StatusSeeOther {
		t.Fatalf("logout after deactivation: %d %s", pg.Status, pg.Body)
	}
	for _, secret := range []string{apiSecret, homeSecret, swSecret, outSecret} {
		sessionGone(t, env, secret)
	}

	// Re-activated: the old cookie stays signed out; a new sign-in works.
	patch["Operations"] = []map[string]any{{"op": "replace", "value": map[string]any{"active": true}}}
	if resp, body := env.Do(t, http.MethodPatch, "/scim/v2/acme/Users/"+id, tok, patch); resp.StatusCode != http.StatusOK {
		t.Fatalf("scim re-activate: %d %s", resp.StatusCode, body)
	}
	if me := withCookie(t, env, "/api/v1/me", apiSecret); me.Status != http.StatusUnauthorized {
		t.Fatalf("old session after re-activation: %d %s", me.Status, me.Body)
	}
	signedInBrowser(t, env, idp, "acme", email)
	if n := len(env.Logs.Find("session ended: membership no longer active")); n != 3 {
		t.Errorf("%d 'session ended' log records, want 3", n)
	}
}

// TestSessionEndsWhenSCIMDeletes: the same after SCIM DELETE of the user.
func TestSessionEndsWhenSCIMDeletes(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	tok := addWorkspace(t, env, "acme", idp, nil)
	const email = "tom@acme.example"
	api, apiSecret := signedInBrowser(t, env, idp, "acme", email)
	home, homeSecret := signedInBrowser(t, env, idp, "acme", email)

	id := mustUserID(t, env, "acme", email)
	if resp, body := env.Do(t, http.MethodDelete, "/scim/v2/acme/Users/"+id, tok, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("scim delete: %d %s", resp.StatusCode, body)
	}
	pg := home.get(t, "/")
	if pg.Status != http.StatusUnauthorized || !strings.Contains(pg.Body, "You have been signed out") {
		t.Fatalf("home after delete: %d %s", pg.Status, pg.Body)
	}
	clearsCookie(t, pg)
	me := api.get(t, "/api/v1/me")
	if me.Status != http.StatusUnauthorized || !strings.Contains(me.Body, "membership_inactive") {
		t.Fatalf("me after delete: %d %s", me.Status, me.Body)
	}
	clearsCookie(t, me)
	sessionGone(t, env, apiSecret)
	sessionGone(t, env, homeSecret)
	// The ended browser is an ordinary signed-out visitor now.
	if me := api.get(t, "/api/v1/me"); me.Status != http.StatusUnauthorized || strings.Contains(me.Body, "membership_inactive") {
		t.Fatalf("me once more: %d %s", me.Status, me.Body)
	}
	if pg := home.get(t, "/"); pg.Status != http.StatusOK {
		t.Fatalf("home once more: %d %s", pg.Status, pg.Body)
	}
}
