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

// deferredReplay is the ServiceProvider's AssertionReplayCache during an
// ACS request: it only notes the assertion ID and expiry that crewjam asks
// to consume, and handleACS then consumes it in the store (R16: accepted
// once across all processes sharing the Redis, until the assertion would
// expire anyway) before acting on the sign-in. crewjam calls Consume as
// the very last step of ParseResponse, after every other check, so
// deferring the store write to just after ParseResponse returns changes
// nothing about what is accepted; it lets the write overlap the account
// look-up (ConsumeOnceAndLoginLookup: one pipelined round trip). Per
// request, never shared.
type deferredReplay struct {
	id        string
	expiresAt time.Time
	called    bool
}

// Consume notes id and expiresAt; the ACS consumes them (consumeAssertion).
func (d *deferredReplay) Consume(id string, expiresAt time.Time) error {
	d.id, d.expiresAt, d.called = id, expiresAt, true
	return nil
}

// loginLookup is the outcome of Store.LoginLookup for the sign-in's email.
type loginLookup struct {
	acct      storage.Account
	u         storage.User
	hasMember bool
	err       error
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
	// The workspace is loaded and the tracked request taken (read and
	// deleted) in one store call, one round trip.
	relay := r.PostForm.Get("RelayState")
	var ws storage.Workspace
	var ok bool
	var err error
	var tracked *takeResult
	if formErr == nil && wsPattern.MatchString(c.Param("ws")) && validRelay(relay) {
		tracked = &takeResult{err: storage.ErrNotFound}
		ws, ok, err = s.loadWorkspace(c, func(ctx context.Context, id string) (storage.Workspace, error) {
			w, raw, found, err := s.cfg.Store.GetWorkspaceAndTakeTemp(ctx, id, "authn:"+relay)
			if found {
				*tracked = takeResult{raw: raw}
			}
			return w, err
		})
	} else {
		ws, ok, err = s.workspace(c)
	}
	if !ok {
		return err
	}
	if formErr != nil {
		var tooLarge *http.MaxBytesError // limitACSBody
		if errors.As(formErr, &tooLarge) {
			return s.refuse(c, ws.ID, http.StatusRequestEntityTooLarge, "body_too_large", formErr, tooLargePage)
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
	if tracked != nil {
		if ids, ret, err = s.checkTrackedRequest(c, tracked.raw, tracked.err); err != nil {
			return err
		}
	}
	if ids == nil {
		// Unsolicited (IdP-initiated) or unknown request: only a local
		// RelayState path is ever followed.
		ret = localPath(relay)
	}
	spc := *sp // shallow copy: the cached SP is shared
	replay := &deferredReplay{}
	spc.ReplayCache = replay
	assertion, err := spc.ParseResponse(r, ids)
	if err != nil {
		reason, private := refusalReason(err)
		return s.refuse(c, ws.ID, http.StatusForbidden, reason, private, failedPage)
	}
	if !replay.called {
		// Never expected: crewjam consults the replay cache for every
		// accepted response. Fail closed.
		return s.refuse(c, ws.ID, http.StatusForbidden, "invalid", errors.New("replay cache was not consulted"), failedPage)
	}
	id, idErr := mapIdentity(assertion)
	// The assertion ID is consumed and the person looked up in one store
	// call (one round trip, then the account and membership only for the
	// first consumer of a known email): the look-up only reads, and
	// nothing is decided before the consume's outcome is known. During a
	// wave of first sign-ins (firstSignIns), when a new person would be
	// created without a decision to record (JIT on, every role known or
	// defaulted), the creation is prepared first and the store does it in
	// the same round trip if, and only if, the key was consumed and the
	// email is unknown.
	email := ""
	var create *storage.JITCreate
	var secret string
	if idErr == nil {
		email = id.Email
		if ws.Settings.JIT.Enabled && s.firsts.prepare(ws.ID) {
			if roles, ok := knownRoles(ws, id); ok {
				create, secret = s.prepareJIT(ws, id, roles)
			}
		}
	}
	res, err := s.cfg.Store.ConsumeOnceAndLoginLookupOrCreate(ctx, ws.ID,
		"assertion:"+replay.id, replay.expiresAt, email, create)
	first := res.First
	look := loginLookup{acct: res.Account, u: res.User, hasMember: res.HasMember, err: res.LookErr}
	if err == nil && first && idErr == nil && ws.Settings.JIT.Enabled {
		switch {
		case res.Created, errors.Is(look.err, storage.ErrNotFound):
			s.firsts.record(ws.ID, true)
		case look.err == nil:
			s.firsts.record(ws.ID, false)
		}
	}
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			return s.unavailable(c, fmt.Errorf("replay cache: %w", err))
		}
		return s.refuse(c, ws.ID, http.StatusForbidden, "invalid", fmt.Errorf("replay cache: %w", err), failedPage)
	}
	if !first {
		return s.refuse(c, ws.ID, http.StatusForbidden, "replayed",
			fmt.Errorf("assertion %q: %w", replay.id, crewjam.ErrAssertionReplayed), failedPage)
	}
	if idErr != nil {
		return s.refuse(c, ws.ID, http.StatusForbidden, "no_email", idErr, message{Title: "Sign-in failed",
			Text:   "Your identity provider did not send an email address for you, so we cannot tell who you are.",
			Detail: "Ask your administrator to send the workato_email attribute or an email-format NameID."})
	}
	if res.Created {
		return s.finishJIT(c, ws, id, ret, secret, res.JIT, res.CreateErr)
	}
	if look.err != nil && errors.Is(look.err, storage.ErrUnavailable) {
		return s.unavailable(c, fmt.Errorf("login lookup: %w", look.err))
	}
	return s.provision(c, ws, id, ret, look)
}

// unavailable answers 503 when the store cannot be reached during a
// sign-in, logging the cause.
func (s *Service) unavailable(c echo.Context, cause error) error {
	s.logError(c, "saml acs: store unavailable", "err", cause)
	return s.showMessage(c, http.StatusServiceUnavailable, message{Title: "Try again later",
		Text: "Sign-in is temporarily unavailable. Please try again in a moment."})
}

// takeResult is the tracked request taken from the store (err
// storage.ErrNotFound when there is none).
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
	// ErrNotFound: no such workspace (a refusal before it was loaded).
	if _, err := s.cfg.Store.AppendEvent(c.Request().Context(), ws, e); err != nil && !errors.Is(err, storage.ErrNotFound) {
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
