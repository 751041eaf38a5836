package scimhandlers

import (
	"sync"
	"time"
)

// defaultTokenCacheTTL is how long a successful bearer-token check is
// remembered in process when Config.TokenCacheTTL is zero. A revoked
// token therefore keeps working on this process for at most this long
// (docs/scim.md, "Authentication").
const defaultTokenCacheTTL = time.Second

// maxTokenCacheEntries bounds the cache; when full it is emptied.
const maxTokenCacheEntries = 4096

// tokenCache remembers, per workspace and SHA-256 of the presented token,
// that the token was valid, until a deadline. Only successes are cached:
// a wrong or unknown token always goes to the store, and a token created
// a moment ago works at once. The key holds a hash of the secret, never
// the secret (R18).
type tokenCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[tokenCacheKey]time.Time
}

type tokenCacheKey struct {
	ws  string
	sum [32]byte
}

func newTokenCache(ttl time.Duration) *tokenCache {
	if ttl == 0 {
		ttl = defaultTokenCacheTTL
	}
	return &tokenCache{ttl: ttl, now: time.Now, entries: map[tokenCacheKey]time.Time{}}
}

// valid reports whether a live entry says the token of ws is valid.
func (c *tokenCache) valid(ws string, sum [32]byte) bool {
	if c.ttl < 0 {
		return false
	}
	k := tokenCacheKey{ws, sum}
	t := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.entries[k]
	if !ok {
		return false
	}
	if !t.Before(until) {
		delete(c.entries, k)
		return false
	}
	return true
}

// remember records that the token of ws was just found valid in the store.
func (c *tokenCache) remember(ws string, sum [32]byte) {
	if c.ttl < 0 {
		return
	}
	until := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxTokenCacheEntries {
		clear(c.entries)
	}
	c.entries[tokenCacheKey{ws, sum}] = until
}
