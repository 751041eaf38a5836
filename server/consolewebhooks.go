package server

import (
	"context"
	"time"

	"github.com/scimjit/scimjit/server/console"
	"github.com/scimjit/scimjit/server/webhooks"
	"github.com/scimjit/scimjit/storage"
)

// The console's webhook pages call the admin API's own webhook code
// (webhooks.go): one validation, one event per change, its actor the
// person or admin token signed in to the console.

func webhookRequestOf(f console.WebhookForm) webhookRequest {
	types := f.Types
	if types == nil {
		types = []string{}
	}
	return webhookRequest{URL: &f.URL, Description: &f.Description, Types: &types, Enabled: &f.Enabled}
}

func (b consoleBackend) CreateWebhook(ctx context.Context, ws string, f console.WebhookForm) (storage.Webhook, string, console.Problems, error) {
	w, secret, err := b.s.addWebhook(ctx, ws, webhookRequestOf(f))
	p, err := problems(err)
	return w, secret, p, err
}

func (b consoleBackend) UpdateWebhook(ctx context.Context, ws, id string, f console.WebhookForm) (storage.Webhook, console.Problems, error) {
	w, err := b.s.changeWebhook(ctx, ws, id, webhookRequestOf(f))
	p, err := problems(err)
	return w, p, err
}

func (b consoleBackend) DeleteWebhook(ctx context.Context, ws, id string) (console.Problems, error) {
	return problems(b.s.removeWebhook(ctx, ws, id))
}

func (b consoleBackend) RotateWebhookSecret(ctx context.Context, ws, id, overlap string) (storage.Webhook, string, console.Problems, error) {
	var o *string
	if overlap != "" {
		o = &overlap
	}
	w, secret, err := b.s.rotateSecret(ctx, ws, id, o)
	p, err := problems(err)
	return w, secret, p, err
}

func (b consoleBackend) FailedDeliveries(ctx context.Context, ws, id string, limit int) ([]webhooks.Failed, error) {
	return b.s.failedDeliveries(ctx, ws, id, limit)
}

func (b consoleBackend) Redeliver(ctx context.Context, ws, id, event string) (console.Problems, error) {
	return problems(b.s.redeliverFailed(ctx, ws, id, event))
}

func (b consoleBackend) RedeliverSince(ctx context.Context, ws string, ep storage.Webhook, since time.Time) (int, console.Problems, error) {
	n, err := b.s.redeliverSince(ctx, ws, ep, &since)
	p, err := problems(err)
	return n, p, err
}
