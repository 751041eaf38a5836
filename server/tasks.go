package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/storage/queue"
)

// newTasks builds the server's one durable task queue on Config.Redis and
// registers the task handlers on it: verification mail (mail.Delivery
// through Config.MailTransport, the outbox only when nil).
func newTasks(cfg Config, log *slog.Logger) (*queue.Queue, *mail.Delivery, error) {
	qc := cfg.Queue
	if qc.Logger == nil {
		qc.Logger = log
	}
	q, err := queue.New(cfg.Redis, qc)
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	transport := cfg.MailTransport
	if transport == nil {
		transport = mail.Outbox{}
	}
	return q, mail.NewDelivery(cfg.Store, q, transport, log), nil
}

// StartTasks starts the task queue's workers and the mail sweep (at once,
// then every Config.MailSweepInterval). Serve calls it once Config.Startup
// has succeeded; stop ends the sweep and shuts the queue down (tasks still
// running after Config.Queue's ShutdownTimeout go back to the queue).
func (s *Server) StartTasks(ctx context.Context) (stop func(), err error) {
	if err := s.queue.Start(); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.MailSweepInterval)
		defer t.Stop()
		for {
			if err := s.mail.Sweep(sctx); err != nil && sctx.Err() == nil {
				s.log.Warn("mail sweep failed", "err", err)
			}
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		s.queue.Shutdown()
	}, nil
}
