package saml_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// acsFrom posts a form to the workspace's ACS as the client ip (read from
// X-Forwarded-For by a server that trusts loopback proxies).
func acsFrom(t testing.TB, b *ssoBrowser, ws, ip string, form url.Values) ssoPage {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.env.URL+"/saml/"+ws+"/acs", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	return b.do(t, req)
}

// garbage is a form the ACS refuses as malformed.
var garbage = url.Values{"SAMLResponse": {"bm90IGEgU0FNTCByZXNwb25zZQ=="}}

func trustLoopback(c *server.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// tooMany fails unless pg is the 429 page with a Retry-After of 1 to max
// seconds.
func tooMany(t *testing.T, pg ssoPage, max int, what string) {
	t.Helper()
	if pg.Status != http.StatusTooManyRequests || !strings.Contains(pg.Body, "Too many sign-in attempts") ||
		!strings.HasPrefix(pg.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s: status %d, want the 429 page: %s", what, pg.Status, pg.Body)
	}
	if ra, err := strconv.Atoi(pg.Header.Get("Retry-After")); err != nil || ra < 1 || ra > max {
		t.Fatalf("%s: Retry-After %q, want 1 to %d", what, pg.Header.Get("Retry-After"), max)
	}
}

// TestACSRateLimitedPerClientAndWorkspace: the ACS takes at most
// ACSClientLimit posts a minute from one client (all workspaces) and
// ACSWorkspaceLimit into one workspace (all clients). Beyond, a 429 page
// with Retry-After, nothing parsed (no login.refused event), and one
// login.rate_limited event and warn log per limit and minute however many
// requests are refused. Even a valid sign-in is refused while over.
func TestACSRateLimitedPerClientAndWorkspace(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) {
		trustLoopback(c)
		c.SAML.ACSClientLimit = 4    // one per 15s refills
		c.SAML.ACSWorkspaceLimit = 6 // one per 10s
	})
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	addWorkspace(t, env, "globex", idp, nil)
	b := newSSOBrowser(env)

	for i := range 4 {
		if pg := acsFrom(t, b, "acme", "203.0.113.7", garbage); pg.Status != http.StatusBadRequest && pg.Status != http.StatusForbidden {
			t.Fatalf("post %d within the client limit: status %d", i+1, pg.Status)
		}
	}
	for i := range 5 {
		tooMany(t, acsFrom(t, b, "acme", "203.0.113.7", garbage), 15, fmt.Sprintf("client over its limit, post %d", i+1))
	}
	// The client limit covers every workspace.
	tooMany(t, acsFrom(t, b, "globex", "203.0.113.7", garbage), 15, "same client, other workspace")
	if n := len(events(t, env, "acme", "login.refused")); n != 4 {
		t.Fatalf("%d login.refused events, want 4 (refused over the limit without parsing)", n)
	}

	// Another client may post until the workspace's limit (6) is reached;
	// a real, signed sign-in is refused too while it is.
	for i := range 2 {
		if pg := acsFrom(t, b, "acme", "198.51.100.9", garbage); pg.Status == http.StatusTooManyRequests {
			t.Fatalf("other client, post %d: 429 before the workspace limit", i+1)
		}
	}
	req := idp.idpInitiated(t, spEntityID(env, "acme"), "")
	pg := acsFrom(t, b, "acme", "198.51.100.10", url.Values{"SAMLResponse": {idp.respond(t, req, assertionOpts{NameID: "ann@acme.example"})}})
	tooMany(t, pg, 10, "valid sign-in over the workspace limit")
	mustHaveNothing(t, env, "acme", "ann@acme.example")
	// The other workspace is not affected by acme's limit.
	if pg := acsFrom(t, b, "globex", "198.51.100.11", garbage); pg.Status == http.StatusTooManyRequests {
		t.Fatalf("other workspace from another client: 429")
	}

	limited := events(t, env, "acme", "login.rate_limited")
	if len(limited) != 2 || limited[0].Detail["limit"] != "client" || limited[1].Detail["limit"] != "workspace" ||
		limited[0].Detail["perMinute"] != "4" || limited[1].Detail["perMinute"] != "6" {
		t.Fatalf("login.rate_limited events = %+v, want one for the client limit, then one for the workspace's", limited)
	}
	if n := len(env.Logs.Find("saml acs refused: rate limit")); n != 2 {
		t.Fatalf("%d rate-limit warn logs, want 2", n)
	}
	if strings.Contains(env.Logs.String(), "203.0.113.7\",\"msg\":\"saml acs refused") {
		t.Fatalf("the rate-limit record names the client address")
	}
}

// TestACSDefaultLimitsPassAMorningWave: with the default limits, a burst of
// sign-ins from one office address (120 people signing in from their
// IdP's dashboard within seconds) all succeed.
func TestACSDefaultLimitsPassAMorningWave(t *testing.T) {
	env := servertest.New(t, trustLoopback)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, func(ws *storage.Workspace) { ws.Settings.IdP.AllowIdPInitiated = true })
	const wave = 120
	if wave > saml.DefaultACSClientLimit || wave > saml.DefaultACSWorkspaceLimit {
		t.Fatalf("the wave is larger than the default limits")
	}
	var wg sync.WaitGroup
	errs := make(chan string, wave)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newSSOBrowser(env)
			for i := w; i < wave; i += 4 {
				req := idp.idpInitiated(t, spEntityID(env, "acme"), "")
				form := url.Values{"SAMLResponse": {idp.respond(t, req, assertionOpts{NameID: fmt.Sprintf("p%d@acme.example", i)})}}
				if pg := acsFrom(t, b, "acme", "192.0.2.50", form); pg.Status != http.StatusSeeOther {
					errs <- fmt.Sprintf("sign-in %d: status %d", i, pg.Status)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := len(events(t, env, "acme", "jit.user.created")); n != wave {
		t.Fatalf("%d people created, want %d", n, wave)
	}
}

// TestACSRefusalFloodKeepsAdminEvents: a flood of garbage posts to the ACS
// (the attack that erased the audit trail) fills the sign-in events, and
// the admin and provisioning events survive it; the events API still lists
// one ordered stream with a working cursor. The limits are raised so that
// the whole flood is refused as sign-ins.
func TestACSRefusalFloodKeepsAdminEvents(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) {
		c.SAML.ACSClientLimit = 600000
		c.SAML.ACSWorkspaceLimit = 600000
	})
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create workspace: %d %s", resp.StatusCode, body)
	}
	// More than the stream's cap (10,000, trimmed in nodes of 100).
	const flood = 10300
	var wg sync.WaitGroup
	form := []byte(url.Values{"SAMLResponse": {"x"}}.Encode())
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := env.NewClient()
			for i := w; i < flood; i += 8 {
				resp, err := c.Post(env.URL+"/saml/acme/acs", "application/x-www-form-urlencoded", bytes.NewReader(form))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
					t.Errorf("garbage post: status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()

	type eventsPage struct {
		Events []struct{ ID, Type string } `json:"events"`
		Next   string                      `json:"next"`
	}
	var all []struct{ ID, Type string }
	after := ""
	for range 100 {
		resp, body := env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/events?limit=1000&after="+url.QueryEscape(after), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("events: %d %s", resp.StatusCode, body)
		}
		var pg eventsPage
		if err := json.Unmarshal(body, &pg); err != nil {
			t.Fatal(err)
		}
		if len(pg.Events) == 0 {
			break
		}
		all = append(all, pg.Events...)
		after = pg.Next
	}
	if len(all) == 0 || all[0].Type != "admin.workspace.created" {
		t.Fatalf("after %d refused sign-ins the first event is not admin.workspace.created (%d events listed)", flood, len(all))
	}
	refused, seen := 0, map[string]bool{}
	for _, e := range all {
		if seen[e.ID] {
			t.Fatalf("event %s listed twice", e.ID)
		}
		seen[e.ID] = true
		if e.Type == "login.refused" {
			refused++
		}
	}
	if refused < 9000 || refused > flood {
		t.Fatalf("%d login.refused events listed, want the capped sign-in stream (about 10,000)", refused)
	}
}
