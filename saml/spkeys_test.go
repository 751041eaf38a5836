package saml_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
)

// twoProcesses starts two servers on one redis-server with no key files and
// one public base URL (the first's), as two processes behind a load
// balancer. Both re-read the shared keys on every request (KeyRefresh 1ns)
// so that the test needs no waiting.
func twoProcesses(t *testing.T) (*servertest.Env, *servertest.Env) {
	t.Helper()
	fast := func(c *server.Config) { c.SAML.KeyRefresh = time.Nanosecond }
	p1 := servertest.New(t, fast)
	p2 := servertest.New(t, func(c *server.Config) {
		fast(c)
		c.Store, c.BaseURL = p1.Store, p1.BaseURL
	})
	return p1, p2
}

// spCerts returns the certificates of the workspace's SP metadata, per
// KeyDescriptor use, in document order.
func spCerts(t *testing.T, env *servertest.Env, ws string) map[string][]*x509.Certificate {
	t.Helper()
	pg := newSSOBrowser(env).get(t, "/saml/"+ws+"/metadata")
	if pg.Status != http.StatusOK {
		t.Fatalf("metadata: %d %s", pg.Status, pg.Body)
	}
	var ed crewjam.EntityDescriptor
	if err := xml.Unmarshal([]byte(pg.Body), &ed); err != nil {
		t.Fatal(err)
	}
	out := map[string][]*x509.Certificate{}
	for _, d := range ed.SPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(c.Data)
				if err != nil {
					t.Fatal(err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				out[kd.Use] = append(out[kd.Use], cert)
			}
		}
	}
	return out
}

// redirectSignedBy reports whether the HTTP-Redirect AuthnRequest at
// location carries a valid RSA-SHA256 signature of cert's key (SAML
// bindings §3.4.4.1: the signature covers SAMLRequest, RelayState and
// SigAlg as they appear in the query string).
func redirectSignedBy(t *testing.T, location string, cert *x509.Certificate) bool {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	var signed []string
	var sig string
	for _, part := range strings.Split(u.RawQuery, "&") {
		switch name, value, _ := strings.Cut(part, "="); name {
		case "SAMLRequest", "RelayState", "SigAlg":
			signed = append(signed, part)
		case "Signature":
			v, err := url.QueryUnescape(value)
			if err != nil {
				t.Fatal(err)
			}
			sig = v
		}
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || sig == "" {
		t.Fatalf("redirect without a readable Signature: %s", location)
	}
	h := sha256.Sum256([]byte(strings.Join(signed, "&")))
	return rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, h[:], raw) == nil
}

// loginLocation opens /saml/{ws}/login and returns the redirect to the IdP.
func loginLocation(t *testing.T, env *servertest.Env, ws string) string {
	t.Helper()
	pg := newSSOBrowser(env).get(t, "/saml/"+ws+"/login")
	if pg.Status != http.StatusFound {
		t.Fatalf("login: %d %s", pg.Status, pg.Body)
	}
	return pg.Location
}

// TestSPKeySharedByTwoProcesses: two processes on one Redis with no key
// files, starting together, create one key pair and publish the same
// certificate; a sign-in started on one process with an assertion the IdP
// encrypted to the certificate it read from the other succeeds.
func TestSPKeySharedByTwoProcesses(t *testing.T) {
	p1, p2 := twoProcesses(t)
	idp := newSSOIdP(t, "https://idp.example")
	idp.sps.encrypt = true
	addWorkspace(t, p1, "acme", idp, nil)

	// Concurrent first use: both processes read (and, finding none,
	// create) the keys at once.
	var wg sync.WaitGroup
	certs := make([]map[string][]*x509.Certificate, 2)
	for i, env := range []*servertest.Env{p1, p2} {
		wg.Add(1)
		go func() { defer wg.Done(); certs[i] = spCerts(t, env, "acme") }()
	}
	wg.Wait()
	for i, c := range certs {
		if len(c["signing"]) != 1 || len(c["encryption"]) != 1 {
			t.Fatalf("process %d publishes %d signing and %d encryption certificates, want 1 each", i+1, len(c["signing"]), len(c["encryption"]))
		}
	}
	if !certs[0]["signing"][0].Equal(certs[1]["signing"][0]) {
		t.Fatal("the two processes publish different SP certificates")
	}
	k, err := p1.Store.SPKeys(t.Context())
	if err != nil || k.Version != 1 || !certs[0]["signing"][0].Equal(mustCert(t, k.Current.Certificate)) {
		t.Fatalf("stored keys: version %d, err %v; want the published certificate, created once", k.Version, err)
	}

	// The IdP reads p1's metadata (the public base URL) and encrypts to
	// it; p2 starts the login and receives the response.
	b := newSSOBrowser(p2)
	req := b.startLogin(t, idp, "acme", "")
	pg := b.acs(t, "acme", idp.respond(t, req, assertionOpts{NameID: "ann@example.com"}), req.RelayState)
	if pg.Status != http.StatusSeeOther && pg.Status != http.StatusFound {
		t.Fatalf("sign-in on the second process: %d %s (refusal %q)", pg.Status, pg.Body, lastRefusal(t, p1, "acme"))
	}
	if !strings.Contains(req.ResponseEl.FindElement("//EncryptedAssertion").Tag, "EncryptedAssertion") {
		t.Fatal("the IdP did not encrypt the assertion")
	}
}

func mustCert(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSPKeyRotation: rotate publishes the next certificate next to the
// current one on every process while the current key still signs; promote
// makes the next key sign, keeps the old certificate published, and a
// response the IdP encrypted to the old certificate (read before the
// promotion) still signs the person in.
func TestSPKeyRotation(t *testing.T) {
	p1, p2 := twoProcesses(t)
	idp := newSSOIdP(t, "https://idp.example")
	idp.sps.encrypt = true
	addWorkspace(t, p1, "acme", idp, nil)
	before := spCerts(t, p1, "acme")["signing"]
	if len(before) != 1 {
		t.Fatalf("%d signing certificates before rotation", len(before))
	}
	old := before[0]
	ctx := t.Context()

	if _, err := saml.RotateSPKey(ctx, p1.Store, "", "test next", false); err != nil {
		t.Fatal(err)
	}
	if _, err := saml.RotateSPKey(ctx, p1.Store, "", "test next", false); err == nil {
		t.Fatal("a second rotate without --replace succeeded")
	}
	var next *x509.Certificate
	for i, env := range []*servertest.Env{p1, p2} {
		c := spCerts(t, env, "acme")
		if len(c["signing"]) != 2 || len(c["encryption"]) != 2 || !c["signing"][0].Equal(old) || !c["encryption"][0].Equal(old) {
			t.Fatalf("process %d after rotate: %d signing, %d encryption certificates (current first wanted)", i+1, len(c["signing"]), len(c["encryption"]))
		}
		if next == nil {
			next = c["signing"][1]
		} else if !next.Equal(c["signing"][1]) {
			t.Fatal("the processes publish different next certificates")
		}
	}
	if loc := loginLocation(t, p2, "acme"); !redirectSignedBy(t, loc, old) || redirectSignedBy(t, loc, next) {
		t.Fatal("after rotate the AuthnRequest is not signed by the current (old) key")
	}

	// The IdP reads the metadata now and encrypts to its first encryption
	// certificate, the old one; the answer arrives after the promotion.
	b := newSSOBrowser(p2)
	req := b.startLogin(t, idp, "acme", "")
	if _, err := saml.PromoteSPKey(ctx, p1.Store); err != nil {
		t.Fatal(err)
	}
	if _, err := saml.PromoteSPKey(ctx, p1.Store); err == nil {
		t.Fatal("a second promote without a next key succeeded")
	}
	for i, env := range []*servertest.Env{p1, p2} {
		c := spCerts(t, env, "acme")
		if len(c["signing"]) != 2 || !c["signing"][0].Equal(next) || !c["signing"][1].Equal(old) {
			t.Fatalf("process %d after promote: want the new certificate first and the old one still published", i+1)
		}
	}
	if loc := loginLocation(t, p1, "acme"); !redirectSignedBy(t, loc, next) || redirectSignedBy(t, loc, old) {
		t.Fatal("after promote the AuthnRequest is not signed by the new key")
	}
	pg := b.acs(t, "acme", idp.respond(t, req, assertionOpts{NameID: "bob@example.com"}), req.RelayState)
	if pg.Status != http.StatusSeeOther && pg.Status != http.StatusFound {
		t.Fatalf("sign-in with an assertion encrypted to the old certificate: %d (refusal %q)", pg.Status, lastRefusal(t, p1, "acme"))
	}
	if _, u := membership(t, p1, "acme", "bob@example.com"); u.ID == "" {
		t.Fatal("no membership after the sign-in")
	}
}

// TestSPKeyEncryptedAtRest: with a secret key the stored private key is
// neither PEM nor DER; the same secret reads it in another process, a
// wrong or missing one fails with a clear error.
func TestSPKeyEncryptedAtRest(t *testing.T) {
	const secret = "first-secret-0123456789-abcdefghijkl"
	env := servertest.New(t, func(c *server.Config) { c.SAML.SecretKey = secret })
	ctx := t.Context()
	if err := env.Server.SAML().LoadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := env.Store.SPKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(k.Current.Key), "PRIVATE KEY") {
		t.Fatal("the stored private key is PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(k.Current.Key); err == nil {
		t.Fatal("the stored private key is plain DER")
	}
	info, err := saml.DescribeSPKeys(k)
	if err != nil || len(info) != 1 || !info[0].Encrypted || info[0].Role != "current" {
		t.Fatalf("describe = %+v, %v", info, err)
	}
	for _, c := range []struct {
		secret string
		want   error
	}{{secret, nil}, {"wrong-secret-0123456789-abcdefghijkl", saml.ErrWrongSecretKey}, {"", saml.ErrSecretKeyRequired}} {
		other, err := saml.New(saml.Config{Store: env.Store, BaseURL: env.BaseURL, SecretKey: c.secret})
		if err != nil {
			t.Fatal(err)
		}
		if err := other.LoadKeys(ctx); !errors.Is(err, c.want) {
			t.Errorf("LoadKeys with secret %q: %v, want %v", c.secret, err, c.want)
		}
	}
	// Rotating with a wrong secret stores nothing.
	if _, err := saml.RotateSPKey(ctx, env.Store, "wrong-secret-0123456789-abcdefghijkl", "x", false); !errors.Is(err, saml.ErrWrongSecretKey) {
		t.Fatalf("rotate with a wrong secret: %v", err)
	}
	if k2, _ := env.Store.SPKeys(ctx); k2.Next != nil || k2.Version != k.Version {
		t.Fatalf("a failed rotate changed the keys: %+v", k2)
	}
	if _, err := saml.RotateSPKey(ctx, env.Store, secret, "x", false); err != nil {
		t.Fatal(err)
	}
	k, _ = env.Store.SPKeys(ctx)
	if k.Next == nil || strings.Contains(string(k.Next.Key), "PRIVATE KEY") {
		t.Fatal("the next key is not stored encrypted")
	}
}
