package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// serveWithStartup runs Serve with startup on a loopback listener and
// returns the base URL and the channel Serve's result arrives on.
func serveWithStartup(t *testing.T, ctx context.Context, startup func(context.Context) error) (*server.Server, string, *servertest.Logs, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://" + ln.Addr().String())
	logs := &servertest.Logs{}
	store := redistest.NewRedisStore(t)
	srv, err := server.New(server.Config{Store: store, BaseURL: base, Startup: startup,
		AdminToken: "adm_Y2ktdG9rZW4tZm9yLXRoZS1hZG1pbi1hcGk",
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return srv, base.String(), logs, done
}

func get(t *testing.T, url string) (int, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestStartupGatesRequestsUntilItSucceeds: while Config.Startup fails with
// storage.ErrUnavailable the server answers /healthz 200, /readyz 503 and
// everything else 503 with Retry-After, and retries with backoff; once it
// succeeds, Started is closed and the routes answer.
func TestStartupGatesRequestsUntilItSucceeds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var attempts, allow atomic.Int32
	srv, base, logs, done := serveWithStartup(t, ctx, func(context.Context) error {
		attempts.Add(1)
		if allow.Load() == 0 {
			return fmt.Errorf("connect: %w", storage.ErrUnavailable)
		}
		return nil
	})
	waitUntil(t, func() bool { return attempts.Load() >= 3 })
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while starting: %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while starting: %d", code)
	}
	for _, path := range []string{"/admin/v1/workspaces", "/scim/v2/acme/Users"} {
		if code, h := get(t, base+path); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
			t.Errorf("%s while starting: %d, Retry-After %q", path, code, h.Get("Retry-After"))
		}
	}
	retries := logs.Find("startup: storage not reachable, retrying")
	if len(retries) < 2 || retries[0]["attempt"] != 1.0 || retries[1]["attempt"] != 2.0 || retries[0]["level"] != "WARN" {
		t.Errorf("retry records %v", retries)
	}
	allow.Store(1)
	select {
	case <-srv.Started():
	case <-time.After(10 * time.Second):
		t.Fatal("not started after Startup succeeded")
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after startup: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestStartupFailureStopsServe: a Startup error that waiting cannot fix
// (not storage.ErrUnavailable) is not retried: Serve returns it.
func TestStartupFailureStopsServe(t *testing.T) {
	errBad := errors.New("bootstrap: secret not set")
	var attempts atomic.Int32
	_, _, _, done := serveWithStartup(t, t.Context(), func(context.Context) error {
		attempts.Add(1)
		return errBad
	})
	select {
	case err := <-done:
		if !errors.Is(err, errBad) || attempts.Load() != 1 {
			t.Errorf("Serve returned %v after %d attempts, want the startup error after 1", err, attempts.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve kept running after a permanent startup error")
	}
}

// waitUntil polls cond every 10ms for up to 10s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling a goroutine of the server
	}
}
