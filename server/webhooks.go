package server

import (
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
	if req.URL == nil {
		return badRequest("url is required")
	}
	w := storage.Webhook{Enabled: true}
	if err := applyWebhook(req, &w, s.cfg.Webhooks.AllowPrivate); err != nil {
		return err
	}
	secret, stored, err := webhooks.NewEndpointSecret(s.cfg.SAML.SecretKey)
	if err != nil {
		return err
	}
	w.Secrets = []storage.WebhookSecret{stored}
	ctx := c.Request().Context()
	if w, err = s.store.CreateWebhook(ctx, ws, w); err != nil {
		return storeError(err, "workspace")
	}
	s.adminEvent(c, ws, "admin.webhook.created", map[string]string{"endpoint": w.ID, "url": w.URL})
	out := webhookJSON(w)
	out.Secret = secret
	return c.JSON(http.StatusCreated, out)
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
	w, err := s.store.UpdateWebhook(c.Request().Context(), ws, c.Param("endpoint"), func(w *storage.Webhook) error {
		return applyWebhook(req, w, s.cfg.Webhooks.AllowPrivate)
	})
	if err != nil {
		return storeError(err, "webhook endpoint")
	}
	s.adminEvent(c, ws, "admin.webhook.updated", map[string]string{"endpoint": w.ID, "url": w.URL,
		"enabled": fmt.Sprint(w.Enabled)})
	return c.JSON(http.StatusOK, webhookJSON(w))
}

func (s *Server) deleteWebhook(c echo.Context) error {
	ws, err := workspaceParam(c)
	if err != nil {
		return err
	}
	id := c.Param("endpoint")
	if err := s.store.DeleteWebhook(c.Request().Context(), ws, id); err != nil {
		return storeError(err, "webhook endpoint")
	}
	s.adminEvent(c, ws, "admin.webhook.deleted", map[string]string{"endpoint": id})
	return c.NoContent(http.StatusNoContent)
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
	overlap := 24 * time.Hour
	if req.Overlap != nil {
		d, err := time.ParseDuration(*req.Overlap)
		if err != nil || d < 0 || d > maxSecretOverlap {
			return badRequest("overlap must be a duration from 0s to 720h, like \"24h\"")
		}
		overlap = d
	}
	secret, stored, err := webhooks.NewEndpointSecret(s.cfg.SAML.SecretKey)
	if err != nil {
		return err
	}
	w, err := s.store.UpdateWebhook(c.Request().Context(), ws, c.Param("endpoint"), func(w *storage.Webhook) error {
		webhooks.Rotate(w, stored, time.Now().UTC(), overlap)
		return nil
	})
	if err != nil {
		return storeError(err, "webhook endpoint")
	}
	s.adminEvent(c, ws, "admin.webhook.secret_rotated", map[string]string{"endpoint": w.ID, "overlap": overlap.String()})
	out := webhookJSON(w)
	out.Secret = secret
	return c.JSON(http.StatusOK, out)
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
	if err := s.running(); err != nil {
		return err
	}
	list, err := s.webhooks.Failed(c.Request().Context(), ws, ep.ID, limit)
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

func (s *Server) redeliverWebhookFailed(c echo.Context) error {
	ws, ep, err := s.endpointParam(c)
	if err != nil {
		return err
	}
	if err := s.running(); err != nil {
		return err
	}
	event := c.Param("event")
	if err := s.webhooks.Redeliver(c.Request().Context(), ws, ep.ID, event); errors.Is(err, webhooks.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Message: "no failed delivery of that event to this endpoint"}
	} else if err != nil {
		return err
	}
	s.adminEvent(c, ws, "admin.webhook.redelivered", map[string]string{"endpoint": ep.ID, "event": event})
	return c.JSON(http.StatusAccepted, map[string]any{"queued": 1})
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
	if req.Since == nil {
		return badRequest("since is required (an RFC 3339 time)")
	}
	if !ep.Enabled {
		return &apiError{Status: http.StatusConflict, Message: "the endpoint is disabled: enable it first"}
	}
	if err := s.running(); err != nil {
		return err
	}
	n, err := s.webhooks.RedeliverSince(c.Request().Context(), ws, ep.ID, *req.Since)
	if err != nil {
		return storeError(err, "webhook endpoint")
	}
	s.adminEvent(c, ws, "admin.webhook.redelivered", map[string]string{"endpoint": ep.ID,
		"since": req.Since.UTC().Format(time.RFC3339), "queued": fmt.Sprint(n)})
	return c.JSON(http.StatusAccepted, map[string]any{"queued": n})
}
