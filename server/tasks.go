package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/storage/queue"
)

// queueStore is a store that can carry the durable task queue: its Redis
// client, and the queue name that keeps deployments sharing one Redis
// server (different key prefixes) from running each other's tasks.
type queueStore interface {
	Client() redis.UniversalClient
	QueueName() string
}

// newTasks builds the server's one durable task queue, on Config.Redis or
// the store's own client, and the verification mail delivery on it
// (Config.MailTransport; the outbox only when nil). The webhook service
// registers its handler on the same queue (New).
func newTasks(cfg Config, log *slog.Logger) (*queue.Queue, *mail.Delivery, error) {
	client, qc := cfg.Redis, cfg.Queue
	if qs, ok := cfg.Store.(queueStore); ok {
		if client == nil {
			client = qs.Client()
		}
		if qc.Name == "" {
			qc.Name = qs.QueueName()
		}
	}
	if client == nil {
		return nil, nil, errors.New("server: config: Redis is required for a store without a Redis client (the task queue runs on it)")
	}
	if qc.Logger == nil {
		qc.Logger = log
	}
	q, err := queue.New(client, qc)
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	transport := cfg.MailTransport
	if transport == nil {
		transport = mail.Outbox{}
	}
	return q, mail.NewDelivery(cfg.Store, q, transport, log), nil
}

// StartWork starts the durable queue's workers, the webhook dispatcher and
// the mail sweep (at once, then every Config.MailSweepInterval), and
// returns the function that stops them. Serve calls it once Config.Startup
// has succeeded; servertest calls it itself. Until it runs, the webhook
// calls that need the queue answer 503. stop ends the dispatcher and the
// sweep and shuts the queue down (tasks still running after Config.Queue's
// ShutdownTimeout go back to the queue).
func (s *Server) StartWork(ctx context.Context) (stop func(), err error) {
	if err := s.queue.Start(); err != nil {
		return nil, err
	}
	s.metrics.watchQueue(s.queue)
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { s.webhooks.Run(wctx) })
	wg.Go(func() { s.sweepMail(wctx) })
	s.working.Store(true)
	return func() {
		cancel()
		wg.Wait()
		s.queue.Shutdown()
	}, nil
}

// sweepMail enqueues outbox messages still queued (a crash may have left
// one unqueued) at once and then every Config.MailSweepInterval, until ctx
// ends.
func (s *Server) sweepMail(ctx context.Context) {
	t := time.NewTicker(s.cfg.MailSweepInterval)
	defer t.Stop()
	for {
		if err := s.mail.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("mail sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
