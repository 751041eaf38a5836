package storage

import (
	"context"
	"time"
)

// Webhook is an endpoint of a workspace that receives its events.
type Webhook struct {
	ID          string
	URL         string
	Description string
	// Types filters the events sent: exact public types ("user.created")
	// and prefixes ("user.*"); empty sends every type.
	Types   []string
	Enabled bool
	// DisabledReason says why the endpoint was disabled by scimjit (the
	// receiver answered 410 Gone); empty when an admin set Enabled.
	DisabledReason string
	// Secrets sign the deliveries, the current one first. A secret with a
	// zero ExpiresAt is current; the others (rotated out) still sign until
	// they expire.
	Secrets   []WebhookSecret
	CreatedAt time.Time
	UpdatedAt time.Time
}

// WebhookSecret is a signing secret in its stored form: Sealed is the
// "whsec_…" secret, encrypted with the deployment's secret key when it has
// one (the webhooks package seals and opens it).
type WebhookSecret struct {
	Sealed    []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OutboxEntry is an event waiting in a workspace's webhook outbox.
type OutboxEntry struct {
	// ID is the entry's id in the outbox (for AckOutbox); Event.ID is the
	// event's id in the workspace's events.
	ID    string
	Event Event
}

// WebhookAttempt is one delivery attempt to an endpoint.
type WebhookAttempt struct {
	Time      time.Time
	EventID   string
	EventType string
	Attempt   int
	// Status is the HTTP status of the answer, 0 when there was none.
	Status  int
	Latency time.Duration
	// Error is empty for a delivered event.
	Error string
}

// ReceivedWebhook is a delivery the demo receiver got (demo mode shows
// the newest ones at /demo/webhooks).
type ReceivedWebhook struct {
	// ID, Type and Time are the delivery's webhook-id, its event type and
	// when it arrived.
	ID   string
	Type string
	Time time.Time
	// Verified tells whether its signature matched; Problem says why not.
	Verified bool
	Problem  string
	// Body is the delivered body, pretty-printed when it is JSON.
	Body string
}

// ReceivedWebhooksKept is how many received deliveries a workspace keeps.
const ReceivedWebhooksKept = 50

// Webhooks are the webhook endpoints of workspaces, their outboxes and
// their delivery attempts.
//
// While a workspace has endpoints, every event appended to its events is
// also appended, in the same atomic step, to its webhook outbox, which
// keeps it until a dispatcher acknowledges it (AckOutbox). The outbox is
// capped (the backend documents its cap): an event that finds it full is
// not added but counted (TakeOutboxDropped).
type Webhooks interface {
	// CreateWebhook stores a new endpoint (ID assigned when empty;
	// ErrAlreadyExists for an ID in use) and starts the workspace's outbox.
	// ErrNotFound without the workspace.
	CreateWebhook(ctx context.Context, ws string, w Webhook) (Webhook, error)
	// GetWebhook returns an endpoint (ErrNotFound).
	GetWebhook(ctx context.Context, ws, id string) (Webhook, error)
	// ListWebhooks returns the workspace's endpoints ordered by ID.
	ListWebhooks(ctx context.Context, ws string) ([]Webhook, error)
	// UpdateWebhook applies fn to an endpoint atomically (ErrNotFound).
	UpdateWebhook(ctx context.Context, ws, id string, fn func(*Webhook) error) (Webhook, error)
	// DeleteWebhook removes an endpoint and its attempts (ErrNotFound).
	DeleteWebhook(ctx context.Context, ws, id string) error
	// WebhookWorkspaces lists the workspaces that have (or had) endpoints:
	// those whose outboxes dispatchers read.
	WebhookWorkspaces(ctx context.Context) ([]string, error)
	// ReadOutbox returns up to count entries of the workspace's outbox
	// for consumer: first those another consumer read more than claimIdle
	// ago without acknowledging them (it died), then new ones. Each entry
	// stays in the outbox until AckOutbox.
	ReadOutbox(ctx context.Context, ws, consumer string, count int, claimIdle time.Duration) ([]OutboxEntry, error)
	// AckOutbox removes entries (by OutboxEntry.ID) from the outbox.
	AckOutbox(ctx context.Context, ws string, ids ...string) error
	// TakeOutboxDropped returns how many events found the workspace's
	// outbox full (and so reach no endpoint) since the last call, and
	// resets that count to 0 atomically: two callers never both get the
	// same dropped events. 0 for a workspace without drops (or without
	// an outbox); ErrNotFound for an invalid workspace id.
	TakeOutboxDropped(ctx context.Context, ws string) (int64, error)
	// AppendWebhookAttempt records an attempt; each endpoint keeps a capped
	// number of the newest.
	AppendWebhookAttempt(ctx context.Context, ws, id string, a WebhookAttempt) error
	// ListWebhookAttempts returns up to limit attempts of an endpoint,
	// newest first.
	ListWebhookAttempts(ctx context.Context, ws, id string, limit int) ([]WebhookAttempt, error)
	// AppendReceivedWebhook records a delivery the demo receiver got (Time
	// set when zero); the workspace keeps the newest ReceivedWebhooksKept,
	// the older ones are dropped in the same atomic step. ErrNotFound
	// without the workspace.
	AppendReceivedWebhook(ctx context.Context, ws string, r ReceivedWebhook) error
	// ListReceivedWebhooks returns up to limit received deliveries of the
	// workspace, newest first.
	ListReceivedWebhooks(ctx context.Context, ws string, limit int) ([]ReceivedWebhook, error)
}
