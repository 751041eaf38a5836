package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// RetryPolicy bounds the background delivery of one message.
type RetryPolicy struct {
	// Attempts is the number of tries (default 4).
	Attempts int
	// Backoff is the wait before the second try; it doubles after each
	// try up to MaxBackoff (defaults 2s and 30s).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Deadline bounds the whole delivery, retries included (default 3m).
	Deadline time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 4
	}
	if p.Backoff <= 0 {
		p.Backoff = 2 * time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	if p.Deadline <= 0 {
		p.Deadline = 3 * time.Minute
	}
	return p
}

// Delivering records every message in the outbox as "queued", returns, and
// delivers it through a transport (SMTP) in the background: a transient
// failure is retried with doubling backoff, a permanent one (SMTP 5xx) is
// not. The outbox record ends "sent" or "failed" with the reason, and a
// failure is logged at warn level. The background work runs on a context
// that outlives the request but is bounded by RetryPolicy.Deadline and by
// Close.
type Delivering struct {
	store     storage.Store
	transport Sender
	log       *slog.Logger
	policy    RetryPolicy

	base   context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight int
	idle     chan struct{} // closed while inflight == 0
}

var (
	_ Sender = (*Delivering)(nil)
	_ Closer = (*Delivering)(nil)
)

// NewDelivering wraps transport; logger may be nil (discard).
func NewDelivering(store storage.Store, transport Sender, logger *slog.Logger, policy RetryPolicy) *Delivering {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	idle := make(chan struct{})
	close(idle)
	return &Delivering{
		store: store, transport: transport, log: logger, policy: policy.withDefaults(),
		base: base, cancel: cancel, idle: idle,
	}
}

// begin counts a delivery in flight; false after Close.
func (d *Delivering) begin() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	if d.inflight == 0 {
		d.idle = make(chan struct{})
	}
	d.inflight++
	return true
}

func (d *Delivering) end() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inflight--
	if d.inflight == 0 {
		close(d.idle)
	}
}

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("mail: sender closed")

// Send records m as queued and starts its delivery. It fails only when the
// outbox cannot be written (or after Close); delivery failures show in the
// outbox record.
func (d *Delivering) Send(ctx context.Context, m storage.Mail) error {
	if !d.begin() {
		return ErrClosed
	}

	m.Status = StatusQueued
	m.Error = ""
	rec, err := d.store.AppendMail(ctx, m)
	if err != nil {
		d.end()
		return fmt.Errorf("mail: record in outbox: %w", err)
	}
	go func() {
		defer d.end()
		d.deliver(rec)
	}()
	return nil
}

func (d *Delivering) deliver(m storage.Mail) {
	ctx, cancel := context.WithTimeout(d.base, d.policy.Deadline)
	defer cancel()
	log := d.log.With("mail_id", m.ID)
	wait := d.policy.Backoff
	var err error
	attempt := 0
	for attempt < d.policy.Attempts {
		attempt++
		err = d.transport.Send(ctx, m)
		if err == nil {
			break
		}
		var perm *PermanentError
		if errors.As(err, &perm) || attempt == d.policy.Attempts {
			break
		}
		log.Debug("mail delivery failed, will retry", "attempt", attempt, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			err = fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
		wait = min(2*wait, d.policy.MaxBackoff)
	}
	// The status write must happen even when ctx is over (Close, deadline).
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err == nil {
		if serr := d.store.SetMailStatus(sctx, m.ID, StatusSent, ""); serr != nil {
			log.Warn("mail sent but its outbox status was not recorded", "err", serr)
		}
		return
	}
	log.Warn("mail delivery failed", "attempts", attempt, "err", err)
	if serr := d.store.SetMailStatus(sctx, m.ID, StatusFailed, err.Error()); serr != nil {
		log.Error("mail delivery failed and its outbox status was not recorded", "err", serr)
	}
}

// Flush waits until no delivery is in flight (every one started so far
// has been recorded sent or failed), or ctx ends.
func (d *Delivering) Flush(ctx context.Context) error {
	d.mu.Lock()
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close refuses new messages, waits for deliveries in flight until ctx
// ends, then cancels the rest: an abandoned delivery is recorded as failed
// ("gave up").
func (d *Delivering) Close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	err := d.Flush(ctx)
	d.cancel()
	if err != nil {
		// Cancelled deliveries record "failed" promptly; wait for that.
		d.mu.Lock()
		idle := d.idle
		d.mu.Unlock()
		<-idle
	}
	return err
}
