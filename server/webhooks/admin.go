package webhooks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
)

// NewEndpointSecret returns a new signing secret and its stored form.
func NewEndpointSecret(secretKey string) (secret string, stored storage.WebhookSecret, err error) {
	secret = NewSecret()
	stored, err = SealEndpointSecret(secret, secretKey)
	return secret, stored, err
}

// SealEndpointSecret is the stored form of a signing secret, which must be
// "whsec_" and the standard base64 of 24 to 64 bytes (as the Standard
// Webhooks specification asks) when an operator chose it.
func SealEndpointSecret(secret, secretKey string) (storage.WebhookSecret, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(raw) < 24 || len(raw) > 64 {
		return storage.WebhookSecret{}, errors.New(`a webhook secret is "whsec_" and the base64 of 24 to 64 random bytes`)
	}
	sealed, err := sealSecret(secret, secretKey)
	if err != nil {
		return storage.WebhookSecret{}, err
	}
	return storage.WebhookSecret{Sealed: sealed, CreatedAt: time.Now().UTC()}, nil
}

// CurrentSecret is the secret that signs w's deliveries first (the
// current one, not a rotated one), or "" when w has none.
func CurrentSecret(w storage.Webhook, secretKey string) (string, error) {
	for _, s := range w.Secrets {
		if s.ExpiresAt.IsZero() {
			return openSecret(s.Sealed, secretKey)
		}
	}
	return "", nil
}

// Rotate puts next first in w's secrets; the secrets that were current
// keep signing until now+overlap (an overlap of 0 drops them), and expired
// ones are dropped.
func Rotate(w *storage.Webhook, next storage.WebhookSecret, now time.Time, overlap time.Duration) {
	keep := []storage.WebhookSecret{next}
	for _, s := range w.Secrets {
		if s.ExpiresAt.IsZero() {
			s.ExpiresAt = now.Add(overlap)
		}
		if overlap > 0 && s.ExpiresAt.After(now) {
			keep = append(keep, s)
		}
	}
	w.Secrets = keep
}

// Failed is an archived delivery of an endpoint.
type Failed struct {
	EventID  string
	Type     string
	Attempts int
	LastErr  string
	FailedAt time.Time
}

// failedPage is how many archived tasks archived reads at a time.
const failedPage = 1000

// archived calls fn with each archived delivery of endpoint ep of ws (the
// queue's task and its payload), the most recent failure first, until fn
// returns false. It reads the queue's archived tasks (of every endpoint,
// and mail) a page at a time; the queue keeps at most the newest 10,000
// for 90 days, which bounds the reading.
func (s *Service) archived(ctx context.Context, ws, ep string, fn func(queue.Task, task) bool) error {
	prefix := taskID(ws, ep, "")
	for page := 1; ; page++ {
		tasks, err := s.cfg.Queue.Failed(ctx, page, failedPage)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			var p task
			if t.Type != TaskType || !strings.HasPrefix(t.ID, prefix) || json.Unmarshal(t.Payload, &p) != nil {
				continue
			}
			if !fn(t, p) {
				return nil
			}
		}
		if len(tasks) < failedPage {
			return nil
		}
	}
}

// Failed lists up to limit archived deliveries of endpoint ep of ws, the
// most recent failure first. An event whose delivery failed for good and
// whose redelivery since a time (RedeliverSince) failed again is listed
// twice.
func (s *Service) Failed(ctx context.Context, ws, ep string, limit int) ([]Failed, error) {
	out := []Failed{}
	if limit <= 0 {
		return out, nil
	}
	err := s.archived(ctx, ws, ep, func(t queue.Task, p task) bool {
		out = append(out, Failed{EventID: p.EventID, Type: p.Type, Attempts: t.Attempts, LastErr: t.LastErr,
			FailedAt: t.FailedAt})
		return len(out) < limit
	})
	return out, err
}

// ErrNotFound: no archived delivery of that event to that endpoint.
var ErrNotFound = errors.New("webhooks: no failed delivery of that event")

// Redeliver queues the archived delivery of event to ep again (same body,
// same webhook-id, retries reset): the first delivery's task, else the
// most recently failed of the event's redeliveries since a time.
func (s *Service) Redeliver(ctx context.Context, ws, ep, event string) error {
	err := s.cfg.Queue.Redeliver(ctx, taskID(ws, ep, event))
	if !errors.Is(err, queue.ErrNotFound) {
		return err
	}
	id := ""
	if err := s.archived(ctx, ws, ep, func(t queue.Task, p task) bool {
		if p.EventID == event {
			id = t.ID
		}
		return id == ""
	}); err != nil {
		return err
	}
	if id == "" {
		return ErrNotFound
	}
	err = s.cfg.Queue.Redeliver(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// maxRedeliver bounds one RedeliverSince.
const maxRedeliver = 10000

// RedeliverSince queues again, for endpoint ep, every event of ws from
// since on that the endpoint wants (at most maxRedeliver), read from the
// workspace's events (which keep a capped number of the newest). The
// bodies are built now (resources as they are now), with the events' own
// ids as webhook-id. It returns how many were queued.
func (s *Service) RedeliverSince(ctx context.Context, ws, ep string, since time.Time) (int, error) {
	w, err := s.cfg.Store.GetWebhook(ctx, ws, ep)
	if err != nil {
		return 0, err
	}
	if !w.Enabled {
		return 0, errors.New("endpoint disabled")
	}
	after := storage.EventsFrom(since)
	tag := "/r" + strconv.FormatInt(time.Now().UnixNano(), 36)
	n := 0
	for n < maxRedeliver {
		page, err := s.cfg.Store.ListEvents(ctx, ws, after, 500)
		if err != nil {
			return n, err
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, e := range page {
			t, ok := PublicType(e.Type)
			if !ok || !Wants(w, t) || n == maxRedeliver {
				continue
			}
			body, err := envelope(ctx, s.cfg.Render, ws, t, e)
			if err != nil {
				return n, fmt.Errorf("event %s: %w", e.ID, err)
			}
			// A new task id: the first delivery's task may still be
			// archived or retained under the plain one.
			if err := s.enqueue(ctx, taskID(ws, ep, e.ID)+tag, task{Workspace: ws, Endpoint: ep, EventID: e.ID,
				Type: t, Body: body}); err != nil {
				return n, err
			}
			n++
		}
		after = page[len(page)-1].ID
	}
	return n, nil
}
