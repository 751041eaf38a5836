package mail

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/scimjit/scimjit/storage"
)

// Outbox statuses (storage.Mail.Status).
const (
	StatusQueued = "queued"
	StatusSent   = "sent"
	StatusFailed = "failed"
)

// Sender sends one message. Implementations are safe for concurrent use.
// A nil error means the message was accepted for delivery: recorded in the
// outbox at least; the final delivery result may come later (see
// Delivering).
type Sender interface {
	Send(ctx context.Context, m storage.Mail) error
}

// Outbox is the Sender of demo mode: it records every message in the store's
// outbox (store.AppendMail) and delivers nothing else. The outbox is the
// message's destination, so the record's status is "sent".
type Outbox struct {
	store storage.Store
}

var _ Sender = (*Outbox)(nil)

// NewOutbox returns a Sender that only records messages in store's outbox.
func NewOutbox(store storage.Store) *Outbox { return &Outbox{store: store} }

// Send records m in the outbox.
func (o *Outbox) Send(ctx context.Context, m storage.Mail) error {
	m.Status = StatusSent
	m.Error = ""
	if _, err := o.store.AppendMail(ctx, m); err != nil {
		return fmt.Errorf("mail: record in outbox: %w", err)
	}
	return nil
}

// New builds the Sender for a configuration: the demo Outbox when no SMTP
// host is configured, else a Delivering wrapper over SMTP with the default
// retry policy. Callers should Close the result when it is a *Delivering
// (see Closer) so that deliveries in flight finish before shutdown.
func New(store storage.Store, logger *slog.Logger, cfg SMTPConfig) (Sender, error) {
	if cfg.Host == "" {
		return NewOutbox(store), nil
	}
	smtp, err := NewSMTP(cfg)
	if err != nil {
		return nil, err
	}
	return NewDelivering(store, smtp, logger, RetryPolicy{}), nil
}

// Closer is implemented by senders that deliver in the background
// (Delivering): Close waits for deliveries in flight until ctx ends, then
// abandons the rest (their outbox records stay "queued").
type Closer interface {
	Close(ctx context.Context) error
}
