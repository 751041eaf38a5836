package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// startup is the part of serve that needs Redis: connecting, loading the
// SAML SP keys, applying the bootstrap file, seeding the demo workspaces. Its run is the server's
// Config.Startup, so the server already listens (/healthz 200, /readyz 503)
// while Redis is unreachable, as when a container orchestrator starts both
// together, and run is retried with backoff until Redis answers.
type startup struct {
	store *redisstore.Store
	log   *slog.Logger
	// bootstrap is the parsed --bootstrap file (nil without one).
	bootstrap     *server.Bootstrap
	bootstrapFile string
	secrets       server.SecretSource
	demo          bool
	// srv is the server (set before it serves): demo seeding needs its
	// SAML service.
	srv *server.Server
	// banner is the demo banner; run fills in the SCIM token.
	banner demoInfo
}

// run connects the store and does the startup work. Every step is
// idempotent, so a retry after a Redis failure halfway is safe.
func (s *startup) run(ctx context.Context) error {
	if err := s.store.Connect(ctx); err != nil {
		return fmt.Errorf("connect to redis at %s: %w", s.store.Addr(), err)
	}
	s.log.InfoContext(ctx, "storage: connected", "addr", s.store.Addr())
	// The SP key pairs every process shares: created by the first
	// process, and a wrong --secret-key stops the server here.
	if err := s.srv.SAML().LoadKeys(ctx); err != nil {
		return err
	}
	if s.bootstrap != nil {
		if err := server.ApplyBootstrap(ctx, s.store, s.log, s.bootstrap, s.secrets); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "bootstrap applied", "file", s.bootstrapFile, "workspaces", len(s.bootstrap.Workspaces))
	}
	if s.demo {
		info, err := setupDemo(ctx, s.store, s.srv, s.secrets.SecretKey, s.log)
		if err != nil {
			return fmt.Errorf("demo mode: %w", err)
		}
		s.banner.SCIMToken = info.SCIMToken
	}
	return nil
}

// printBanner prints the demo banner once the server has started (its
// URLs and tokens work from then on), unless ctx ends first.
func (s *startup) printBanner(ctx context.Context, w io.Writer) {
	select {
	case <-s.srv.Started():
		printDemo(w, s.banner)
	case <-ctx.Done():
	}
}

// readBootstrap reads and parses the --bootstrap file; it is applied once
// the store answers.
func readBootstrap(readFile readFileFunc, path string) (*server.Bootstrap, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	b, err := server.ParseBootstrap(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
