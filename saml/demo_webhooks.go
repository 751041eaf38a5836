package saml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/scimjit/scimjit/server/webhooks"
	"github.com/scimjit/scimjit/storage"
)

// The demo webhook receiver (demo mode only): each demo workspace has a
// webhook endpoint (id DemoWebhookEndpoint) whose URL is this server's
// POST /demo/webhooks/receive. The receiver verifies each delivery's
// Standard Webhooks signature with the endpoint's current secret, as any
// receiver holding that secret would, and records it in the workspace's
// received deliveries; GET /demo/webhooks shows the newest, so a newcomer
// sees the events of their demo sign-ins arrive. Like the demo outbox it
// shows everything to anyone, which demo mode allows.
//
// A delivery whose signature does not verify (tampered, or signed with
// another secret) is recorded as not verified with the reason, and
// answered 400 so that a sender retries it. A request that is not a
// delivery of a workspace with the demo endpoint (no JSON body naming
// one) is answered 400 and not recorded.

// DemoWebhookEndpoint is the id of the webhook endpoint that delivers a
// demo workspace's events to the demo receiver.
const DemoWebhookEndpoint = "demo-receiver"

// DemoReceivePath is the demo receiver's route. Its deliveries are SCIM
// resources (a group with all its members), so the server gives it the
// SCIM body limit rather than the default one.
const DemoReceivePath = "/demo/webhooks/receive"

// demoBodyShown is how much of a delivery's body the demo page keeps and
// shows; the signature is checked over the whole body.
const demoBodyShown = 64 << 10

// DemoWebhookURL is the URL of the demo receiver on this server's base
// URL: the URL of the demo workspaces' endpoints.
func (s *Service) DemoWebhookURL() string { return s.urlString(DemoReceivePath) }

// handleDemoWebhookReceive answers POST /demo/webhooks/receive.
func (s *Service) handleDemoWebhookReceive(c echo.Context) error {
	ctx := c.Request().Context()
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err // over the body limit: the error handler answers 413
	}
	// The workspace picks the secret; the signature covers the body, so a
	// delivery whose workspace was altered does not verify either.
	var env webhooks.Envelope
	if json.Unmarshal(body, &env) != nil || !wsPattern.MatchString(env.Workspace) {
		return c.String(http.StatusBadRequest, "not a scimjit webhook delivery")
	}
	w, err := s.cfg.Store.GetWebhook(ctx, env.Workspace, DemoWebhookEndpoint)
	if errors.Is(err, storage.ErrNotFound) {
		return c.String(http.StatusBadRequest, "workspace has no demo webhook endpoint")
	}
	if err != nil {
		return fmt.Errorf("demo webhooks: read endpoint: %w", err)
	}
	r := storage.ReceivedWebhook{ID: c.Request().Header.Get("webhook-id"), Type: env.Type, Verified: true,
		Body: string(body)}
	var pretty bytes.Buffer
	switch {
	case len(body) > demoBodyShown: // shown as sent, cut
		r.Body = strings.ToValidUTF8(string(body[:demoBodyShown]), "") + fmt.Sprintf("\n… (%d bytes in all; the first %d are shown)", len(body), demoBodyShown)
	case json.Indent(&pretty, body, "", "  ") == nil:
		r.Body = pretty.String()
	}
	if err := webhooks.Verify(w, s.cfg.SecretKey, c.Request().Header, body); err != nil {
		r.Verified, r.Problem = false, verifyProblem(err)
		s.logInfo(c, "demo webhook receiver: delivery not verified", "webhook_id", r.ID, "err", err)
	}
	if err := s.cfg.Store.AppendReceivedWebhook(ctx, env.Workspace, r); err != nil {
		return fmt.Errorf("demo webhooks: record delivery: %w", err)
	}
	if !r.Verified {
		return c.String(http.StatusBadRequest, "signature not verified: "+r.Problem)
	}
	return c.NoContent(http.StatusNoContent)
}

// verifyProblem says in words why a delivery did not verify.
func verifyProblem(err error) string {
	switch {
	case errors.Is(err, standardwebhooks.ErrNoMatchingSignature):
		return "no signature matches the endpoint's secret"
	case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
		return "webhook-timestamp is more than five minutes away"
	case errors.Is(err, standardwebhooks.ErrRequiredHeaders):
		return "webhook-id, webhook-timestamp or webhook-signature is missing"
	case errors.Is(err, standardwebhooks.ErrInvalidHeaders):
		return "webhook-signature or webhook-timestamp is malformed"
	}
	return "the endpoint's secret could not be read"
}

// demoWebhooksPage is the data of demo_webhooks.html: the received
// deliveries of each workspace of the demo IdP.
type demoWebhooksPage struct {
	Workspaces []demoWebhooksOf
}

type demoWebhooksOf struct {
	ID         string
	Deliveries []storage.ReceivedWebhook
}

// handleDemoWebhooks answers GET /demo/webhooks.
func (s *Service) handleDemoWebhooks(c echo.Context) error {
	ctx := c.Request().Context()
	wss, err := s.demo.workspaces(ctx)
	if err != nil {
		return fmt.Errorf("demo webhooks: list workspaces: %w", err)
	}
	var page demoWebhooksPage
	for _, ws := range wss {
		list, err := s.cfg.Store.ListReceivedWebhooks(ctx, ws, storage.ReceivedWebhooksKept)
		if err != nil {
			return fmt.Errorf("demo webhooks: list deliveries: %w", err)
		}
		page.Workspaces = append(page.Workspaces, demoWebhooksOf{ID: ws, Deliveries: list})
	}
	return s.render(c, http.StatusOK, "demo_webhooks", page)
}
