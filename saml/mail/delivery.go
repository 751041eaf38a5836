package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
)

// TaskSend is the queue task type that delivers one outbox message; its
// payload and its task id are the message id.
const TaskSend = "mail:send"

// Delivery is the Sender of the server. Send records the message in the
// outbox as "queued" and enqueues a TaskSend task on the durable queue;
// the task, in whichever process runs it, sends the message through the
// transport (SMTP, or Outbox in demo mode) and records the attempt on the
// outbox record. A transient failure is retried on the queue's backoff
// schedule until the message expires (storage.Mail.Expires: its join link
// is useless afterwards) or the retries run out; a PermanentError (SMTP
// 5xx) is not retried. The record ends "sent" or "failed"; a failure is
// logged at warn level, without the address.
//
// A message recorded but not enqueued (a crash between the two writes, or
// the queue unreachable at that moment), or whose last attempt could not be
// recorded, is enqueued again by Sweep, which the
// server runs at startup and periodically; the task id (the message id)
// makes a second enqueue of a queued or retrying message a no-op.
//
// Delivery is at least once: a process that dies after the SMTP server
// accepted a message but before its attempt was recorded sends it again.
type Delivery struct {
	store     storage.Store
	q         *queue.Queue
	transport Sender
	log       *slog.Logger
}

var _ Sender = (*Delivery)(nil)

// NewDelivery returns the Delivery through transport and registers its
// TaskSend handler on q (call it before q starts). logger may be nil
// (discard).
func NewDelivery(store storage.Store, q *queue.Queue, transport Sender, logger *slog.Logger) *Delivery {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Delivery{store: store, q: q, transport: transport, log: logger}
	q.Handle(TaskSend, d.deliver)
	return d
}

// OutboxOnly reports whether messages go nowhere but the outbox (demo
// mode without SMTP).
func (d *Delivery) OutboxOnly() bool {
	_, ok := d.transport.(Outbox)
	return ok
}

// Send records m in the outbox as queued and enqueues its delivery. It
// fails only when the outbox cannot be written; a failed enqueue is logged
// and left to Sweep, delivery failures show in the outbox record.
func (d *Delivery) Send(ctx context.Context, m storage.Mail) error {
	m.Status, m.Error, m.Attempts = StatusQueued, "", nil
	rec, err := d.store.AppendMail(ctx, m)
	if err != nil {
		return fmt.Errorf("mail: record in outbox: %w", err)
	}
	if err := d.enqueue(ctx, rec.ID); err != nil {
		d.log.Warn("mail queued in the outbox but not enqueued; the next sweep enqueues it", "mail_id", rec.ID, "err", err)
	}
	return nil
}

func (d *Delivery) enqueue(ctx context.Context, id string) error {
	return d.q.Enqueue(ctx, TaskSend, id, []byte(id))
}

// sweepLimit is how many of the newest outbox messages Sweep looks at (the
// outbox keeps 1000).
const sweepLimit = 1000

// Sweep enqueues every outbox message still "queued"; those already
// enqueued are left as they are (the task id deduplicates). A message
// whose task was archived while its record still says queued (its last
// attempt could not be recorded) is run again with fresh retries.
func (d *Delivery) Sweep(ctx context.Context) error {
	ms, err := d.store.ListMail(ctx, sweepLimit)
	if err != nil {
		return fmt.Errorf("mail: sweep: %w", err)
	}
	for _, m := range ms {
		if m.Status != StatusQueued {
			continue
		}
		err := d.q.Redeliver(ctx, m.ID)
		if errors.Is(err, queue.ErrNotFound) {
			err = d.enqueue(ctx, m.ID)
		}
		if err != nil {
			return fmt.Errorf("mail: sweep: %w", err)
		}
	}
	return nil
}

// deliver is the TaskSend handler: one delivery attempt of one message.
func (d *Delivery) deliver(ctx context.Context, payload []byte) error {
	id := string(payload)
	log := d.log.With("mail_id", id, "attempt", queue.Attempt(ctx))
	m, err := d.store.GetMail(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		log.Warn("mail not delivered: no longer in the outbox")
		return nil
	}
	if err != nil {
		return fmt.Errorf("mail: load %s: %w", id, err)
	}
	if m.Status != StatusQueued {
		return nil // already delivered or given up: a repeated task
	}
	a := storage.MailAttempt{Time: time.Now().UTC(), Outcome: StatusSent}
	var sendErr error
	if d.expired(m) {
		sendErr = fmt.Errorf("not sent: the message expired at %s", m.Expires.UTC().Format(time.RFC3339))
	} else {
		sendErr = d.transport.Send(ctx, m)
	}
	status, errText := StatusSent, ""
	final := false
	if sendErr != nil {
		_, perm := errors.AsType[*PermanentError](sendErr)
		final = perm || d.expired(m) || queue.LastAttempt(ctx)
		a.Outcome, a.Error, status = StatusFailed, sendErr.Error(), StatusQueued
		if final {
			status, errText = StatusFailed, sendErr.Error()
		}
	}
	// The outcome is logged before it is recorded, so whoever sees the
	// record (the outbox page, a test) finds the log line already written.
	switch {
	case sendErr == nil:
	case final:
		log.Warn("mail delivery failed", "err", sendErr)
	default:
		log.Info("mail delivery failed, will retry", "err", sendErr)
	}
	// The attempt is recorded even when the task's ctx is over.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.store.AddMailAttempt(rctx, id, a, status, errText); err != nil {
		// Retried: the next attempt records itself (and may send again).
		log.Error("mail delivery attempt not recorded", "outcome", a.Outcome, "err", err)
		return fmt.Errorf("mail: record attempt of %s: %w", id, err)
	}
	if final {
		return queue.Permanent(sendErr)
	}
	return sendErr
}

func (d *Delivery) expired(m storage.Mail) bool {
	return !m.Expires.IsZero() && !time.Now().Before(m.Expires)
}
