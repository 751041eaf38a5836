package saml

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// The pages, logs and events of a sign-in that does not succeed, shared by
// the ACS (acs.go), JIT (jit.go) and the join flow (join.go).

// failedPage is the plain page for every validation failure.
var failedPage = message{Title: "Sign-in failed",
	Text: "We could not sign you in. Please start again from your company's sign-in page or contact your administrator."}

// refuse answers a refused sign-in: the page, a warn log with the reason and
// cause, and a login.refused event (detail: reason plus extra pairs).
func (s *Service) refuse(c echo.Context, ws string, status int, reason string, cause error, page message, extra ...string) error {
	args := []any{"reason", reason}
	if cause != nil {
		args = append(args, "err", cause)
	}
	s.logWarn(c, "saml login refused", args...)
	detail := map[string]string{"reason": reason}
	for i := 0; i+1 < len(extra); i += 2 {
		detail[extra[i]] = extra[i+1]
	}
	s.event(c, ws, storage.Event{Type: "login.refused", Detail: withReceived(c, detail)})
	return s.showMessage(c, status, page)
}

// event appends e to the workspace stream; a failure is logged, not fatal
// to the person's request.
func (s *Service) event(c echo.Context, ws string, e storage.Event) {
	if e.Actor == "" {
		e.Actor = "saml"
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	// ErrNotFound: no such workspace (a refusal before it was loaded).
	if _, err := s.cfg.Store.AppendEvents(c.Request().Context(), ws, e); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.logError(c, "append event", "type", e.Type, "err", err)
	}
}

// refusalReason maps a ParseResponse error to a short reason for the event
// and the private cause for the log.
func refusalReason(err error) (string, error) {
	private := err
	var ire *crewjam.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		private = ire.PrivateErr
	}
	var bad crewjam.ErrBadStatus
	switch {
	case errors.Is(private, crewjam.ErrUnsupported) && strings.Contains(private.Error(), "SHA-1"):
		// crewjam's errSHA1Algorithm is unexported; it matches
		// ErrUnsupported (and ErrInvalidSignature) and names SHA-1.
		return "sha1_signature", private
	case errors.Is(private, crewjam.ErrAssertionReplayed):
		return "replayed", private
	case errors.Is(private, crewjam.ErrExpired):
		return "expired", private
	case errors.Is(private, crewjam.ErrNotYetValid):
		return "not_yet_valid", private
	case errors.Is(private, crewjam.ErrAudienceMismatch):
		return "audience", private
	case errors.Is(private, crewjam.ErrDestinationMismatch):
		return "destination", private
	case errors.Is(private, crewjam.ErrRequestIDMismatch):
		return "in_response_to", private
	case errors.Is(private, crewjam.ErrIssuerMismatch):
		return "issuer", private
	case errors.Is(private, crewjam.ErrInvalidSignature), errors.Is(private, crewjam.ErrUntrustedCertificate),
		errors.Is(private, crewjam.ErrCertificateNotValidNow):
		return "signature", private
	case errors.Is(private, crewjam.ErrDecryptionFailed):
		return "decryption", private
	case errors.Is(private, crewjam.ErrMalformedMessage):
		return "malformed", private
	case errors.Is(private, crewjam.ErrMissingElement):
		return "missing_element", private
	case errors.Is(private, crewjam.ErrUnsupported):
		return "unsupported", private
	case errors.As(private, &bad):
		return "idp_status", private
	case strings.Contains(private.Error(), "signature element not present"):
		// crewjam's errSignatureElementNotPresent is unexported and not
		// classified: neither the Response nor the Assertion is signed.
		return "unsigned", private
	case strings.HasPrefix(private.Error(), "cannot validate signature"):
		// An HTTP-Redirect query signature (logout messages) that does not
		// verify: crewjam does not classify it.
		return "signature", private
	}
	return "invalid", private
}

// refuseNoAccess is the page for a person without a membership where JIT
// is off.
func (s *Service) refuseNoAccess(c echo.Context, ws storage.Workspace, id identity) error {
	return s.refuse(c, ws.ID, http.StatusForbidden, "no_access", nil, message{Title: "No access",
		Text:   fmt.Sprintf("You have not been given access to this workspace (%s).", wsName(ws)),
		Detail: "Ask your administrator to assign you to it."},
		"email", id.Email)
}

// retryAfterSeconds is the Retry-After of a page answered while the store
// could not be reached.
const retryAfterSeconds = "5"

// storeFailed answers a store error during a sign-in or a join: the store
// unreachable, or its answer lost (the write may or may not have happened),
// is a 503 page (ErrorPage) with Retry-After that asks the person to try
// again (every write of these flows is safe to repeat); anything else is an internal
// error (500, logged by the server's error handler).
func (s *Service) storeFailed(c echo.Context, what string, err error) error {
	if !errors.Is(err, storage.ErrUnavailable) {
		return fmt.Errorf("%s: %w", what, err)
	}
	s.logError(c, "store unavailable", "step", what, "err", err)
	c.Response().Header().Set("Retry-After", retryAfterSeconds)
	return s.ErrorPage(c, http.StatusServiceUnavailable, reqctx.Workspace(c.Request().Context()))
}
