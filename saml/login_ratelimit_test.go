package saml_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// loginLimit is the logins per minute per client and workspace the tests
// configure: small, so that the burst does not refill (one login per 12s)
// while a test runs.
const loginLimit = 5

// trackedRequests counts the workspace's tracked AuthnRequests in Redis.
func trackedRequests(t *testing.T, env *servertest.Env, ws string) int {
	t.Helper()
	keys, err := env.Store.(*redisstore.Store).Client().Keys(t.Context(), "*{ws:"+ws+"}:tmp:authn:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// loginFrom opens /saml/{ws}/login as the client ip, which the test server
// (trusting the loopback proxy) reads from X-Forwarded-For.
func loginFrom(t *testing.T, b *ssoBrowser, ws, ip string) ssoPage {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.env.URL+"/saml/"+ws+"/login", nil)
	req.Header.Set("X-Forwarded-For", ip)
	return b.do(t, req)
}

func TestLoginRateLimitedPerClientAndWorkspace(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		c.SAML.LoginLimit = loginLimit
	})
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	addWorkspace(t, env, "globex", idp, nil)
	b := newSSOBrowser(env)
	toIdP := func(pg ssoPage) bool {
		return pg.Status == http.StatusFound && strings.HasPrefix(pg.Location, idp.idp.SSOURL.String())
	}

	// Below the limit every login redirects to the IdP and is tracked.
	const ip = "203.0.113.7"
	for i := range loginLimit {
		if pg := loginFrom(t, b, "acme", ip); !toIdP(pg) {
			t.Fatalf("login %d: status %d location %q", i+1, pg.Status, pg.Location)
		}
	}
	if n := trackedRequests(t, env, "acme"); n != loginLimit {
		t.Fatalf("tracked requests = %d, want %d", n, loginLimit)
	}

	// Over the limit: 429, Retry-After, the plain page, nothing tracked.
	// The same address written as IPv4-mapped IPv6 is the same client.
	for _, addr := range []string{ip, "::ffff:" + ip} {
		pg := loginFrom(t, b, "acme", addr)
		if pg.Status != http.StatusTooManyRequests || pg.Location != "" {
			t.Fatalf("login over the limit from %s: status %d location %q", addr, pg.Status, pg.Location)
		}
		// The burst refills at one login per 12s (5 a minute).
		if ra, err := strconv.Atoi(pg.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 12 {
			t.Errorf("Retry-After = %q, want 1 to 12 (seconds to the next allowed login)", pg.Header.Get("Retry-After"))
		}
		if !strings.Contains(pg.Body, "Too many sign-in attempts") || !strings.Contains(pg.Body, "try again in a minute") {
			t.Errorf("page does not explain the limit: %s", pg.Body)
		}
		if ct := pg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("Content-Type = %q", ct)
		}
	}
	if n := trackedRequests(t, env, "acme"); n != loginLimit {
		t.Fatalf("tracked requests after refusals = %d, want %d", n, loginLimit)
	}
	recs := env.Logs.Find("saml login refused: rate limit")
	if len(recs) != 2 {
		t.Fatalf("rate-limit log records = %d, want 2", len(recs))
	}
	if recs[0]["level"] != "WARN" || recs[0]["workspace"] != "acme" {
		t.Errorf("log record = %v, want level WARN, workspace acme", recs[0])
	}
	for _, r := range recs {
		for k, v := range r {
			if s, _ := v.(string); strings.Contains(s, ip) {
				t.Errorf("the rate-limit record carries the client IP in %q: %v", k, r)
			}
		}
	}

	// Another workspace from the same client, and another client in the
	// same workspace, are not affected.
	if pg := loginFrom(t, b, "globex", ip); !toIdP(pg) {
		t.Fatalf("other workspace, same client: status %d location %q", pg.Status, pg.Location)
	}
	if pg := loginFrom(t, b, "acme", "198.51.100.9"); !toIdP(pg) {
		t.Fatalf("same workspace, other client: status %d location %q", pg.Status, pg.Location)
	}
	if n := trackedRequests(t, env, "acme"); n != loginLimit+1 {
		t.Fatalf("tracked requests = %d, want %d", n, loginLimit+1)
	}
}

// TestLoginRateLimitIPv6PerSlash64: IPv6 clients are counted per /64, so a
// host cannot rotate through its own addresses past the limit; the next
// /64 is another client.
func TestLoginRateLimitIPv6PerSlash64(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		c.SAML.LoginLimit = loginLimit
	})
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	b := newSSOBrowser(env)
	base := netip.MustParseAddr("2001:db8:1:2::1")
	a := base
	for i := range loginLimit {
		if pg := loginFrom(t, b, "acme", a.String()); pg.Status != http.StatusFound {
			t.Fatalf("login %d from %s: status %d", i+1, a, pg.Status)
		}
		a = a.Next()
	}
	if pg := loginFrom(t, b, "acme", "2001:db8:1:2:ffff:ffff:ffff:ffff"); pg.Status != http.StatusTooManyRequests {
		t.Fatalf("same /64 over the limit: status %d, want 429", pg.Status)
	}
	if pg := loginFrom(t, b, "acme", "2001:db8:1:3::1"); pg.Status != http.StatusFound {
		t.Fatalf("next /64: status %d, want 302", pg.Status)
	}
	if n := trackedRequests(t, env, "acme"); n != loginLimit+1 {
		t.Fatalf("tracked requests = %d, want %d", n, loginLimit+1)
	}
}
