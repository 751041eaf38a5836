package saml_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrfFrom returns the CSRF token of the first form in body.
func csrfFrom(t *testing.T, body string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token in page: %s", body)
	}
	return html.UnescapeString(m[1])
}

// cookieFrom returns the Set-Cookie of that name in the response headers.
func cookieFrom(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestSessionCookieStoreAndLogout(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	b := newSSOBrowser(env)
	if me := b.get(t, "/api/v1/me"); me.Status != http.StatusUnauthorized || !strings.Contains(me.Body, "not signed in") {
		t.Fatalf("me before sign-in: %d %s", me.Status, me.Body)
	}
	pg := b.signIn(t, idp, "acme", assertionOpts{NameID: "sue@acme.example"})
	ck := cookieFrom(pg.Header, "scimjit_session")
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure || len(ck.Value) < 43 {
		t.Fatalf("session cookie = %+v", ck)
	}
	// Only the hash of the cookie is a store key.
	sum := sha256.Sum256([]byte(ck.Value))
	key := hex.EncodeToString(sum[:])
	sess, err := env.Store.GetSession(t.Context(), key)
	if err != nil || sess.ActiveWorkspace != "acme" || !sess.ExpiresAt.After(sess.CreatedAt) {
		t.Fatalf("stored session %+v, %v", sess, err)
	}
	if _, err := env.Store.GetSession(t.Context(), ck.Value); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("cookie value is a store key: %v", err)
	}
	if strings.Contains(env.Logs.String(), ck.Value) {
		t.Error("session secret in the log")
	}

	// A second sign-in replaces the session (no fixation).
	pg = b.signIn(t, idp, "acme", assertionOpts{NameID: "sue@acme.example"})
	ck2 := cookieFrom(pg.Header, "scimjit_session")
	if ck2 == nil || ck2.Value == ck.Value {
		t.Fatal("no new session on sign-in")
	}
	if _, err := env.Store.GetSession(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("old session still live: %v", err)
	}

	// Logout needs the CSRF token of this browser's session.
	home := b.get(t, "/")
	token := csrfFrom(t, home.Body)
	if pg := b.postForm(t, "/logout", url.Values{}); pg.Status != http.StatusForbidden {
		t.Errorf("logout without token: %d", pg.Status)
	}
	other := newSSOBrowser(env)
	other.signIn(t, idp, "acme", assertionOpts{NameID: "other@acme.example"})
	otherToken := csrfFrom(t, other.get(t, "/").Body)
	if pg := b.postForm(t, "/logout", url.Values{"csrf_token": {otherToken}}); pg.Status != http.StatusForbidden {
		t.Errorf("logout with another browser's token: %d", pg.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/logout", strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if pg := b.do(t, req); pg.Status != http.StatusForbidden {
		t.Errorf("logout from another origin: %d", pg.Status)
	}
	if me := b.get(t, "/api/v1/me"); me.Status != http.StatusOK {
		t.Fatalf("refused logouts ended the session: %d", me.Status)
	}
	if pg := b.postForm(t, "/logout", url.Values{"csrf_token": {token}}); pg.Status != http.StatusSeeOther || pg.Location != "/" {
		t.Fatalf("logout: %d %q", pg.Status, pg.Location)
	}
	if me := b.get(t, "/api/v1/me"); me.Status != http.StatusUnauthorized {
		t.Errorf("me after logout: %d", me.Status)
	}
	sum2 := sha256.Sum256([]byte(ck2.Value))
	if _, err := env.Store.GetSession(t.Context(), hex.EncodeToString(sum2[:])); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("session not deleted: %v", err)
	}
}

// TestSecureCookiesWithHTTPSBaseURL: with an https public URL the session
// cookie is Secure and the request-binding cookie is SameSite=None+Secure
// (it must travel with the IdP's cross-site POST).
func TestSecureCookiesWithHTTPSBaseURL(t *testing.T) {
	public, _ := url.Parse("https://sso.example.test")
	env := servertest.New(t, func(c *server.Config) { c.SAML.BaseURL = public })
	idp := newSSOIdP(t, "https://idp.test")
	idp.sps.rewrite[public.String()] = env.URL
	addWorkspace(t, env, "acme", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowIdPInitiated = true })
	b := newSSOBrowser(env)
	login := b.get(t, "/saml/acme/login")
	bind := cookieFrom(login.Header, "scimjit_saml_bind")
	if login.Status != http.StatusFound || bind == nil || !bind.Secure || bind.SameSite != http.SameSiteNoneMode || !bind.HttpOnly || bind.Path != "/saml/" {
		t.Fatalf("login %d, bind cookie %+v", login.Status, bind)
	}
	req := idp.idpInitiated(t, public.String()+"/saml/acme/metadata", "")
	pg := b.acs(t, "acme", idp.respond(t, req, assertionOpts{NameID: "sec@acme.example"}), "")
	ck := cookieFrom(pg.Header, "scimjit_session")
	if pg.Status != http.StatusSeeOther || ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("acs %d %s, session cookie %+v", pg.Status, pg.Body, ck)
	}
}

func TestSPMetadataAndUnconfiguredWorkspace(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "fresh", nil)
	b := newSSOBrowser(env)
	md := b.get(t, "/saml/fresh/metadata")
	if md.Status != http.StatusOK || !strings.Contains(md.Header.Get("Content-Type"), "samlmetadata+xml") {
		t.Fatalf("metadata: %d %s", md.Status, md.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`entityID="` + env.URL + `/saml/fresh/metadata"`,
		`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="` + env.URL + `/saml/fresh/acs"`,
		`use="signing"`,
	} {
		if !strings.Contains(md.Body, want) {
			t.Errorf("metadata lacks %s:\n%s", want, md.Body)
		}
	}
	if strings.Contains(md.Body, "HTTP-Artifact") {
		t.Error("metadata offers the artifact binding")
	}
	if pg := b.get(t, "/saml/fresh/login"); pg.Status != http.StatusNotFound || !strings.Contains(pg.Body, "no identity provider") {
		t.Errorf("login without IdP: %d %s", pg.Status, pg.Body)
	}
	if pg := b.get(t, "/saml/nope/metadata"); pg.Status != http.StatusNotFound {
		t.Errorf("unknown workspace: %d", pg.Status)
	}
	if pg := b.get(t, "/saml/Bad..Slug/login"); pg.Status != http.StatusNotFound {
		t.Errorf("bad slug: %d", pg.Status)
	}
}

// TestSPRebuiltWhenIdPChanges: the cached SP follows the workspace's
// version, so a new IdP key is trusted and the old one is not.
func TestSPRebuiltWhenIdPChanges(t *testing.T) {
	env := servertest.New(t, nil)
	oldIdP := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", oldIdP, nil)
	if pg := newSSOBrowser(env).signIn(t, oldIdP, "acme", assertionOpts{NameID: "a@acme.example"}); pg.Status != http.StatusSeeOther {
		t.Fatalf("old idp: %d", pg.Status)
	}
	rotated := oldIdP.impostor(t) // same entity ID, new key: a certificate rotation
	if _, err := env.Store.UpdateWorkspace(t.Context(), "acme", func(ws *storage.Workspace) error {
		ws.Settings.IdP.MetadataXML = rotated.metadataXML(t)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if pg := newSSOBrowser(env).signIn(t, rotated, "acme", assertionOpts{NameID: "b@acme.example"}); pg.Status != http.StatusSeeOther {
		t.Errorf("rotated idp: %d %s", pg.Status, pg.Body)
	}
	if pg := newSSOBrowser(env).signIn(t, oldIdP, "acme", assertionOpts{NameID: "c@acme.example"}); pg.Status != http.StatusForbidden {
		t.Errorf("old key still trusted: %d", pg.Status)
	}
}

var samlRequestInput = regexp.MustCompile(`name="(SAMLRequest|RelayState)" value="([^"]*)"`)

// TestLoginWithPostOnlyIdP: an IdP whose metadata offers only the HTTP-POST
// SSO binding gets the AuthnRequest in an auto-submitting form.
func TestLoginWithPostOnlyIdP(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	ed := idp.idp.Metadata()
	for i := range ed.IDPSSODescriptors {
		var keep []crewjam.Endpoint
		for _, e := range ed.IDPSSODescriptors[i].SingleSignOnServices {
			if e.Binding == crewjam.HTTPPostBinding {
				keep = append(keep, e)
			}
		}
		ed.IDPSSODescriptors[i].SingleSignOnServices = keep
	}
	raw, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	addWorkspace(t, env, "acme", idp, func(ws *storage.Workspace) { ws.Settings.IdP.MetadataXML = string(raw) })
	b := newSSOBrowser(env)
	pg := b.get(t, "/saml/acme/login")
	csp := pg.Header.Get("Content-Security-Policy")
	if pg.Status != http.StatusOK || !strings.Contains(csp, "form-action https://idp.test") || !strings.Contains(pg.Body, `action="https://idp.test/sso"`) {
		t.Fatalf("login: %d csp %q body %s", pg.Status, csp, pg.Body)
	}
	form := url.Values{}
	for _, m := range samlRequestInput.FindAllStringSubmatch(pg.Body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	hr := httptest.NewRequest(http.MethodPost, "https://idp.test/sso", strings.NewReader(form.Encode()))
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req, err := crewjam.NewIdpAuthnRequest(idp.idp, hr)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Validate(); err != nil {
		t.Fatalf("the IdP refused the posted AuthnRequest: %v", err)
	}
	if pg := b.acs(t, "acme", idp.respond(t, req, assertionOpts{NameID: "post@acme.example"}), req.RelayState); pg.Status != http.StatusSeeOther {
		t.Fatalf("acs: %d %s", pg.Status, pg.Body)
	}
}

// TestJITSignInReplacesPreviousSession: a first sign-in (JIT creation) in a
// browser that already has a session replaces it, as any sign-in does: the
// store writes the new session together with the account and membership,
// and the old one is deleted afterwards.
func TestJITSignInReplacesPreviousSession(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	b := newSSOBrowser(env)
	ck := cookieFrom(b.signIn(t, idp, "acme", assertionOpts{NameID: "first@acme.example"}).Header, "scimjit_session")
	if ck == nil {
		t.Fatal("no session after the first sign-in")
	}
	pg := b.signIn(t, idp, "acme", assertionOpts{NameID: "second@acme.example"})
	ck2 := cookieFrom(pg.Header, "scimjit_session")
	if pg.Status != http.StatusSeeOther || ck2 == nil || ck2.Value == ck.Value {
		t.Fatalf("JIT sign-in over a session: %d, cookie %+v", pg.Status, ck2)
	}
	hash := func(v string) string { sum := sha256.Sum256([]byte(v)); return hex.EncodeToString(sum[:]) }
	if _, err := env.Store.GetSession(t.Context(), hash(ck.Value)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("previous session still live: %v", err)
	}
	acct, err := env.Store.GetAccountByEmail(t.Context(), "second@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if sess, err := env.Store.GetSession(t.Context(), hash(ck2.Value)); err != nil || sess.AccountID != acct.ID || sess.ActiveWorkspace != "acme" {
		t.Fatalf("new session = %+v, %v; want account %s in acme", sess, err, acct.ID)
	}
}
