package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/scimjit/scimjit/storage"
)

// TLS modes of an SMTP connection.
const (
	// TLSNone sends in clear text (a relay on the same host only).
	TLSNone = "none"
	// TLSStartTLS upgrades a plain connection with STARTTLS and refuses to
	// go on without it (RFC 3207). The default; port 587 by default.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte ("SMTPS", RFC 8314
	// section 3.3); port 465 by default.
	TLSImplicit = "tls"
)

// SMTPConfig configures the SMTP transport. cmd fills it from --smtp-* flags.
type SMTPConfig struct {
	// Host of the SMTP server; empty means "no SMTP" (demo outbox).
	Host string
	// Port; 0 picks 587 for starttls, 465 for tls, 25 for none.
	Port int
	// TLS is TLSNone, TLSStartTLS (default when empty) or TLSImplicit.
	TLS string
	// Username and Password, when Username is set, authenticate with the
	// strongest mechanism the server offers (SCRAM, CRAM-MD5, PLAIN, LOGIN;
	// PLAIN and LOGIN only over TLS).
	Username string
	Password string
	// From is the sender address, "Name <addr@example.com>" or a bare address.
	From string
	// Timeout bounds one connection attempt (dial, TLS, AUTH and the
	// transaction); default 15s.
	Timeout time.Duration
	// HELO is the name sent in EHLO (default: this host's name).
	HELO string
	// TLSConfig overrides the TLS settings (a private CA in RootCAs, say).
	// ServerName defaults to Host.
	TLSConfig *tls.Config
}

func (c SMTPConfig) withDefaults() SMTPConfig {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.Port == 0 {
		switch c.TLS {
		case TLSImplicit:
			c.Port = gomail.DefaultPortSSL
		case TLSNone:
			c.Port = gomail.DefaultPort
		default:
			c.Port = gomail.DefaultPortTLS
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = gomail.DefaultTimeout
	}
	return c
}

// Validate reports every problem of the configuration at once. An empty
// Host is valid (no SMTP).
func (c SMTPConfig) Validate() error {
	if c.Host == "" {
		return nil
	}
	c = c.withDefaults()
	var errs []error
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		errs = append(errs, fmt.Errorf("smtp tls must be none, starttls or tls, not %q", c.TLS))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("smtp port %d out of range", c.Port))
	}
	if c.From == "" {
		errs = append(errs, errors.New("smtp from address is required"))
	} else if err := gomail.NewMsg().From(c.From); err != nil {
		errs = append(errs, fmt.Errorf("smtp from address %q is invalid", c.From))
	}
	if c.Username == "" && c.Password != "" {
		errs = append(errs, errors.New("smtp password given without a username"))
	}
	if c.Username != "" && c.TLS == TLSNone {
		errs = append(errs, errors.New("smtp credentials need tls=starttls or tls (they would travel in clear text)"))
	}
	return errors.Join(errs...)
}

// SMTP delivers messages to an SMTP server, one connection per message.
type SMTP struct {
	cfg SMTPConfig
}

var _ Sender = (*SMTP)(nil)

// NewSMTP checks cfg and returns the transport.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: smtp host is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return &SMTP{cfg: cfg.withDefaults()}, nil
}

func (s *SMTP) client() (*gomail.Client, error) {
	cfg := s.cfg
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tlsConf = cfg.TLSConfig.Clone()
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = cfg.Host
	}
	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSConfig(tlsConf),
	}
	switch cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	if cfg.Username != "" {
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username),
			gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: smtp client: %w", err)
	}
	return c, nil
}

// message converts m to a go-mail message: text/plain, with the HTML as an
// alternative part when present.
func (s *SMTP) message(m storage.Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return nil, fmt.Errorf("mail: from address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: recipient address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageID()
	if m.Time.IsZero() {
		msg.SetDate()
	} else {
		msg.SetDateWithValue(m.Time)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// Send delivers m in one attempt (no retry: see Delivery).
func (s *SMTP) Send(ctx context.Context, m storage.Mail) error {
	msg, err := s.message(m)
	if err != nil {
		return &PermanentError{Err: err}
	}
	c, err := s.client()
	if err != nil {
		return &PermanentError{Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		if permanentSMTP(err) {
			return &PermanentError{Err: fmt.Errorf("mail: smtp: %s", describe(err))}
		}
		return fmt.Errorf("mail: smtp: %s", describe(err))
	}
	return nil
}

// PermanentError marks a failure that a retry cannot fix: an invalid
// address, or an SMTP 5xx reply (RFC 5321 section 4.2.1).
type PermanentError struct{ Err error }

// Error returns the wrapped error's text.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// permanentSMTP reports a 5xx reply: "permanent negative completion"
// (RFC 5321 section 4.2.1). 4xx replies and network errors are transient.
func permanentSMTP(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return !se.IsTemp() && se.ErrorCode() >= 500 && se.ErrorCode() < 600
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 500 && te.Code < 600
	}
	return false
}

// describe renders err without the recipient addresses go-mail's SendError
// lists (personal data must not reach logs): the SMTP reply code and text,
// or the network error.
func describe(err error) string {
	var se *gomail.SendError
	if errors.As(err, &se) {
		var b strings.Builder
		b.WriteString(se.Reason.String())
		if se.ErrorCode() != 0 {
			fmt.Fprintf(&b, " (reply %d", se.ErrorCode())
			if es := se.EnhancedStatusCode(); es != "" {
				fmt.Fprintf(&b, " %s", es)
			}
			b.WriteString(")")
		}
		return b.String()
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		stage := "rejected"
		if strings.Contains(err.Error(), "SMTP AUTH failed") {
			stage = "authentication failed"
		}
		return fmt.Sprintf("%s (reply %d)", stage, te.Code)
	}
	return err.Error()
}
