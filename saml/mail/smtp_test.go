package mail_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/saml/mail/mailtest"
	"github.com/scimjit/scimjit/storage"
)

func testMail() storage.Mail {
	return storage.Mail{
		To:      "Jane.Doe@Example.com",
		Subject: "Confirm joining Finance – scimjit",
		Text:    "Open https://sj.example/join/acc-1.finance.AbC_dEf-0123456789?x=1 to confirm.\n",
		HTML:    `<p><a href="https://sj.example/join/acc-1.finance.AbC_dEf-0123456789">Confirm</a></p>`,
		Time:    time.Now(),
	}
}

func TestSMTPDeliversInEveryTLSMode(t *testing.T) {
	cases := []struct {
		name string
		opts mailtest.Options
	}{
		{"plain", mailtest.Options{TLS: mail.TLSNone}},
		{"starttls with auth", mailtest.Options{TLS: mail.TLSStartTLS, Username: "relay", Password: "s3cret"}},
		{"implicit tls with auth", mailtest.Options{TLS: mail.TLSImplicit, Username: "relay", Password: "s3cret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.Start(t, tc.opts)
			s, err := mail.NewSMTP(srv.Config("scimjit <noreply@sj.example>"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			want := testMail()
			if err := s.Send(ctx, want); err != nil {
				t.Fatalf("send: %v", err)
			}
			got := srv.Next(ctx, t)
			if got.From != "noreply@sj.example" {
				t.Errorf("MAIL FROM = %q", got.From)
			}
			if len(got.To) != 1 || got.To[0] != want.To {
				t.Errorf("RCPT TO = %q, want [%q]", got.To, want.To)
			}
			if got.Subject != want.Subject {
				t.Errorf("subject = %q, want %q", got.Subject, want.Subject)
			}
			if strings.TrimSpace(got.Text) != strings.TrimSpace(want.Text) {
				t.Errorf("text = %q, want %q", got.Text, want.Text)
			}
			if strings.TrimSpace(got.HTML) != want.HTML {
				t.Errorf("html = %q, want %q", got.HTML, want.HTML)
			}
		})
	}
}

func TestSMTPWrongPasswordIsPermanent(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{TLS: mail.TLSStartTLS, Username: "relay", Password: "right"})
	cfg := srv.Config("noreply@sj.example")
	cfg.Password = "wrong"
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), testMail())
	var perm *mail.PermanentError
	if !errors.As(err, &perm) {
		t.Fatalf("err = %v, want a PermanentError", err)
	}
	if strings.Contains(err.Error(), "right") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("error text leaks the password: %v", err)
	}
}

func TestSMTPReplyClassesDecideRetry(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	s, err := mail.NewSMTP(srv.Config("noreply@sj.example"))
	if err != nil {
		t.Fatal(err)
	}
	var perm *mail.PermanentError

	srv.Reject(451)
	err = s.Send(context.Background(), testMail())
	if err == nil || errors.As(err, &perm) {
		t.Fatalf("451: err = %v, want a transient error", err)
	}
	srv.Reject(550)
	err = s.Send(context.Background(), testMail())
	if !errors.As(err, &perm) {
		t.Fatalf("550: err = %v, want a PermanentError", err)
	}
	if strings.Contains(err.Error(), "Example.com") {
		t.Errorf("error text names the recipient: %v", err)
	}
	if srv.Attempts() != 2 {
		t.Errorf("server saw %d DATA commands, want 2", srv.Attempts())
	}
}

func TestSMTPStartTLSIsMandatory(t *testing.T) {
	// A server that does not offer STARTTLS: the starttls mode must not
	// fall back to clear text.
	srv := mailtest.Start(t, mailtest.Options{TLS: mail.TLSNone})
	cfg := srv.Config("noreply@sj.example")
	cfg.TLS = mail.TLSStartTLS
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMail()); err == nil {
		t.Fatal("sent in clear text although starttls was required")
	}
	if srv.Attempts() != 0 {
		t.Errorf("server saw %d DATA commands, want 0", srv.Attempts())
	}
}

func TestSMTPUnreachableIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there any more
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: mail.TLSNone, From: "noreply@sj.example", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), testMail())
	var perm *mail.PermanentError
	if err == nil || errors.As(err, &perm) {
		t.Fatalf("err = %v, want a transient error", err)
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     mail.SMTPConfig
		wantErr []string
	}{
		{"no smtp", mail.SMTPConfig{}, nil},
		{"minimal", mail.SMTPConfig{Host: "smtp.example", From: "a@b.example"}, nil},
		{"named from", mail.SMTPConfig{Host: "smtp.example", From: "scimjit <a@b.example>", TLS: mail.TLSImplicit}, nil},
		{"everything wrong", mail.SMTPConfig{Host: "smtp.example", Port: 70000, TLS: "ssl", Password: "x"},
			[]string{"tls must be", "port 70000", "from address is required", "password given without a username"}},
		{"bad from", mail.SMTPConfig{Host: "smtp.example", From: "not an address"}, []string{"is invalid"}},
		{"credentials in clear", mail.SMTPConfig{Host: "smtp.example", From: "a@b.example", TLS: mail.TLSNone, Username: "u", Password: "p"},
			[]string{"clear text"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing %q", err, w)
				}
			}
		})
	}
}
