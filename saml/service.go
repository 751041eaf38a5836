package saml

import (
	"crypto/rsa"
	"crypto/x509"
	"log/slog"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// Config is what the SAML service needs; cmd and tests build it.
type Config struct {
	Store  storage.Store
	Logger *slog.Logger
	// BaseURL is the public base URL (scheme, host, optional path prefix).
	BaseURL *url.URL
	// Key and Certificate are the SP's signing/encryption key pair. When nil
	// the service loads or creates one shared through the store.
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate
	// ClockSkew is the allowed clock difference with IdPs.
	ClockSkew time.Duration
	// SessionTTL is how long a browser session lives.
	SessionTTL time.Duration
	// VerifyTTL is how long an emailed join link is valid (default 30m).
	VerifyTTL time.Duration
	// Demo enables the built-in demo IdP at /demo/idp (demo mode only).
	Demo bool
}

// Service serves the SAML, session, join and switch endpoints.
type Service struct {
	cfg Config
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	return &Service{cfg: cfg}, nil
}

// Register adds the service's routes (/saml/:ws/..., /api/v1/me, /, /join,
// /switch, /logout, /demo/...) to e.
func (s *Service) Register(e *echo.Echo) {
	// TODO(saml helper): routes.
}
