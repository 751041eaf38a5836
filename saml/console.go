package saml

import (
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// What the admin console (package server/console) uses of the browser
// side: the person's session and the CSRF scheme of session.go, so that
// both have one sign-in and one form protection.

// ErrCSRF is CheckCSRF's answer to a POST without a valid CSRF token.
var ErrCSRF = errCSRF

// SignedIn returns the browser's live session whose membership in its
// active workspace still exists and is active (activeSession: a session
// whose membership is gone is ended here). ok is false without one; err
// is only for store failures.
func (s *Service) SignedIn(c echo.Context) (sess storage.Session, ok bool, err error) {
	sess, status, err := s.activeSession(c)
	return sess, status == sessionLive, err
}

// CSRFToken returns the token a form rendered to this browser carries in
// its csrf_token field (see the scheme in session.go).
func (s *Service) CSRFToken(c echo.Context) (string, error) { return s.csrfToken(c) }

// CheckCSRF checks a POST's CSRF token and Origin: nil when valid,
// ErrCSRF when not, another error when the store could not be asked.
func (s *Service) CheckCSRF(c echo.Context) error { return s.checkCSRF(c) }

// Stylesheet is the path of the product's one stylesheet (served by the
// console package), linked by every page of this package.
const Stylesheet = "/static/scimjit.css"
