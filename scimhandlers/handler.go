package scimhandlers

import (
	"log/slog"
	"net/http"

	"github.com/scimjit/scimjit/storage"
)

// Config is what the SCIM handler needs.
type Config struct {
	Store  storage.Store
	Logger *slog.Logger
	// BaseURL is the public base URL without a trailing slash, e.g.
	// "https://scimjit.example.com"; resource locations are built from it.
	BaseURL string
	// MaxResults caps count per page (default 100).
	MaxResults int
}

// Handler serves every request whose path starts with /scim/v2/{workspace}.
type Handler struct {
	cfg Config
}

// New returns the SCIM handler.
func New(cfg Config) *Handler {
	if cfg.MaxResults <= 0 {
		cfg.MaxResults = 100
	}
	return &Handler{cfg: cfg}
}

// ServeHTTP handles /scim/v2/{workspace}/... (the full, unstripped path).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// TODO(scim helper): replace this placeholder.
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(http.StatusNotImplemented)
	_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"501","detail":"not implemented"}`))
}
