package saml_test

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// withSLO gives the test IdP a SingleLogoutService (HTTP-Redirect) at
// base+"/slo", in its metadata.
func (p *ssoIdP) withSLO() *ssoIdP {
	u := p.idp.SSOURL
	u.Path = "/slo"
	p.idp.LogoutURL = u
	p.idp.LogoutBindings = []string{crewjam.HTTPRedirectBinding}
	return p
}

// sessionOf returns the stored session behind the browser's session cookie
// as set by pg.
func sessionOf(t *testing.T, env *servertest.Env, pg ssoPage) storage.Session {
	t.Helper()
	ck := cookieFrom(pg.Header, "scimjit_session")
	if ck == nil {
		t.Fatalf("no session cookie: %d %s", pg.Status, pg.Body)
	}
	sum := sha256.Sum256([]byte(ck.Value))
	sess, err := env.Store.GetSession(t.Context(), hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	return sess
}

// logout posts /logout with the browser's CSRF token.
func (b *ssoBrowser) logout(t *testing.T) ssoPage {
	t.Helper()
	return b.postForm(t, "/logout", url.Values{"csrf_token": {csrfFrom(t, b.get(t, "/").Body)}})
}

// idpAnswersLogout lets the IdP validate the LogoutRequest at location (its
// signature against the SP metadata, fetched over HTTP) and returns it with
// the URL of the IdP's signed LogoutResponse (HTTP-Redirect binding).
func idpAnswersLogout(t *testing.T, p *ssoIdP, location string) (*crewjam.IdpLogoutRequest, *url.URL) {
	t.Helper()
	lreq, err := crewjam.NewIdpLogoutRequest(p.idp, httptest.NewRequest(http.MethodGet, location, nil))
	if err != nil {
		t.Fatalf("idp: read logout request: %v", err)
	}
	if err := lreq.Validate(); err != nil {
		t.Fatalf("idp: validate logout request: %v", err)
	}
	rec := httptest.NewRecorder()
	if err := lreq.WriteLogoutResponse(rec, lreq.MakeLogoutResponse(crewjam.StatusSuccess)); err != nil {
		t.Fatalf("idp: write logout response: %v", err)
	}
	u, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || rec.Code != http.StatusFound {
		t.Fatalf("idp: logout response %d %q", rec.Code, rec.Header().Get("Location"))
	}
	return lreq, u
}

// TestSPInitiatedSingleLogout: with an IdP that offers SLO, /logout ends
// the session and sends the browser to the IdP with a LogoutRequest signed
// by the SP (verified by crewjam's IdP against the SP metadata) naming the
// NameID and SessionIndex of the sign-in; the IdP's signed answer shows the
// signed-out page. A forged (other key), unsigned, unsolicited or replayed
// LogoutResponse is refused with a page and an event.
func TestSPInitiatedSingleLogout(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test").withSLO()
	addWorkspace(t, env, "acme", idp, nil)
	b := newSSOBrowser(env)
	pg := b.signIn(t, idp, "acme", assertionOpts{NameID: "sue@acme.example"})
	sess := sessionOf(t, env, pg)
	if sess.IdP.Workspace != "acme" || sess.IdP.NameID != "sue@acme.example" || sess.IdP.SessionIndex == "" ||
		sess.IdP.NameIDFormat != string(crewjam.EmailAddressNameIDFormat) {
		t.Fatalf("session's idp part %+v", sess.IdP)
	}

	out := b.logout(t)
	if out.Status != http.StatusFound || !strings.HasPrefix(out.Location, "https://idp.test/slo?") {
		t.Fatalf("logout: %d %q %s", out.Status, out.Location, out.Body)
	}
	if me := b.get(t, "/api/v1/me"); me.Status != http.StatusUnauthorized {
		t.Errorf("me after logout: %d", me.Status)
	}
	if _, err := env.Store.GetSession(t.Context(), sess.Key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("session after logout: %v", err)
	}
	q, _ := url.Parse(out.Location)
	if q.Query().Get("SigAlg") != dsig.RSASHA256SignatureMethod || q.Query().Get("Signature") == "" {
		t.Errorf("logout request not signed with rsa-sha256: %q", out.Location)
	}
	lreq, answer := idpAnswersLogout(t, idp, out.Location)
	if nid := lreq.Request.NameID; nid == nil || nid.Value != "sue@acme.example" || nid.Format != string(crewjam.EmailAddressNameIDFormat) {
		t.Errorf("logout request NameID %+v", lreq.Request.NameID)
	}
	if ix := lreq.Request.AllSessionIndexes(); len(ix) != 1 || ix[0].Value != sess.IdP.SessionIndex {
		t.Errorf("logout request SessionIndex %+v, want %q", ix, sess.IdP.SessionIndex)
	}
	if !strings.HasPrefix(answer.String(), env.URL+"/saml/acme/slo?") {
		t.Fatalf("idp answers at %q", answer)
	}

	done := b.get(t, strings.TrimPrefix(answer.String(), env.URL))
	if done.Status != http.StatusOK || !strings.Contains(done.Body, "You have been signed out") {
		t.Fatalf("logout response: %d %s", done.Status, done.Body)
	}
	// The tracked request is used up: the same answer again is refused.
	if again := b.get(t, strings.TrimPrefix(answer.String(), env.URL)); again.Status != http.StatusForbidden {
		t.Errorf("replayed logout response: %d", again.Status)
	}
	if r := lastSLORefusal(t, env, "acme"); r != "in_response_to" {
		t.Errorf("replayed logout response: reason %q", r)
	}

	// Forged answers to a live request are refused for their signature.
	b.signIn(t, idp, "acme", assertionOpts{NameID: "sue@acme.example"})
	out = b.logout(t)
	_, forgedAnswer := idpAnswersLogout(t, idp.impostor(t), out.Location)
	_, real := idpAnswersLogout(t, idp, out.Location)
	unsigned := *real
	uq := unsigned.Query()
	uq.Del("Signature")
	uq.Del("SigAlg")
	unsigned.RawQuery = uq.Encode()
	for _, tc := range []struct {
		name, url, reason string
	}{
		{"unsigned", unsigned.String(), "unsigned"},
		{"signed by another key", forgedAnswer.String(), "signature"},
	} {
		pg := b.get(t, strings.TrimPrefix(tc.url, env.URL))
		if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "Sign-out not confirmed") {
			t.Errorf("%s: %d %s", tc.name, pg.Status, pg.Body)
		}
		if r := lastSLORefusal(t, env, "acme"); r != tc.reason {
			t.Errorf("%s: refusal reason %q, want %q", tc.name, r, tc.reason)
		}
	}
}

// TestLogoutWithoutSLOStaysLocal: an IdP without a SingleLogoutService
// leaves no IdP data in the session, and /logout only ends it; the SP
// metadata advertises its SLO endpoint either way.
func TestLogoutWithoutSLOStaysLocal(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	b := newSSOBrowser(env)
	if sess := sessionOf(t, env, b.signIn(t, idp, "acme", assertionOpts{NameID: "sue@acme.example"})); sess.IdP != (storage.IdPSession{}) {
		t.Errorf("idp session kept without SLO: %+v", sess.IdP)
	}
	if pg := b.logout(t); pg.Status != http.StatusSeeOther || pg.Location != "/" {
		t.Errorf("logout: %d %q", pg.Status, pg.Location)
	}
	md := b.get(t, "/saml/acme/metadata")
	var ed crewjam.EntityDescriptor
	if err := xml.Unmarshal([]byte(md.Body), &ed); err != nil {
		t.Fatal(err)
	}
	bindings := map[string]string{}
	for _, s := range ed.SPSSODescriptors[0].SingleLogoutServices {
		bindings[s.Binding] = s.Location
	}
	want := env.URL + "/saml/acme/slo"
	if bindings[crewjam.HTTPRedirectBinding] != want || bindings[crewjam.HTTPPostBinding] != want {
		t.Errorf("SP metadata SingleLogoutService %v, want %s for Redirect and POST", bindings, want)
	}
}

// idpLogoutRequest is a LogoutRequest from the test IdP to the workspace's
// SLO endpoint, with an enveloped signature by key of p unless unsigned,
// base64 for the HTTP-POST binding.
func idpLogoutRequest(t *testing.T, env *servertest.Env, p *ssoIdP, ws, nameID string, sign bool, sessionIndexes ...string) (id, form string) {
	t.Helper()
	id = "id-" + randomHex(16)
	lr := &crewjam.LogoutRequest{ID: id, Version: "2.0", IssueInstant: time.Now().UTC(),
		Destination: env.URL + "/saml/" + ws + "/slo",
		Issuer:      &crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.idp.MetadataURL.String()},
		NameID:      &crewjam.NameID{Format: string(crewjam.EmailAddressNameIDFormat), Value: nameID}}
	crewjam.WithSessionIndexes(sessionIndexes...)(lr)
	el := lr.Element()
	if sign {
		ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{
			Certificate: [][]byte{p.idp.Certificate.Raw}, PrivateKey: p.idp.Key}))
		if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
			t.Fatal(err)
		}
		var err error
		if el, err = ctx.SignEnveloped(el); err != nil {
			t.Fatal(err)
		}
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return id, base64.StdEncoding.EncodeToString(b)
}

// logoutResponseIn decodes the SAMLResponse of an HTTP-Redirect URL.
func logoutResponseIn(t *testing.T, location string) crewjam.LogoutResponse {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(u.Query().Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var resp crewjam.LogoutResponse
	if err := xml.Unmarshal(x, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestIdPInitiatedSingleLogout: a LogoutRequest signed by the workspace's
// IdP ends the sessions its SessionIndex names for its NameID, in another
// browser too, and is answered with a signed LogoutResponse (Success) to
// the IdP's SLO endpoint; an unsigned or foreign-signed request, or the
// same request again, ends nothing and is refused.
func TestIdPInitiatedSingleLogout(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test").withSLO()
	addWorkspace(t, env, "acme", idp, nil)
	laptop, phone := newSSOBrowser(env), newSSOBrowser(env)
	lsess := sessionOf(t, env, laptop.signIn(t, idp, "acme", assertionOpts{NameID: "sue@acme.example"}))
	psess := sessionOf(t, env, phone.signIn(t, idp, "acme", assertionOpts{NameID: "sue@acme.example"}))
	idpBrowser := newSSOBrowser(env) // the IdP's front channel, without scimjit's cookies

	for _, tc := range []struct {
		name   string
		p      *ssoIdP
		sign   bool
		reason string
	}{
		{"unsigned", idp, false, "unsigned"},
		{"signed by another key", idp.impostor(t), true, "signature"},
	} {
		_, form := idpLogoutRequest(t, env, tc.p, "acme", "sue@acme.example", tc.sign, lsess.IdP.SessionIndex)
		pg := idpBrowser.postForm(t, "/saml/acme/slo", url.Values{"SAMLRequest": {form}})
		if pg.Status != http.StatusForbidden {
			t.Errorf("%s: %d %s", tc.name, pg.Status, pg.Body)
		}
		if r := lastSLORefusal(t, env, "acme"); r != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.name, r, tc.reason)
		}
	}
	// Another person's NameID with the laptop's SessionIndex ends nothing.
	_, form := idpLogoutRequest(t, env, idp, "acme", "mallory@acme.example", true, lsess.IdP.SessionIndex)
	if pg := idpBrowser.postForm(t, "/saml/acme/slo", url.Values{"SAMLRequest": {form}}); pg.Status != http.StatusFound {
		t.Errorf("other NameID: %d %s", pg.Status, pg.Body)
	}
	if me := laptop.get(t, "/api/v1/me"); me.Status != http.StatusOK {
		t.Fatalf("a refused or foreign logout request ended the session: %d", me.Status)
	}

	id, form := idpLogoutRequest(t, env, idp, "acme", "sue@acme.example", true, lsess.IdP.SessionIndex)
	pg := idpBrowser.postForm(t, "/saml/acme/slo", url.Values{"SAMLRequest": {form}, "RelayState": {"r1"}})
	if pg.Status != http.StatusFound || !strings.HasPrefix(pg.Location, "https://idp.test/slo?") {
		t.Fatalf("logout request: %d %q %s", pg.Status, pg.Location, pg.Body)
	}
	lu, _ := url.Parse(pg.Location)
	if lu.Query().Get("RelayState") != "r1" || lu.Query().Get("Signature") == "" {
		t.Errorf("logout response query %v", lu.Query())
	}
	resp := logoutResponseIn(t, pg.Location)
	if resp.InResponseTo != id || resp.Status.StatusCode.Value != crewjam.StatusSuccess || resp.Status.StatusCode.StatusCode != nil ||
		resp.Destination != "https://idp.test/slo" || resp.Issuer == nil || resp.Issuer.Value != spEntityID(env, "acme") {
		t.Errorf("logout response %+v", resp)
	}
	if me := laptop.get(t, "/api/v1/me"); me.Status != http.StatusUnauthorized {
		t.Errorf("laptop after idp logout: %d", me.Status)
	}
	if _, err := env.Store.GetSession(t.Context(), lsess.Key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("laptop session: %v", err)
	}
	if me := phone.get(t, "/api/v1/me"); me.Status != http.StatusOK {
		t.Errorf("the phone's IdP session was not named but ended: %d", me.Status)
	}
	// The same request again is refused.
	if pg := idpBrowser.postForm(t, "/saml/acme/slo", url.Values{"SAMLRequest": {form}}); pg.Status != http.StatusForbidden {
		t.Errorf("replayed logout request: %d", pg.Status)
	}
	if r := lastSLORefusal(t, env, "acme"); r != "replayed" {
		t.Errorf("replayed logout request: reason %q", r)
	}

	// Without a SessionIndex: the browser's own session (front channel)
	// ends, and the answer says PartialLogout.
	_, form = idpLogoutRequest(t, env, idp, "acme", "sue@acme.example", true)
	pg = phone.postForm(t, "/saml/acme/slo", url.Values{"SAMLRequest": {form}})
	if pg.Status != http.StatusFound {
		t.Fatalf("logout request without SessionIndex: %d %s", pg.Status, pg.Body)
	}
	if sc := logoutResponseIn(t, pg.Location).Status.StatusCode; sc.StatusCode == nil || sc.StatusCode.Value != crewjam.StatusPartialLogout {
		t.Errorf("status %+v, want Success/PartialLogout", sc)
	}
	if _, err := env.Store.GetSession(t.Context(), psess.Key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("phone session: %v", err)
	}
}

// lastSLORefusal returns the reason of the newest login.slo_refused event.
func lastSLORefusal(t testing.TB, env *servertest.Env, ws string) string {
	t.Helper()
	ev := events(t, env, ws, "login.slo_refused")
	if len(ev) == 0 {
		return ""
	}
	return ev[len(ev)-1].Detail["reason"]
}
