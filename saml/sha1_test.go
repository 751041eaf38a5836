package saml_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// sha1Signed returns a copy of the IdP that signs with RSA-SHA1 (goxmldsig
// then digests with SHA-1 too).
func (p *ssoIdP) sha1Signed() *ssoIdP {
	cp := *p.idp
	cp.SignatureMethod = dsig.RSASHA1SignatureMethod
	return &ssoIdP{idp: &cp, sps: p.sps}
}

// TestSHA1SignaturesRefusedUnlessAllowed: an IdP signing with RSA-SHA1 is
// refused by default (page, sha1_signature event, nobody created); the
// workspace setting idp.allowSHA1 accepts it; SHA-256 works either way.
func TestSHA1SignaturesRefusedUnlessAllowed(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "strict", idp, nil)
	addWorkspace(t, env, "legacy", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowSHA1 = true })
	old := idp.sha1Signed()
	role := []crewjam.Attribute{attr("workato_role", "Operator")}

	for _, sign := range []string{"both", "assertion", "response"} {
		email := "sha1-" + sign + "@acme.example"
		pg := newSSOBrowser(env).signIn(t, old, "strict", assertionOpts{NameID: email, Attrs: role, Sign: sign,
			After: func(d *etree.Document) {
				if x, _ := d.WriteToString(); !strings.Contains(x, dsig.RSASHA1SignatureMethod) || !strings.Contains(x, "xmldsig#sha1") {
					t.Fatalf("sign=%s: the response is not signed with rsa-sha1", sign)
				}
			}})
		if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "Sign-in failed") {
			t.Errorf("strict, sign=%s: %d %s", sign, pg.Status, pg.Body)
		}
		if r := lastRefusal(t, env, "strict"); r != "sha1_signature" {
			t.Errorf("strict, sign=%s: refusal reason %q, want sha1_signature", sign, r)
		}
		mustHaveNothing(t, env, "strict", email)

		legacy := "legacy-" + email
		if pg := newSSOBrowser(env).signIn(t, old, "legacy", assertionOpts{NameID: legacy, Attrs: role, Sign: sign}); pg.Status != http.StatusSeeOther {
			t.Errorf("legacy, sign=%s: %d %s", sign, pg.Status, pg.Body)
		}
		membership(t, env, "legacy", legacy)
	}

	// SHA-256 is unaffected by the setting.
	for _, ws := range []string{"strict", "legacy"} {
		email := "sha256-" + ws + "@acme.example"
		if pg := newSSOBrowser(env).signIn(t, idp, ws, assertionOpts{NameID: email, Attrs: role}); pg.Status != http.StatusSeeOther {
			t.Errorf("%s, sha-256: %d %s", ws, pg.Status, pg.Body)
		}
		membership(t, env, ws, email)
	}
}
