package mail_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/saml/mail/mailtest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// fastQueue is a queue on store's Redis with short polls and a retry
// schedule in milliseconds (retries asynq runs once their second begins).
func fastQueue(t *testing.T, store *redisstore.Store, retries int) *queue.Queue {
	t.Helper()
	q, err := queue.New(store.Client(), queue.Config{PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
		Backoff: queue.Backoff{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, Retries: retries}})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func startQueue(t *testing.T, q *queue.Queue) {
	t.Helper()
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Shutdown)
}

// newDelivery returns a started Delivery over SMTP to srv and the log it
// writes.
func newDelivery(t *testing.T, store *redisstore.Store, srv *mailtest.Server, retries int) (*mail.Delivery, *queue.Queue, *bytes.Buffer) {
	t.Helper()
	smtp, err := mail.NewSMTP(srv.Config("noreply@sj.example"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	q := fastQueue(t, store, retries)
	d := mail.NewDelivery(store, q, smtp, slog.New(slog.NewJSONHandler(&logs, nil)))
	startQueue(t, q)
	return d, q, &logs
}

func onlyMail(t *testing.T, store storage.Store) storage.Mail {
	t.Helper()
	ms, err := store.ListMail(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("outbox has %d messages, want 1: %+v", len(ms), ms)
	}
	return ms[0]
}

// settled waits until the only outbox message is no longer "queued".
func settled(t *testing.T, store storage.Store) storage.Mail {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := onlyMail(t, store)
		if m.Status != mail.StatusQueued {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message still queued: %+v", m)
		}
		time.Sleep(20 * time.Millisecond) // polling the outbox record
	}
}

// outcomes lists the attempts' outcomes and checks their times ascend.
func outcomes(t *testing.T, m storage.Mail) string {
	t.Helper()
	var out []string
	for i, a := range m.Attempts {
		if a.Time.IsZero() || i > 0 && a.Time.Before(m.Attempts[i-1].Time) {
			t.Errorf("attempt %d time %v out of order: %+v", i, a.Time, m.Attempts)
		}
		if (a.Outcome == mail.StatusFailed) != (a.Error != "") {
			t.Errorf("attempt %d: outcome %q with error %q", i, a.Outcome, a.Error)
		}
		out = append(out, a.Outcome)
	}
	return strings.Join(out, " ")
}

func TestDeliverySendsAndRecordsTheAttempt(t *testing.T) {
	store := redistest.NewRedisStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	d, _, _ := newDelivery(t, store, srv, 3)
	if err := d.Send(t.Context(), testMail()); err != nil {
		t.Fatal(err)
	}
	got := srv.Next(t.Context(), t)
	if got.Subject != testMail().Subject || len(got.To) != 1 || got.To[0] != testMail().To {
		t.Errorf("delivered %q to %v", got.Subject, got.To)
	}
	m := settled(t, store)
	if m.Status != mail.StatusSent || m.Error != "" || outcomes(t, m) != "sent" {
		t.Errorf("outbox record = %q %q %+v, want sent after one attempt", m.Status, m.Error, m.Attempts)
	}
	if d.OutboxOnly() {
		t.Error("OutboxOnly with an SMTP transport")
	}
}

func TestDeliveryRetriesUntilTheServerAccepts(t *testing.T) {
	store := redistest.NewRedisStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(451)
	d, _, logs := newDelivery(t, store, srv, 10)
	if err := d.Send(t.Context(), testMail()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(onlyMail(t, store).Attempts) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second attempt: %+v", onlyMail(t, store))
		}
		time.Sleep(20 * time.Millisecond) // polling the outbox record
	}
	srv.Reject(0)
	srv.Next(t.Context(), t)
	m := settled(t, store)
	o := outcomes(t, m)
	if m.Status != mail.StatusSent || !strings.HasPrefix(o, "failed failed") || !strings.HasSuffix(o, " sent") {
		t.Fatalf("outbox record = %q, attempts %q, want failed ones then sent", m.Status, o)
	}
	if !strings.Contains(m.Attempts[0].Error, "451") {
		t.Errorf("first attempt error %q, want the 451 reply", m.Attempts[0].Error)
	}
	if strings.Contains(logs.String(), testMail().To) {
		t.Errorf("the log names the recipient:\n%s", logs)
	}
}

func TestDeliveryDoesNotRetryPermanentFailures(t *testing.T) {
	store := redistest.NewRedisStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(550)
	d, q, logs := newDelivery(t, store, srv, 10)
	if err := d.Send(t.Context(), testMail()); err != nil {
		t.Fatal(err)
	}
	m := settled(t, store)
	if m.Status != mail.StatusFailed || !strings.Contains(m.Error, "550") || outcomes(t, m) != "failed" {
		t.Fatalf("outbox record = %q %q %+v, want failed once with the 550 reply", m.Status, m.Error, m.Attempts)
	}
	time.Sleep(300 * time.Millisecond) // no further attempt may come
	if n := srv.Attempts(); n != 1 {
		t.Errorf("server saw %d attempts, want 1", n)
	}
	f, err := q.FailedTask(t.Context(), m.ID)
	if err != nil || f.Type != mail.TaskSend {
		t.Errorf("archived task = %+v, %v; want the message's task", f, err)
	}
	if !strings.Contains(logs.String(), `"mail delivery failed"`) || !strings.Contains(logs.String(), m.ID) {
		t.Errorf("no warning naming the message in the log:\n%s", logs)
	}
	if strings.Contains(logs.String(), testMail().To) {
		t.Errorf("the log names the recipient:\n%s", logs)
	}
}

func TestDeliveryGivesUpWhenRetriesRunOut(t *testing.T) {
	store := redistest.NewRedisStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(421)
	d, _, _ := newDelivery(t, store, srv, 1)
	if err := d.Send(t.Context(), testMail()); err != nil {
		t.Fatal(err)
	}
	m := settled(t, store)
	if m.Status != mail.StatusFailed || !strings.Contains(m.Error, "421") || outcomes(t, m) != "failed failed" {
		t.Fatalf("outbox record = %q %q %+v, want failed after two attempts", m.Status, m.Error, m.Attempts)
	}
}

func TestDeliveryStopsWhenTheMessageExpires(t *testing.T) {
	store := redistest.NewRedisStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(451)
	d, _, _ := newDelivery(t, store, srv, 1000)
	msg := testMail()
	msg.Expires = time.Now().Add(1500 * time.Millisecond)
	if err := d.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	m := settled(t, store)
	if m.Status != mail.StatusFailed || len(m.Attempts) < 2 {
		t.Fatalf("outbox record = %q %+v, want failed after the retries up to the expiry", m.Status, m.Attempts)
	}
	if last := m.Attempts[len(m.Attempts)-1]; last.Time.Before(msg.Expires.Add(-time.Second)) {
		t.Errorf("gave up at %v, long before the expiry %v", last.Time, msg.Expires)
	}
	n := srv.Attempts()
	time.Sleep(300 * time.Millisecond) // no further attempt may come
	if srv.Attempts() != n {
		t.Errorf("attempts went on after the message failed")
	}
}

func TestSweepEnqueuesAStrandedMessage(t *testing.T) {
	store := redistest.NewRedisStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	d, _, _ := newDelivery(t, store, srv, 3)
	// Stored, never enqueued: what a crash between the two writes leaves.
	msg := testMail()
	msg.Status = mail.StatusQueued
	if _, err := store.AppendMail(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := srv.Attempts(); n != 0 {
		t.Fatalf("%d attempts before the sweep", n)
	}
	for range 3 {
		if err := d.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	srv.Next(t.Context(), t)
	if m := settled(t, store); m.Status != mail.StatusSent || outcomes(t, m) != "sent" {
		t.Fatalf("outbox record = %q %+v, want sent once", m.Status, m.Attempts)
	}
	if err := d.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a sweep after delivery may not send again
	if n := srv.Attempts(); n != 1 {
		t.Errorf("server saw %d attempts, want 1", n)
	}
}

// The demo transport goes through the same queue, on the embedded store.
func TestDeliveryToTheOutboxOnly(t *testing.T) {
	store, err := redisstore.OpenEmbedded(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	q := fastQueue(t, store, 3)
	d := mail.NewDelivery(store, q, mail.Outbox{}, nil)
	if !d.OutboxOnly() {
		t.Error("OutboxOnly = false with the Outbox transport")
	}
	startQueue(t, q)
	want := testMail()
	if err := d.Send(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	got := settled(t, store)
	if got.ID == "" || got.To != want.To || got.Subject != want.Subject || got.Text != want.Text || got.HTML != want.HTML {
		t.Errorf("outbox has %+v, want the message sent", got)
	}
	if got.Status != mail.StatusSent || outcomes(t, got) != "sent" {
		t.Errorf("outbox record = %q %+v, want sent after one attempt", got.Status, got.Attempts)
	}
}

func TestNewTransport(t *testing.T) {
	s, err := mail.NewTransport(mail.SMTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(mail.Outbox); !ok {
		t.Fatalf("NewTransport without host = %T, want mail.Outbox", s)
	}
	srv := mailtest.Start(t, mailtest.Options{})
	if s, err = mail.NewTransport(srv.Config("noreply@sj.example")); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*mail.SMTP); !ok {
		t.Fatalf("NewTransport with host = %T, want *mail.SMTP", s)
	}
	if _, err := mail.NewTransport(mail.SMTPConfig{Host: "smtp.example", TLS: "bogus"}); err == nil {
		t.Fatal("NewTransport accepted an invalid configuration")
	}
}

// attemptsDown fails every AddMailAttempt while down is set.
type attemptsDown struct {
	storage.Store
	down atomic.Bool
}

func (s *attemptsDown) AddMailAttempt(ctx context.Context, id string, a storage.MailAttempt, status, errText string) error {
	if s.down.Load() {
		return fmt.Errorf("test: %w", storage.ErrUnavailable)
	}
	return s.Store.AddMailAttempt(ctx, id, a, status, errText)
}

func TestSweepRunsAgainATaskArchivedWhileQueued(t *testing.T) {
	rs := redistest.NewRedisStore(t)
	store := &attemptsDown{Store: rs}
	store.down.Store(true)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(451)
	smtp, err := mail.NewSMTP(srv.Config("noreply@sj.example"))
	if err != nil {
		t.Fatal(err)
	}
	q := fastQueue(t, rs, 1)
	d := mail.NewDelivery(store, q, smtp, nil)
	startQueue(t, q)
	if err := d.Send(t.Context(), testMail()); err != nil {
		t.Fatal(err)
	}
	// Both attempts failed and neither was recorded: archived, still queued.
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, err := q.Failed(t.Context(), 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(f) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("task not archived")
		}
		time.Sleep(20 * time.Millisecond) // polling the queue's archive
	}
	if m := onlyMail(t, rs); m.Status != mail.StatusQueued || len(m.Attempts) != 0 {
		t.Fatalf("outbox record = %q %+v, want queued without attempts", m.Status, m.Attempts)
	}
	store.down.Store(false)
	srv.Reject(0)
	if err := d.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Next(t.Context(), t)
	if m := settled(t, rs); m.Status != mail.StatusSent || outcomes(t, m) != "sent" {
		t.Fatalf("outbox record = %q %+v, want sent", m.Status, m.Attempts)
	}
}
