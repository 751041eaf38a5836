package saml_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// withDomains sets a workspace's login.emailDomains.
func withDomains(domains ...string) func(*storage.Workspace) {
	return func(ws *storage.Workspace) { ws.Settings.Login.EmailDomains = domains }
}

// findForm opens the home page (with query q) and returns the hidden
// fields of its find-workspace form.
func findForm(t *testing.T, b *ssoBrowser, q string) url.Values {
	t.Helper()
	pg := b.get(t, "/"+q)
	if pg.Status != http.StatusOK {
		t.Fatalf("home: %d %s", pg.Status, pg.Body)
	}
	f, ok := page{body: pg.Body}.forms()["/find-workspace"]
	if !ok {
		t.Fatalf("no find-workspace form on the home page:\n%s", pg.Body)
	}
	return f
}

// find submits the home page's form with email, as client ip when set.
func find(t *testing.T, b *ssoBrowser, form url.Values, email, ip string) ssoPage {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("email", email)
	req, _ := http.NewRequest(http.MethodPost, b.env.URL+"/find-workspace", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	return b.do(t, req)
}

func TestFindWorkspaceByEmailDomain(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, withDomains("acme.example", "acme-labs.example"))
	addWorkspace(t, env, "globex", idp, withDomains("globex.example", "shared.example"))
	addWorkspace(t, env, "initech", idp, withDomains("shared.example"))
	b := newSSOBrowser(env)
	form := findForm(t, b, "")

	t.Run("one workspace: redirect to its login, which goes to the IdP", func(t *testing.T) {
		pg := find(t, b, form, "jane@acme-labs.example", "")
		if pg.Status != http.StatusSeeOther || pg.Location != "/saml/acme/login" {
			t.Fatalf("status %d location %q", pg.Status, pg.Location)
		}
		if pg := b.get(t, pg.Location); pg.Status != http.StatusFound || !strings.HasPrefix(pg.Location, idp.idp.SSOURL.String()) {
			t.Errorf("login: status %d location %q", pg.Status, pg.Location)
		}
	})
	t.Run("email domain compared case-insensitively", func(t *testing.T) {
		pg := find(t, b, form, "  Jane.Doe@ACME.Example ", "")
		if pg.Status != http.StatusSeeOther || pg.Location != "/saml/acme/login" {
			t.Fatalf("status %d location %q", pg.Status, pg.Location)
		}
	})
	t.Run("two workspaces: a choice of both", func(t *testing.T) {
		pg := find(t, b, form, "sam@shared.example", "")
		if pg.Status != http.StatusOK {
			t.Fatalf("status %d %s", pg.Status, pg.Body)
		}
		for _, want := range []string{`href="/saml/globex/login"`, `href="/saml/initech/login"`, "Choose your workspace", "shared.example"} {
			if !strings.Contains(pg.Body, want) {
				t.Errorf("choice page lacks %q:\n%s", want, pg.Body)
			}
		}
		if strings.Contains(pg.Body, "/saml/acme/") {
			t.Errorf("choice page offers a workspace that does not claim the domain")
		}
	})
	t.Run("unknown domain: a message naming only the typed domain", func(t *testing.T) {
		pg := find(t, b, form, "kim@unknown.example", "")
		if pg.Status != http.StatusNotFound || pg.Location != "" {
			t.Fatalf("status %d location %q", pg.Status, pg.Location)
		}
		if !strings.Contains(pg.Body, "No workspace found") || !strings.Contains(pg.Body, "unknown.example") {
			t.Errorf("page does not explain: %s", pg.Body)
		}
		for _, other := range []string{"acme", "globex", "initech", "shared.example"} {
			if strings.Contains(pg.Body, other) {
				t.Errorf("page reveals %q", other)
			}
		}
	})
	t.Run("not an email address", func(t *testing.T) {
		for _, email := range []string{"", "jane", "@acme.example", "jane@", "jane@*.example", "jane@localhost"} {
			if pg := find(t, b, form, email, ""); pg.Status != http.StatusBadRequest || !strings.Contains(pg.Body, "work email address") {
				t.Errorf("%q: status %d %s", email, pg.Status, pg.Body)
			}
		}
	})
	t.Run("without the CSRF token: refused", func(t *testing.T) {
		pg := find(t, b, url.Values{}, "jane@acme.example", "")
		if pg.Status != http.StatusForbidden || pg.Location != "" {
			t.Errorf("status %d location %q", pg.Status, pg.Location)
		}
		// A token of another browser is refused too.
		pg = find(t, newSSOBrowser(env), form, "jane@acme.example", "")
		if pg.Status != http.StatusForbidden {
			t.Errorf("other browser: status %d", pg.Status)
		}
	})
}

// TestFindWorkspaceKeepsSafeReturn: the home page's ?return= travels with
// the form to the login; an off-site one is dropped.
func TestFindWorkspaceKeepsSafeReturn(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, withDomains("acme.example"))
	addWorkspace(t, env, "globex", idp, withDomains("acme.example"))
	b := newSSOBrowser(env)

	form := findForm(t, b, "?return="+url.QueryEscape("/reports?q=1"))
	if form.Get("return") != "/reports?q=1" {
		t.Fatalf("form return = %q", form.Get("return"))
	}
	pg := find(t, b, form, "jane@acme.example", "")
	if want := `href="/saml/acme/login?return=%2Freports%3Fq%3D1"`; !strings.Contains(pg.Body, want) {
		t.Errorf("choice page lacks %s:\n%s", want, pg.Body)
	}

	for _, bad := range []string{"//evil.example/x", "https://evil.example/", `/\evil.example`} {
		form := findForm(t, b, "?return="+url.QueryEscape(bad))
		if form.Has("return") {
			t.Errorf("home page keeps return %q", bad)
		}
		form.Set("return", bad) // posted directly
		pg := find(t, b, form, "jane@acme.example", "")
		if strings.Contains(pg.Body, "return=") || strings.Contains(pg.Body, "evil") {
			t.Errorf("return %q reached the page:\n%s", bad, pg.Body)
		}
	}
}

// TestFindWorkspaceFollowsTheSetting: a changed setting and a deleted
// workspace change the answer at once (the store's domain index).
func TestFindWorkspaceFollowsTheSetting(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, withDomains("acme.example"))
	b := newSSOBrowser(env)
	form := findForm(t, b, "")

	resp, body := env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{
		"settings": map[string]any{"login": map[string]any{"emailDomains": []string{"acme.test"}}}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("patch: %d %s", resp.StatusCode, body)
	}
	if pg := find(t, b, form, "jane@acme.example", ""); pg.Status != http.StatusNotFound {
		t.Errorf("old domain: status %d location %q", pg.Status, pg.Location)
	}
	if pg := find(t, b, form, "jane@acme.test", ""); pg.Location != "/saml/acme/login" {
		t.Errorf("new domain: status %d location %q", pg.Status, pg.Location)
	}

	resp, body = env.Admin(t, http.MethodDelete, "/admin/v1/workspaces/acme", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	if pg := find(t, b, form, "jane@acme.test", ""); pg.Status != http.StatusNotFound {
		t.Errorf("after delete: status %d location %q", pg.Status, pg.Location)
	}
}

// TestFindWorkspaceRateLimitedPerClient: the form takes the login limit
// per client network; another client is not affected.
func TestFindWorkspaceRateLimitedPerClient(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		c.SAML.LoginLimit = loginLimit
	})
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, withDomains("acme.example"))
	b := newSSOBrowser(env)
	form := findForm(t, b, "")
	for i := range loginLimit {
		// Unknown domains count as well: probing is what the limit stops.
		email := "jane@acme.example"
		if i%2 == 1 {
			email = "jane@probe.example"
		}
		if pg := find(t, b, form, email, "203.0.113.9"); pg.Status == http.StatusTooManyRequests {
			t.Fatalf("request %d refused", i+1)
		}
	}
	pg := find(t, b, form, "jane@acme.example", "203.0.113.9")
	if pg.Status != http.StatusTooManyRequests || pg.Header.Get("Retry-After") == "" || pg.Location != "" {
		t.Fatalf("over the limit: status %d Retry-After %q location %q", pg.Status, pg.Header.Get("Retry-After"), pg.Location)
	}
	if pg := find(t, b, form, "jane@acme.example", "198.51.100.4"); pg.Location != "/saml/acme/login" {
		t.Errorf("another client: status %d location %q", pg.Status, pg.Location)
	}
}

// TestHomePageSignedInOffersWorkspacesAndFind: a signed-in person sees
// their workspaces (with the switcher) and the form to reach another one.
func TestHomePageSignedInOffersWorkspacesAndFind(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, withDomains("acme.example"))
	b := newSSOBrowser(env)
	if pg := b.signIn(t, idp, "acme", assertionOpts{NameID: "jane@acme.example"}); pg.Status != http.StatusSeeOther && pg.Status != http.StatusFound {
		t.Fatalf("sign-in: %d %s", pg.Status, pg.Body)
	}
	pg := b.get(t, "/")
	for _, want := range []string{`id="memberships"`, `data-workspace="acme"`, "Sign in to another workspace", `action="/find-workspace"`} {
		if !strings.Contains(pg.Body, want) {
			t.Errorf("signed-in home page lacks %q:\n%s", want, pg.Body)
		}
	}
	form := findForm(t, b, "")
	if pg := find(t, b, form, "jane@acme.example", ""); pg.Location != "/saml/acme/login" {
		t.Errorf("find while signed in: status %d location %q", pg.Status, pg.Location)
	}
}
