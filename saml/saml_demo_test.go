package saml_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

func TestDemoIdPAbsentOutsideDemoMode(t *testing.T) {
	env := servertest.New(t, nil)
	b := newSSOBrowser(env)
	for _, p := range []string{"/demo/idp", "/demo/idp/metadata", "/demo/idp/sso", "/demo/webhooks"} {
		if pg := b.get(t, p); pg.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, pg.Status)
		}
	}
	if pg := b.postForm(t, "/demo/idp", url.Values{"email": {"x@y.example"}}); pg.Status != http.StatusNotFound && pg.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST /demo/idp: %d", pg.Status)
	}
	if pg := b.postForm(t, "/demo/webhooks/receive", url.Values{}); pg.Status != http.StatusNotFound && pg.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST /demo/webhooks/receive: %d", pg.Status)
	}
	if _, err := env.Server.SAML().DemoIdPMetadata(); err == nil {
		t.Error("DemoIdPMetadata works outside demo mode")
	}
	if pg := b.get(t, "/"); strings.Contains(pg.Body, "/demo/idp") {
		t.Error("home ssoPage links the demo IdP outside demo mode")
	}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenIn   = regexp.MustCompile(`name="(SAMLResponse|RelayState)" value="([^"]*)"`)
)

// demoSignIn walks the demo path a newcomer takes: form → SP login →
// demo IdP → auto-posted response → ACS.
func demoSignIn(t *testing.T, env *servertest.Env, b *ssoBrowser, fields url.Values) ssoPage {
	t.Helper()
	form := b.get(t, "/demo/idp")
	if form.Status != http.StatusOK {
		t.Fatalf("demo form: %d %s", form.Status, form.Body)
	}
	fields.Set("csrf_token", csrfFrom(t, form.Body))
	pg := b.postForm(t, "/demo/idp", fields)
	if pg.Status != http.StatusSeeOther || !strings.HasPrefix(pg.Location, "/saml/") {
		t.Fatalf("demo submit: %d %q %s", pg.Status, pg.Location, pg.Body)
	}
	pg = b.get(t, pg.Location)
	if pg.Status != http.StatusFound || !strings.HasPrefix(pg.Location, env.URL+"/demo/idp/sso?") {
		t.Fatalf("sp login: %d %q", pg.Status, pg.Location)
	}
	pg = b.get(t, strings.TrimPrefix(pg.Location, env.URL))
	if pg.Status != http.StatusOK || !strings.Contains(pg.Header.Get("Content-Security-Policy"), "script-src 'nonce-") {
		t.Fatalf("demo sso: %d %s", pg.Status, pg.Body)
	}
	action := formAction.FindStringSubmatch(pg.Body)
	if action == nil || html.UnescapeString(action[1]) != env.URL+"/saml/"+fields.Get("workspace")+"/acs" {
		t.Fatalf("auto-post form action %v", action)
	}
	post := url.Values{}
	for _, m := range hiddenIn.FindAllStringSubmatch(pg.Body, -1) {
		post.Set(m[1], html.UnescapeString(m[2]))
	}
	if post.Get("SAMLResponse") == "" {
		t.Fatalf("no SAMLResponse in %s", pg.Body)
	}
	return b.postForm(t, "/saml/"+fields.Get("workspace")+"/acs", post)
}

func TestDemoIdPSignsInThroughTheRealACS(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.Demo = true })
	md, err := env.Server.SAML().DemoIdPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	for _, ws := range []string{"demo", "demo-hr"} {
		if _, err := env.Store.GetWorkspace(t.Context(), ws); err == nil {
			continue // the server's demo mode made it already
		}
		env.CreateWorkspace(t, ws, func(w *storage.Workspace) {
			w.Settings.JIT.Enabled = true
			w.Settings.IdP.MetadataXML = string(md)
		})
	}
	b := newSSOBrowser(env)
	if home := b.get(t, "/"); !strings.Contains(home.Body, `href="/demo/idp"`) {
		t.Error("home ssoPage does not link the demo IdP")
	}
	pg := demoSignIn(t, env, b, url.Values{"workspace": {"demo"}, "email": {"newcomer@example.com"}, "full_name": {"New Comer"},
		"workato_role": {"Admin"}, "workato_role_test": {"Analyst"}, "workato_role_prod": {""}, "spelling": {"okta-typed"}})
	if pg.Status != http.StatusSeeOther || pg.Location != "/" {
		t.Fatalf("acs: %d %q %s", pg.Status, pg.Location, pg.Body)
	}
	acct, u := membership(t, env, "demo", "newcomer@example.com")
	if acct.FullName != "New Comer" || u.Roles != (storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Operator"}) {
		t.Errorf("account %+v roles %+v", acct, u.Roles)
	}
	if home := b.get(t, "/"); !strings.Contains(home.Body, "New Comer") {
		t.Errorf("home after demo sign-in: %s", home.Body)
	}

	// Entra spelling with a wrong-case role: refused, naming the role.
	b2 := newSSOBrowser(env)
	pg = demoSignIn(t, env, b2, url.Values{"workspace": {"demo-hr"}, "email": {"wrong.case@example.com"},
		"workato_role": {"admin"}, "spelling": {"entra"}})
	if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "&#34;admin&#34;") {
		t.Fatalf("wrong-case role: %d %s", pg.Status, pg.Body)
	}
	mustHaveNothing(t, env, "demo-hr", "wrong.case@example.com")

	// Google spelling, name derived from the email.
	pg = demoSignIn(t, env, newSSOBrowser(env), url.Values{"workspace": {"demo-hr"}, "email": {"grace.hopper@example.com"}, "spelling": {"google"}})
	if pg.Status != http.StatusSeeOther {
		t.Fatalf("google: %d %s", pg.Status, pg.Body)
	}
	if acct, _ := membership(t, env, "demo-hr", "grace.hopper@example.com"); acct.FullName != "Grace Hopper" {
		t.Errorf("derived name %q", acct.FullName)
	}

	// The form refuses a POST without its CSRF token.
	if pg := newSSOBrowser(env).postForm(t, "/demo/idp", url.Values{"workspace": {"demo"}, "email": {"x@example.com"}, "spelling": {"okta"}}); pg.Status != http.StatusForbidden {
		t.Errorf("demo post without csrf: %d", pg.Status)
	}
}

func TestDemoOutboxShowsEachAttempt(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.Demo = true })
	m, err := env.Store.AppendMail(t.Context(), storage.Mail{To: "jane@example.com", Subject: "Confirm joining Demo",
		Text: "open " + env.URL + "/join/x.y.z"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct{ outcome, err, status string }{
		{"failed", "smtp: 451 try later", "queued"}, {"sent", "", "sent"},
	} {
		if err := env.Store.AddMailAttempt(t.Context(), m.ID, storage.MailAttempt{Time: time.Now(), Outcome: a.outcome, Error: a.err},
			a.status, ""); err != nil {
			t.Fatal(err)
		}
	}
	pg := newSSOBrowser(env).get(t, "/demo/outbox")
	if pg.Status != http.StatusOK {
		t.Fatalf("GET /demo/outbox: %d", pg.Status)
	}
	attempts := regexp.MustCompile(`(?s)<ol class="attempts muted">(.*?)</ol>`).FindStringSubmatch(pg.Body)
	if attempts == nil {
		t.Fatalf("no attempts on the page:\n%s", pg.Body)
	}
	items := regexp.MustCompile(`<li>[^<]*</li>`).FindAllString(attempts[1], -1)
	if len(items) != 2 || !strings.Contains(items[0], "failed (smtp: 451 try later)") || !strings.HasSuffix(items[1], "· sent</li>") {
		t.Errorf("attempts on the page = %q, want the failed one then the sent one", items)
	}
}
