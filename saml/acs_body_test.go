package saml_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// paddedSignIn is an IdP-initiated, validly signed sign-in of email whose
// form is padded with an ignored field to about size bytes.
func paddedSignIn(t *testing.T, env *servertest.Env, idp *ssoIdP, email string, size int) string {
	t.Helper()
	req := idp.idpInitiated(t, spEntityID(env, "acme"), "")
	form := url.Values{"SAMLResponse": {idp.respond(t, req, assertionOpts{NameID: email})}}
	body := form.Encode()
	return body + "&pad=" + strings.Repeat("a", max(0, size-len(body)-5))
}

// postBody posts body to the ACS; without a Content-Length (chunked) when
// chunked is set.
func postBody(t *testing.T, env *servertest.Env, body string, chunked bool) ssoPage {
	t.Helper()
	var rd io.Reader = strings.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length: sent chunked
	}
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/saml/acme/acs", rd)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return newSSOBrowser(env).do(t, req)
}

// TestACSBodyLimitIsTheFlag: the ACS takes bodies up to --saml-body-limit
// (Config.SAMLBodyLimit, default 2 MiB), also above 1 MiB, and answers a
// larger one, declared or chunked, with a 413 page.
func TestACSBodyLimitIsTheFlag(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name  string
		limit int64 // 0: the default
		size  int
	}{
		{"default limit, 1.5 MiB", 0, 3 * mib / 2},
		{"4 MiB limit, 3 MiB", 4 * mib, 3 * mib},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := servertest.New(t, func(c *server.Config) { c.SAMLBodyLimit = tc.limit })
			idp := newSSOIdP(t, "https://idp.test")
			addWorkspace(t, env, "acme", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowIdPInitiated = true })
			for i, chunked := range []bool{false, true} {
				email := []string{"a@acme.example", "b@acme.example"}[i]
				if pg := postBody(t, env, paddedSignIn(t, env, idp, email, tc.size), chunked); pg.Status != http.StatusSeeOther {
					t.Fatalf("body of %d bytes (chunked %v): status %d: %s", tc.size, chunked, pg.Status, pg.Body)
				}
			}
		})
	}

	for _, tc := range []struct {
		name  string
		limit int64
		size  int
	}{
		{"default limit, 2.5 MiB", 0, 5 * mib / 2},
		{"64 KiB limit, 100 KiB", 64 << 10, 100 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := servertest.New(t, func(c *server.Config) { c.SAMLBodyLimit = tc.limit })
			idp := newSSOIdP(t, "https://idp.test")
			addWorkspace(t, env, "acme", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowIdPInitiated = true })
			for _, chunked := range []bool{false, true} {
				pg := postBody(t, env, paddedSignIn(t, env, idp, "c@acme.example", tc.size), chunked)
				if pg.Status != http.StatusRequestEntityTooLarge || !strings.HasPrefix(pg.Header.Get("Content-Type"), "text/html") ||
					!strings.Contains(pg.Body, "too large") {
					t.Fatalf("body of %d bytes (chunked %v): status %d %q: %s", tc.size, chunked, pg.Status,
						pg.Header.Get("Content-Type"), pg.Body)
				}
			}
			mustHaveNothing(t, env, "acme", "c@acme.example")
			if n := len(events(t, env, "acme", "login.refused")); n != 2 || lastRefusal(t, env, "acme") != "body_too_large" {
				t.Fatalf("%d login.refused events (last %q), want 2 body_too_large", n, lastRefusal(t, env, "acme"))
			}
		})
	}
}
