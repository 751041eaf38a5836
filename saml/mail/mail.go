package mail

import (
	"context"

	"github.com/scimjit/scimjit/storage"
)

// Outbox statuses (storage.Mail.Status).
const (
	StatusQueued = "queued"
	StatusSent   = "sent"
	StatusFailed = "failed"
)

// Sender sends one message. Implementations are safe for concurrent use.
// The transports (SMTP, Outbox) deliver it; Delivery records it in the
// outbox and queues its delivery through a transport.
type Sender interface {
	Send(ctx context.Context, m storage.Mail) error
}

// Outbox is the transport of demo mode (no SMTP server): the outbox record
// that Delivery writes is the message's destination, so sending succeeds
// without going anywhere.
type Outbox struct{}

var _ Sender = Outbox{}

// Send does nothing: the message is in the outbox already.
func (Outbox) Send(context.Context, storage.Mail) error { return nil }

// NewTransport returns the transport for a configuration: Outbox when no
// SMTP host is configured, else SMTP.
func NewTransport(cfg SMTPConfig) (Sender, error) {
	if cfg.Host == "" {
		return Outbox{}, nil
	}
	return NewSMTP(cfg)
}
