package saml

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	crewjam "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// Single Logout (SAML profiles §4.4) with a workspace's IdP, where its
// metadata lists a SingleLogoutService. crewjam builds, signs and
// validates the messages; scimjit tracks the requests it sent and finds
// the sessions an IdP's request names.
//
//   - SP-initiated: POST /logout ends the session here, then sends the
//     browser to the IdP with a signed LogoutRequest naming the session's
//     NameID and SessionIndex (storage.IdPSession). The IdP answers at
//     /saml/{ws}/slo with a LogoutResponse, checked like a login response
//     (signature, issuer, destination, InResponseTo of a request this
//     server sent), and the person sees the signed-out page.
//   - IdP-initiated: the IdP sends a signed LogoutRequest to
//     /saml/{ws}/slo; the sessions it names by SessionIndex end (and the
//     browser's own session when it is that person's), and the IdP gets a
//     signed LogoutResponse.
//
// Without an SLO endpoint in the metadata, /logout only ends the local
// session and sessions keep no IdP data.

// Temp keys of the workspace (Store.PutTemp) used by Single Logout.
const (
	// sloRequestPrefix + RelayState tracks a LogoutRequest sent to the
	// IdP (value: sloRequestV1) for requestTTL.
	sloRequestPrefix = "slo-req:"
	sloRequestV1     = 1
	// sloIndexPrefix + idpSessionHash(NameID, SessionIndex) holds the key
	// of the session that sign-in started, for SessionTTL, so that an
	// IdP's LogoutRequest can find it (sessions are keyed by a cookie
	// hash, so nothing else leads from the IdP's session to ours).
	sloIndexPrefix = "slo-ix:"
)

// logoutRequestID is the ID of the LogoutRequest sent with RelayState
// relay, derived from it as authnRequestID is.
func logoutRequestID(relay string) string { return "id-" + relay }

// idpSessionHash names an IdP session (NameID, SessionIndex) without
// keeping the NameID, often an email, in a key.
func idpSessionHash(nameID, sessionIndex string) string {
	return hashToken(nameID + "\x00" + sessionIndex)
}

// sloEndpoint returns the IdP's SingleLogoutService: HTTP-Redirect when
// offered, else HTTP-POST (SAML bindings §3.4, §3.5); "" when the
// metadata has none with an http(s) URL.
func sloEndpoint(sp *crewjam.ServiceProvider) (binding string, loc *url.URL) {
	for _, b := range []string{crewjam.HTTPRedirectBinding, crewjam.HTTPPostBinding} {
		if u := httpURL(sp.GetSLOBindingLocation(b)); u != nil {
			return b, u
		}
	}
	return "", nil
}

// httpURL parses an endpoint location from IdP metadata; nil unless it is
// an absolute http(s) URL.
func httpURL(s string) *url.URL {
	u, err := url.Parse(s)
	if s == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil
	}
	return u
}

// idpSessionOf is what a LogoutRequest will need of an accepted assertion:
// zero when the IdP has no SLO endpoint, so that sessions stay small.
func idpSessionOf(sp *crewjam.ServiceProvider, ws string, a *crewjam.Assertion) storage.IdPSession {
	if _, loc := sloEndpoint(sp); loc == nil || a.Subject == nil || a.Subject.NameID == nil {
		return storage.IdPSession{}
	}
	st := storage.IdPSession{Workspace: ws, NameID: a.Subject.NameID.Value, NameIDFormat: a.Subject.NameID.Format}
	for _, as := range a.AuthnStatements {
		if as.SessionIndex != "" {
			st.SessionIndex = as.SessionIndex
			break
		}
	}
	return st
}

// indexIdPSession records which session the IdP session of sess started,
// for IdP-initiated logout. A failure only costs that: the sign-in goes on.
func (s *Service) indexIdPSession(c echo.Context, sess storage.Session) {
	st := sess.IdP
	if st.NameID == "" || st.SessionIndex == "" {
		return
	}
	err := s.cfg.Store.PutTemp(c.Request().Context(), st.Workspace, sloIndexPrefix+idpSessionHash(st.NameID, st.SessionIndex),
		[]byte(sess.Key), s.cfg.SessionTTL)
	if err != nil {
		s.logWarn(c, "slo: index the idp session", "err", err)
	}
}

// signedOutPage ends every sign-out.
var signedOutPage = message{Title: "You have been signed out",
	Text: "You are signed out of scimjit and of your identity provider.", Link: "/", LinkText: "Home"}

// sloFailedPage answers a logout message that was refused.
var sloFailedPage = message{Title: "Sign-out not confirmed",
	Text: "You are signed out of scimjit, but the message from your identity provider could not be verified. " +
		"Close your browser to make sure your identity provider's session ends too."}

// handleLogout ends the session (POST with CSRF token). When the session
// came from an IdP that offers Single Logout, the browser goes on to the
// IdP with a LogoutRequest; otherwise, or when that request cannot be
// made, it goes home.
func (s *Service) handleLogout(c echo.Context) error {
	if err := s.checkCSRF(c); err != nil {
		return s.refuseCSRF(c, err)
	}
	sess, ok, err := s.currentSession(c)
	if err != nil {
		return s.storeFailed(c, "logout", err)
	}
	if err := s.endSession(c); err != nil {
		return err
	}
	if ok && sess.IdP.NameID != "" {
		sent, err := s.sendLogoutRequest(c, sess.IdP)
		if sent || err != nil {
			return err
		}
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

// sendLogoutRequest sends the browser to the IdP of st with a signed
// LogoutRequest, tracked under a new RelayState. sent is false (nothing
// written) when the IdP no longer offers SLO or the request could not be
// tracked: the local session has ended either way.
func (s *Service) sendLogoutRequest(c echo.Context, st storage.IdPSession) (sent bool, err error) {
	ctx := c.Request().Context()
	ws, err := s.cfg.Store.GetWorkspace(ctx, st.Workspace)
	if err != nil {
		s.logWarn(c, "slo: no logout request: workspace", "idp_workspace", st.Workspace, "err", err)
		return false, nil
	}
	sp, _, err := s.serviceProvider(ctx, ws)
	if err != nil {
		s.logWarn(c, "slo: no logout request: service provider", "idp_workspace", st.Workspace, "err", err)
		return false, nil
	}
	binding, loc := sloEndpoint(sp)
	if loc == nil {
		return false, nil
	}
	relay := randomToken(relayBytes)
	if err := s.cfg.Store.PutTemp(ctx, ws.ID, sloRequestPrefix+relay, []byte{sloRequestV1}, requestTTL); err != nil {
		s.logWarn(c, "slo: no logout request: track it", "idp_workspace", st.Workspace, "err", err)
		return false, nil
	}
	lr, err := sp.MakeLogoutRequest(loc.String(), st.NameID, crewjam.WithSessionIndex(st.SessionIndex),
		func(r *crewjam.LogoutRequest) {
			r.ID = logoutRequestID(relay)
			if r.NameID != nil && st.NameIDFormat != "" {
				r.NameID.Format = st.NameIDFormat // as the IdP sent it (saml-core §3.7.1)
			}
		})
	if err != nil {
		return false, fmt.Errorf("make logout request: %w", err)
	}
	s.logInfo(c, "slo: logout request sent", "idp_workspace", ws.ID, "binding", binding)
	if binding == crewjam.HTTPPostBinding {
		return true, s.autoPost(c, loc, "Signing out", func(nonce string) []byte { return lr.PostWithNonce(relay, nonce) })
	}
	u, err := sp.RedirectLogoutRequestURL(lr, relay)
	if err != nil {
		return false, fmt.Errorf("redirect logout request: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return true, c.Redirect(http.StatusFound, u.String())
}

// handleSLO is the SP's SingleLogoutService (HTTP-Redirect and HTTP-POST
// bindings): a LogoutResponse to a request this server sent, or an IdP's
// LogoutRequest.
func (s *Service) handleSLO(c echo.Context) error {
	ws, ok, err := s.workspace(c)
	if !ok {
		return err
	}
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return s.refuseLogout(c, ws.ID, http.StatusBadRequest, "malformed", fmt.Errorf("parse form: %w", err))
	}
	sp, _, err := s.serviceProvider(r.Context(), ws)
	if err != nil {
		return s.refuseLogout(c, ws.ID, http.StatusNotFound, "idp_not_configured", err)
	}
	switch {
	case r.Form.Get("SAMLResponse") != "":
		return s.receiveLogoutResponse(c, ws, sp)
	case r.Form.Get("SAMLRequest") != "":
		return s.receiveLogoutRequest(c, ws, sp)
	}
	return s.refuseLogout(c, ws.ID, http.StatusBadRequest, "malformed", errors.New("neither SAMLRequest nor SAMLResponse"))
}

// receiveLogoutResponse checks the IdP's answer to a LogoutRequest of
// ours (crewjam: signature by the IdP, issuer, destination, status
// Success, InResponseTo the request tracked under its RelayState, taken
// once) and shows the signed-out page.
func (s *Service) receiveLogoutResponse(c echo.Context, ws storage.Workspace, sp *crewjam.ServiceProvider) error {
	r := c.Request()
	var ids []string
	if relay := r.Form.Get("RelayState"); validRelay(relay) {
		_, err := s.cfg.Store.TakeTemp(r.Context(), ws.ID, sloRequestPrefix+relay)
		switch {
		case err == nil:
			ids = []string{logoutRequestID(relay)}
		case !errors.Is(err, storage.ErrNotFound):
			return s.storeFailed(c, "take logout request", err)
		}
	}
	if _, err := sp.ParseLogoutResponse(r, ids); err != nil {
		reason, private := refusalReason(err)
		return s.refuseLogout(c, ws.ID, http.StatusForbidden, reason, private)
	}
	s.logInfo(c, "slo: logout completed at the idp")
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.showMessage(c, http.StatusOK, signedOutPage)
}

// receiveLogoutRequest handles an IdP-initiated logout: the request is
// checked by crewjam (signature by the IdP, issuer, destination, time)
// and accepted once (its ID consumed in the store, as assertion IDs are);
// the sessions its SessionIndexes name for its NameID end, and so does
// this browser's session when it is that person's from this workspace's
// IdP. The IdP gets a signed LogoutResponse, Success, with the
// second-level status PartialLogout when the request named no
// SessionIndex and so other browsers' sessions could not be found.
func (s *Service) receiveLogoutRequest(c echo.Context, ws storage.Workspace, sp *crewjam.ServiceProvider) error {
	ctx := c.Request().Context()
	spc := *sp // shallow copy: the cached SP is shared
	replay := &noteReplay{}
	spc.ReplayCache = replay
	lr, err := spc.ValidateLogoutRequest(c.Request())
	if err == nil && (lr.NameID == nil || !replay.called) {
		err = errors.New("logout request without NameID or not checked for replay")
	}
	if err != nil {
		reason, private := refusalReason(err)
		return s.refuseLogout(c, ws.ID, http.StatusForbidden, reason, private)
	}
	first, err := s.cfg.Store.ConsumeOnce(ctx, ws.ID, "slo-in:"+replay.id, replay.expiresAt)
	if err != nil {
		return s.storeFailed(c, "consume logout request", err)
	}
	if !first {
		return s.refuseLogout(c, ws.ID, http.StatusForbidden, "replayed", fmt.Errorf("logout request %q: %w", lr.ID, crewjam.ErrAssertionReplayed))
	}
	nameID := lr.NameID.Value
	ended := 0
	indexes := lr.AllSessionIndexes()
	for _, ix := range indexes {
		key, err := s.cfg.Store.TakeTemp(ctx, ws.ID, sloIndexPrefix+idpSessionHash(nameID, ix.Value))
		if errors.Is(err, storage.ErrNotFound) {
			continue // expired, or signed out already
		}
		if err == nil {
			err = s.cfg.Store.DeleteSession(ctx, string(key))
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return s.storeFailed(c, "end session", err)
		}
		ended++
	}
	sess, ok, err := s.currentSession(c)
	if err != nil {
		// The sessions named by SessionIndex have ended; answer the IdP.
		s.logWarn(c, "slo: read this browser's session", "err", err)
	}
	if ok && sess.IdP.Workspace == ws.ID && sess.IdP.NameID == nameID {
		if err := s.endSession(c); err != nil {
			return err
		}
		ended++
	}
	status := crewjam.Status{StatusCode: crewjam.StatusCode{Value: crewjam.StatusSuccess}}
	if len(indexes) == 0 {
		status.StatusCode.StatusCode = &crewjam.StatusCode{Value: crewjam.StatusPartialLogout}
	}
	s.logInfo(c, "slo: idp-initiated logout", "sessions_ended", ended, "session_indexes", len(indexes))
	relay := c.Request().Form.Get("RelayState")
	binding, loc := sloEndpoint(sp)
	switch binding {
	case crewjam.HTTPRedirectBinding:
		u, err := sp.MakeRedirectLogoutResponseWithStatus(lr.ID, relay, status)
		if err != nil {
			return fmt.Errorf("make logout response: %w", err)
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusFound, u.String())
	case crewjam.HTTPPostBinding:
		resp, err := sp.MakeLogoutResponseWithStatus(loc.String(), lr.ID, status)
		if err != nil {
			return fmt.Errorf("make logout response: %w", err)
		}
		return s.autoPost(c, loc, "Signing out", func(nonce string) []byte { return resp.PostWithNonce(relay, nonce) })
	}
	// An IdP without an SLO endpoint of its own gets no answer.
	return s.showMessage(c, http.StatusOK, signedOutPage)
}

// refuseLogout answers a refused logout message: the page, a warn log with
// the reason and cause, and a login.slo_refused event (counted with the
// sign-in events, which anyone can cause).
func (s *Service) refuseLogout(c echo.Context, ws string, status int, reason string, cause error) error {
	s.logWarn(c, "saml logout refused", "reason", reason, "err", cause)
	s.event(c, ws, storage.Event{Type: "login.slo_refused", Detail: map[string]string{"reason": reason}})
	return s.showMessage(c, status, sloFailedPage)
}

// autoPost answers with a page whose form (made by form, given the
// script nonce) posts itself to the IdP at to. The CSP lets only this
// page's script run and only that IdP receive the form.
func (s *Service) autoPost(c echo.Context, to *url.URL, title string, form func(nonce string) []byte) error {
	nonce := randomToken(16)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+
		"'; form-action "+to.Scheme+"://"+to.Host+"; frame-ancestors 'none'")
	body := append([]byte(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>`+title+`</title></head><body>`),
		form(nonce)...)
	return c.HTMLBlob(http.StatusOK, append(body, "</body></html>"...))
}
