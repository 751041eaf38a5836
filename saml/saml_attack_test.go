package saml_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// findAssertion returns the (first) Assertion element under root.
func findAssertion(root *etree.Element) *etree.Element {
	return root.FindElement(".//Assertion")
}

// setRole rewrites the workato_role value in el (tampering).
func setRole(el *etree.Element, role string) {
	for _, a := range el.FindElements(".//Attribute") {
		if a.SelectAttrValue("Name", "") == "workato_role" {
			a.FindElement("./AttributeValue").SetText(role)
		}
	}
}

// evilCopy returns an unsigned copy of assertion el for another person.
func evilCopy(el *etree.Element, email string) *etree.Element {
	evil := el.Copy()
	if sig := evil.FindElement("./Signature"); sig != nil {
		evil.RemoveChild(sig)
	}
	evil.CreateAttr("ID", "id-evil-"+randomHex(8))
	evil.FindElement(".//NameID").SetText(email)
	setRole(evil, "Admin")
	return evil
}

// TestAttacksAreRefusedAndCreateNothing: each forged, altered or misdirected
// response gets the plain sign-in-failed ssoPage (403), a login.refused event
// with the precise reason, and leaves no account and no user behind.
func TestAttacksAreRefusedAndCreateNothing(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	other := newSSOIdP(t, "https://idp-other.test")
	addWorkspace(t, env, "acme", idp, nil)
	addWorkspace(t, env, "other", other, nil)
	addWorkspace(t, env, "tiles", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowIdPInitiated = true })
	role := []crewjam.Attribute{attr("workato_role", "Operator")}
	otherACS := "https://evil.example/saml/acme/acs"

	cases := []struct {
		name   string
		ws     string
		reason string
		// run performs the attack with a fresh ssoBrowser and returns the ACS page.
		run func(t *testing.T, b *ssoBrowser, email string) ssoPage
	}{
		{"unsigned response and assertion", "acme", "unsigned", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: email, Attrs: role, Sign: "none"})
		}},
		{"signed by another key with the IdP's entity ID", "acme", "signature", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp.impostor(t), "acme", assertionOpts{NameID: email, Attrs: role})
		}},
		{"signed by another workspace's IdP", "acme", "signature", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			req := b.startLogin(t, idp, "acme", "")
			other.sps.encrypt = false
			oreq := *req
			oreq.IDP = other.idp
			return b.acs(t, "acme", other.respond(t, &oreq, assertionOpts{NameID: email, Attrs: role}), req.RelayState)
		}},
		{"attribute tampered after signing (response and assertion signed)", "acme", "signature", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: email, Attrs: role,
				After: func(d *etree.Document) { setRole(d.Root(), "Admin") }})
		}},
		{"attribute tampered after signing (assertion signed)", "acme", "signature", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: email, Attrs: role, Sign: "assertion",
				After: func(d *etree.Document) { setRole(d.Root(), "Admin") }})
		}},
		{"wrapping: second unsigned assertion before the signed one", "acme", "malformed", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: "victim-" + email, Attrs: role, Sign: "assertion",
				After: func(d *etree.Document) {
					signed := findAssertion(d.Root())
					d.Root().InsertChildAt(signed.Index(), evilCopy(signed, email))
				}})
		}},
		{"wrapping: unsigned response around the signed response", "acme", "unsigned", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: "victim-" + email, Attrs: role,
				After: func(d *etree.Document) {
					signedResp := d.Root()
					outer := signedResp.Copy()
					for _, ch := range outer.ChildElements() {
						if ch.Tag == "Signature" || ch.Tag == "Assertion" {
							outer.RemoveChild(ch)
						}
					}
					outer.CreateAttr("ID", "id-outer-"+randomHex(8))
					outer.AddChild(evilCopy(findAssertion(signedResp), email))
					ext := outer.CreateElement("samlp:Extensions")
					ext.AddChild(signedResp.Copy())
					d.SetRoot(outer)
				}})
		}},
		{"wrapping: signed assertion hidden inside an unsigned one", "acme", "unsigned", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: "victim-" + email, Attrs: role, Sign: "assertion",
				After: func(d *etree.Document) {
					signed := findAssertion(d.Root())
					evil := evilCopy(signed, email)
					evil.AddChild(signed.Copy())
					d.Root().RemoveChild(signed)
					d.Root().AddChild(evil)
				}})
		}},
		{"expired", "acme", "expired", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return signInAt(t, b, idp, -time.Hour, email)
		}},
		{"not yet valid", "acme", "not_yet_valid", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return signInAt(t, b, idp, time.Hour, email)
		}},
		{"wrong audience", "acme", "audience", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: email, Attrs: role, Before: func(r *crewjam.IdpAuthnRequest) {
				r.Assertion.Conditions.AudienceRestrictions[0].Audience.Value = spEntityID(env, "other")
			}})
		}},
		{"wrong recipient", "acme", "destination", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: email, Attrs: role, Before: func(r *crewjam.IdpAuthnRequest) {
				r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = otherACS
			}})
		}},
		{"wrong destination", "acme", "destination", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: email, Attrs: role, Before: func(r *crewjam.IdpAuthnRequest) {
				ep := *r.ACSEndpoint
				ep.Location = otherACS
				r.ACSEndpoint = &ep
			}})
		}},
		{"mismatched InResponseTo", "acme", "in_response_to", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.signIn(t, idp, "acme", assertionOpts{NameID: email, Attrs: role, Before: func(r *crewjam.IdpAuthnRequest) {
				r.Request.ID = "id-forged"
				r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-forged"
			}})
		}},
		{"unsolicited response where IdP-initiated is off", "acme", "in_response_to", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			req := idp.idpInitiated(t, spEntityID(env, "acme"), "")
			return b.acs(t, "acme", idp.respond(t, req, assertionOpts{NameID: email, Attrs: role}), "")
		}},
		{"forged InResponseTo where IdP-initiated is on (crewjam X6)", "tiles", "in_response_to", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			req := idp.idpInitiated(t, spEntityID(env, "tiles"), "")
			return b.acs(t, "tiles", idp.respond(t, req, assertionOpts{NameID: email, Attrs: role, Before: func(r *crewjam.IdpAuthnRequest) {
				r.Request.ID = "id-wrong"
				r.Assertion.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-wrong"
			}}), "")
		}},
		{"login CSRF: response for another browser's request", "acme", "in_response_to", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			attacker := newSSOBrowser(env)
			req := attacker.startLogin(t, idp, "acme", "")
			return b.acs(t, "acme", idp.respond(t, req, assertionOpts{NameID: email, Attrs: role}), req.RelayState)
		}},
		{"same response twice in the same browser", "acme", "in_response_to", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			// The first use is legitimate (and is checked to succeed); the
			// second finds its request already answered.
			req := b.startLogin(t, idp, "acme", "")
			resp := idp.respond(t, req, assertionOpts{NameID: "replay@acme.example", Attrs: role})
			if pg := b.acs(t, "acme", resp, req.RelayState); pg.Status != http.StatusSeeOther {
				t.Fatalf("first use: %d %s", pg.Status, pg.Body)
			}
			if err := env.Store.DeleteUser(t.Context(), "acme", mustUserID(t, env, "acme", "replay@acme.example"), 0); err != nil {
				t.Fatal(err)
			}
			return b.acs(t, "acme", resp, req.RelayState)
		}},
		{"malformed base64", "acme", "malformed", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.acs(t, "acme", "%%% not base64 %%%", "")
		}},
		{"malformed XML", "acme", "malformed", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.acs(t, "acme", base64.StdEncoding.EncodeToString([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><unclosed>`)), "")
		}},
		{"artifact binding", "acme", "artifact_binding", func(t *testing.T, b *ssoBrowser, email string) ssoPage {
			return b.postForm(t, "/saml/acme/acs", url.Values{"SAMLart": {"AAQAAMFbLinlXaCM+FIxiDwGOLAy2T71gbpO7ZhNzAgEANlB90ECfpNEVLg="}})
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			email := "mallory" + string(rune('a'+i)) + "@acme.example"
			pg := tc.run(t, newSSOBrowser(env), email)
			if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "Sign-in failed") {
				t.Fatalf("status %d, body %s", pg.Status, pg.Body)
			}
			if pg.Header.Get("Set-Cookie") != "" && strings.Contains(pg.Header.Get("Set-Cookie"), "scimjit_session=") {
				t.Error("a session cookie was set")
			}
			if r := lastRefusal(t, env, tc.ws); r != tc.reason {
				t.Errorf("reason = %q, want %q", r, tc.reason)
			}
			if _, err := env.Store.GetAccountByEmail(t.Context(), email); err == nil {
				t.Errorf("account %s was created", email)
			}
		})
	}
	mustHaveNothing(t, env, "acme", "")
	mustHaveNothing(t, env, "tiles", "")
	// The refusals logged their reason at warn level without the assertion.
	logs := env.Logs.String()
	if !strings.Contains(logs, `"msg":"saml login refused"`) || strings.Contains(logs, "SAMLResponse") ||
		strings.Contains(logs, "<saml:Assertion") || strings.Contains(logs, "PHNhbWxw") {
		t.Errorf("log leaks or misses refusals:\n%s", logs)
	}
}

// signInAt answers a real AuthnRequest with an IdP whose clock is off by d.
func signInAt(t *testing.T, b *ssoBrowser, idp *ssoIdP, d time.Duration, email string) ssoPage {
	req := b.startLogin(t, idp, "acme", "")
	shifted := idp.at(d)
	req.IDP = shifted.idp
	req.Now = shifted.idp.Clock.Now()
	return b.acs(t, "acme", shifted.respond(t, req, assertionOpts{NameID: email}), req.RelayState)
}

func mustUserID(t *testing.T, env *servertest.Env, ws, email string) string {
	t.Helper()
	_, u := membership(t, env, ws, email)
	return u.ID
}

// TestSignedResponseOrSignedAssertionSuffices: Entra signs only the
// assertion by default (idp-clients X7); others sign only the response.
func TestSignedResponseOrSignedAssertionSuffices(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	for _, sign := range []string{"assertion", "response", "both"} {
		email := "signed-" + sign + "@acme.example"
		if pg := newSSOBrowser(env).signIn(t, idp, "acme", assertionOpts{NameID: email, Sign: sign}); pg.Status != http.StatusSeeOther {
			t.Errorf("sign=%s: %d %s", sign, pg.Status, pg.Body)
		}
	}
	// An encrypted assertion (the SP metadata advertises its key) works too.
	idp.sps.encrypt = true
	b := newSSOBrowser(env)
	req := b.startLogin(t, idp, "acme", "")
	raw := idp.responseXML(t, req, assertionOpts{NameID: "encrypted@acme.example"})
	if !strings.Contains(string(raw), "EncryptedAssertion") {
		t.Fatal("the test IdP did not encrypt")
	}
	if pg := b.acs(t, "acme", base64.StdEncoding.EncodeToString(raw), req.RelayState); pg.Status != http.StatusSeeOther {
		t.Errorf("encrypted: %d %s", pg.Status, pg.Body)
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	big := strings.Repeat("A", 3<<20)
	pg := newSSOBrowser(env).acs(t, "acme", big, "")
	if pg.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", pg.Status)
	}
	mustHaveNothing(t, env, "acme", "")
}

// TestRelayStateNeverLeavesTheSite: only local paths are followed, after
// IdP-initiated and SP-initiated logins alike.
func TestRelayStateNeverLeavesTheSite(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "tiles", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowIdPInitiated = true })
	for i, relay := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "/ok/path?x=1"} {
		req := idp.idpInitiated(t, spEntityID(env, "tiles"), relay)
		pg := newSSOBrowser(env).acs(t, "tiles", idp.respond(t, req, assertionOpts{NameID: "tile" + string(rune('a'+i)) + "@acme.example"}), relay)
		want := "/"
		if relay == "/ok/path?x=1" {
			want = relay
		}
		if pg.Status != http.StatusSeeOther || pg.Location != want {
			t.Errorf("relay %q: %d location %q", relay, pg.Status, pg.Location)
		}
	}
	for _, ret := range []string{"https://evil.example/", "//evil.example"} {
		b := newSSOBrowser(env)
		req := b.startLogin(t, idp, "tiles", ret)
		pg := b.acs(t, "tiles", idp.respond(t, req, assertionOpts{NameID: "sp-init@acme.example"}), req.RelayState)
		if pg.Status != http.StatusSeeOther || pg.Location != "/" {
			t.Errorf("return %q: %d location %q", ret, pg.Status, pg.Location)
		}
	}
}

// TestReplayAcrossProcesses: two server processes share one Redis (behind
// a load balancer, same public URL and SP key pair). An assertion accepted
// by one is refused by the other.
func TestReplayAcrossProcesses(t *testing.T) {
	rs := redistest.Start(t)
	public, _ := url.Parse("http://sso.lb.example")
	key, cert := testKeyPair(t, "shared sp")
	start := func() *servertest.Env {
		st, err := redisstore.Open(t.Context(), redisstore.Options{URL: rs.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return servertest.New(t, func(c *server.Config) {
			c.Store = st
			c.BaseURL = public
			c.SAML.Key, c.SAML.Certificate = key, cert
		})
	}
	one, two := start(), start()
	idp := newSSOIdP(t, "https://idp.test")
	idp.sps.rewrite[public.String()] = one.URL
	addWorkspace(t, one, "tiles", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowIdPInitiated = true })

	req := idp.idpInitiated(t, public.String()+"/saml/tiles/metadata", "")
	resp := idp.respond(t, req, assertionOpts{NameID: "once@acme.example"})
	if pg := newSSOBrowser(one).acs(t, "tiles", resp, ""); pg.Status != http.StatusSeeOther {
		t.Fatalf("first process: %d %s", pg.Status, pg.Body)
	}
	pg := newSSOBrowser(two).acs(t, "tiles", resp, "")
	if pg.Status != http.StatusForbidden {
		t.Fatalf("second process accepted the replay: %d %s", pg.Status, pg.Body)
	}
	if r := lastRefusal(t, two, "tiles"); r != "replayed" {
		t.Errorf("reason = %q, want replayed", r)
	}
	// And the first process refuses it as well.
	if pg := newSSOBrowser(one).acs(t, "tiles", resp, ""); pg.Status != http.StatusForbidden {
		t.Errorf("same process replay: %d", pg.Status)
	}
	if _, n, _ := one.Store.ListUsers(t.Context(), "tiles", 0, 10); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}
}
