package saml

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/scimjit/scimjit/storage"
)

// The demo identity provider (demo mode only, DESIGN §6): a form where a
// newcomer types who they are, and a real SAML IdP (crewjam's
// IdentityProvider with a key made at startup) that answers the
// workspace's SP-initiated AuthnRequest with a genuinely signed assertion.
// The flow is the one a real IdP takes: POST /demo/idp stores the typed
// identity briefly and sends the browser to /saml/{ws}/login, which
// redirects with an AuthnRequest to /demo/idp/sso, which posts the signed
// response to the ACS. Nothing here exists unless Config.Demo is set.

// Attribute spellings the demo can send (docs/saml.md has the table).
const (
	spellingOkta      = "okta"
	spellingOktaTyped = "okta-typed"
	spellingEntra     = "entra"
	spellingGoogle    = "google"
)

const demoCookie = "scimjit_demo_idp"

type demoIdP struct {
	s    *Service
	idp  *crewjam.IdentityProvider
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newDemoIdP(s *Service) (*demoIdP, error) {
	key, cert, err := selfSigned("scimjit demo IdP")
	if err != nil {
		return nil, err
	}
	d := &demoIdP{s: s, key: key, cert: cert}
	d.idp = &crewjam.IdentityProvider{
		Key:                     key,
		Certificate:             cert,
		MetadataURL:             s.url("/demo/idp/metadata"),
		SSOURL:                  s.url("/demo/idp/sso"),
		ServiceProviderProvider: demoSPs{s: s},
		SignatureMethod:         dsig.RSASHA256SignatureMethod,
	}
	return d, nil
}

// DemoIdPMetadata returns the demo IdP's SAML metadata, for the demo
// workspaces' IdP settings (storage.IdPSettings.MetadataXML). It fails
// unless the service runs in demo mode.
func (s *Service) DemoIdPMetadata() ([]byte, error) {
	if s.demo == nil {
		return nil, errors.New("saml: the demo IdP exists only in demo mode")
	}
	buf, err := xml.MarshalIndent(s.demo.idp.Metadata(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("saml: marshal demo idp metadata: %w", err)
	}
	return buf, nil
}

// demoSPs lets the demo IdP find a workspace's SP by its entity ID.
type demoSPs struct{ s *Service }

// GetServiceProvider implements crewjam.ServiceProviderProvider.
func (p demoSPs) GetServiceProvider(r *http.Request, entityID string) (*crewjam.EntityDescriptor, error) {
	prefix := p.s.urlString("/saml/")
	rest, ok := strings.CutPrefix(entityID, prefix)
	if !ok {
		return nil, os.ErrNotExist
	}
	wsID, ok := strings.CutSuffix(rest, "/metadata")
	if !ok || !wsPattern.MatchString(wsID) {
		return nil, os.ErrNotExist
	}
	ws, err := p.s.cfg.Store.GetWorkspace(r.Context(), wsID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, os.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	sp, keys, err := p.s.serviceProvider(r.Context(), ws)
	if err != nil {
		return nil, os.ErrNotExist
	}
	return spMetadata(sp, keys), nil
}

// demoLogin is what the form asked the demo IdP to assert.
type demoLogin struct {
	Workspace string `json:"ws"`
	Email     string `json:"email"`
	FullName  string `json:"fullName"`
	Role      string `json:"role"`
	RoleTest  string `json:"roleTest"`
	RoleProd  string `json:"roleProd"`
	Spelling  string `json:"spelling"`
}

type demoForm struct {
	Workspaces []string
	Values     demoLogin
	Error      string
	CSRF       string
}

// workspaces lists the workspaces whose IdP is this demo IdP.
func (d *demoIdP) workspaces(ctx context.Context) ([]string, error) {
	all, err := d.s.cfg.Store.ListWorkspaces(ctx)
	if err != nil {
		return nil, err
	}
	entityID := d.idp.MetadataURL.String()
	var out []string
	for _, ws := range all {
		if ws.Settings.IdP.MetadataXML == "" {
			continue
		}
		ed, err := ParseIdPMetadata(ws.Settings.IdP.MetadataXML, "")
		if err == nil && ed.EntityID == entityID {
			out = append(out, ws.ID)
		}
	}
	return out, nil
}

func (d *demoIdP) handleMetadata(c echo.Context) error {
	buf, err := d.s.DemoIdPMetadata()
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/samlmetadata+xml", append([]byte(xml.Header), buf...))
}

func (d *demoIdP) handleForm(c echo.Context) error {
	wss, err := d.workspaces(c.Request().Context())
	if err != nil {
		return err
	}
	v := demoLogin{Spelling: spellingOkta, Workspace: c.QueryParam("ws")}
	csrf, err := d.s.csrfToken(c)
	if err != nil {
		return d.s.storeFailed(c, "demo idp form", err)
	}
	return d.s.render(c, http.StatusOK, "demo_idp", demoForm{Workspaces: wss, Values: v, CSRF: csrf})
}

func (d *demoIdP) handleSubmit(c echo.Context) error {
	if err := d.s.checkCSRF(c); err != nil {
		return d.s.refuseCSRF(c, err)
	}
	ctx := c.Request().Context()
	v := demoLogin{
		Workspace: c.FormValue("workspace"),
		Email:     strings.TrimSpace(c.FormValue("email")),
		FullName:  strings.TrimSpace(c.FormValue("full_name")),
		Role:      c.FormValue("workato_role"),
		RoleTest:  c.FormValue("workato_role_test"),
		RoleProd:  c.FormValue("workato_role_prod"),
		Spelling:  c.FormValue("spelling"),
	}
	wss, err := d.workspaces(ctx)
	if err != nil {
		return err
	}
	problem := ""
	switch {
	case !contains(wss, v.Workspace):
		problem = "Choose a workspace that uses the demo identity provider."
	case v.Email == "" || len(v.Email) > 254:
		problem = "Type an email address."
	case v.Spelling != spellingOkta && v.Spelling != spellingOktaTyped && v.Spelling != spellingEntra && v.Spelling != spellingGoogle:
		problem = "Choose an attribute spelling."
	}
	if problem != "" {
		csrf, err := d.s.csrfToken(c)
		if err != nil {
			return d.s.storeFailed(c, "demo idp form", err)
		}
		return d.s.render(c, http.StatusBadRequest, "demo_idp", demoForm{Workspaces: wss, Values: v, Error: problem, CSRF: csrf})
	}
	key := randomToken(24)
	raw, _ := json.Marshal(v)
	if err := d.s.cfg.Store.PutTemp(ctx, v.Workspace, "demoidp:"+key, raw, requestTTL); err != nil {
		return fmt.Errorf("store demo login: %w", err)
	}
	c.SetCookie(&http.Cookie{Name: demoCookie, Value: v.Workspace + "." + key, Path: d.s.cfg.BaseURL.Path + "/demo/idp",
		MaxAge: int(requestTTL / time.Second), HttpOnly: true, Secure: d.s.secureCookies(), SameSite: http.SameSiteLaxMode})
	// Start exactly as a person would: at the workspace's SP login.
	return c.Redirect(http.StatusSeeOther, "/saml/"+v.Workspace+"/login?return=/")
}

// handleSSO answers the SP's AuthnRequest (HTTP-Redirect) with a signed
// response for the identity typed into the form, auto-posted to the ACS.
func (d *demoIdP) handleSSO(c echo.Context) error {
	r := c.Request()
	req, err := crewjam.NewIdpAuthnRequest(d.idp, r)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		d.s.logWarn(c, "demo idp: bad authn request", "err", err)
		return d.s.showMessage(c, http.StatusBadRequest, message{Title: "Demo IdP", Text: "This sign-in request is not valid.",
			Link: "/demo/idp", LinkText: "Start again"})
	}
	ck, err := c.Cookie(demoCookie)
	var v demoLogin
	if err == nil {
		if ws, key, ok := strings.Cut(ck.Value, "."); ok && wsPattern.MatchString(ws) {
			raw, err := d.s.cfg.Store.TakeTemp(r.Context(), ws, "demoidp:"+key)
			if err == nil {
				_ = json.Unmarshal(raw, &v)
			} else if !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("load demo login: %w", err)
			}
		}
	}
	if v.Email == "" || req.ServiceProviderMetadata.EntityID != d.s.urlString("/saml/"+v.Workspace+"/metadata") {
		// Someone started at /saml/{ws}/login directly: ask who they are.
		ws := ""
		if rest, ok := strings.CutPrefix(req.ServiceProviderMetadata.EntityID, d.s.urlString("/saml/")); ok {
			ws, _ = strings.CutSuffix(rest, "/metadata")
		}
		return c.Redirect(http.StatusSeeOther, "/demo/idp?ws="+ws)
	}
	now := time.Now()
	sess := &crewjam.Session{
		ID: randomToken(16), CreateTime: now, ExpireTime: now.Add(time.Hour), Index: randomToken(16),
		NameID: v.Email, NameIDFormat: string(crewjam.EmailAddressNameIDFormat),
		CustomAttributes: demoAttributes(v),
	}
	if err := (crewjam.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		return fmt.Errorf("demo idp: make assertion: %w", err)
	}
	form, err := req.PostBinding()
	if err != nil {
		return fmt.Errorf("demo idp: sign response: %w", err)
	}
	nonce := randomToken(16)
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	var sb strings.Builder
	if err := autoPostTemplate.Execute(&sb, struct {
		crewjam.IdpAuthnRequestForm
		Nonce string
	}{form, nonce}); err != nil {
		return err
	}
	return c.HTML(http.StatusOK, sb.String())
}

var autoPostTemplate = template.Must(template.New("post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in · scimjit demo IdP</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto">
<p>The demo identity provider signed an assertion for you. Continue to the workspace:</p>
<form method="post" action="{{.URL}}" id="saml-post">
<input type="hidden" name="SAMLResponse" value="{{.SAMLResponse}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
<button type="submit" id="continue">Continue</button>
</form>
<script nonce="{{.Nonce}}">document.getElementById('saml-post').submit();</script>
</body></html>`))

// demoAttributes spells the form's values the way the chosen IdP sends
// them (see docs/saml.md); empty values are left out so the defaults of
// R3/R4 show.
func demoAttributes(v demoLogin) []crewjam.Attribute {
	name := func(n string) string {
		switch v.Spelling {
		case spellingOktaTyped:
			return "appuser." + n
		case spellingEntra:
			return "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/" + n
		}
		return n
	}
	var out []crewjam.Attribute
	add := func(n, val string) {
		if val == "" {
			return
		}
		out = append(out, crewjam.Attribute{Name: n, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
			Values: []crewjam.AttributeValue{{Type: "xs:string", Value: val}}})
	}
	add(name(attrEmail), v.Email)
	switch v.Spelling {
	case spellingEntra:
		add("http://schemas.microsoft.com/identity/claims/displayname", v.FullName)
	case spellingGoogle:
		given, family := splitName(identity{FullName: v.FullName})
		add("first_name", given)
		add("last_name", family)
	default:
		add(name(attrFullName), v.FullName)
	}
	add(name(attrRoleDev), v.Role)
	add(name(attrRoleTest), v.RoleTest)
	add(name(attrRoleProd), v.RoleProd)
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
