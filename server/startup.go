package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// Startup retry schedule: the first retry after about StartupFirstRetry,
// each wait doubling up to StartupMaxRetry, every wait randomised by ±50%
// so that several processes started together do not knock at Redis in step.
const (
	StartupFirstRetry = 100 * time.Millisecond
	StartupMaxRetry   = 5 * time.Second
)

// errStarting answers every request but /healthz and /readyz until
// Config.Startup has succeeded: a 503 with Retry-After, as when the store is
// down.
var errStarting = &apiError{Status: http.StatusServiceUnavailable, Message: "starting: storage not reachable yet, retry later"}

// Started is closed once Config.Startup has succeeded (at once when there
// is none): from then on the server answers every route.
func (s *Server) Started() <-chan struct{} { return s.started }

func (s *Server) isStarted() bool {
	select {
	case <-s.started:
		return true
	default:
		return false
	}
}

// requireStarted answers 503 until startup has succeeded, so that no
// handler reaches the store before it answers and the startup work
// (bootstrap, demo seeding) is done. /healthz and /readyz answer
// themselves.
func (s *Server) requireStarted(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p := c.Path(); p == "/healthz" || p == "/readyz" || s.isStarted() {
			return next(c)
		}
		return errStarting
	}
}

// runStartup runs Config.Startup until it succeeds, then closes Started.
// A failure wrapping storage.ErrUnavailable is retried with exponential
// backoff (cenkalti/backoff: jittered, capped, here without a time limit)
// for as long as ctx lasts, each one logged at warn; any other failure is
// returned at once.
func (s *Server) runStartup(ctx context.Context) error {
	if s.cfg.Startup == nil {
		return nil
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.Multiplier, b.MaxInterval = StartupFirstRetry, 2, StartupMaxRetry
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := s.cfg.Startup(ctx)
		if err != nil && !errors.Is(err, storage.ErrUnavailable) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, next time.Duration) {
		s.log.WarnContext(ctx, "startup: storage not reachable, retrying",
			"attempt", attempt, "next_attempt_in", next.Round(time.Millisecond).String(), "err", err)
	}))
	if err != nil {
		return fmt.Errorf("server: startup: %w", err)
	}
	close(s.started)
	s.log.InfoContext(ctx, "startup complete: ready", "attempts", attempt)
	return nil
}
