package saml

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// Defaults for zero Config durations.
const (
	DefaultClockSkew  = 2 * time.Minute
	DefaultSessionTTL = 12 * time.Hour
	DefaultVerifyTTL  = 30 * time.Minute
	// requestTTL is how long an SP-initiated AuthnRequest stays answerable.
	requestTTL = 10 * time.Minute
)

// Config is what the SAML service needs; cmd and tests build it.
type Config struct {
	Store  storage.Store
	Logger *slog.Logger
	// BaseURL is the public base URL (scheme, host, optional path prefix).
	BaseURL *url.URL
	// Key and Certificate are the SP's signing/encryption key pair (RSA, so
	// IdPs can encrypt assertions to it), from --saml-key-file and
	// --saml-cert-file. When nil, every process uses the key pairs stored
	// in Store (created by the first process; see LoadKeys and
	// RotateSPKey): the SP metadata, assertion decryption and the CSRF key
	// derive from them.
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate
	// SecretKey encrypts the stored private keys (empty: stored as PEM).
	SecretKey string
	// KeyRefresh is how often the stored key pairs are re-read (default
	// DefaultKeyRefresh), so a rotation reaches every process.
	KeyRefresh time.Duration
	// ClockSkew is the allowed clock difference with IdPs (default 2m). It
	// sets crewjam's package globals MaxClockSkew (= ClockSkew) and
	// MaxIssueDelay (= 90s + ClockSkew) once per process: the first New
	// wins, later calls in the same process keep the first value.
	ClockSkew time.Duration
	// SessionTTL is how long a browser session lives (default 12h).
	SessionTTL time.Duration
	// VerifyTTL is how long an emailed join link is valid (default 30m).
	VerifyTTL time.Duration
	// Demo enables the built-in demo IdP at /demo/idp (demo mode only).
	Demo bool
	// Mailer delivers join links (R8): it records them in the outbox and
	// queues their delivery (the server builds it on its task queue).
	// Required for joins: without it a join ends in an error page.
	Mailer *mail.Delivery

	// LoginLimit is how many SP-initiated sign-ins (GET
	// /saml/{ws}/login) one client network may start per minute in one
	// workspace (default DefaultLoginLimit).
	LoginLimit int
	// ACSClientLimit is how many SAML responses one client network may
	// post to the ACS per minute, in all workspaces together (default
	// DefaultACSClientLimit); ACSWorkspaceLimit how many a workspace's
	// ACS takes per minute from all clients (default
	// DefaultACSWorkspaceLimit). Both allow bursts of their size.
	ACSClientLimit    int
	ACSWorkspaceLimit int
	// ACSBodyLimit is the largest ACS request body in bytes (default
	// DefaultACSBodyLimit); a larger one gets a 413 page.
	ACSBodyLimit int64
}

// Service serves the SAML, session, join and switch endpoints. It is safe
// for concurrent use; nothing it keeps in memory is authoritative (the
// service provider cache is invalidated by Workspace.Version and the SP
// keys' version).
type Service struct {
	cfg    Config
	logger *slog.Logger

	// static is the configured key pair (Config.Key), nil when the key
	// pairs come from the store: then ring is the last read of them,
	// guarded by keysMu (keys).
	static *keyring
	keysMu sync.Mutex
	ring   *keyring

	mu  sync.Mutex
	sps map[string]cachedSP

	demo *demoIdP // nil unless cfg.Demo

}

type cachedSP struct {
	version int64 // the workspace's
	keys    int64 // the keyring's
	sp      *crewjam.ServiceProvider
}

var skewOnce sync.Once

// New builds the service: it checks cfg, fills defaults and, in demo mode,
// builds the demo IdP. Without a configured key pair the keys are read from
// the store when first needed (LoadKeys).
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("saml: config: Store is required")
	}
	if cfg.BaseURL == nil || cfg.BaseURL.Scheme == "" || cfg.BaseURL.Host == "" {
		return nil, errors.New("saml: config: BaseURL must be an absolute URL")
	}
	b := *cfg.BaseURL
	b.Path = strings.TrimRight(b.Path, "/")
	b.RawPath, b.RawQuery, b.Fragment = "", "", ""
	cfg.BaseURL = &b
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.VerifyTTL <= 0 {
		cfg.VerifyTTL = DefaultVerifyTTL
	}
	cfg.LoginLimit = positiveOr(cfg.LoginLimit, DefaultLoginLimit)
	cfg.ACSClientLimit = positiveOr(cfg.ACSClientLimit, DefaultACSClientLimit)
	cfg.ACSWorkspaceLimit = positiveOr(cfg.ACSWorkspaceLimit, DefaultACSWorkspaceLimit)
	cfg.ACSBodyLimit = positiveOr(cfg.ACSBodyLimit, DefaultACSBodyLimit)
	if (cfg.Key == nil) != (cfg.Certificate == nil) {
		return nil, errors.New("saml: config: Key and Certificate must be given together")
	}
	// crewjam's skew knobs are package globals (libraries.md §B.4): set
	// them once, before any request is served.
	skew := cfg.ClockSkew
	skewOnce.Do(func() {
		crewjam.MaxClockSkew = skew
		crewjam.MaxIssueDelay = 90*time.Second + skew
	})
	if cfg.KeyRefresh <= 0 {
		cfg.KeyRefresh = DefaultKeyRefresh
	}
	s := &Service{
		cfg:    cfg,
		logger: reqctx.NewLogger(cfg.Logger),
		sps:    map[string]cachedSP{},
	}
	if cfg.Key != nil {
		s.static = newKeyring(0, keyPair{key: cfg.Key, cert: cfg.Certificate})
	}
	if cfg.Demo {
		d, err := newDemoIdP(s)
		if err != nil {
			return nil, fmt.Errorf("saml: demo idp: %w", err)
		}
		s.demo = d
	}
	return s, nil
}

// Register adds every route of the service to e: SAML (/saml/:ws/...,
// Single Logout included),
// the session (/, /api/v1/me, /logout), join and switch, and in demo mode
// the demo IdP and outbox (/demo/...).
func (s *Service) Register(e *echo.Echo) {
	e.GET("/saml/:ws/metadata", s.handleMetadata)
	e.GET("/saml/:ws/login", s.handleLogin)
	e.POST("/saml/:ws/acs", s.handleACS, s.limitACS, s.limitACSBody)
	// Single Logout: unauthenticated and signature-checked like the ACS,
	// so within the ACS rate limits (slo.go).
	e.GET("/saml/:ws/slo", s.handleSLO, s.limitACS)
	e.POST("/saml/:ws/slo", s.handleSLO, s.limitACS)
	e.GET("/api/v1/me", s.handleMe)
	e.GET("/", s.handleHome)
	e.POST("/find-workspace", s.handleFind)
	e.POST("/logout", s.handleLogout)
	e.GET("/join/:token", s.handleJoinLink)
	e.POST("/join/confirm", s.handleJoinConfirm)
	e.POST("/join/resend", s.handleJoinResend)
	e.POST("/switch", s.handleSwitch)
	// The demo IdP, the demo outbox page and the demo webhook receiver
	// exist in demo mode only.
	if s.demo != nil {
		e.GET("/demo/idp", s.demo.handleForm)
		e.POST("/demo/idp", s.demo.handleSubmit)
		e.GET("/demo/idp/metadata", s.demo.handleMetadata)
		e.GET("/demo/idp/sso", s.demo.handleSSO)
		e.GET("/demo/outbox", s.handleDemoOutbox)
		e.GET("/demo/webhooks", s.handleDemoWebhooks)
		e.POST(DemoReceivePath, s.handleDemoWebhookReceive)
	}
}

// logWarn and logError log with the request's context, so the reqctx handler
// adds request_id and workspace.
func (s *Service) logWarn(c echo.Context, msg string, args ...any) {
	s.logger.WarnContext(c.Request().Context(), msg, args...)
}

func (s *Service) logError(c echo.Context, msg string, args ...any) {
	s.logger.ErrorContext(c.Request().Context(), msg, args...)
}

func (s *Service) logInfo(c echo.Context, msg string, args ...any) {
	s.logger.InfoContext(c.Request().Context(), msg, args...)
}

// url returns the absolute public URL for path p ("/saml/x/acs").
func (s *Service) url(p string) url.URL {
	u := *s.cfg.BaseURL
	u.Path = u.Path + p
	return u
}

// selfSigned makes an RSA-2048 key and a self-signed certificate valid for
// ten years (SAML metadata certificates are key containers; crewjam checks
// their validity window).
func selfSigned(cn string) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// urlString is s.url(p).String().
func (s *Service) urlString(p string) string {
	u := s.url(p)
	return u.String()
}
