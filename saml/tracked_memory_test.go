package saml_test

import (
	"testing"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// maxTrackedRequestBytes bounds the Redis memory of one tracked
// AuthnRequest (record, key, expiry), as docs/saml.md states it.
const maxTrackedRequestBytes = 144

// TestTrackedRequestMemory measures with MEMORY USAGE on the real
// redis-server what one SP-initiated login keeps in Redis for requestTTL:
// a tracked request of a browser that asked to return to a deep link.
func TestTrackedRequestMemory(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	b := newSSOBrowser(env)
	rdb := env.Store.(*redisstore.Store).Client()
	for _, ret := range []string{"", "/reports/2026?tab=summary"} {
		b.startLogin(t, idp, "acme", ret)
		keys, err := rdb.Keys(t.Context(), "*{ws:acme}:tmp:authn:*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("tracked request keys = %v, %v; want one", keys, err)
		}
		n, err := rdb.MemoryUsage(t.Context(), keys[0]).Result()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tracked request (return %q): key %d bytes, MEMORY USAGE %d bytes", ret, len(keys[0]), n)
		if n > maxTrackedRequestBytes+int64(len(ret)) {
			t.Errorf("one tracked request uses %d bytes of Redis, want at most %d plus the return path", n, maxTrackedRequestBytes)
		}
		if err := rdb.Del(t.Context(), keys[0]).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
