package saml

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// Cookie names.
const (
	// sessionCookie carries the session secret. Only its SHA-256 (hex) is
	// the store key, so a leaked store dump does not hand out sessions.
	sessionCookie = "scimjit_session"
	// csrfCookie binds CSRF tokens to a browser that has no session yet
	// (the demo IdP form, a join link opened in a fresh browser).
	csrfCookie = "scimjit_csrf"
	// csrfField is the form field (and csrfHeader the header) that carries
	// the CSRF token on POSTs.
	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
)

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go ≥1.24
		// crashes the program instead of returning an error).
		panic(fmt.Errorf("saml: crypto/rand: %w", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is the store key for a cookie secret: hex SHA-256.
func hashToken(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// secureCookies reports whether cookies get the Secure attribute: when the
// public base URL is https.
func (s *Service) secureCookies() bool {
	return s.cfg.BaseURL != nil && s.cfg.BaseURL.Scheme == "https"
}

// startSession signs the browser in: it creates a server-side session for
// accountID with workspaceID active (key = hex SHA-256 of a 256-bit random
// cookie value) and the IdP session idp (zero when there is none, see
// slo.go) together with the events of the sign-in (of workspaceID;
// store.StartSession), then replaceSession.
func (s *Service) startSession(c echo.Context, accountID, workspaceID string, idp storage.IdPSession, events ...storage.Event) error {
	secret, sess := s.newSession(accountID, workspaceID, idp)
	if err := s.cfg.Store.StartSession(c.Request().Context(), sess, events...); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	s.indexIdPSession(c, sess)
	return s.replaceSession(c, secret)
}

// replaceSession hands the browser the session of secret, already stored
// (a new secret on every sign-in: no session fixation): it sets the
// cookie HttpOnly, SameSite=Lax, Path=/, Secure when BaseURL is https,
// with Max-Age = SessionTTL, and deletes the session the browser had
// before. That delete is tidying up: when the store fails it, the sign-in
// goes on (the old session lapses at its expiry), since failing the
// sign-in after the delete may have happened would leave the browser with
// neither session.
func (s *Service) replaceSession(c echo.Context, secret string) error {
	if old, err := c.Cookie(sessionCookie); err == nil && old.Value != "" && old.Value != secret {
		if err := s.deleteSession(c.Request().Context(), old.Value); err != nil {
			s.logWarn(c, "delete the previous session", "err", err)
		}
	}
	s.setSessionCookie(c, secret)
	return nil
}

// newSession returns a new cookie secret (256 random bits) and the
// session record stored under its hash.
func (s *Service) newSession(accountID, workspaceID string, idp storage.IdPSession) (secret string, sess storage.Session) {
	secret = randomToken(32)
	now := time.Now()
	return secret, storage.Session{
		Key:             hashToken(secret),
		AccountID:       accountID,
		ActiveWorkspace: workspaceID,
		CreatedAt:       now,
		ExpiresAt:       now.Add(s.cfg.SessionTTL),
		IdP:             idp,
	}
}

// deleteSession deletes the session of a cookie secret; a session that is
// already gone is not an error.
func (s *Service) deleteSession(ctx context.Context, secret string) error {
	err := s.cfg.Store.DeleteSession(ctx, hashToken(secret))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// setSessionCookie sets the session cookie of secret.
func (s *Service) setSessionCookie(c echo.Context, secret string) {
	c.SetCookie(&http.Cookie{
		Name:     sessionCookie,
		Value:    secret,
		Path:     "/",
		MaxAge:   int(s.cfg.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   s.secureCookies(),
		SameSite: http.SameSiteLaxMode,
	})
}

// currentSession returns the browser's live session. ok is false (with a nil
// error) when there is no cookie or the session is unknown or expired; err is
// only for store failures.
func (s *Service) currentSession(c echo.Context) (storage.Session, bool, error) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return storage.Session{}, false, nil
	}
	sess, err := s.cfg.Store.GetSession(c.Request().Context(), hashToken(ck.Value))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, false, nil
	}
	if err != nil {
		return storage.Session{}, false, fmt.Errorf("get session: %w", err)
	}
	return sess, true, nil
}

// sessionStatus is what activeSession found.
type sessionStatus int

const (
	// noSession: no cookie, or an unknown or expired session.
	noSession sessionStatus = iota
	// sessionLive: signed in, and the membership is active.
	sessionLive
	// sessionEnded: the session was ended just now because its membership
	// is no longer active.
	sessionEnded
)

// activeSession returns the browser's live session after checking, with
// one store read, that its account's membership in the session's active
// workspace still exists and is active. When SCIM or an admin deleted or
// deactivated it since the sign-in, the session is ended here (deleted,
// cookie expired) and the status is sessionEnded, so that the caller can
// tell the person. Every page that acts for the signed-in person uses it;
// only the CSRF binding (and so logout) reads the session without it.
func (s *Service) activeSession(c echo.Context) (storage.Session, sessionStatus, error) {
	sess, ok, err := s.currentSession(c)
	if err != nil || !ok {
		return storage.Session{}, noSession, err
	}
	u, err := s.cfg.Store.GetUserByAccount(c.Request().Context(), sess.ActiveWorkspace, sess.AccountID)
	reason := "deleted"
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return storage.Session{}, noSession, fmt.Errorf("session membership: %w", err)
	case !u.Active:
		reason = "deactivated"
	default:
		return sess, sessionLive, nil
	}
	s.logInfo(c, "session ended: membership no longer active", "account", sess.AccountID,
		"active_workspace", sess.ActiveWorkspace, "reason", reason)
	if err := s.endSession(c); err != nil {
		return storage.Session{}, noSession, err
	}
	return storage.Session{}, sessionEnded, nil
}

// sessionEndedPage tells a person whose session activeSession ended why
// they are signed out.
var sessionEndedPage = message{Title: "You have been signed out",
	Text: "Your access to this workspace was removed or deactivated by your organisation, so your session has ended.",
	Link: "/", LinkText: "Home"}

// endSession deletes the browser's session (if any) and expires the cookie.
func (s *Service) endSession(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil && ck.Value != "" {
		if err := s.cfg.Store.DeleteSession(c.Request().Context(), hashToken(ck.Value)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("delete session: %w", err)
		}
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
	return nil
}

// CSRF protection for the service's POST forms (logout, join confirm,
// switch, demo IdP).
//
// Scheme: a token bound to the browser and signed by the server (the
// "HMAC-based token" pattern of the OWASP CSRF cheat sheet). The binding is
// the session's store key when the browser is signed in, else the value of
// a random pre-session cookie (scimjit_csrf, HttpOnly, SameSite=Lax) that
// csrfToken sets on first use. The token is
// base64url(HMAC-SHA256(csrfKey, "csrf\x00" + binding)); csrfKey is derived
// from the current SP private key, which every process shares, so each
// accepts the others' tokens; a token made with the next or previous key
// is accepted too, so a key rotation breaks no form (keyring).
// A page rendered before sign-in therefore stops validating after sign-in
// (the binding changes): render a fresh page. checkCSRF also refuses a POST
// whose Origin header names another origin than BaseURL.
//
// Use: put {{.CSRF}} (from s.csrfToken(c)) into a hidden input named
// "csrf_token" and call s.checkCSRF(c) first thing in the POST handler;
// on false answer 403 (see s.forbidden).

// csrfBinding returns the value the token is bound to, creating the
// pre-session cookie when create is true and the browser has neither.
func (s *Service) csrfBinding(c echo.Context, create bool) (string, error) {
	sess, ok, err := s.currentSession(c)
	if err != nil {
		return "", err
	}
	if ok {
		return "s:" + sess.Key, nil
	}
	if ck, err := c.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		return "c:" + hashToken(ck.Value), nil
	}
	if !create {
		return "", nil
	}
	v := randomToken(32)
	c.SetCookie(&http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
	// Make the new cookie visible to a later csrfBinding in this request.
	c.Request().AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return "c:" + hashToken(v), nil
}

func csrfMAC(key []byte, binding string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("csrf\x00"))
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfToken returns the CSRF token for forms rendered to this browser (see
// the scheme above). Its error is the store's, when it could not tell
// whether the browser is signed in or could not read the SP keys.
func (s *Service) csrfToken(c echo.Context) (string, error) {
	b, err := s.csrfBinding(c, true)
	if err != nil {
		return "", fmt.Errorf("csrf token: %w", err)
	}
	keys, err := s.keys(c.Request().Context())
	if err != nil {
		return "", fmt.Errorf("csrf token: %w", err)
	}
	return csrfMAC(keys.csrfKeys[0], b), nil
}

// errCSRF: a POST without a valid CSRF token for this browser.
var errCSRF = errors.New("missing or invalid csrf token")

// checkCSRF checks that the POST carries a valid CSRF token for this
// browser (form field csrf_token or header X-CSRF-Token) and, when the
// browser sent an Origin header, that it is the service's own origin. It
// returns errCSRF when not, or the store's error when it could not tell;
// refuseCSRF answers either.
func (s *Service) checkCSRF(c echo.Context) error {
	r := c.Request()
	if o := r.Header.Get("Origin"); o != "" && s.cfg.BaseURL != nil {
		if !strings.EqualFold(o, s.cfg.BaseURL.Scheme+"://"+s.cfg.BaseURL.Host) {
			return errCSRF
		}
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = c.FormValue(csrfField)
	}
	if got == "" {
		return errCSRF
	}
	b, err := s.csrfBinding(c, false)
	if err != nil {
		return fmt.Errorf("csrf check: %w", err)
	}
	if b == "" {
		return errCSRF
	}
	keys, err := s.keys(r.Context())
	if err != nil {
		return fmt.Errorf("csrf check: %w", err)
	}
	for _, k := range keys.csrfKeys {
		if subtle.ConstantTimeCompare([]byte(got), []byte(csrfMAC(k, b))) == 1 {
			return nil
		}
	}
	return errCSRF
}

// refuseCSRF answers a failed checkCSRF: the refusal page for a bad token,
// the try-again page when the store could not be asked.
func (s *Service) refuseCSRF(c echo.Context, err error) error {
	if errors.Is(err, errCSRF) {
		return s.forbidden(c)
	}
	return s.storeFailed(c, "csrf", err)
}

// sessionAccount loads the signed-in account; ok is false without a live
// session or when the account is gone.
func (s *Service) sessionAccount(ctx context.Context, sess storage.Session) (storage.Account, bool, error) {
	acct, err := s.cfg.Store.GetAccount(ctx, sess.AccountID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Account{}, false, nil
	}
	if err != nil {
		return storage.Account{}, false, err
	}
	return acct, true, nil
}
