package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage/redistest"
)

func TestHealthAndReadiness(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Do(t, http.MethodGet, "/healthz", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = env.Do(t, http.MethodGet, "/readyz", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = env.Do(t, http.MethodHead, "/readyz", "", nil)
	wantStatus(t, resp, body, http.StatusOK)

	// With the store gone, the process is still alive but not ready.
	if err := env.Store.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body = env.Do(t, http.MethodGet, "/readyz", "", nil)
	wantStatus(t, resp, body, http.StatusServiceUnavailable)
	if strings.Contains(string(body), "closed") || strings.Contains(string(body), "redis") {
		t.Errorf("readiness body leaks the cause: %s", body)
	}
	resp, body = env.Do(t, http.MethodGet, "/healthz", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !env.Logs.Contains("readiness check failed") {
		t.Error("the readiness failure was not logged")
	}
}

func requestWithID(t *testing.T, env *servertest.Env, id string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, env.URL+"/healthz", nil)
	req.Header[server.HeaderRequestID] = []string{id}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, resp.Header.Get(server.HeaderRequestID)
}

func TestRequestIDsAreSanitised(t *testing.T) {
	env := servertest.New(t, nil)
	_, got := requestWithID(t, env, "abc-123.DEF_4")
	if got != "abc-123.DEF_4" {
		t.Errorf("well-formed id replaced by %q", got)
	}
	for _, bad := range []string{
		strings.Repeat("a", 65),
		"has space",
		"quote\"inject",
		"new=line\\n",
		"ünïcode",
		"",
	} {
		_, got := requestWithID(t, env, bad)
		if got == bad || !server.ValidRequestID(got) {
			t.Errorf("inbound id %q: response id %q", bad, got)
		}
		if bad != "" && env.Logs.Contains(bad) {
			t.Errorf("inbound id %q reached the log", bad)
		}
	}
	// The id is on the access-log line.
	_, got = requestWithID(t, env, "trace-me-42")
	found := false
	for _, r := range env.Logs.Find("request") {
		if r["request_id"] == "trace-me-42" {
			found = true
		}
	}
	if !found || got != "trace-me-42" {
		t.Error("access log line does not carry the request id")
	}
}

func TestAccessLogHasRouteTemplateAndNoSecrets(t *testing.T) {
	env := servertest.New(t, nil)
	scimToken := env.CreateWorkspace(t, "acme", nil)
	const secretQuery = "sekrit-query-value"

	resp, body := env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/events?limit=5&access_token="+secretQuery, nil)
	wantStatus(t, resp, body, http.StatusOK)
	reqID := resp.Header.Get(server.HeaderRequestID)
	env.Do(t, http.MethodGet, "/scim/v2/acme/Users?filter=userName+eq+%22"+secretQuery+"%22", scimToken, nil)
	env.Do(t, http.MethodGet, "/admin/v1/workspaces", "wrong-"+secretQuery, nil)

	var lines []map[string]any
	for _, r := range env.Logs.Find("request") {
		if r["request_id"] == reqID {
			lines = append(lines, r)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d access-log lines for one request: %v", len(lines), lines)
	}
	l := lines[0]
	if l["route"] != "/admin/v1/workspaces/:ws/events" || l["method"] != "GET" || l["status"] != float64(200) ||
		l["workspace"] != "acme" || l["duration_ms"] == nil {
		t.Errorf("access log line %v", l)
	}
	routes := map[string]bool{}
	for _, r := range env.Logs.Find("request") {
		routes[r["route"].(string)] = true
	}
	if !routes["/scim/v2/:ws/Users"] {
		t.Errorf("SCIM request not logged by route template; routes %v", routes)
	}
	all := env.Logs.String()
	for _, secret := range []string{secretQuery, env.AdminToken, scimToken} {
		if strings.Contains(all, secret) {
			t.Errorf("log contains %q:\n%s", secret, all)
		}
	}
	if strings.Contains(all, "/admin/v1/workspaces/acme") || strings.Contains(all, "/scim/v2/acme/Users") {
		t.Errorf("log contains a raw path")
	}
}

func TestOversizedSCIMBodyGetsSCIMShaped413(t *testing.T) {
	env := servertest.New(t, nil)
	token := env.CreateWorkspace(t, "acme", nil)
	big := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + strings.Repeat("x", 1<<20) + `"}`
	resp, body := env.Do(t, http.MethodPost, "/scim/v2/acme/Users", token, big)
	wantStatus(t, resp, body, http.StatusRequestEntityTooLarge)
	if ct := resp.Header.Get("Content-Type"); ct != "application/scim+json" {
		t.Errorf("content type %q", ct)
	}
	var e struct {
		Schemas []string
		Status  string
		Detail  string
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Schemas) != 1 || e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" || e.Status != "413" {
		t.Fatalf("SCIM error body %s (%v)", body, err)
	}

	// Outside /scim/ the same limit class answers plain JSON.
	resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces", `{"id":"x","name":"`+strings.Repeat("x", 1<<20)+`"}`)
	wantStatus(t, resp, body, http.StatusRequestEntityTooLarge)
	if got := decode[apiErr](t, body); got.Error != "request_too_large" {
		t.Errorf("admin 413 body %s", body)
	}
}

// TestAPIErrorsArePlainJSONOutsideSCIM: an unknown path under /api/ and a
// wrong method on a health check answer {"error","message"} JSON (browser
// paths get pages: TestBrowserErrorPages).
func TestAPIErrorsArePlainJSONOutsideSCIM(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Do(t, http.MethodGet, "/api/no/such/thing", "", nil)
	wantStatus(t, resp, body, http.StatusNotFound)
	if e := decode[apiErr](t, body); e.Error != "not_found" {
		t.Errorf("404 body %s", body)
	}
	resp, body = env.Do(t, http.MethodPost, "/healthz", "", nil)
	wantStatus(t, resp, body, http.StatusMethodNotAllowed)
	if e := decode[apiErr](t, body); e.Error != "method_not_allowed" {
		t.Errorf("405 body %s", body)
	}
}

func TestPanicBecomesOpaque500(t *testing.T) {
	env := servertest.New(t, nil)
	e := env.Server.Handler().(*echo.Echo)
	e.GET("/api/test-panic", func(echo.Context) error { panic("secret internal detail") })
	resp, body := env.Do(t, http.MethodGet, "/api/test-panic", "", nil)
	wantStatus(t, resp, body, http.StatusInternalServerError)
	if strings.Contains(string(body), "secret internal detail") {
		t.Errorf("500 body leaks the panic: %s", body)
	}
	if e := decode[apiErr](t, body); e.Error != "internal" {
		t.Errorf("500 body %s", body)
	}
	if !env.Logs.Contains("secret internal detail") || !env.Logs.Contains("panic in handler") {
		t.Error("the panic was not logged")
	}
}

func TestMetricsByRouteTemplate(t *testing.T) {
	reg := prometheus.NewRegistry()
	env := servertest.New(t, func(c *server.Config) { c.Metrics = reg })
	env.CreateWorkspace(t, "acme", nil)
	for range 3 {
		env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme", nil)
	}
	env.Admin(t, http.MethodGet, "/admin/v1/workspaces/nope", nil)
	env.Do(t, "FROB", "/healthz", "", nil)

	counts := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "scimjit_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var key []string
			for _, l := range m.GetLabel() {
				key = append(key, l.GetName()+"="+l.GetValue())
			}
			counts[strings.Join(key, ",")] = m.GetCounter().GetValue()
		}
	}
	if counts["method=GET,route=/admin/v1/workspaces/:ws,status=200"] != 3 ||
		counts["method=GET,route=/admin/v1/workspaces/:ws,status=404"] != 1 ||
		counts["method=OTHER,route=/healthz,status=405"] != 1 {
		t.Errorf("counters %v", counts)
	}
	for k := range counts {
		if strings.Contains(k, "acme") || strings.Contains(k, "nope") {
			t.Errorf("raw path in a label: %s", k)
		}
	}
}

// TestServeFinishesRunningRequestsOnShutdown: cancelling Serve's context
// stops the server, and a request that was running completes normally.
func TestServeFinishesRunningRequestsOnShutdown(t *testing.T) {
	store := redistest.NewRedisStore(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://" + ln.Addr().String())
	srv, err := server.New(server.Config{Store: store, Logger: slog.New(slog.DiscardHandler), BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	srv.Handler().(*echo.Echo).GET("/test-slow", func(c echo.Context) error {
		close(started)
		<-release
		return c.String(http.StatusOK, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base.String() + "/test-slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-started:
	case r := <-got:
		t.Fatalf("request ended before the handler ran: %+v", r)
	}
	cancel()
	close(release)
	r := <-got
	if r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Fatalf("running request: %+v", r)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(base.String() + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

// TestStoreDownIs503WithRetryAfter: when Redis is gone, the admin API and
// the SAML login answer 503 with Retry-After (never 500), and the admin
// body is the API's error shape without internal text.
func TestStoreDownIs503WithRetryAfter(t *testing.T) {
	rs := redistest.Start(t)
	store := redistest.OpenStore(t, rs)
	env := servertest.New(t, func(c *server.Config) { c.Store = store })
	env.CreateWorkspace(t, "down", nil)
	rs.Stop()

	for _, path := range []string{"/admin/v1/workspaces", "/admin/v1/workspaces/down", "/admin/v1/outbox"} {
		resp, body := env.Admin(t, http.MethodGet, path, nil)
		wantStatus(t, resp, body, http.StatusServiceUnavailable)
		if ra := resp.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("GET %s: Retry-After %q, want 1", path, ra)
		}
		if e := decode[apiErr](t, body); e.Error != "unavailable" || strings.Contains(strings.ToLower(e.Message), "redis") ||
			strings.Contains(e.Message, rs.Addr) {
			t.Errorf("GET %s: body %s", path, body)
		}
	}
	resp, body := env.Do(t, http.MethodGet, "/saml/down/login", "", nil)
	wantStatus(t, resp, body, http.StatusServiceUnavailable)
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Errorf("SAML login: 503 without Retry-After")
	}
}

// TestReadyzAnswersWithinItsBoundWhenRedisStalls: while Redis is stalled
// (DEBUG SLEEP 4 from another client), /readyz answers 503 before the
// stall ends instead of waiting for the store client to give up.
func TestReadyzAnswersWithinItsBoundWhenRedisStalls(t *testing.T) {
	rs := redistest.Start(t)
	store := redistest.OpenStore(t, rs)
	env := servertest.New(t, func(c *server.Config) { c.Store = store })
	resp, body := env.Do(t, http.MethodGet, "/readyz", "", nil)
	wantStatus(t, resp, body, http.StatusOK)

	// The sleeping client must neither time out nor re-send DEBUG SLEEP.
	opt := rs.Options()
	opt.ReadTimeout, opt.MaxRetries = time.Minute, -1
	sleeper := redis.NewClient(opt)
	defer sleeper.Close()
	stalled := make(chan error, 1)
	go func() { stalled <- sleeper.Do(context.Background(), "DEBUG", "SLEEP", 4).Err() }()
	for {
		resp, body := env.Do(t, http.MethodGet, "/readyz", "", nil)
		select {
		case err := <-stalled:
			t.Fatalf("DEBUG SLEEP ended (%v) before /readyz answered 503 (last answer %d %s)", err, resp.StatusCode, body)
		default:
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		wantStatus(t, resp, body, http.StatusOK) // the stall has not begun yet
	}
	if err := <-stalled; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
}
