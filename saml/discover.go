package saml

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/net/idna"

	"github.com/scimjit/scimjit/storage"
)

// Home-realm discovery: the home page asks for an email address, POST
// /find-workspace looks its domain up among the domains workspaces declare
// (settings login.emailDomains, Store.WorkspacesByEmailDomain) and sends
// the browser to that workspace's SP-initiated login; a domain several
// workspaces claim gets a choice page, an unknown one a message that names
// only the domain the person typed.

// domainProfile is IDNA 2008 (UTS #46) lookup processing, as browsers and
// mail systems do it: it lower-cases and maps Unicode, converts to the
// ASCII (punycode) form and checks the DNS length rules. x/net/idna is
// the Go team's implementation; no hand-written label rules.
var domainProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(true),
	idna.VerifyDNSLength(true), idna.Transitional(false))

// NormalizeEmailDomain returns the lower-case ASCII form of an email
// domain ("Bücher.Example" → "xn--bcher-kva.example"), or an error when d
// is not a domain name of at least two labels (wildcards, addresses and
// single labels are refused). Workspace settings and the home page's
// look-up both use it, so they compare the same form.
func NormalizeEmailDomain(d string) (string, error) {
	if strings.Contains(d, "*") {
		return "", errors.New("wildcards are not allowed")
	}
	a, err := domainProfile.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("not a valid domain name")
	}
	if !strings.Contains(a, ".") || strings.HasSuffix(a, ".") {
		return "", errors.New("a domain name needs at least two labels and no trailing dot")
	}
	return a, nil
}

// findPage is the data of find_choice.html.
type findPage struct {
	Domain     string
	Workspaces []findChoice
}

type findChoice struct {
	ID, Name, LoginURL string
}

// handleFind answers POST /find-workspace (form: csrf_token, email,
// return). It is rate-limited per client network like the login route:
// the answer tells which domains have workspaces, so one client must not
// probe many.
func (s *Service) handleFind(c echo.Context) error {
	if err := s.checkCSRF(c); err != nil {
		return s.refuseCSRF(c, err)
	}
	a, err := s.cfg.Store.Allow(c.Request().Context(), storage.Limit{Key: "saml:find:" + loginClient(c.RealIP()),
		Rate: storage.PerMinute(s.cfg.LoginLimit)})
	if err != nil {
		return s.storeFailed(c, "find workspace rate limit", err)
	}
	if !a.OK {
		s.logWarn(c, "find workspace refused: rate limit", "reason", "rate_limited", "per_minute", s.cfg.LoginLimit)
		return s.tooManySignIns(c, a.RetryAfter)
	}
	ret := localPath(c.FormValue("return"))
	email := strings.TrimSpace(c.FormValue("email"))
	at := strings.LastIndexByte(email, '@')
	var domain string
	if at > 0 {
		domain, err = NormalizeEmailDomain(email[at+1:])
	}
	if at <= 0 || err != nil {
		return s.showMessage(c, http.StatusBadRequest, message{Title: "Find your workspace",
			Text: "Enter your work email address, such as name@company.com.", Home: true})
	}
	wss, err := s.cfg.Store.WorkspacesByEmailDomain(c.Request().Context(), domain)
	if err != nil {
		return s.storeFailed(c, "find workspace", err)
	}
	choices := make([]findChoice, len(wss))
	for i, ws := range wss {
		choices[i] = findChoice{ID: ws.ID, Name: ws.Name, LoginURL: loginURL(ws.ID, ret)}
		if choices[i].Name == "" {
			choices[i].Name = ws.ID
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	switch len(choices) {
	case 0:
		// Only the domain the person typed is named; nothing about
		// which other domains have workspaces.
		return s.showMessage(c, http.StatusNotFound, message{Title: "No workspace found",
			Text:   "No workspace here signs in people with " + domain + " email addresses.",
			Detail: "Check the address, or ask your administrator for your workspace's sign-in link.", Home: true})
	case 1:
		return c.Redirect(http.StatusSeeOther, choices[0].LoginURL)
	}
	return s.render(c, http.StatusOK, "find_choice", findPage{Domain: domain, Workspaces: choices})
}

// loginURL is the SP-initiated login of workspace ws, with ret (a local
// path from localPath) as where to land when it is not the home page.
func loginURL(ws, ret string) string {
	u := "/saml/" + ws + "/login"
	if ret != "/" {
		u += "?" + url.Values{"return": {ret}}.Encode()
	}
	return u
}
