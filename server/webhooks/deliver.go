package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/scimjit/scimjit/server/netguard"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
)

// newClient is the delivery client: direct connections through the
// netguard dialer, no redirects followed (the 3xx is the answer),
// timeout per attempt.
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	netguard.Direct(tr, timeout, allowPrivate)
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// CheckURL reports why u cannot be an endpoint URL: it must be absolute
// https (http too with allowPrivate), without user info or fragment.
func CheckURL(u string, allowPrivate bool) error {
	p, err := url.Parse(u)
	switch {
	case err != nil || p.Host == "" || !p.IsAbs():
		return errors.New("url must be an absolute URL")
	case p.Scheme != "https" && !(allowPrivate && p.Scheme == "http"):
		return errors.New("url must use https (http only with --webhooks-allow-private)")
	case p.User != nil:
		return errors.New("url must not carry credentials")
	case p.Fragment != "":
		return errors.New("url must not have a fragment")
	}
	return nil
}

// deliver is the queue handler of TaskType: one attempt.
func (s *Service) deliver(ctx context.Context, payload []byte) error {
	var t task
	if err := json.Unmarshal(payload, &t); err != nil {
		return queue.Permanent(fmt.Errorf("webhook task: %w", err))
	}
	w, err := s.cfg.Store.GetWebhook(ctx, t.Workspace, t.Endpoint)
	if errors.Is(err, storage.ErrNotFound) {
		return nil // endpoint deleted: nothing to deliver to
	}
	if err != nil {
		return err
	}
	if !w.Enabled {
		return queue.Permanent(errors.New("endpoint disabled"))
	}
	res := s.post(ctx, w, t)
	res.attempt.EventID, res.attempt.EventType, res.attempt.Attempt = t.EventID, t.Type, queue.Attempt(ctx)
	if err := s.cfg.Store.AppendWebhookAttempt(ctx, t.Workspace, t.Endpoint, res.attempt); err != nil &&
		!errors.Is(err, storage.ErrNotFound) {
		s.log.WarnContext(ctx, "webhooks: record attempt", "workspace", t.Workspace, "endpoint", t.Endpoint, "err", err)
	}
	s.cfg.Observe(res.outcome)
	if res.outcome == "gone" {
		s.disable(ctx, t.Workspace, w.ID)
	}
	return res.err
}

// result is one attempt's record, outcome (Config.Observe) and the
// handler's answer to the queue.
type result struct {
	attempt storage.WebhookAttempt
	outcome string
	err     error
}

// post signs and sends one attempt.
func (s *Service) post(ctx context.Context, w storage.Webhook, t task) result {
	now := time.Now()
	fail := func(outcome string, err error) result {
		return result{attempt: storage.WebhookAttempt{Time: now, Error: err.Error()}, outcome: outcome, err: err}
	}
	client, allowPrivate := s.client, s.cfg.AllowPrivate
	if s.own != nil && w.URL == s.cfg.OwnReceiver {
		client, allowPrivate = s.own, true
	}
	if err := CheckURL(w.URL, allowPrivate); err != nil {
		return fail("refused", queue.Permanent(err))
	}
	secrets, err := signingSecrets(w, now, s.cfg.SecretKey)
	if err == nil && len(secrets) == 0 {
		err = errors.New("endpoint has no signing secret")
	}
	if err != nil {
		return fail("error", err)
	}
	sig, err := sign(secrets, t.EventID, now, t.Body)
	if err != nil {
		return fail("error", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(t.Body))
	if err != nil {
		return fail("refused", queue.Permanent(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "scimjit")
	req.Header.Set("webhook-id", t.EventID)
	req.Header.Set("webhook-timestamp", timestampHeader(now))
	req.Header.Set("webhook-signature", sig)
	resp, err := client.Do(req)
	latency := time.Since(now)
	if err != nil {
		r := fail("failed", err)
		if _, ok := errors.AsType[*netguard.RefusedError](err); ok {
			r.outcome = "refused"
		}
		r.attempt.Latency = latency
		return r
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
	_ = resp.Body.Close()
	r := result{attempt: storage.WebhookAttempt{Time: now, Status: resp.StatusCode, Latency: latency}}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		r.outcome = "delivered"
		return r
	case code == http.StatusGone:
		r.outcome, r.err = "gone", queue.Permanent(errors.New("410 Gone: endpoint disabled"))
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		r.outcome, r.err = "failed", fmt.Errorf("HTTP %d", code)
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
			r.err = queue.RetryAfter(r.err, d)
		}
	default:
		r.outcome, r.err = "failed", fmt.Errorf("HTTP %d", code)
	}
	r.attempt.Error = r.err.Error()
	return r
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// disable turns an endpoint off after a 410 and records it in the
// workspace's events.
func (s *Service) disable(ctx context.Context, ws, id string) {
	_, err := s.cfg.Store.UpdateWebhook(ctx, ws, id, func(w *storage.Webhook) error {
		w.Enabled, w.DisabledReason = false, "the receiver answered 410 Gone"
		return nil
	})
	if err == nil {
		_, err = s.cfg.Store.AppendEvents(ctx, ws, storage.Event{Type: "webhook.endpoint.disabled", Actor: "webhooks",
			Detail: map[string]string{"endpoint": id, "reason": "410 Gone"}})
	}
	if err != nil {
		s.log.WarnContext(ctx, "webhooks: disable endpoint after 410", "workspace", ws, "endpoint", id, "err", err)
	}
}
