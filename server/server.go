package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/scimhandlers"
	"github.com/scimjit/scimjit/server/console"
	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/server/webhooks"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
)

// Config is everything the server needs: plain values and built
// dependencies. cmd/scimjit fills it from flags and the environment; tests
// fill it through servertest. Zero durations and limits take the defaults
// documented on each field.
type Config struct {
	// Store is the persistent state (required).
	Store storage.Store
	// Logger receives every log line (required). The server wraps its
	// handler so that records carry request_id and workspace.
	Logger *slog.Logger
	// BaseURL is the public URL clients use to reach the server (required);
	// SCIM locations and SAML endpoints are built from it.
	BaseURL *url.URL
	// ListenAddr is the TCP address Run listens on (default 127.0.0.1:8080).
	ListenAddr string
	// AdminTokens are the bearer tokens of the admin API, named; the set
	// may change while the server runs (AdminTokens.Set). When nil,
	// AdminToken, if set, is the one token, named DefaultAdminTokenName.
	// No token disables the admin API (every request gets 401).
	AdminTokens *AdminTokens
	// AdminToken is a single admin API bearer token (see AdminTokens).
	AdminToken string
	// AdminAuthLimit caps the failed admin API authentications from one
	// client address per minute (default 10, in bursts of as many); beyond
	// it every request of the client gets 429 with Retry-After until it is
	// back under the rate.
	AdminAuthLimit int
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed when working out the client IP. Empty: the peer address is
	// the client IP.
	TrustedProxies []netip.Prefix

	// ReadHeaderTimeout (default 10s), ReadTimeout (30s), WriteTimeout (30s)
	// and IdleTimeout (120s) are the http.Server timeouts.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds graceful shutdown (default 15s).
	ShutdownTimeout time.Duration

	// SCIMBodyLimit (default 1 MiB), SAMLBodyLimit (the ACS, default 2 MiB;
	// it becomes SAML.ACSBodyLimit when that is zero),
	// AdminBodyLimit (default 1 MiB: IdP metadata) and DefaultBodyLimit
	// (every other route, default 64 KiB) cap request bodies in bytes.
	SCIMBodyLimit    int64
	SAMLBodyLimit    int64
	AdminBodyLimit   int64
	DefaultBodyLimit int64
	// MetadataClient downloads IdP metadata given by URL in the admin API
	// (default: a client with a 15s timeout). Its Transport, nil or an
	// *http.Transport, gets a dialer that refuses non-public addresses
	// unless MetadataAllowPrivateHosts, and no proxy.
	MetadataClient *http.Client
	// MetadataAllowPrivateHosts lets metadata URLs reach loopback,
	// private, link-local and other non-public addresses (refused by
	// default, checked on the address dialled).
	MetadataAllowPrivateHosts bool
	// MetadataRefreshInterval is how often idp.metadataURL is downloaded
	// again when the metadata does not ask for sooner (default
	// DefaultMetadataRefreshInterval); MetadataCheckInterval is how often
	// the background loop looks for due refreshes (default
	// DefaultMetadataCheckInterval).
	MetadataRefreshInterval time.Duration
	MetadataCheckInterval   time.Duration
	// SCIMMaxResults caps a SCIM page (default 100).
	SCIMMaxResults int
	// Metrics, when not nil, receives the HTTP metrics (requests by route
	// template and status, durations). Serving them is the caller's job
	// (cmd/scimjit serves them on --metrics-listen).
	Metrics prometheus.Registerer

	// SAML configures the browser side. Store, Logger, BaseURL and Demo are
	// filled from this Config when left zero.
	SAML saml.Config
	// Demo turns on demo mode (the built-in demo IdP).
	Demo bool

	// Webhooks configures webhook delivery.
	Webhooks WebhooksConfig

	// Startup, when set, is the work that needs the store before the
	// server can answer (connecting, applying a bootstrap file). Serve runs
	// it in the background while already listening; until it has returned
	// nil, /healthz answers 200, /readyz 503 and every other route 503 with
	// Retry-After. A failure wrapping storage.ErrUnavailable is retried
	// with backoff (StartupFirstRetry up to StartupMaxRetry, jittered) until
	// ctx ends; any other failure stops Serve with that error.
	Startup func(ctx context.Context) error

	// Redis is the client the server's durable task queue (package
	// storage/queue) runs on; nil: the store's own client. Queue
	// configures that queue (retry schedule, workers; zero: its defaults;
	// its name defaults to the store's QueueName).
	Redis redis.UniversalClient
	Queue queue.Config
	// MailTransport sends verification mail (mail.NewTransport: SMTP);
	// nil: mail only goes to the outbox (demo mode).
	MailTransport mail.Sender
	// MailSweepInterval is how often outbox messages still queued are
	// enqueued again, in case a crash left one unqueued (default 1m).
	MailSweepInterval time.Duration
}

// Default values of Config.
const (
	DefaultListenAddr        = "127.0.0.1:8080"
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultMailSweepInterval = time.Minute
	DefaultSCIMBodyLimit     = 1 << 20
	DefaultSAMLBodyLimit     = saml.DefaultACSBodyLimit
	DefaultAdminBodyLimit    = 1 << 20
	DefaultDefaultBodyLimit  = 64 << 10
	// DefaultAdminAuthLimit lets a person mistype a token a few times and
	// bounds token guessing from one address to one guess every six
	// seconds.
	DefaultAdminAuthLimit = 10
)

func (c *Config) setDefaults() {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&c.ReadTimeout, DefaultReadTimeout)
	setDur(&c.WriteTimeout, DefaultWriteTimeout)
	setDur(&c.IdleTimeout, DefaultIdleTimeout)
	setDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDur(&c.MetadataRefreshInterval, DefaultMetadataRefreshInterval)
	setDur(&c.MetadataCheckInterval, DefaultMetadataCheckInterval)
	setDur(&c.MailSweepInterval, DefaultMailSweepInterval)
	setInt := func(n *int64, def int64) {
		if *n <= 0 {
			*n = def
		}
	}
	setInt(&c.SCIMBodyLimit, DefaultSCIMBodyLimit)
	setInt(&c.SAMLBodyLimit, DefaultSAMLBodyLimit)
	setInt(&c.AdminBodyLimit, DefaultAdminBodyLimit)
	setInt(&c.DefaultBodyLimit, DefaultDefaultBodyLimit)
	if c.AdminAuthLimit <= 0 {
		c.AdminAuthLimit = DefaultAdminAuthLimit
	}
	if c.SCIMMaxResults <= 0 {
		c.SCIMMaxResults = 100
	}
}

// Server is scimjit's HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   storage.Store
	echo    *echo.Echo
	scim    *scimhandlers.Handler
	saml    *saml.Service
	metrics *metrics // nil without Config.Metrics
	// metadataClient downloads idp.metadataURL (newMetadataClient).
	metadataClient *http.Client
	baseURL        string // without trailing slash
	ready          readiness
	// adminTokens authenticate the admin API (adminTokensFor).
	adminTokens *AdminTokens
	// started is closed when Config.Startup has succeeded (Started).
	started chan struct{}
	// queue is the durable task queue; mail delivers verification mail
	// through it (StartWork runs them).
	queue *queue.Queue
	mail  *mail.Delivery
	// webhooks delivers webhooks through queue.
	webhooks *webhooks.Service
	// working is set once StartWork has started the queue, the webhook
	// dispatcher and the mail sweep.
	working atomic.Bool
}

// New validates cfg, builds the SCIM handler and the SAML service, and
// assembles the Echo instance with its middleware and routes.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: config: Store is required")
	}
	if cfg.Logger == nil {
		return nil, errors.New("server: config: Logger is required")
	}
	if cfg.BaseURL == nil || cfg.BaseURL.Scheme == "" || cfg.BaseURL.Host == "" {
		return nil, errors.New("server: config: BaseURL must be an absolute URL")
	}
	cfg.setDefaults()
	log := reqctx.NewLogger(cfg.Logger)
	base := strings.TrimSuffix(cfg.BaseURL.String(), "/")
	q, mailer, err := newTasks(cfg, log)
	if err != nil {
		return nil, err
	}

	sc := cfg.SAML
	if sc.Store == nil {
		sc.Store = cfg.Store
	}
	if sc.Logger == nil {
		sc.Logger = log
	}
	if sc.BaseURL == nil {
		sc.BaseURL = cfg.BaseURL
	}
	sc.Demo = sc.Demo || cfg.Demo
	sc.Mailer = mailer
	if sc.ACSBodyLimit <= 0 {
		sc.ACSBodyLimit = cfg.SAMLBodyLimit // the ACS applies it itself (bodyLimitClass)
	}
	samlSvc, err := saml.New(sc)
	if err != nil {
		return nil, fmt.Errorf("server: saml: %w", err)
	}

	s := &Server{
		cfg:   cfg,
		log:   log,
		store: cfg.Store,
		echo:  echo.New(),
		scim: scimhandlers.New(scimhandlers.Config{
			Store:      cfg.Store,
			Logger:     log,
			BaseURL:    base,
			MaxResults: cfg.SCIMMaxResults,
		}),
		saml:           samlSvc,
		baseURL:        base,
		metadataClient: newMetadataClient(cfg.MetadataClient, cfg.MetadataAllowPrivateHosts),
		started:        make(chan struct{}),
		queue:          q,
		mail:           mailer,
	}
	if cfg.Startup == nil {
		close(s.started)
	}
	if cfg.Metrics != nil {
		if s.metrics, err = newMetrics(cfg.Metrics); err != nil {
			return nil, fmt.Errorf("server: metrics: %w", err)
		}
	}
	// Demo mode delivers the demo workspaces' events to its own receiver
	// (package saml), over http to this server's own address; every other
	// endpoint stays held to Webhooks.AllowPrivate.
	ownReceiver := ""
	if sc.Demo {
		ownReceiver = samlSvc.DemoWebhookURL()
	}
	if s.webhooks, err = webhooks.New(webhooks.Config{OwnReceiver: ownReceiver, Store: s.store, Queue: q, Render: s.scim, Logger: log,
		SecretKey: cfg.SAML.SecretKey, AllowPrivate: cfg.Webhooks.AllowPrivate, PollInterval: cfg.Webhooks.PollInterval,
		ClaimIdle: cfg.Webhooks.ClaimIdle, Timeout: cfg.Webhooks.Timeout, Observe: s.metrics.webhookAttempt,
		ObserveDropped: s.metrics.webhookOutboxDropped}); err != nil {
		return nil, fmt.Errorf("server: webhooks: %w", err)
	}
	if s.adminTokens, err = adminTokensFor(cfg); err != nil {
		return nil, err
	}
	if len(s.adminTokens.Names()) == 0 {
		log.Warn("admin token not set: the admin API is disabled")
	}

	e := s.echo
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard) // Echo logs nothing itself; errors go through handleError
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.HTTPErrorHandler = s.handleError
	e.Use(
		requestID(),      // sanitised inbound X-Request-ID or a new one, and the :ws route parameter, into ctx
		s.accessLog(),    // one line per request: method, route template, status, duration; renders errors
		s.recoverPanic(), // a panic becomes a 500 and an error log with the stack
		secureHeaders(),  // nosniff, no framing
	)
	e.Use(s.bodyLimits()...) // per-route-class body cap, see bodyLimitClass
	e.Use(s.requireStarted)  // 503 until Config.Startup has succeeded
	e.Use(s.notifyWebhooks)  // a write wakes the local webhook dispatcher
	// A request's context ends when the response could no longer be
	// written (WriteTimeout), so its store calls and scans stop then; a
	// client that goes away ends it earlier.
	e.Use(middleware.ContextTimeout(cfg.WriteTimeout))
	s.routes()
	return s, nil
}

// routes is the whole route table.
func (s *Server) routes() {
	e := s.echo

	// Health: process up; store answering (HEAD too, for load balancers).
	e.Match([]string{http.MethodGet, http.MethodHead}, "/healthz", s.healthz)
	e.Match([]string{http.MethodGet, http.MethodHead}, "/readyz", s.readyz)

	// Admin API (docs/admin-api.md), bearer admin token. The token check is
	// route middleware, not group middleware: a group with middleware
	// registers a catch-all that answers 404 before Echo's router can answer
	// a wrong method on an existing route with 405 and Allow.
	admin := e.Group("/admin/v1")
	admin.GET("/openapi.json", s.openAPIDocument) // the API's contract (server/openapi.json): public, no token
	for _, r := range []struct {
		method, path string
		h            echo.HandlerFunc
	}{
		{http.MethodGet, "/workspaces", s.listWorkspaces},
		{http.MethodPost, "/workspaces", s.createWorkspace},
		{http.MethodGet, "/workspaces/:ws", s.getWorkspace},
		{http.MethodPatch, "/workspaces/:ws", s.updateWorkspace},
		{http.MethodDelete, "/workspaces/:ws", s.deleteWorkspace},
		{http.MethodGet, "/workspaces/:ws/scim-tokens", s.listSCIMTokens},
		{http.MethodPost, "/workspaces/:ws/scim-tokens", s.createSCIMToken},
		{http.MethodDelete, "/workspaces/:ws/scim-tokens/:token", s.revokeSCIMToken},
		{http.MethodGet, "/workspaces/:ws/events", s.listEvents},
		{http.MethodGet, "/workspaces/:ws/members/:userId/roles/explain", s.explainRoles},
		{http.MethodPost, "/workspaces/:ws/refresh-metadata", s.refreshMetadataNow},
		{http.MethodGet, "/workspaces/:ws/webhooks", s.listWebhooks},
		{http.MethodPost, "/workspaces/:ws/webhooks", s.createWebhook},
		{http.MethodGet, "/workspaces/:ws/webhooks/:endpoint", s.getWebhook},
		{http.MethodPatch, "/workspaces/:ws/webhooks/:endpoint", s.updateWebhook},
		{http.MethodDelete, "/workspaces/:ws/webhooks/:endpoint", s.deleteWebhook},
		{http.MethodPost, "/workspaces/:ws/webhooks/:endpoint/rotate-secret", s.rotateWebhookSecret},
		{http.MethodGet, "/workspaces/:ws/webhooks/:endpoint/deliveries", s.listWebhookDeliveries},
		{http.MethodGet, "/workspaces/:ws/webhooks/:endpoint/failed", s.listWebhookFailed},
		{http.MethodPost, "/workspaces/:ws/webhooks/:endpoint/failed/:event/redeliver", s.redeliverWebhookFailed},
		{http.MethodPost, "/workspaces/:ws/webhooks/:endpoint/redeliver", s.redeliverWebhookSince},
		{http.MethodGet, "/outbox", s.listOutbox},
	} {
		admin.Add(r.method, r.path, r.h, s.requireAdmin)
	}

	// SCIM 2.0 (docs/scim.md): every endpoint under /scim/v2/:ws; the SCIM
	// handler authenticates the workspace's bearer token before each one.
	s.scim.Register(e.Group("/scim/v2/:ws"))

	// SAML, sessions, join, switch and the demo IdP (package saml).
	s.saml.Register(e)

	// The admin console in the browser (package console) and /static.
	console.Register(e, s.consoleConfig())
}

// Handler returns the HTTP handler (the Echo instance).
func (s *Server) Handler() http.Handler { return s.echo }

// SAML returns the SAML service the server was built with.
func (s *Server) SAML() *saml.Service { return s.saml }

// Run listens on Config.ListenAddr and serves until ctx is done, then shuts
// down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then stops accepting connections and
// waits up to Config.ShutdownTimeout for running requests to finish. It
// closes ln. Once Config.Startup has succeeded it runs the refresh loop of
// idp.metadataURL (refreshMetadataLoop) until it returns. It runs
// Config.Startup in the background; when Startup fails
// with an error that is not storage.ErrUnavailable, Serve shuts down the
// same way and returns that error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String(), "base_url", s.baseURL)

	// Startup runs while the server already listens; Serve returns only
	// after it has ended.
	sctx, stopStartup := context.WithCancel(ctx)
	startc := make(chan error, 1)
	go func() { startc <- s.runStartup(sctx) }()
	startDone := false
	defer func() {
		stopStartup()
		if !startDone {
			<-startc
		}
	}()
	var startErr error
wait:
	for pending := startc; ; {
		select {
		case err := <-errc:
			return fmt.Errorf("server: serve: %w", err)
		case err := <-pending:
			startDone, pending = true, nil
			if err != nil && ctx.Err() == nil {
				startErr = err
				break wait
			}
			if err == nil {
				// Refreshes of idp.metadataURL, until Serve returns.
				lctx, stopLoop := context.WithCancel(ctx)
				loopDone := make(chan struct{})
				go func() { defer close(loopDone); s.refreshMetadataLoop(lctx) }()
				defer func() { stopLoop(); <-loopDone }()
				// The durable queue's workers, the webhook dispatcher and
				// the mail sweep, until Serve returns (after the HTTP
				// server has stopped).
				stopWork, err := s.StartWork(ctx)
				if err != nil {
					startErr = fmt.Errorf("server: queue: %w", err)
					break wait
				}
				defer stopWork()
			}
		case <-ctx.Done():
			break wait
		}
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	// A variable of its own: the startup goroutine reads sctx.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		_ = hs.Close()
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.log.Info("stopped")
	return startErr
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// ReadyTimeout bounds /readyz: it answers 503 when the store has not
// answered a ping within this time, whatever the store client does with
// the deadline.
const ReadyTimeout = 2 * time.Second

func (s *Server) readyz(c echo.Context) error {
	if !s.isStarted() {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "starting"})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), ReadyTimeout)
	defer cancel()
	if err := s.ready.ping(ctx, s.store); err != nil {
		s.log.WarnContext(ctx, "readiness check failed", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readiness runs the store pings of /readyz: at most one at a time, shared
// by the requests that arrive while it runs, so that a stalled store costs
// one pending ping however often the load balancer probes.
type readiness struct {
	mu  sync.Mutex
	cur *pingCall // the running ping, nil when none runs
}

// pingCall is one store ping; err is set before done is closed.
type pingCall struct {
	done chan struct{}
	err  error
}

// ping waits for the running store ping (starting one when none runs) or
// for ctx, whichever ends first. The ping runs in its own goroutine with
// ReadyTimeout, detached from ctx, so a caller returns at its deadline even
// when the store client ignores it, and one caller leaving does not fail
// the others.
func (r *readiness) ping(ctx context.Context, store storage.Store) error {
	r.mu.Lock()
	call := r.cur
	if call == nil {
		call = &pingCall{done: make(chan struct{})}
		r.cur = call
		go func() {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReadyTimeout)
			call.err = store.Ping(pctx)
			cancel()
			r.mu.Lock()
			r.cur = nil
			r.mu.Unlock()
			close(call.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return fmt.Errorf("store did not answer a ping within %s: %w", ReadyTimeout, ctx.Err())
	}
}
