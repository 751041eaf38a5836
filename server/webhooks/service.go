// Package webhooks sends a workspace's events to its webhook endpoints,
// signed by the Standard Webhooks specification, with durable
// at-least-once delivery.
//
// The path of an event, in one direction:
//
//  1. The store appends the event to the workspace's events and, in the
//     same atomic step, to its webhook outbox while it has endpoints
//     (storage.Webhooks).
//  2. A dispatcher (Service.Run, in every process) reads the outboxes
//     with a consumer group, builds the event's body once, enqueues one
//     delivery task per enabled endpoint whose filter wants it (task id
//     "<workspace>/<endpoint>/<event id>", so a second dispatch of the
//     same entry queues nothing) and then acknowledges the entry. An
//     entry a dead process read but did not acknowledge is claimed by
//     another after ClaimIdle.
//  3. The delivery task (package storage/queue) signs and POSTs the body;
//     it is retried on the queue's backoff schedule, honouring
//     Retry-After, and archived when it fails for good (or the receiver
//     answers 410 Gone, which also disables the endpoint).
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
)

// TaskType is the queue task type of a delivery.
const TaskType = "webhook:deliver"

// Defaults of Config.
const (
	DefaultPollInterval = time.Second
	DefaultClaimIdle    = 30 * time.Second
	DefaultTimeout      = 10 * time.Second
	// MaxResponseBytes is how much of a receiver's answer is read.
	MaxResponseBytes = 64 << 10
	// outboxBatch is how many outbox entries a dispatcher reads at once.
	outboxBatch = 100
)

// Config configures a Service.
type Config struct {
	Store storage.Store
	// Queue runs the delivery tasks (required); New registers TaskType on
	// it.
	Queue *queue.Queue
	// Render renders users and groups for the payloads (required).
	Render Renderer
	Logger *slog.Logger
	// SecretKey seals the signing secrets in the store ("" stores them as
	// they are).
	SecretKey string
	// AllowPrivate lets endpoints use http and reach loopback, private and
	// link-local addresses (tests, on-premises receivers); refused by
	// default.
	AllowPrivate bool
	// OwnReceiver is the URL of this server's own demo receiver (demo
	// mode; empty otherwise). Deliveries to exactly this URL may use http
	// and reach a loopback or private address whatever AllowPrivate says;
	// every other URL is held to AllowPrivate.
	OwnReceiver string
	// PollInterval is how often the dispatcher looks at the outboxes when
	// no local write woke it (default DefaultPollInterval); ClaimIdle is
	// how long an entry read by another dispatcher stays unacknowledged
	// before this one takes it over (default DefaultClaimIdle).
	PollInterval time.Duration
	ClaimIdle    time.Duration
	// Timeout bounds one delivery attempt (default DefaultTimeout).
	Timeout time.Duration
	// Observe, when set, is told every attempt's outcome: "delivered",
	// "failed" (retried), "gone" (410), "refused" (unsafe address) or
	// "error" (the attempt could not be made).
	Observe func(outcome string)
	// ObserveDropped, when set, is told how many events found a
	// workspace's outbox full (and so reach no endpoint), when a
	// dispatcher finds out.
	ObserveDropped func(n int64)
}

// Service is the dispatcher and the delivery handler.
type Service struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	// own delivers to Config.OwnReceiver (nil without one).
	own      *http.Client
	wake     chan struct{}
	consumer string
}

// New builds the service and registers its delivery handler on cfg.Queue.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Queue == nil || cfg.Render == nil {
		return nil, errors.New("webhooks: Store, Queue and Render are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = DefaultClaimIdle
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string) {}
	}
	if cfg.ObserveDropped == nil {
		cfg.ObserveDropped = func(int64) {}
	}
	host, _ := os.Hostname()
	s := &Service{cfg: cfg, log: cfg.Logger, client: newClient(cfg.Timeout, cfg.AllowPrivate),
		wake: make(chan struct{}, 1), consumer: host + "-" + strconv.Itoa(os.Getpid()) + "-" + storage.NewID()[:6]}
	if cfg.OwnReceiver != "" {
		s.own = newClient(cfg.Timeout, true)
	}
	cfg.Queue.Handle(TaskType, s.deliver)
	return s, nil
}

// Notify wakes the local dispatcher (a write of this process may have
// added to an outbox). It never blocks.
func (s *Service) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx ends: at once when Notify wakes it, else every
// PollInterval.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		s.DispatchAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// DispatchAll drains the outbox of every workspace with endpoints once.
func (s *Service) DispatchAll(ctx context.Context) {
	wss, err := s.cfg.Store.WebhookWorkspaces(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "webhooks: list workspaces", "err", err)
		}
		return
	}
	for _, ws := range wss {
		if err := s.dispatch(ctx, ws); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "webhooks: dispatch", "workspace", ws, "err", err)
		}
	}
}

// task is a delivery task's payload: everything needed to send the same
// bytes on every attempt.
type task struct {
	Workspace string `json:"ws"`
	Endpoint  string `json:"ep"`
	EventID   string `json:"id"`
	Type      string `json:"type"`
	Body      []byte `json:"body"`
}

// taskID is the queue id of the delivery of event to endpoint.
func taskID(ws, endpoint, event string) string { return ws + "/" + endpoint + "/" + event }

// dispatch turns the outbox entries of ws into delivery tasks, a batch at
// a time; an entry is acknowledged only once all its tasks are queued.
func (s *Service) dispatch(ctx context.Context, ws string) error {
	var endpoints []storage.Webhook
	for {
		entries, err := s.cfg.Store.ReadOutbox(ctx, ws, s.consumer, outboxBatch, s.cfg.ClaimIdle)
		if err != nil || len(entries) == 0 {
			return err
		}
		if endpoints == nil {
			if endpoints, err = s.cfg.Store.ListWebhooks(ctx, ws); err != nil {
				return err
			}
			if len(entries) == outboxBatch {
				s.reportDropped(ctx, ws)
			}
		}
		acked := make([]string, 0, len(entries))
		for _, en := range entries {
			if err := s.enqueueEvent(ctx, ws, en.Event, endpoints); err != nil {
				_ = s.cfg.Store.AckOutbox(ctx, ws, acked...)
				return err
			}
			acked = append(acked, en.ID)
		}
		if err := s.cfg.Store.AckOutbox(ctx, ws, acked...); err != nil {
			return err
		}
	}
}

// enqueueEvent queues the delivery of e to every endpoint that wants it,
// rendering its body once.
func (s *Service) enqueueEvent(ctx context.Context, ws string, e storage.Event, endpoints []storage.Webhook) error {
	t, ok := PublicType(e.Type)
	if !ok {
		return nil
	}
	var body []byte
	for _, w := range endpoints {
		if !Wants(w, t) {
			continue
		}
		if body == nil {
			var err error
			if body, err = envelope(ctx, s.cfg.Render, ws, t, e); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
		}
		if err := s.enqueue(ctx, taskID(ws, w.ID, e.ID), task{Workspace: ws, Endpoint: w.ID, EventID: e.ID,
			Type: t, Body: body}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) enqueue(ctx context.Context, id string, t task) error {
	p, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return s.cfg.Queue.Enqueue(ctx, TaskType, id, p, queue.Timeout(s.cfg.Timeout+5*time.Second))
}

// reportDropped records the events that found the outbox of ws full
// since the last report: a warning, the ObserveDropped metric and a
// webhook.outbox.dropped workspace event. A dispatcher looks when its
// first read of the outbox fills a whole batch: events are dropped only
// while the outbox is full, so the dispatcher that resumes finds a
// backlog, while in the usual case (a few new entries) it costs no round
// trip.
func (s *Service) reportDropped(ctx context.Context, ws string) {
	n, err := s.cfg.Store.TakeOutboxDropped(ctx, ws)
	if err != nil || n == 0 {
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "webhooks: read dropped outbox count", "workspace", ws, "err", err)
		}
		return
	}
	s.log.WarnContext(ctx, "webhooks: events found the outbox full and reach no endpoint", "workspace", ws, "dropped", n)
	s.cfg.ObserveDropped(n)
	if _, err := s.cfg.Store.AppendEvents(ctx, ws, storage.Event{Type: "webhook.outbox.dropped", Actor: "webhooks",
		Detail: map[string]string{"count": strconv.FormatInt(n, 10)}}); err != nil {
		s.log.WarnContext(ctx, "webhooks: record dropped outbox events", "workspace", ws, "err", err)
	}
}
