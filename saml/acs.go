package saml

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// noteReplay is the ServiceProvider's AssertionReplayCache during one ACS
// request: it only notes the assertion ID and expiry that crewjam asks to
// consume, and handleACS then consumes them in the store (each assertion
// accepted once across all processes sharing the Redis, until it would
// expire anyway). crewjam calls Consume as the very last step of
// ParseResponse, after every other check, so consuming right after
// ParseResponse returns accepts exactly what crewjam would; doing it there
// lets the store call take the request's context. Per request, never
// shared.
type noteReplay struct {
	id        string
	expiresAt time.Time
	called    bool
}

// Consume notes id and expiresAt.
func (n *noteReplay) Consume(id string, expiresAt time.Time) error {
	n.id, n.expiresAt, n.called = id, expiresAt, true
	return nil
}

// handleACS is the assertion consumer service (HTTP-POST binding, SAML
// bindings §3.5). In order: the form; the workspace and the request this
// browser started, taken from the store together (single use); the
// response, validated by crewjam (signature on the response or the
// assertion, issuer, destination and recipient, audience, the time window
// with the configured skew, InResponseTo against the tracked request); the
// identity the attributes carry; the assertion ID, consumed in the store
// (accepted once) together with the lookup of the person; then what the
// store knows of the person decides (decide, jit.go). Every refusal is a
// page, a warn log with the precise reason (never the assertion) and a
// login.refused event (refuse.go).
func (s *Service) handleACS(c echo.Context) error {
	r := c.Request()
	formErr := r.ParseForm()
	relay := r.PostForm.Get("RelayState")
	var tracked []byte
	ws, ok, err := s.workspaceFrom(c, func(ctx context.Context, id string) (storage.Workspace, error) {
		rcv, err := s.cfg.Store.ReceiveResponse(ctx, id, trackedKey(relay))
		tracked = rcv.Request
		return rcv.Workspace, err
	})
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
	sp, keys, err := s.serviceProvider(r.Context(), ws)
	if errors.Is(err, storage.ErrUnavailable) {
		return s.storeFailed(c, "sp keys", err)
	}
	if err != nil {
		return s.refuse(c, ws.ID, http.StatusForbidden, "idp_not_configured", err, failedPage)
	}
	ids, ret := s.trackedRequest(c, tracked, relay)
	if ids == nil {
		// Unsolicited (IdP-initiated) or unknown request: only a local
		// RelayState path is ever followed.
		ret = localPath(relay)
	}
	spc := *sp // shallow copy: the cached SP is shared
	replay := &noteReplay{}
	spc.ReplayCache = replay
	assertion, err := spc.ParseResponse(r, ids)
	// crewjam decrypts with the one key it is given: an IdP may still
	// encrypt to the previous certificate, or already to the next one (the
	// metadata lists both), so a refused response is parsed again with
	// each of them. Only the decryption key differs; every other check
	// runs again unchanged.
	for _, other := range keys.others {
		if err == nil {
			break
		}
		retry := spc
		retry.Key, retry.Certificate = other.key, other.cert
		if a, rerr := retry.ParseResponse(r, ids); rerr == nil {
			assertion, err = a, nil
		}
	}
	if err != nil {
		reason, private := refusalReason(err)
		return s.refuse(c, ws.ID, http.StatusForbidden, reason, private, failedPage)
	}
	if !replay.called {
		// Never expected: crewjam consults the replay cache for every
		// accepted response. Fail closed.
		return s.refuse(c, ws.ID, http.StatusForbidden, "invalid", errors.New("replay cache was not consulted"), failedPage)
	}
	// From here on, every decision event carries what the IdP sent.
	noteReceived(c, assertion)
	id, err := mapIdentity(assertion)
	if err != nil {
		return s.refuse(c, ws.ID, http.StatusForbidden, "no_email", err, message{Title: "Sign-in failed",
			Text:   "Your identity provider did not send an email address for you, so we cannot tell who you are.",
			Detail: "Ask your administrator to send the workato_email attribute or an email-format NameID."})
	}
	id.idpSession = idpSessionOf(sp, ws.ID, assertion)
	once := storage.Once{Key: "assertion:" + replay.id, Until: replay.expiresAt}
	login, err := s.cfg.Store.AcceptLogin(r.Context(), ws.ID, once, id.Email)
	if err == nil && login.Replayed {
		return s.refuse(c, ws.ID, http.StatusForbidden, "replayed",
			fmt.Errorf("assertion %q: %w", replay.id, crewjam.ErrAssertionReplayed), failedPage)
	}
	return s.decide(c, ws, id, ret, login, err, true)
}
