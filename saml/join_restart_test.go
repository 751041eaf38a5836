package saml_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/saml/mail/mailtest"
	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/storage"
)

// TestJoinMailSurvivesARestartWhileSMTPIsDown: the SMTP server is down
// when a join sends its link; the server stops (its task queue shuts down)
// with the message still queued; SMTP comes up and a new server starts on
// the same Redis: the mail arrives with a working link, and the outbox
// shows the failed attempts and the successful one.
func TestJoinMailSurvivesARestartWhileSMTPIsDown(t *testing.T) {
	je := newJoinEnv(t, joinOptions{smtpDown: true, retries: 1000})
	je.workspace(t, "fin", nil)
	je.workspace(t, "hr", nil)
	b := signInToA(t, je)
	pendingJoin(t, b, "hr", janeInHR)

	// The first process tries, fails, and stops with the message queued.
	outbox := func() storage.Mail {
		t.Helper()
		ms, err := je.Store.ListMail(t.Context(), 10)
		if err != nil || len(ms) != 1 {
			t.Fatalf("outbox = %+v, %v; want one message", ms, err)
		}
		return ms[0]
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(outbox().Attempts) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second attempt: %+v", outbox())
		}
		time.Sleep(20 * time.Millisecond) // polling the outbox record
	}
	je.Stop()
	before := outbox()
	if before.Status != mail.StatusQueued {
		t.Fatalf("after the stop: status %q, want queued", before.Status)
	}
	for _, a := range before.Attempts {
		if a.Outcome != mail.StatusFailed || !strings.Contains(a.Error, "connection refused") {
			t.Fatalf("attempt %+v, want failed with connection refused", a)
		}
	}

	// SMTP comes up; a new process starts on the same Redis.
	smtp := mailtest.Start(t, mailtest.Options{Addr: je.smtpAddr})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(je.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	mctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	link := joinLink(t, smtp.Next(mctx, t))
	if _, err := je.Store.GetVerification(t.Context(), account(t, je, jane.Email).ID, tokenHash(tokenOf(link))); err != nil {
		t.Fatalf("the delivered link has no pending join: %v", err)
	}
	deadline = time.Now().Add(20 * time.Second)
	after := outbox()
	for after.Status == mail.StatusQueued && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling the outbox record
		after = outbox()
	}
	n := len(after.Attempts)
	if after.Status != mail.StatusSent || n <= len(before.Attempts) || after.Attempts[n-1].Outcome != mail.StatusSent {
		t.Fatalf("outbox after the restart = %q %+v, want the failed attempts, then sent", after.Status, after.Attempts)
	}
	for i, a := range after.Attempts[:n-1] {
		if a.Outcome != mail.StatusFailed || a.Error == "" {
			t.Errorf("attempt %d = %+v, want failed with its error", i, a)
		}
	}
	if smtp.Attempts() != 1 {
		t.Errorf("the SMTP server saw %d messages, want 1", smtp.Attempts())
	}
}
