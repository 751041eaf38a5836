package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/saml/mail/mailtest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

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

func TestOutboxRecordsTheMessage(t *testing.T) {
	store := redistest.NewStore(t)
	want := testMail()
	if err := mail.NewOutbox(store).Send(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	got := onlyMail(t, store)
	if got.ID == "" || got.To != want.To || got.Subject != want.Subject || got.Text != want.Text || got.HTML != want.HTML {
		t.Errorf("outbox has %+v, want the message sent", got)
	}
	if got.Status != mail.StatusSent {
		t.Errorf("status = %q, want %q", got.Status, mail.StatusSent)
	}
}

func TestNewPicksOutboxWithoutSMTPHost(t *testing.T) {
	store := redistest.NewStore(t)
	s, err := mail.New(store, nil, mail.SMTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*mail.Outbox); !ok {
		t.Fatalf("New without host = %T, want *mail.Outbox", s)
	}
	srv := mailtest.Start(t, mailtest.Options{})
	s, err = mail.New(store, nil, srv.Config("noreply@sj.example"))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := s.(*mail.Delivering)
	if !ok {
		t.Fatalf("New with host = %T, want *mail.Delivering", s)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	if _, err := mail.New(store, nil, mail.SMTPConfig{Host: "smtp.example", TLS: "bogus"}); err == nil {
		t.Fatal("New accepted an invalid configuration")
	}
}

func newDelivering(t *testing.T, store storage.Store, srv *mailtest.Server, policy mail.RetryPolicy) (*mail.Delivering, *bytes.Buffer) {
	t.Helper()
	smtp, err := mail.NewSMTP(srv.Config("noreply@sj.example"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d := mail.NewDelivering(store, smtp, slog.New(slog.NewJSONHandler(&logs, nil)), policy)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d, &logs
}

func flush(t *testing.T, d *mail.Delivering) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func TestDeliveringSendsAndRecordsSent(t *testing.T) {
	store := redistest.NewStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	d, _ := newDelivering(t, store, srv, mail.RetryPolicy{})
	if err := d.Send(context.Background(), testMail()); err != nil {
		t.Fatal(err)
	}
	flush(t, d)
	got := srv.Next(context.Background(), t)
	if got.Subject != testMail().Subject {
		t.Errorf("delivered subject %q", got.Subject)
	}
	if m := onlyMail(t, store); m.Status != mail.StatusSent || m.Error != "" {
		t.Errorf("outbox record = %q %q, want sent", m.Status, m.Error)
	}
}

func TestDeliveringRetriesTransientFailures(t *testing.T) {
	store := redistest.NewStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(451)
	d, logs := newDelivering(t, store, srv, mail.RetryPolicy{Attempts: 3, Backoff: 10 * time.Millisecond})
	if err := d.Send(context.Background(), testMail()); err != nil {
		t.Fatal(err)
	}
	flush(t, d)
	if n := srv.Attempts(); n != 3 {
		t.Errorf("server saw %d attempts, want 3", n)
	}
	m := onlyMail(t, store)
	if m.Status != mail.StatusFailed || !strings.Contains(m.Error, "451") {
		t.Errorf("outbox record = %q %q, want failed with the 451 reply", m.Status, m.Error)
	}
	if !strings.Contains(logs.String(), `"mail delivery failed"`) || !strings.Contains(logs.String(), m.ID) {
		t.Errorf("no warning naming the message in the log:\n%s", logs)
	}
	if strings.Contains(logs.String(), testMail().To) {
		t.Errorf("the log names the recipient:\n%s", logs)
	}
}

func TestDeliveringSucceedsOnALaterAttempt(t *testing.T) {
	store := redistest.NewStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(421)
	// The transport below lets the server accept from the second try on.
	smtp, err := mail.NewSMTP(srv.Config("noreply@sj.example"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &healingTransport{next: smtp, heal: func() { srv.Reject(0) }}
	d := mail.NewDelivering(store, tr, nil, mail.RetryPolicy{Attempts: 4, Backoff: 10 * time.Millisecond})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	if err := d.Send(context.Background(), testMail()); err != nil {
		t.Fatal(err)
	}
	flush(t, d)
	if n := srv.Attempts(); n != 2 {
		t.Errorf("server saw %d attempts, want 2", n)
	}
	if m := onlyMail(t, store); m.Status != mail.StatusSent {
		t.Errorf("outbox record = %q %q, want sent", m.Status, m.Error)
	}
	srv.Next(context.Background(), t)
}

// healingTransport calls heal after the first failed attempt.
type healingTransport struct {
	next   mail.Sender
	heal   func()
	healed bool
}

func (h *healingTransport) Send(ctx context.Context, m storage.Mail) error {
	err := h.next.Send(ctx, m)
	if err != nil && !h.healed {
		h.healed = true
		h.heal()
	}
	return err
}

func TestDeliveringDoesNotRetryPermanentFailures(t *testing.T) {
	store := redistest.NewStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(550)
	d, _ := newDelivering(t, store, srv, mail.RetryPolicy{Attempts: 4, Backoff: 10 * time.Millisecond})
	if err := d.Send(context.Background(), testMail()); err != nil {
		t.Fatal(err)
	}
	flush(t, d)
	if n := srv.Attempts(); n != 1 {
		t.Errorf("server saw %d attempts, want 1", n)
	}
	if m := onlyMail(t, store); m.Status != mail.StatusFailed || !strings.Contains(m.Error, "550") {
		t.Errorf("outbox record = %q %q, want failed with the 550 reply", m.Status, m.Error)
	}
}

func TestDeliveringCloseGivesUpAndRecordsIt(t *testing.T) {
	store := redistest.NewStore(t)
	srv := mailtest.Start(t, mailtest.Options{})
	srv.Reject(451)
	// A long backoff: the delivery is waiting to retry when Close comes.
	d, _ := newDelivering(t, store, srv, mail.RetryPolicy{Attempts: 5, Backoff: time.Hour})
	if err := d.Send(context.Background(), testMail()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // do not wait for deliveries in flight
	if err := d.Close(ctx); err == nil {
		t.Fatal("Close with a cancelled context reported that everything was delivered")
	}
	m := onlyMail(t, store)
	if m.Status != mail.StatusFailed || !strings.Contains(m.Error, "gave up") {
		t.Errorf("outbox record = %q %q, want failed (gave up)", m.Status, m.Error)
	}
	if err := d.Send(context.Background(), testMail()); err != mail.ErrClosed {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}
