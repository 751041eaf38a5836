package saml_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/saml/mail/mailtest"
	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// joinEnv is a running scimjit (real HTTP, spawned redis-server) whose
// mail goes over SMTP to a real SMTP server started for the test, with a
// test IdP that signs real assertions for the workspaces created through
// workspace().
type joinEnv struct {
	*servertest.Env
	idp  *testIdP
	smtp *mailtest.Server
	// smtpAddr is where the transport sends mail (joinOptions.smtpDown).
	smtpAddr string
}

type joinOptions struct {
	verifyTTL time.Duration
	// wrapStore, when set, wraps the store the server uses (the test's
	// own checks read the store directly).
	wrapStore func(storage.Store) storage.Store
	// loginLimit, when set, replaces the sign-in rate limits.
	loginLimit int
	// smtpDown: nothing listens at the SMTP address (je.smtpAddr) until the
	// test starts a server there; je.smtp is nil.
	smtpDown bool
	// retries, when set, replaces servertest's retry count of tasks.
	retries int
	// webhooks lets webhook endpoints reach receivers on loopback over
	// http (test receivers).
	webhooks bool
}

func newJoinEnv(t *testing.T, opts joinOptions) *joinEnv {
	t.Helper()
	je := &joinEnv{}
	var smtpCfg mail.SMTPConfig
	if opts.smtpDown {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		je.smtpAddr = l.Addr().String()
		l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		smtpCfg = mail.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: mail.TLSNone, From: "scimjit <noreply@join.test>",
			Timeout: 5 * time.Second}
	} else {
		je.smtp = mailtest.Start(t, mailtest.Options{})
		smtpCfg = je.smtp.Config("scimjit <noreply@join.test>")
	}
	env := servertest.New(t, func(c *server.Config) {
		tr, err := mail.NewSMTP(smtpCfg)
		if err != nil {
			t.Fatalf("smtp: %v", err)
		}
		c.MailTransport = tr
		if opts.retries > 0 {
			c.Queue.Backoff.Retries = opts.retries
		}
		c.SAML.VerifyTTL = opts.verifyTTL
		c.Webhooks.AllowPrivate = opts.webhooks
		if opts.wrapStore != nil {
			c.Store = opts.wrapStore(c.Store)
		}
		if opts.loginLimit > 0 {
			c.SAML.LoginLimit, c.SAML.ACSClientLimit, c.SAML.ACSWorkspaceLimit = opts.loginLimit, opts.loginLimit, opts.loginLimit
		}
	})
	je.Env = env
	je.idp = newTestIdP(t, env)
	return je
}

// workspace creates a workspace with JIT on whose IdP is the test IdP.
func (je *joinEnv) workspace(t *testing.T, id string, mutate func(*storage.Workspace)) string {
	t.Helper()
	return je.CreateWorkspace(t, id, func(ws *storage.Workspace) {
		ws.Name = strings.ToUpper(id[:1]) + id[1:]
		ws.Settings.JIT.Enabled = true
		ws.Settings.IdP.MetadataXML = je.idp.metadata(t)
		if mutate != nil {
			mutate(ws)
		}
	})
}

// flushMail waits until no message of the outbox is queued: every mail
// handed to the mailer was delivered or recorded as failed (servertest's
// queue retries twice, on a schedule of milliseconds).
func (je *joinEnv) flushMail(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ms, err := je.Store.ListMail(t.Context(), 1000)
		if err == nil && !slices.ContainsFunc(ms, func(m storage.Mail) bool { return m.Status == mail.StatusQueued }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flush mail: still queued after 30s (%v): %v", err, statuses(ms))
		}
		time.Sleep(20 * time.Millisecond) // polling the outbox
	}
}

// nextMail returns the next message the SMTP server accepted.
func (je *joinEnv) nextMail(t *testing.T) mailtest.Message {
	t.Helper()
	je.flushMail(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return je.smtp.Next(ctx, t)
}

var joinLinkPattern = regexp.MustCompile(`https?://[^\s"<>]+/join/[A-Za-z0-9._-]+`)

// joinLink extracts the join link from a delivered message (text part) and
// checks the HTML part carries the same.
func joinLink(t *testing.T, m mailtest.Message) string {
	t.Helper()
	links := joinLinkPattern.FindAllString(m.Text, -1)
	if len(links) != 1 {
		t.Fatalf("want one join link in the mail text, found %d:\n%s", len(links), m.Text)
	}
	if !strings.Contains(m.HTML, `href="`+links[0]+`"`) {
		t.Errorf("the HTML part does not link to %s:\n%s", links[0], m.HTML)
	}
	return links[0]
}

// tokenOf returns the token of a join link.
func tokenOf(link string) string { return link[strings.LastIndex(link, "/")+1:] }

// tokenHash is the documented store key of a token: hex SHA-256.
func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// person is who the test IdP asserts.
type person struct {
	Email, FullName      string
	Role, RoleTest, Prod string
}

// browser is one cookie jar talking to the server.
type browser struct {
	t  *testing.T
	je *joinEnv
	c  *http.Client
}

func (je *joinEnv) browser(t *testing.T) *browser {
	return &browser{t: t, je: je, c: je.NewClient()}
}

// page is a response with its body read.
type page struct {
	status int
	url    string
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL.String(), body: string(data)}
}

func (b *browser) get(rawURL string) page {
	b.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = b.je.URL + rawURL
	}
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodPost, b.je.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn runs an SP-initiated sign-in to ws as p: GET /saml/ws/login, the
// test IdP answers the AuthnRequest with a signed response, and the browser
// posts it to the ACS (following redirects). It returns the final page.
func (b *browser) signIn(ws string, p person) page {
	b.t.Helper()
	nr := *b.c
	nr.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := nr.Get(b.je.URL + "/saml/" + ws + "/login")
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, b.je.idp.idp.SSOURL.String()) {
		b.t.Fatalf("login: %d to %q, want a redirect to the IdP", resp.StatusCode, loc)
	}
	form := b.je.idp.respond(b.t, loc, p)
	return b.post(strings.TrimPrefix(form.URL, b.je.URL), url.Values{"SAMLResponse": {form.SAMLResponse}, "RelayState": {form.RelayState}})
}

// me returns GET /api/v1/me.
func (b *browser) me() meView {
	b.t.Helper()
	var out meView
	pg := b.get("/api/v1/me")
	if pg.status != http.StatusOK {
		b.t.Fatalf("/api/v1/me: %d %s", pg.status, pg.body)
	}
	if err := decodeJSON(pg.body, &out); err != nil {
		b.t.Fatalf("/api/v1/me: %v: %s", err, pg.body)
	}
	return out
}

type meView struct {
	Account struct {
		ID, Email string
	}
	ActiveWorkspace string
	Memberships     []struct {
		Workspace string
		Roles     storage.Roles
		Verified  bool
		Active    bool
	}
}

// membership returns the /me entry for ws.
func (m meView) membership(ws string) (roles storage.Roles, verified, active, ok bool) {
	for _, x := range m.Memberships {
		if x.Workspace == ws {
			return x.Roles, x.Verified, x.Active, true
		}
	}
	return storage.Roles{}, false, false, false
}

var hiddenPattern = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// forms returns the hidden fields of every form on the page, by action.
func (pg page) forms() map[string]url.Values {
	out := map[string]url.Values{}
	formPattern := regexp.MustCompile(`(?s)<form method="post" action="([^"]+)"[^>]*>(.*?)</form>`)
	for _, f := range formPattern.FindAllStringSubmatch(pg.body, -1) {
		v := url.Values{}
		for _, h := range hiddenPattern.FindAllStringSubmatch(f[2], -1) {
			v.Set(h[1], html.UnescapeString(h[2]))
		}
		action := html.UnescapeString(f[1])
		if _, dup := out[action]; dup {
			// Several forms to one action (the switcher): key by workspace.
			action += "#" + v.Get("workspace")
		}
		out[action] = v
	}
	return out
}

// form returns the hidden fields of the page's form posting to action, or
// fails the test.
func (pg page) form(t *testing.T, action string) url.Values {
	t.Helper()
	f, ok := pg.forms()[action]
	if !ok {
		t.Fatalf("no form to %s on the page (%d %s):\n%s", action, pg.status, pg.url, pg.body)
	}
	return f
}

// testIdP is a SAML IdP made for the test (crewjam's IdentityProvider with
// an RSA key generated here). It never listens: the test hands it the
// redirect the SP produced and posts its signed response to the ACS.
type testIdP struct {
	idp *crewjam.IdentityProvider
	n   atomic.Int64
}

func newTestIdP(t *testing.T, env *servertest.Env) *testIdP {
	t.Helper()
	key, cert := testKeyPair(t, "join test idp")
	md, _ := url.Parse("https://idp.join.test/metadata")
	sso, _ := url.Parse("https://idp.join.test/sso")
	return &testIdP{idp: &crewjam.IdentityProvider{
		Key: key, Certificate: cert, MetadataURL: *md, SSOURL: *sso,
		ServiceProviderProvider: spFromServer{env: env},
		SignatureMethod:         dsig.RSASHA256SignatureMethod,
	}}
}

func (p *testIdP) metadata(t *testing.T) string {
	t.Helper()
	b, err := xml.Marshal(p.idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// respond answers the AuthnRequest in redirectURL with a signed response
// asserting who.
func (p *testIdP) respond(t *testing.T, redirectURL string, who person) *crewjam.IdpAuthnRequestForm {
	t.Helper()
	form, err := p.tryRespond(redirectURL, who)
	if err != nil {
		t.Fatal(err)
	}
	return form
}

// tryRespond is respond that returns its error: the IdP could not read the
// AuthnRequest (for instance it could not fetch the SP's metadata).
func (p *testIdP) tryRespond(redirectURL string, who person) (*crewjam.IdpAuthnRequestForm, error) {
	r := httptest.NewRequest(http.MethodGet, redirectURL, nil)
	req, err := crewjam.NewIdpAuthnRequest(p.idp, r)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("idp: authn request: %w", err)
	}
	attr := func(n, v string) crewjam.Attribute {
		return crewjam.Attribute{Name: n, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
			Values: []crewjam.AttributeValue{{Type: "xs:string", Value: v}}}
	}
	attrs := []crewjam.Attribute{attr("workato_email", who.Email)}
	if who.FullName != "" {
		attrs = append(attrs, attr("workato_full_name", who.FullName))
	}
	for n, v := range map[string]string{"workato_role": who.Role, "workato_role_test": who.RoleTest, "workato_role_prod": who.Prod} {
		if v != "" {
			attrs = append(attrs, attr(n, v))
		}
	}
	now := time.Now()
	n := p.n.Add(1)
	sess := &crewjam.Session{
		ID: fmt.Sprintf("sess-%d", n), Index: fmt.Sprintf("idx-%d", n), CreateTime: now, ExpireTime: now.Add(time.Hour),
		NameID: who.Email, NameIDFormat: string(crewjam.EmailAddressNameIDFormat), CustomAttributes: attrs,
	}
	if err := (crewjam.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		return nil, fmt.Errorf("idp: make assertion: %w", err)
	}
	form, err := req.PostBinding()
	if err != nil {
		return nil, fmt.Errorf("idp: sign response: %w", err)
	}
	return &form, nil
}

// spFromServer fetches an SP's metadata from the server under test.
type spFromServer struct{ env *servertest.Env }

func (s spFromServer) GetServiceProvider(r *http.Request, entityID string) (*crewjam.EntityDescriptor, error) {
	if !strings.HasPrefix(entityID, s.env.URL+"/") {
		return nil, os.ErrNotExist
	}
	resp, err := http.Get(entityID)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.Join(os.ErrNotExist, fmt.Errorf("sp metadata: %d", resp.StatusCode))
	}
	var ed crewjam.EntityDescriptor
	if err := xml.NewDecoder(resp.Body).Decode(&ed); err != nil {
		return nil, err
	}
	return &ed, nil
}

// events returns the types of ws's events, oldest first.
func (je *joinEnv) events(t *testing.T, ws string) []storage.Event {
	t.Helper()
	evs, err := je.Store.ListEvents(t.Context(), ws, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func countEvents(evs []storage.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}
