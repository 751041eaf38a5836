package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/webhooks"
	"github.com/scimjit/scimjit/storage"
)

// WebhookForm is an endpoint as its console forms send it.
type WebhookForm struct {
	URL, Description string
	// Types is the event-type filter (exact types and prefixes like
	// "user.*"); empty sends every type.
	Types   []string
	Enabled bool
}

// WebhookBackend is the admin API's webhook code (package server) the
// console calls: the same validation, the same events. Refusals are
// Problems named as the admin API names them ("url ...", "types: ...").
type WebhookBackend interface {
	// CreateWebhook creates an enabled endpoint; secret is shown once.
	CreateWebhook(ctx context.Context, ws string, f WebhookForm) (w storage.Webhook, secret string, p Problems, err error)
	// UpdateWebhook sets every field of f on endpoint id.
	UpdateWebhook(ctx context.Context, ws, id string, f WebhookForm) (storage.Webhook, Problems, error)
	// DeleteWebhook deletes endpoint id.
	DeleteWebhook(ctx context.Context, ws, id string) (Problems, error)
	// RotateWebhookSecret gives endpoint id a new secret (shown once);
	// the current one keeps signing for overlap ("24h"; "" for the
	// default).
	RotateWebhookSecret(ctx context.Context, ws, id, overlap string) (w storage.Webhook, secret string, p Problems, err error)
	// FailedDeliveries lists up to limit archived deliveries of endpoint
	// id, the most recent first.
	FailedDeliveries(ctx context.Context, ws, id string, limit int) ([]webhooks.Failed, error)
	// Redeliver queues the archived delivery of event to endpoint id again.
	Redeliver(ctx context.Context, ws, id, event string) (Problems, error)
	// RedeliverSince queues again for ep every event from since on that
	// it wants; n is how many.
	RedeliverSince(ctx context.Context, ws string, ep storage.Webhook, since time.Time) (n int, p Problems, err error)
}

// deliveriesShown bounds the recent and the failed deliveries an
// endpoint's page lists.
const deliveriesShown = 50

// overlaps are the rotation form's choices: how long the current secret
// keeps signing after a rotation.
var overlaps = []struct{ Value, Label string }{
	{"0s", "No overlap: the current secret stops at once"},
	{"1h", "1 hour"},
	{"24h", "24 hours"},
	{"168h", "7 days"},
}

// webhookFlash is the confirmation of a ?done= code of the webhook pages.
var webhookFlash = map[string]string{
	"saved":       "Endpoint saved.",
	"deleted":     "Endpoint deleted.",
	"redelivered": "Delivery queued again.",
}

// webhookForm reads the create and edit forms; types are separated by
// commas, spaces or lines.
func webhookForm(c echo.Context) WebhookForm {
	return WebhookForm{
		URL:         strings.TrimSpace(c.FormValue("url")),
		Description: strings.TrimSpace(c.FormValue("description")),
		Types:       strings.FieldsFunc(c.FormValue("types"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }),
		Enabled:     c.FormValue("enabled") == "on",
	}
}

// webhookFields are the admin API's names of an endpoint's fields, under
// which sortProblems files its refusals.
var webhookFields = []string{"url", "description", "types"}

type webhooksData struct {
	Endpoints []storage.Webhook
	// New is the endpoint just created, with its secret shown once.
	New       *storage.Webhook
	NewSecret string
	Form      WebhookForm
	Errors    fieldErrors
	Types     []string
}

func (h *Console) webhooksPage(c echo.Context) error {
	return h.showWebhooks(c, http.StatusOK, webhooksData{}, c.QueryParam("done"))
}

func (h *Console) showWebhooks(c echo.Context, status int, d webhooksData, done string) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	if d.Endpoints, err = h.cfg.Store.ListWebhooks(c.Request().Context(), ws.ID); err != nil {
		return err
	}
	d.Types = webhooks.Types
	return h.render(c, status, "webhooks", page{Title: "Webhooks", WS: &ws, Nav: "webhooks", Flash: webhookFlash[done], Data: d})
}

func (h *Console) createWebhook(c echo.Context) error {
	f := webhookForm(c)
	f.Enabled = true
	w, secret, problems, err := h.cfg.Backend.CreateWebhook(c.Request().Context(), c.Param("ws"), f)
	if err != nil {
		return err
	}
	if problems != nil {
		return h.showWebhooks(c, http.StatusBadRequest, webhooksData{Form: f, Errors: sortProblems(problems, webhookFields...)}, "")
	}
	// The secret is on this answer only: the store keeps it sealed.
	return h.showWebhooks(c, http.StatusOK, webhooksData{New: &w, NewSecret: secret}, "")
}

type webhookData struct {
	Endpoint storage.Webhook
	// NewSecret is the secret of a rotation just made, shown once.
	NewSecret  string
	Form       WebhookForm
	Errors     fieldErrors
	Deliveries []storage.WebhookAttempt
	Failed     []webhooks.Failed
	// Since is the redeliver-since form's value.
	Since    string
	Overlaps any
	Overlap  string
	Types    []string
}

// endpoint loads the route's workspace and endpoint.
func (h *Console) endpoint(c echo.Context) (storage.Workspace, storage.Webhook, error) {
	ws, err := h.workspace(c)
	if err != nil {
		return ws, storage.Webhook{}, err
	}
	w, err := h.cfg.Store.GetWebhook(c.Request().Context(), ws.ID, c.Param("endpoint"))
	if isNotFound(err) {
		return ws, w, echo.ErrNotFound
	}
	return ws, w, err
}

func (h *Console) webhookPage(c echo.Context) error {
	ws, w, err := h.endpoint(c)
	if err != nil {
		return err
	}
	flash := webhookFlash[c.QueryParam("done")]
	if n, err := strconv.Atoi(c.QueryParam("queued")); err == nil && flash != "" {
		flash = fmt.Sprintf("%d deliveries queued again.", n)
	}
	return h.showWebhook(c, http.StatusOK, ws, w, webhookData{}, flash)
}

// showWebhook renders an endpoint's page; a d without a Form shows the
// stored endpoint in the edit form.
func (h *Console) showWebhook(c echo.Context, status int, ws storage.Workspace, w storage.Webhook, d webhookData, flash string) error {
	ctx := c.Request().Context()
	var err error
	if d.Deliveries, err = h.cfg.Store.ListWebhookAttempts(ctx, ws.ID, w.ID, deliveriesShown); err != nil {
		return err
	}
	if d.Failed, err = h.cfg.Backend.FailedDeliveries(ctx, ws.ID, w.ID, deliveriesShown); err != nil {
		return err
	}
	if d.Errors == nil || d.Errors["url"] == nil && d.Errors["description"] == nil && d.Errors["types"] == nil {
		d.Form = WebhookForm{URL: w.URL, Description: w.Description, Types: w.Types, Enabled: w.Enabled}
	}
	if d.Overlap == "" {
		d.Overlap = "24h"
	}
	d.Endpoint, d.Overlaps, d.Types = w, overlaps, webhooks.Types
	return h.render(c, status, "webhook", page{Title: "Webhook endpoint", WS: &ws, Nav: "webhooks",
		Flash: flash, Data: d})
}

// afterChange answers a refused change with the endpoint's page and its
// problems (status 400, or 404 when the endpoint went), an accepted one
// with a redirect to the page with a confirmation.
func (h *Console) afterChange(c echo.Context, problems Problems, d webhookData, done string) error {
	ws, w, err := h.endpoint(c)
	if err != nil {
		return err
	}
	if problems != nil {
		d.Errors = sortProblems(problems, append(webhookFields, "overlap", "since")...)
		return h.showWebhook(c, http.StatusBadRequest, ws, w, d, "")
	}
	return c.Redirect(http.StatusSeeOther, "/console/w/"+ws.ID+"/webhooks/"+w.ID+"?done="+done)
}

func (h *Console) updateWebhook(c echo.Context) error {
	f := webhookForm(c)
	_, problems, err := h.cfg.Backend.UpdateWebhook(c.Request().Context(), c.Param("ws"), c.Param("endpoint"), f)
	if err != nil {
		return err
	}
	return h.afterChange(c, problems, webhookData{Form: f}, "saved")
}

func (h *Console) rotateWebhook(c echo.Context) error {
	overlap := c.FormValue("overlap")
	w, secret, problems, err := h.cfg.Backend.RotateWebhookSecret(c.Request().Context(), c.Param("ws"), c.Param("endpoint"), overlap)
	if err != nil {
		return err
	}
	if problems != nil {
		return h.afterChange(c, problems, webhookData{Overlap: overlap}, "")
	}
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	// The new secret is on this answer only.
	return h.showWebhook(c, http.StatusOK, ws, w, webhookData{NewSecret: secret}, "")
}

func (h *Console) deleteWebhook(c echo.Context) error {
	problems, err := h.cfg.Backend.DeleteWebhook(c.Request().Context(), c.Param("ws"), c.Param("endpoint"))
	if err != nil {
		return err
	}
	if problems != nil {
		return h.afterChange(c, problems, webhookData{}, "")
	}
	return c.Redirect(http.StatusSeeOther, "/console/w/"+c.Param("ws")+"/webhooks?done=deleted")
}

func (h *Console) redeliverOne(c echo.Context) error {
	problems, err := h.cfg.Backend.Redeliver(c.Request().Context(), c.Param("ws"), c.Param("endpoint"), c.Param("event"))
	if err != nil {
		return err
	}
	return h.afterChange(c, problems, webhookData{}, "redelivered")
}

func (h *Console) redeliverSince(c echo.Context) error {
	ws, w, err := h.endpoint(c)
	if err != nil {
		return err
	}
	raw := strings.TrimSpace(c.FormValue("since"))
	since, ok := parseFormTime(raw)
	if !ok {
		return h.showWebhook(c, http.StatusBadRequest, ws, w, webhookData{Since: raw,
			Errors: fieldErrors{"since": {"Give a time in UTC, like 2026-01-31 14:05."}}}, "")
	}
	n, problems, err := h.cfg.Backend.RedeliverSince(c.Request().Context(), ws.ID, w, since)
	if err != nil {
		return err
	}
	if problems != nil {
		return h.afterChange(c, problems, webhookData{Since: raw}, "")
	}
	return c.Redirect(http.StatusSeeOther, "/console/w/"+ws.ID+"/webhooks/"+w.ID+"?done=redelivered&queued="+strconv.Itoa(n))
}
