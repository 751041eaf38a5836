package saml_test

// Test harness for the SAML tests: a test IdP (crewjam's IdentityProvider
// with a key and certificate made in the test) that answers the real
// AuthnRequests of a real server (servertest, over a spawned redis-server)
// with genuinely signed responses, and a cookie-keeping browser that does
// not follow redirects. The join/switch tests may reuse these helpers.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// testKeyPair makes an RSA-2048 key and a self-signed certificate.
func testKeyPair(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// ssoIdP is an identity provider for tests.
type ssoIdP struct {
	idp *crewjam.IdentityProvider
	sps *spFetcher
}

// spFetcher finds a service provider's metadata by fetching its entity ID
// (the SP metadata URL) over HTTP. rewrite maps a public base URL to the
// address the test server really listens on. Encryption keys are dropped
// unless encrypt is set, so that tests can read and tamper with the
// assertion the way an IdP without assertion encryption sends it.
type spFetcher struct {
	mu      sync.Mutex
	rewrite map[string]string
	encrypt bool
}

func (f *spFetcher) GetServiceProvider(_ *http.Request, entityID string) (*crewjam.EntityDescriptor, error) {
	f.mu.Lock()
	u := entityID
	for from, to := range f.rewrite {
		if strings.HasPrefix(u, from) {
			u = to + strings.TrimPrefix(u, from)
		}
	}
	encrypt := f.encrypt
	f.mu.Unlock()
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, os.ErrNotExist
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	ed := &crewjam.EntityDescriptor{}
	if err := xml.Unmarshal(body, ed); err != nil {
		return nil, err
	}
	if !encrypt {
		for i := range ed.SPSSODescriptors {
			var kds []crewjam.KeyDescriptor
			for _, kd := range ed.SPSSODescriptors[i].KeyDescriptors {
				switch kd.Use {
				case "encryption":
				case "":
					kd.Use = "signing" // a key for both: keep it for signatures only
					kds = append(kds, kd)
				default:
					kds = append(kds, kd)
				}
			}
			ed.SPSSODescriptors[i].KeyDescriptors = kds
		}
	}
	return ed, nil
}

// newSSOIdP makes an IdP whose entity ID is base+"/metadata".
func newSSOIdP(t testing.TB, base string) *ssoIdP {
	t.Helper()
	key, cert := testKeyPair(t, base)
	md, _ := url.Parse(base + "/metadata")
	sso, _ := url.Parse(base + "/sso")
	f := &spFetcher{rewrite: map[string]string{}}
	return &ssoIdP{sps: f, idp: &crewjam.IdentityProvider{Key: key, Signer: key, Certificate: cert,
		MetadataURL: *md, SSOURL: *sso, ServiceProviderProvider: f,
		SignatureMethod: dsig.RSASHA256SignatureMethod}}
}

// impostor returns an IdP with the same entity ID and URLs but another key.
func (p *ssoIdP) impostor(t testing.TB) *ssoIdP {
	key, cert := testKeyPair(t, "impostor")
	cp := *p.idp
	cp.Key, cp.Signer, cp.Certificate = key, key, cert
	return &ssoIdP{idp: &cp, sps: p.sps}
}

// at returns a copy of the IdP whose clock reads now+d.
func (p *ssoIdP) at(d time.Duration) *ssoIdP {
	cp := *p.idp
	cp.Clock = dsig.NewFakeClockAt(time.Now().Add(d))
	return &ssoIdP{idp: &cp, sps: p.sps}
}

// metadataXML is what the workspace admin uploads.
func (p *ssoIdP) metadataXML(t testing.TB) string {
	t.Helper()
	b, err := xml.Marshal(p.idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// attr is a single-valued string attribute.
func attr(name, value string) crewjam.Attribute {
	return crewjam.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
		Values: []crewjam.AttributeValue{{Type: "xs:string", Value: value}}}
}

// assertionOpts describes the response the test IdP makes.
type assertionOpts struct {
	NameID       string
	NameIDFormat string // default emailAddress
	Attrs        []crewjam.Attribute
	// Before changes the assertion (or the request) before anything is signed.
	Before func(req *crewjam.IdpAuthnRequest)
	// Sign is "both" (default: assertion and response), "assertion",
	// "response" or "none".
	Sign string
	// After changes the signed XML (tampering, wrapping).
	After func(doc *etree.Document)
}

// respond answers req with a response as opts say, base64 for the form.
func (p *ssoIdP) respond(t testing.TB, req *crewjam.IdpAuthnRequest, o assertionOpts) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(p.responseXML(t, req, o))
}

func (p *ssoIdP) responseXML(t testing.TB, req *crewjam.IdpAuthnRequest, o assertionOpts) []byte {
	t.Helper()
	if o.NameIDFormat == "" {
		o.NameIDFormat = string(crewjam.EmailAddressNameIDFormat)
	}
	now := time.Now()
	if p.idp.Clock != nil {
		now = p.idp.Clock.Now()
	}
	sess := &crewjam.Session{ID: randomHex(8), CreateTime: now, ExpireTime: now.Add(time.Hour), Index: randomHex(8),
		NameID: o.NameID, NameIDFormat: o.NameIDFormat, CustomAttributes: o.Attrs}
	if err := (crewjam.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		t.Fatalf("make assertion: %v", err)
	}
	if o.Before != nil {
		o.Before(req)
	}
	var respEl *etree.Element
	switch o.Sign {
	case "", "both":
		if err := req.MakeResponse(); err != nil {
			t.Fatalf("make response: %v", err)
		}
		respEl = req.ResponseEl
	case "assertion":
		if err := req.MakeAssertionEl(); err != nil {
			t.Fatalf("sign assertion: %v", err)
		}
		respEl = unsignedResponse(req, req.AssertionEl)
	case "response":
		req.AssertionEl = req.Assertion.Element()
		if err := req.MakeResponse(); err != nil {
			t.Fatalf("make response: %v", err)
		}
		respEl = req.ResponseEl
	case "none":
		respEl = unsignedResponse(req, req.Assertion.Element())
	default:
		t.Fatalf("unknown Sign %q", o.Sign)
	}
	doc := etree.NewDocument()
	doc.SetRoot(respEl)
	if o.After != nil {
		o.After(doc)
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unsignedResponse(req *crewjam.IdpAuthnRequest, assertionEl *etree.Element) *etree.Element {
	resp := &crewjam.Response{Destination: req.ACSEndpoint.Location, ID: "id-" + randomHex(20),
		InResponseTo: req.Request.ID, IssueInstant: req.Now, Version: "2.0",
		Issuer: &crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: req.IDP.MetadataURL.String()},
		Status: crewjam.Status{StatusCode: crewjam.StatusCode{Value: crewjam.StatusSuccess}}}
	el := resp.Element()
	el.AddChild(assertionEl)
	return el
}

// idpInitiated makes an unsolicited request for the SP with that entity ID.
func (p *ssoIdP) idpInitiated(t testing.TB, spEntityID, relay string) *crewjam.IdpAuthnRequest {
	t.Helper()
	req, err := p.idp.NewIdpInitiatedRequest(httptest.NewRequest(http.MethodGet, p.idp.SSOURL.String(), nil), spEntityID, relay)
	if err != nil {
		t.Fatalf("idp-initiated request: %v", err)
	}
	return req
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ssoBrowser keeps cookies and does not follow redirects.
type ssoBrowser struct {
	env *servertest.Env
	c   *http.Client
}

func newSSOBrowser(env *servertest.Env) *ssoBrowser {
	c := env.NewClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &ssoBrowser{env: env, c: c}
}

// ssoPage is a response with its body read.
type ssoPage struct {
	Status   int
	Location string
	Body     string
	Header   http.Header
}

func (b *ssoBrowser) do(t testing.TB, req *http.Request) ssoPage {
	t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return ssoPage{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Body: string(body), Header: resp.Header}
}

func (b *ssoBrowser) get(t testing.TB, path string) ssoPage {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.env.URL+path, nil)
	return b.do(t, req)
}

func (b *ssoBrowser) postForm(t testing.TB, path string, form url.Values) ssoPage {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.env.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// startLogin opens /saml/{ws}/login (with ?return=ret when set) and hands
// the AuthnRequest the server redirected to over to the IdP.
func (b *ssoBrowser) startLogin(t testing.TB, p *ssoIdP, ws, ret string) *crewjam.IdpAuthnRequest {
	t.Helper()
	return b.startLoginFrom(t, p, ws, ret, "")
}

// startLoginFrom is startLogin as the client ip (X-Forwarded-For, read by a
// server that trusts the loopback proxy); "" sends no such header.
func (b *ssoBrowser) startLoginFrom(t testing.TB, p *ssoIdP, ws, ret, ip string) *crewjam.IdpAuthnRequest {
	t.Helper()
	path := "/saml/" + ws + "/login"
	if ret != "" {
		path += "?return=" + url.QueryEscape(ret)
	}
	hr, _ := http.NewRequest(http.MethodGet, b.env.URL+path, nil)
	if ip != "" {
		hr.Header.Set("X-Forwarded-For", ip)
	}
	pg := b.do(t, hr)
	if pg.Status != http.StatusFound || !strings.HasPrefix(pg.Location, p.idp.SSOURL.String()) {
		t.Fatalf("login: status %d location %q body %s", pg.Status, pg.Location, pg.Body)
	}
	req, err := crewjam.NewIdpAuthnRequest(p.idp, httptest.NewRequest(http.MethodGet, pg.Location, nil))
	if err != nil {
		t.Fatalf("idp: read authn request: %v", err)
	}
	if err := req.Validate(); err != nil {
		t.Fatalf("idp: validate authn request: %v", err)
	}
	return req
}

// acs posts a SAMLResponse (and RelayState) to the workspace's ACS.
func (b *ssoBrowser) acs(t testing.TB, ws, samlResponse, relay string) ssoPage {
	t.Helper()
	form := url.Values{"SAMLResponse": {samlResponse}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	return b.postForm(t, "/saml/"+ws+"/acs", form)
}

// signIn runs a whole SP-initiated login and returns the ACS answer.
func (b *ssoBrowser) signIn(t testing.TB, p *ssoIdP, ws string, o assertionOpts) ssoPage {
	t.Helper()
	req := b.startLogin(t, p, ws, "")
	return b.acs(t, ws, p.respond(t, req, o), req.RelayState)
}

// addWorkspace creates a workspace with JIT on and p as its IdP, and
// returns its SCIM token.
func addWorkspace(t testing.TB, env *servertest.Env, id string, p *ssoIdP, mutate func(*storage.Workspace)) string {
	t.Helper()
	return env.CreateWorkspace(t, id, func(ws *storage.Workspace) {
		ws.Settings.JIT.Enabled = true
		ws.Settings.IdP.MetadataXML = p.metadataXML(t)
		if mutate != nil {
			mutate(ws)
		}
	})
}

// spEntityID is the workspace's SP entity ID on env.
func spEntityID(env *servertest.Env, ws string) string { return env.URL + "/saml/" + ws + "/metadata" }

// events returns the workspace's events of one type.
func events(t testing.TB, env *servertest.Env, ws, typ string) []storage.Event {
	t.Helper()
	all, err := env.Store.ListEvents(t.Context(), ws, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []storage.Event
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// lastRefusal returns the reason of the newest login.refused event.
func lastRefusal(t testing.TB, env *servertest.Env, ws string) string {
	t.Helper()
	ev := events(t, env, ws, "login.refused")
	if len(ev) == 0 {
		return ""
	}
	return ev[len(ev)-1].Detail["reason"]
}

// mustHaveNothing fails when the email has an account or ws has any user.
func mustHaveNothing(t testing.TB, env *servertest.Env, ws, email string) {
	t.Helper()
	if email != "" {
		if _, err := env.Store.GetAccountByEmail(t.Context(), email); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("account for %s exists (err %v), want none", email, err)
		}
	}
	if _, n, err := env.Store.ListUsers(t.Context(), ws, 0, 10); err != nil || n != 0 {
		t.Errorf("workspace %s has %d users (err %v), want none", ws, n, err)
	}
}

// membership returns the account's membership in ws.
func membership(t testing.TB, env *servertest.Env, ws, email string) (storage.Account, storage.User) {
	t.Helper()
	acct, err := env.Store.GetAccountByEmail(t.Context(), email)
	if err != nil {
		t.Fatalf("account %s: %v", email, err)
	}
	u, err := env.Store.GetUserByAccount(t.Context(), ws, acct.ID)
	if err != nil {
		t.Fatalf("membership of %s in %s: %v", email, ws, err)
	}
	return acct, u
}
