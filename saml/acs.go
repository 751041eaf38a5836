package saml

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// replayCache is crewjam's AssertionReplayCache on the store: every
// assertion ID is accepted once across all processes sharing the Redis,
// until the assertion would expire anyway (R16).
type replayCache struct {
	ctx   context.Context
	store storage.Store
	ws    string
}

// Consume records the assertion id; ErrAssertionReplayed when seen before.
func (r replayCache) Consume(id string, expiresAt time.Time) error {
	first, err := r.store.ConsumeOnce(r.ctx, r.ws, "assertion:"+id, expiresAt)
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	if !first {
		return crewjam.ErrAssertionReplayed
	}
	return nil
}

// handleACS is the assertion consumer service (HTTP-POST binding, SAML
// bindings §3.5): it validates the response per R16 with crewjam (signature
// on response or assertion, issuer, destination/recipient, audience, time
// window with the configured skew, InResponseTo against the request tracked
// for this browser, one-time use through the Redis replay cache), then maps
// the attributes and provisions (R1–R7, R12). Every refusal is a plain 403
// page, a warn log with the precise reason (never the assertion) and a
// login.refused event.
func (s *Service) handleACS(c echo.Context) error {
	r := c.Request()
	formErr := r.ParseForm()
	// The tracked request is read (and consumed) while the workspace is
	// loaded: two independent Redis round trips at once. The goroutine is
	// always waited for before returning.
	relay := r.PostForm.Get("RelayState")
	var take chan takeResult
	if formErr == nil && wsPattern.MatchString(c.Param("ws")) && validRelay(relay) {
		take = make(chan takeResult, 1)
		ctx, wsID := r.Context(), c.Param("ws")
		go func() {
			raw, err := s.cfg.Store.TakeTemp(ctx, wsID, "authn:"+relay)
			take <- takeResult{raw, err}
		}()
		defer func() {
			if take != nil {
				<-take
			}
		}()
	}
	ws, ok, err := s.workspace(c)
	if !ok {
		return err
	}
	if formErr != nil {
		var he *echo.HTTPError
		if errors.As(formErr, &he) && he.Code == http.StatusRequestEntityTooLarge {
			return s.refuse(c, ws.ID, http.StatusRequestEntityTooLarge, "body_too_large", formErr, failedPage)
		}
		return s.refuse(c, ws.ID, http.StatusBadRequest, "malformed", fmt.Errorf("parse form: %w", formErr), failedPage)
	}
	switch {
	case r.Form.Get("SAMLart") != "":
		// The artifact binding makes the server call the IdP; with
		// tenant-supplied metadata that is an SSRF vector.
		return s.refuse(c, ws.ID, http.StatusForbidden, "artifact_binding", errors.New("SAMLart (HTTP-Artifact binding) refused"), failedPage)
	case r.Form.Get("SigAlg") != "" || r.Form.Get("Signature") != "":
		return s.refuse(c, ws.ID, http.StatusForbidden, "unsupported_binding", errors.New("HTTP-POST-SimpleSign refused; only HTTP-POST is accepted"), failedPage)
	case r.PostForm.Get("SAMLResponse") == "":
		return s.refuse(c, ws.ID, http.StatusBadRequest, "malformed", errors.New("no SAMLResponse in the form"), failedPage)
	}
	sp, err := s.serviceProvider(ws)
	if err != nil {
		return s.refuse(c, ws.ID, http.StatusForbidden, "idp_not_configured", err, failedPage)
	}
	ctx := r.Context()
	var ids []string
	var ret string
	if take != nil {
		res := <-take
		take = nil
		if ids, ret, err = s.checkTrackedRequest(c, res.raw, res.err); err != nil {
			return err
		}
	}
	if ids == nil {
		// Unsolicited (IdP-initiated) or unknown request: only a local
		// RelayState path is ever followed.
		ret = localPath(relay)
	}
	spc := *sp // shallow copy: the cached SP is shared
	spc.ReplayCache = replayCache{ctx: ctx, store: s.cfg.Store, ws: ws.ID}
	assertion, err := spc.ParseResponse(r, ids)
	if err != nil {
		reason, private := refusalReason(err)
		if errors.Is(private, storage.ErrUnavailable) {
			s.logError(c, "saml acs: store unavailable", "err", private)
			return s.showMessage(c, http.StatusServiceUnavailable, message{Title: "Try again later",
				Text: "Sign-in is temporarily unavailable. Please try again in a moment."})
		}
		return s.refuse(c, ws.ID, http.StatusForbidden, reason, private, failedPage)
	}
	id, err := mapIdentity(assertion)
	if err != nil {
		return s.refuse(c, ws.ID, http.StatusForbidden, "no_email", err, message{Title: "Sign-in failed",
			Text:   "Your identity provider did not send an email address for you, so we cannot tell who you are.",
			Detail: "Ask your administrator to send the workato_email attribute or an email-format NameID."})
	}
	return s.provision(c, ws, id, ret)
}

// takeResult is the outcome of TakeTemp for the tracked request.
type takeResult struct {
	raw []byte
	err error
}

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
	s.event(c, ws, storage.Event{Type: "login.refused", Detail: detail})
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
	if _, err := s.cfg.Store.AppendEvent(c.Request().Context(), ws, e); err != nil {
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
	}
	return "invalid", private
}
