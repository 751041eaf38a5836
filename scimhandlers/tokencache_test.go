package scimhandlers

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/scimjit/scimjit/storage"
)

func TestTokenCacheExpiresAndIsBounded(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	c := newTokenCache(time.Second)
	c.now = func() time.Time { return clock }
	a := sha256.Sum256([]byte("a"))
	if c.valid("ws", a) {
		t.Fatal("empty cache reports a valid token")
	}
	c.remember("ws", a)
	if !c.valid("ws", a) {
		t.Fatal("remembered token not valid")
	}
	if c.valid("other", a) {
		t.Fatal("a token remembered for one workspace is valid for another")
	}
	clock = clock.Add(999 * time.Millisecond)
	if !c.valid("ws", a) {
		t.Fatal("entry gone before its TTL")
	}
	clock = clock.Add(time.Millisecond)
	if c.valid("ws", a) {
		t.Fatal("entry still valid at its TTL")
	}
	for i := 0; i < maxTokenCacheEntries+10; i++ {
		c.remember("ws", sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
	}
	if n := len(c.entries); n > maxTokenCacheEntries {
		t.Fatalf("cache holds %d entries, bound is %d", n, maxTokenCacheEntries)
	}
	off := newTokenCache(-1)
	off.remember("ws", a)
	if off.valid("ws", a) {
		t.Fatal("a disabled cache remembered a token")
	}
}

// TestRevokedTokenStopsWithinTTL: with the default cache, a revoked token
// is refused once the cache TTL has passed; a new token works at once; a
// wrong token is never cached.
func TestRevokedTokenStopsWithinTTL(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	c := env.workspace("revoke", nil)
	h := New(Config{Store: env.store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if h.tokens.ttl != time.Second {
		t.Fatalf("default token cache TTL %v, docs/scim.md says 1s", h.tokens.ttl)
	}
	srv := httptest.NewServer(routed(h))
	t.Cleanup(srv.Close)
	url := srv.URL + "/scim/v2/revoke/Users"
	env.send("GET", url, c.token, "").expect(t, 200)

	toks, err := env.store.ListSCIMTokens(ctx, "revoke")
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v %v", toks, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A second token, created after the first was cached, works at once.
	second := "tok-" + uuid.NewString()
	sum := sha256.Sum256([]byte(second))
	must(env.store.CreateSCIMToken(ctx, "revoke", storage.SCIMToken{ID: "second", Name: "second", Hash: sum[:]}))
	env.send("GET", url, second, "").expect(t, 200)
	env.send("GET", url, "tok-wrong", "").expectError(t, 401, "")

	must(env.store.RevokeSCIMToken(ctx, "revoke", toks[0].ID))
	must(env.store.RevokeSCIMToken(ctx, "revoke", "second"))
	// Wait out the cache's real TTL; then both revoked tokens are refused.
	time.Sleep(h.tokens.ttl + 100*time.Millisecond)
	env.send("GET", url, c.token, "").expectError(t, 401, "")
	env.send("GET", url, second, "").expectError(t, 401, "")
}

// touchCounter counts the store's TouchSCIMToken calls.
type touchCounter struct {
	storage.Store
	touches atomic.Int64
}

func (s *touchCounter) TouchSCIMToken(ctx context.Context, ws, id string, at time.Time) error {
	s.touches.Add(1)
	return s.Store.TouchSCIMToken(ctx, ws, id, at)
}

// TestTokenLastUsedIsRecordedAtTheStoreCheck: a token's last use is
// recorded when the token is checked against the store, so a token the
// process cache vouches for costs no write: with a cache, a burst of
// requests records one use; without, every request does. The other token
// of the workspace stays unused, and a wrong token records nothing.
func TestTokenLastUsedIsRecordedAtTheStoreCheck(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	c := env.workspace("lastused", nil)
	idle := sha256.Sum256([]byte("tok-idle"))
	if err := env.store.CreateSCIMToken(ctx, "lastused", storage.SCIMToken{ID: "idle", Name: "idle", Hash: idle[:]}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ttl  time.Duration
		want int64
	}{{time.Hour, 1}, {-1, 5}} {
		counted := &touchCounter{Store: env.store}
		h := New(Config{Store: counted, TokenCacheTTL: tc.ttl})
		srv := httptest.NewServer(routed(h))
		before := time.Now().Truncate(time.Microsecond)
		for range 5 {
			env.send("GET", srv.URL+"/scim/v2/lastused/Users", c.token, "").expect(t, 200)
		}
		env.send("GET", srv.URL+"/scim/v2/lastused/Users", "tok-wrong", "").expectError(t, 401, "")
		srv.Close()
		if n := counted.touches.Load(); n != tc.want {
			t.Errorf("cache TTL %v: %d uses recorded for 5 requests, want %d", tc.ttl, n, tc.want)
		}
		toks, err := env.store.ListSCIMTokens(ctx, "lastused")
		if err != nil || len(toks) != 2 {
			t.Fatalf("tokens: %v, %v", toks, err)
		}
		for _, tok := range toks {
			switch {
			case tok.ID == "idle" && !tok.LastUsed.IsZero():
				t.Errorf("the unused token has LastUsed %v", tok.LastUsed)
			case tok.ID != "idle" && (tok.LastUsed.Before(before) || tok.LastUsed.After(time.Now())):
				t.Errorf("cache TTL %v: LastUsed %v, want a time since %v", tc.ttl, tok.LastUsed, before)
			}
		}
	}
}
