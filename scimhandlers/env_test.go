package scimhandlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// testEnv is the SCIM handler on a real HTTP server over a store on a
// spawned redis-server.
type testEnv struct {
	t     *testing.T
	store storage.Store
	srv   *httptest.Server
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	st := redistest.NewStore(t)
	return newTestEnvWithStore(t, st)
}

func newTestEnvWithStore(t *testing.T, st storage.Store) *testEnv {
	h := New(Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxResults: 100})
	srv := httptest.NewServer(routed(h))
	t.Cleanup(srv.Close)
	return &testEnv{t: t, store: st, srv: srv}
}

// routed serves h as the server does, without the server's other
// middleware: an Echo router with the SCIM endpoints under /scim/v2/:ws,
// Echo's recover, and Echo's own errors (404, 405, a panic) rendered by
// WriteError.
func routed(h *Handler) *echo.Echo {
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		status := http.StatusInternalServerError
		var he *echo.HTTPError
		if errors.As(err, &he) {
			status = he.Code
		}
		h.WriteError(c.Response(), c.Request(), &Error{Status: status, Detail: http.StatusText(status)})
	}
	e.Use(middleware.Recover())
	h.Register(e.Group("/scim/v2/:ws"))
	return e
}

// workspace creates a workspace with one SCIM token and returns a client
// for it.
func (e *testEnv) workspace(id string, mutate func(*storage.Workspace)) *client {
	e.t.Helper()
	ctx := context.Background()
	ws := storage.Workspace{ID: id, Name: id, Settings: storage.DefaultSettings()}
	if mutate != nil {
		mutate(&ws)
	}
	if _, err := e.store.CreateWorkspace(ctx, ws); err != nil {
		e.t.Fatalf("create workspace: %v", err)
	}
	token := "tok-" + uuid.NewString()
	sum := sha256.Sum256([]byte(token))
	if err := e.store.CreateSCIMToken(ctx, id, storage.SCIMToken{ID: uuid.NewString(), Name: "test", Hash: sum[:]}); err != nil {
		e.t.Fatalf("create token: %v", err)
	}
	return &client{e: e, ws: id, token: token}
}

type client struct {
	e     *testEnv
	ws    string
	token string
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (c *client) base() string { return c.e.srv.URL + "/scim/v2/" + c.ws }

// do sends a request with the client's token; hdr are extra header pairs.
func (c *client) do(method, path, body string, hdr ...string) resp {
	c.e.t.Helper()
	return c.e.send(method, c.base()+path, c.token, body, hdr...)
}

func (e *testEnv) send(method, url, token, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	// Entra's connection test sends no User-Agent (idp-clients.md E9).
	req.Header.Set("User-Agent", "")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&out.body); err != nil {
			e.t.Fatalf("%s %s: response is not JSON: %q", method, url, raw)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/scim+json" {
			e.t.Errorf("%s %s: Content-Type %q", method, url, ct)
		}
	}
	return out
}

// expect fails unless the status is want.
func (r resp) expect(t *testing.T, want int) resp {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.raw)
	}
	return r
}

// expectError checks an RFC 7644 §3.12 error body.
func (r resp) expectError(t *testing.T, status int, scimType string) resp {
	t.Helper()
	r.expect(t, status)
	if got := str(r.body, "status"); got != itoa(status) {
		t.Errorf("error status field %q, want %q", got, itoa(status))
	}
	if got := str(r.body, "scimType"); got != scimType {
		t.Errorf("scimType %q, want %q (body %s)", got, scimType, r.raw)
	}
	schemas, _ := r.body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != errorSchema {
		t.Errorf("error schemas %v", schemas)
	}
	return r
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// get walks a JSON path of keys and indexes ("emails.0.value").
func get(m any, path string) any {
	cur := m
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			var i int
			if err := json.Unmarshal([]byte(p), &i); err != nil || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func str(m any, path string) string {
	s, _ := get(m, path).(string)
	return s
}

func num(m any, path string) int {
	switch v := get(m, path).(type) {
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	case float64:
		return int(v)
	}
	return -1
}

func list(m any, path string) []any {
	l, _ := get(m, path).([]any)
	return l
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func stringify(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// ext returns the extension object under urn.
func ext(body map[string]any, urn string) map[string]any {
	m, _ := body[urn].(map[string]any)
	return m
}

func role(body map[string]any, name string) string {
	s, _ := ext(body, RoleURN)[name].(string)
	return s
}

func newRequest(ifMatch string) (*http.Request, error) {
	r, err := http.NewRequest("GET", "http://x/", nil)
	if err == nil && ifMatch != "" {
		r.Header.Set("If-Match", ifMatch)
	}
	return r, err
}
