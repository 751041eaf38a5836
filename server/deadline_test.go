package server_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// stallingStore stalls ListUsers until the caller's context ends, like a
// Redis that stopped answering, and reports whether that context had a
// deadline.
type stallingStore struct {
	storage.Store
	hadDeadline atomic.Bool
	ended       atomic.Bool
}

func (s *stallingStore) ListUsers(ctx context.Context, ws string, offset, limit int) ([]storage.User, int, error) {
	_, ok := ctx.Deadline()
	s.hadDeadline.Store(ok)
	select {
	case <-ctx.Done():
		s.ended.Store(true)
		return nil, 0, ctx.Err()
	case <-time.After(time.Minute):
		return nil, 0, nil
	}
}

// TestRequestContextEndsAtTheWriteTimeout: a request's work stops when
// its response could no longer be written: its context has the write
// timeout as deadline, so a store call that hangs is cut off and the
// client gets 503, instead of the handler going on after the server has
// given up on the response.
func TestRequestContextEndsAtTheWriteTimeout(t *testing.T) {
	var st *stallingStore
	env := servertest.New(t, func(c *server.Config) {
		st = &stallingStore{Store: c.Store}
		c.Store = st
		c.WriteTimeout = 500 * time.Millisecond
	})
	token := env.CreateWorkspace(t, "slow", nil)
	resp, body := env.Do(t, http.MethodGet, "/scim/v2/slow/Users", token, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /Users: %d %s, want 503", resp.StatusCode, body)
	}
	if !st.hadDeadline.Load() || !st.ended.Load() {
		t.Fatalf("store call: deadline %v, ended %v; want both", st.hadDeadline.Load(), st.ended.Load())
	}
}
