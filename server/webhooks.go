package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/webhooks"
	"github.com/scimjit/scimjit/storage"
)

// WebhooksConfig configures webhook delivery (package webhooks).
type WebhooksConfig struct {
	// AllowPrivate lets endpoint URLs use http and reach loopback, private
	// and link-local addresses (--webhooks-allow-private).
	AllowPrivate bool
	// PollInterval, ClaimIdle and Timeout: see webhooks.Config.
	PollInterval time.Duration
	ClaimIdle    time.Duration
	Timeout      time.Duration
}

// notifyWebhooks wakes the local dispatcher after a request that may have
// written events (any method but GET and HEAD), so that its webhooks leave
// at once instead of at the next poll.
func (s *Server) notifyWebhooks(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
			s.webhooks.Notify()
		}
		return err
	}
}

// running answers 503 until StartWork has started the queue.
func (s *Server) running() error {
	if !s.working.Load() {
		return &apiError{Status: http.StatusServiceUnavailable, Message: "webhook delivery is not running in this process"}
	}
	return nil
}

// WebhookJSON is an endpoint as the admin API shows it. Secret is set only
// in the answers of create and rotate-secret.
type WebhookJSON struct {
	ID                      string    `json:"id"`
	URL                     string    `json:"url"`
	Description             string    `json:"description"`
	Types                   []string  `json:"types"`
	Enabled                 bool      `json:"enabled"`
	DisabledReason          string    `json:"disabledReason,omitempty"`
	Secret                  string    `json:"secret,omitempty"`
	PreviousSecretsExpireAt []string  `json:"previousSecretsExpireAt,omitempty"`
	CreatedAt               time.Time `json:"createdAt"`
	UpdatedAt               time.Time `json:"updatedAt"`
}

func webhookJSON(w storage.Webhook) WebhookJSON {
	out := WebhookJSON{ID: w.ID, URL: w.URL, Description: w.Description, Types: w.Types, Enabled: w.Enabled,
		DisabledReason: w.DisabledReason, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if out.Types == nil {
		out.Types = []string{}
	}
	for _, sec := range w.Secrets {
		if !sec.ExpiresAt.IsZero() {
			out.PreviousSecretsExpireAt = append(out.PreviousSecretsExpireAt, sec.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	return out
}

// webhookRequest is the body of create (URL required) and PATCH (every
// field optional).
type webhookRequest struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	Types       *[]string `json:"types"`
	Enabled     *bool     `json:"enabled"`
}

// applyWebhook checks r and applies it to w; allowPrivate is
// WebhooksConfig.AllowPrivate.
func applyWebhook(r webhookRequest, w *storage.Webhook, allowPrivate bool) error {
	if r.URL != nil {
		if err := webhooks.CheckURL(*r.URL, allowPrivate); err != nil || len(*r.URL) > 2000 {
			if err == nil {
				err = errors.New("url must be at most 2000 characters")
			}
			return badRequest(err.Error())
		}
		w.URL = *r.URL
	}
	if r.Description != nil {
		if !validTokenName(*r.Description) {
			return badRequest("description must be at most 100 characters without control characters")
		}
		w.Description = *r.Description
	}
	if r.Types != nil {
		for _, t := range *r.Types {
			if !webhooks.ValidFilter(t) {
				return badRequest(fmt.Sprintf("types: %q is neither an event type nor a prefix of some (like \"user.*\")", t))
			}
		}
		w.Types = slices.Clone(*r.Types)
	}
	if r.Enabled != nil {
		w.Enabled = *r.Enabled
		if w.Enabled {
			w.DisabledReason = ""
		}
	}
	return nil
}

func (s *Server) createWebhook(c echo.Context) error {
	ws, err := workspaceParam(c)
	if err != nil {
		return err
	}
	var req webhookRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	w, secret, err := s.addWebhook(c.Request().Context(), ws, req)
	if err != nil {
		return err
	}
	out := webhookJSON(w)
	out.Secret = secret
	return c.JSON(http.StatusCreated, out)
}

// addWebhook creates an endpoint of ws from req (url required) with a new
// signing secret, shown once, and records the event (the admin API and
// the console).
func (s *Server) addWebhook(ctx context.Context, ws string, req webhookRequest) (storage.Webhook, string, error) {
	if req.URL == nil {
		return storage.Webhook{}, "", badRequest("url is required")
	}
	w := storage.Webhook{Enabled: true}
	if err := applyWebhook(req, &w, s.cfg.Webhooks.AllowPrivate); err != nil {
		return w, "", err
	}
	secret, stored, err := webhooks.NewEndpointSecret(s.cfg.SAML.SecretKey)
	if err != nil {
		return w, "", err
	}
	w.Secrets = []storage.WebhookSecret{stored}
	if w, err = s.store.CreateWebhook(ctx, ws, w); err != nil {
		return w, "", storeError(err, "workspace")
	}
	appendAdminEvent(ctx, s.store, s.log, ws, "admin.webhook.created", map[string]string{"endpoint": w.ID, "url": w.URL})
	return w, secret, nil
}

func (s *Server) listWebhooks(c echo.Context) error {
	ws, err := workspaceParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.store.GetWorkspace(ctx, ws); err != nil {
		return storeError(err, "workspace")
	}
	list, err := s.store.ListWebhooks(ctx, ws)
	if err != nil {
		return storeError(err, "workspace")
	}
	out := make([]WebhookJSON, 0, len(list))
	for _, w := range list {
		out = append(out, webhookJSON(w))
	}
	return c.JSON(http.StatusOK, map[string]any{"webhooks": out})
}

// endpointParam reads the :ws and :endpoint of an existing endpoint.
func (s *Server) endpointParam(c echo.Context) (string, storage.Webhook, error) {
	ws, err := workspaceParam(c)
	if err != nil {
		return "", storage.Webhook{}, err
	}
	w, err := s.store.GetWebhook(c.Request().Context(), ws, c.Param("endpoint"))
	if err != nil {
		return "", storage.Webhook{}, storeError(err, "webhook endpoint")
	}
	return ws, w, nil
}

func (s *Server) getWebhook(c echo.Context) error {
	_, w, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookJSON(w))
}

func (s *Server) updateWebhook(c echo.Context) error {
	ws, err := workspaceParam(c)
	if err != nil {
		return err
	}
	var req webhookRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	w, err := s.changeWebhook(c.Request().Context(), ws, c.Param("endpoint"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookJSON(w))
}

// changeWebhook applies req (every field optional) to an endpoint and
// records the event.
func (s *Server) changeWebhook(ctx context.Context, ws, id string, req webhookRequest) (storage.Webhook, error) {
	w, err := s.store.UpdateWebhook(ctx, ws, id, func(w *storage.Webhook) error {
		return applyWebhook(req, w, s.cfg.Webhooks.AllowPrivate)
	})
	if err != nil {
		return w, storeError(err, "webhook endpoint")
	}
	appendAdminEvent(ctx, s.store, s.log, ws, "admin.webhook.updated", map[string]string{"endpoint": w.ID, "url": w.URL,
		"enabled": fmt.Sprint(w.Enabled)})
	return w, nil
}

func (s *Server) deleteWebhook(c echo.Context) error {
	ws, err := workspaceParam(c)
	if err != nil {
		return err
	}
	if err := s.removeWebhook(c.Request().Context(), ws, c.Param("endpoint")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// removeWebhook deletes an endpoint and records the event.
func (s *Server) removeWebhook(ctx context.Context, ws, id string) error {
	if err := s.store.DeleteWebhook(ctx, ws, id); err != nil {
		return storeError(err, "webhook endpoint")
	}
	appendAdminEvent(ctx, s.store, s.log, ws, "admin.webhook.deleted", map[string]string{"endpoint": id})
	return nil
}

// maxSecretOverlap bounds rotate-secret's overlap.
const maxSecretOverlap = 30 * 24 * time.Hour

func (s *Server) rotateWebhookSecret(c echo.Context) error {
	ws, err := workspaceParam(c)
	if err != nil {
		return err
	}
	var req struct {
		Overlap *string `json:"overlap"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	w, secret, err := s.rotateSecret(c.Request().Context(), ws, c.Param("endpoint"), req.Overlap)
	if err != nil {
		return err
	}
	out := webhookJSON(w)
	out.Secret = secret
	return c.JSON(http.StatusOK, out)
}

// DefaultSecretOverlap is how long a rotated-out signing secret keeps
// signing when the rotation names no overlap.
const DefaultSecretOverlap = 24 * time.Hour

// rotateSecret gives an endpoint a new signing secret, shown once; the
// current one keeps signing for overlap (a duration like "24h", nil for
// DefaultSecretOverlap). It records the event.
func (s *Server) rotateSecret(ctx context.Context, ws, id string, overlap *string) (storage.Webhook, string, error) {
	d := DefaultSecretOverlap
	if overlap != nil {
		var err error
		if d, err = time.ParseDuration(*overlap); err != nil || d < 0 || d > maxSecretOverlap {
			return storage.Webhook{}, "", badRequest("overlap must be a duration from 0s to 720h, like \"24h\"")
		}
	}
	secret, stored, err := webhooks.NewEndpointSecret(s.cfg.SAML.SecretKey)
	if err != nil {
		return storage.Webhook{}, "", err
	}
	w, err := s.store.UpdateWebhook(ctx, ws, id, func(w *storage.Webhook) error {
		webhooks.Rotate(w, stored, time.Now().UTC(), d)
		return nil
	})
	if err != nil {
		return w, "", storeError(err, "webhook endpoint")
	}
	appendAdminEvent(ctx, s.store, s.log, ws, "admin.webhook.secret_rotated", map[string]string{"endpoint": w.ID, "overlap": d.String()})
	return w, secret, nil
}

// DeliveryJSON is one delivery attempt.
type DeliveryJSON struct {
	Time      time.Time `json:"time"`
	EventID   string    `json:"eventId"`
	Type      string    `json:"type"`
	Attempt   int       `json:"attempt"`
	Status    int       `json:"status,omitempty"`
	LatencyMS float64   `json:"latencyMs"`
	Error     string    `json:"error,omitempty"`
}

func (s *Server) listWebhookDeliveries(c echo.Context) error {
	ws, ep, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	list, err := s.store.ListWebhookAttempts(c.Request().Context(), ws, ep.ID, limit)
	if err != nil {
		return storeError(err, "webhook endpoint")
	}
	out := make([]DeliveryJSON, 0, len(list))
	for _, a := range list {
		out = append(out, DeliveryJSON{Time: a.Time, EventID: a.EventID, Type: a.EventType, Attempt: a.Attempt,
			Status: a.Status, LatencyMS: float64(a.Latency.Microseconds()) / 1000, Error: a.Error})
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out})
}

// FailedJSON is an archived delivery.
type FailedJSON struct {
	EventID   string    `json:"eventId"`
	Type      string    `json:"type"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError"`
	FailedAt  time.Time `json:"failedAt"`
}

func (s *Server) listWebhookFailed(c echo.Context) error {
	ws, ep, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	list, err := s.failedDeliveries(c.Request().Context(), ws, ep.ID, limit)
	if err != nil {
		return err
	}
	out := make([]FailedJSON, 0, len(list))
	for _, f := range list {
		out = append(out, FailedJSON{EventID: f.EventID, Type: f.Type, Attempts: f.Attempts, LastError: f.LastErr,
			FailedAt: f.FailedAt})
	}
	return c.JSON(http.StatusOK, map[string]any{"failed": out})
}

// failedDeliveries lists up to limit archived deliveries of endpoint ep.
func (s *Server) failedDeliveries(ctx context.Context, ws, ep string, limit int) ([]webhooks.Failed, error) {
	if err := s.running(); err != nil {
		return nil, err
	}
	return s.webhooks.Failed(ctx, ws, ep, limit)
}

func (s *Server) redeliverWebhookFailed(c echo.Context) error {
	ws, ep, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	if err := s.redeliverFailed(c.Request().Context(), ws, ep.ID, c.Param("event")); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"queued": 1})
}

// redeliverFailed queues the archived delivery of event to endpoint ep
// again and records the event.
func (s *Server) redeliverFailed(ctx context.Context, ws, ep, event string) error {
	if err := s.running(); err != nil {
		return err
	}
	if err := s.webhooks.Redeliver(ctx, ws, ep, event); errors.Is(err, webhooks.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Message: "no failed delivery of that event to this endpoint"}
	} else if err != nil {
		return err
	}
	appendAdminEvent(ctx, s.store, s.log, ws, "admin.webhook.redelivered", map[string]string{"endpoint": ep, "event": event})
	return nil
}

func (s *Server) redeliverWebhookSince(c echo.Context) error {
	ws, ep, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	var req struct {
		Since *time.Time `json:"since"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n, err := s.redeliverSince(c.Request().Context(), ws, ep, req.Since)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"queued": n})
}

// redeliverSince queues again for endpoint ep every event from since on
// that it wants, and records the event; it returns how many were queued.
func (s *Server) redeliverSince(ctx context.Context, ws string, ep storage.Webhook, since *time.Time) (int, error) {
	if since == nil {
		return 0, badRequest("since is required (an RFC 3339 time)")
	}
	if !ep.Enabled {
		return 0, &apiError{Status: http.StatusConflict, Message: "the endpoint is disabled: enable it first"}
	}
	if err := s.running(); err != nil {
		return 0, err
	}
	n, err := s.webhooks.RedeliverSince(ctx, ws, ep.ID, *since)
	if err != nil {
		return n, storeError(err, "webhook endpoint")
	}
	appendAdminEvent(ctx, s.store, s.log, ws, "admin.webhook.redelivered", map[string]string{"endpoint": ep.ID,
		"since": since.UTC().Format(time.RFC3339), "queued": fmt.Sprint(n)})
	return n, nil
}
