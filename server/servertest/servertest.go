package servertest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
	"github.com/scimjit/scimjit/storage/redistest"
)

// Env is a running scimjit for one test.
type Env struct {
	// URL is the server's base URL without a trailing slash, e.g.
	// "http://127.0.0.1:41234".
	URL string
	// BaseURL is URL parsed; it is Config.BaseURL.
	BaseURL *url.URL
	// Store is the server's store (a redisstore on a spawned redis-server).
	Store storage.Store
	// AdminToken is the admin API bearer token.
	AdminToken string
	// Server is the server under test; HTTP is the httptest server running it.
	Server *server.Server
	HTTP   *httptest.Server
	// Config is the configuration the server was built with (after the
	// mutate function ran).
	Config server.Config
	// Client has a cookie jar and follows redirects; NewClient makes more.
	Client *http.Client
	// Logs holds every log record of the server, as JSON lines.
	Logs *Logs

	stop func()
}

// Stop stops the server the way a process stops: the HTTP server closes
// and the task queue shuts down (running tasks go back to the queue).
// Redis keeps running; the test's end stops the rest.
func (e *Env) Stop() { e.stop() }

// New starts the server with a spawned redis-server behind it. mutate, when
// not nil, may change the configuration before the server is built (the
// base URL is already known, so SAML endpoints can be derived from it).
// Everything is stopped when the test ends; when the test failed, the
// captured log is written to the test log.
func New(t testing.TB, mutate func(*server.Config)) *Env {
	t.Helper()
	rs := redistest.Start(t)
	store := redistest.OpenStore(t, rs)
	logs := &Logs{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	hs := httptest.NewUnstartedServer(nil)
	base, err := url.Parse("http://" + hs.Listener.Addr().String())
	if err != nil {
		t.Fatalf("servertest: base url: %v", err)
	}
	cfg := server.Config{
		Store:      store,
		Logger:     logger,
		BaseURL:    base,
		ListenAddr: hs.Listener.Addr().String(),
		AdminToken: "adm_" + randomHex(16),
		// The queue has a client of its own, so that a test may close the
		// store's (asynq's subscriber does not survive its client closing
		// under it).
		Redis: rs.Client(t),
		// Tasks are picked up within milliseconds and retried on a
		// schedule of milliseconds (asynq runs a retry once its second
		// has begun).
		Queue: queue.Config{PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
			Backoff: queue.Backoff{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, Retries: 2}},
		MailSweepInterval: 100 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		hs.Listener.Close()
		t.Fatalf("servertest: server.New: %v", err)
	}
	// Every admin API exchange is checked against the OpenAPI document; a
	// mismatch fails the test.
	hs.Config.Handler = ValidateHandler(t, srv.Handler())
	// The queue's workers, the webhook dispatcher and the mail sweep, as
	// Serve starts them after startup.
	stopTasks, err := srv.StartWork(t.Context())
	if err != nil {
		hs.Listener.Close()
		t.Fatalf("servertest: start work: %v", err)
	}
	hs.Start()
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { hs.Close(); stopTasks() }) }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	env := &Env{
		URL:        strings.TrimSuffix(base.String(), "/"),
		BaseURL:    base,
		Store:      cfg.Store,
		AdminToken: cfg.AdminToken,
		Server:     srv,
		HTTP:       hs,
		Config:     cfg,
		Logs:       logs,
		stop:       stop,
	}
	env.Client = env.NewClient()
	return env
}

// NewClient returns a client with its own cookie jar (a separate browser).
func (e *Env) NewClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

// CreateWorkspace stores a workspace with the default settings (changed by
// mutate when not nil) directly in the store, and returns a new SCIM bearer
// token for it.
func (e *Env) CreateWorkspace(t testing.TB, id string, mutate func(*storage.Workspace)) (scimToken string) {
	t.Helper()
	ws := storage.Workspace{ID: id, Name: id, Settings: storage.DefaultSettings()}
	if mutate != nil {
		mutate(&ws)
	}
	ctx := t.Context()
	if _, err := e.Store.CreateWorkspace(ctx, ws); err != nil {
		t.Fatalf("servertest: create workspace %q: %v", id, err)
	}
	return e.CreateSCIMToken(t, id)
}

// CreateSCIMToken adds a SCIM token to an existing workspace and returns it.
func (e *Env) CreateSCIMToken(t testing.TB, ws string) string {
	t.Helper()
	tok, hash := server.NewSCIMToken()
	err := e.Store.CreateSCIMToken(t.Context(), ws, storage.SCIMToken{
		ID: uuid.NewString(), Name: "servertest", Hash: hash, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatalf("servertest: create scim token for %q: %v", ws, err)
	}
	return tok
}

// Do sends a request to path (relative to URL) with an optional bearer
// token and returns the response with its body read. body may be nil, a
// string, []byte, or any value (sent as JSON). The Content-Type is
// application/scim+json under /scim/, else application/json.
func (e *Env) Do(t testing.TB, method, path, bearer string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("servertest: marshal body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.URL+path, rd)
	if err != nil {
		t.Fatalf("servertest: new request: %v", err)
	}
	if rd != nil {
		ct := "application/json"
		if strings.HasPrefix(path, "/scim/") {
			ct = "application/scim+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("servertest: read body of %s %s: %v", method, path, err)
	}
	return resp, data
}

// Admin is Do with the admin token.
func (e *Env) Admin(t testing.TB, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	return e.Do(t, method, path, e.AdminToken, body)
}

// Logs is a log sink that is safe for concurrent use.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Contains reports whether s occurs anywhere in the log.
func (l *Logs) Contains(s string) bool { return strings.Contains(l.String(), s) }

// Records returns the log records decoded from their JSON lines.
func (l *Logs) Records() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// Find returns the records whose "msg" is msg.
func (l *Logs) Find(msg string) []map[string]any {
	var out []map[string]any
	for _, r := range l.Records() {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
