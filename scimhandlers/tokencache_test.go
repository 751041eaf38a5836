package scimhandlers

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http/httptest"
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
