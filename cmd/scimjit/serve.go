package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// serve runs the server until ctx is done, with the options the serve
// command resolved (vals) and the problems met reading secret files. Once
// the logger exists, a failure is a log record (JSON with --log-format
// json) and serve returns errReported; only bad log options come back as
// errors for run to print.
func serve(ctx context.Context, vals map[string]resolved, fileProblems []string, env environ, readFile readFileFunc, stdout, stderr io.Writer) error {
	cfg, err := newServeConfig(vals, fileProblems...)
	if len(cfg.logConfig.validate()) > 0 {
		return err // no logger can be built: plain text
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	redisstore.SetLogger(log)
	if err == nil {
		err = runServe(ctx, cfg, vals, log, env, readFile, stdout)
	}
	if err != nil {
		log.Error("serve failed", "err", err)
		return errReported
	}
	return nil
}

// runServe builds the store, the mailer, the metrics and the server from
// cfg and serves until ctx is done. Connecting to Redis and what needs it
// (startup) run in the background while the server already listens.
func runServe(ctx context.Context, cfg serveConfig, vals map[string]resolved, log *slog.Logger, env environ, readFile readFileFunc, stdout io.Writer) error {
	demo := cfg.Demo || !cfg.RedisConfigured()
	log.Info("effective configuration", redactedValues(vals)...)

	// Storage: real Redis, or the embedded in-memory server.
	var store *redisstore.Store
	var err error
	if cfg.RedisConfigured() {
		if store, err = cfg.dial(); err != nil {
			return err
		}
		log.Info("storage: redis", "addr", store.Addr())
	} else {
		store, err = redisstore.OpenEmbedded(ctx, log)
		if err != nil {
			return fmt.Errorf("start embedded redis: %w", err)
		}
		log.Warn("STORAGE IS IN MEMORY ONLY: no Redis configured, using the embedded server; every workspace, user and token is lost when scimjit stops (set --redis-url for real use)")
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Warn("close store", "err", err)
		}
	}()
	st := &startup{store: store, log: log, demo: demo, secrets: server.SecretSource{LookupEnv: env, ReadFile: readFile,
		MetadataAllowPrivateHosts: cfg.IdPMetadataAllowPrivateHosts, SecretKey: cfg.SecretKey,
		WebhooksAllowPrivate: cfg.WebhooksAllowPrivate}}
	if cfg.Bootstrap != "" {
		if st.bootstrap, err = readBootstrap(readFile, cfg.Bootstrap); err != nil {
			return err
		}
		st.bootstrapFile = cfg.Bootstrap
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	base := cfg.BaseURL
	if base == "" {
		base = defaultBaseURL(ln.Addr())
	}
	baseURL, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("base url: %w", err)
	}

	samlCfg := cfg.samlConfig()
	if cfg.SAMLKeyFile != "" {
		samlCfg.Key, samlCfg.Certificate, err = loadKeyPair(readFile, cfg.SAMLKeyFile, cfg.SAMLCertFile)
		if err != nil {
			return err
		}
	}

	// Mail for join verification: SMTP when configured, else the outbox;
	// delivered from tasks on the server's queue.
	transport, err := mail.NewTransport(cfg.SMTP)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if cfg.SMTP.Host != "" {
		log.Info("mail: smtp", "host", cfg.SMTP.Host, "tls", cfg.SMTP.TLS)
	} else {
		log.Info("mail: no smtp host, messages go to the outbox only (GET /admin/v1/outbox)")
	}

	var reg *prometheus.Registry
	if cfg.MetricsListen != "" {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		stopMetrics, err := serveMetrics(ctx, lc, cfg.MetricsListen, reg, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	adminToken := cfg.AdminToken
	if demo && adminToken == "" && cfg.AdminTokensFile == "" {
		adminToken = newAdminToken()
	}
	adminTokens, stopWatch, err := startAdminTokens(ctx, cfg, adminToken, readFile, log)
	if err != nil {
		return err
	}
	defer stopWatch()
	sc := cfg.serverConfig()
	sc.Store = store
	sc.MailTransport = transport
	sc.Logger = log
	sc.BaseURL = baseURL
	sc.ListenAddr = ln.Addr().String()
	sc.AdminTokens = adminTokens
	sc.SAML = samlCfg
	sc.Demo = demo
	sc.Metrics = metricsRegisterer(reg)
	sc.Startup = st.run
	st.srv, err = server.New(sc)
	if err != nil {
		return err
	}
	if demo {
		st.banner.BaseURL = baseURL.String()
		if cfg.AdminToken == "" {
			st.banner.AdminToken = adminToken // generated: the banner is the only place it appears
		}
		st.banner.InMemory = !cfg.RedisConfigured()
		go st.printBanner(ctx, stdout)
	}
	return st.srv.Serve(ctx, ln)
}

// serverConfig is the part of server.Config that comes straight from the
// options; serve adds the store, logger, addresses and the rest it builds.
func (c serveConfig) serverConfig() server.Config {
	return server.Config{
		TrustedProxies:    c.TrustedProxies,
		AdminAuthLimit:    c.AdminAuthLimit,
		ReadHeaderTimeout: c.HTTPReadHeaderTimeout,
		ReadTimeout:       c.HTTPReadTimeout,
		WriteTimeout:      c.HTTPWriteTimeout,
		IdleTimeout:       c.HTTPIdleTimeout,
		ShutdownTimeout:   c.ShutdownTimeout,
		SCIMBodyLimit:     c.SCIMBodyLimit,
		SAMLBodyLimit:     c.SAMLBodyLimit,
		AdminBodyLimit:    c.AdminBodyLimit,
		DefaultBodyLimit:  c.BodyLimit,

		MetadataAllowPrivateHosts: c.IdPMetadataAllowPrivateHosts,
		Webhooks:                  server.WebhooksConfig{AllowPrivate: c.WebhooksAllowPrivate},
	}
}

// samlConfig is the part of saml.Config that comes straight from the
// options; serve adds the key pair from files and the mailer.
func (c serveConfig) samlConfig() saml.Config {
	return saml.Config{
		ClockSkew:         c.SAMLClockSkew,
		SessionTTL:        c.SessionTTL,
		VerifyTTL:         c.VerifyTTL,
		SecretKey:         c.SecretKey,
		LoginLimit:        c.SAMLLoginLimit,
		ACSClientLimit:    c.SAMLACSClientLimit,
		ACSWorkspaceLimit: c.SAMLACSWorkspaceLimit,
	}
}

// metricsRegisterer avoids a typed-nil interface when metrics are off.
func metricsRegisterer(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return reg
}

// serveMetrics serves reg at /metrics on addr until ctx is done or the
// returned stop function is called.
func serveMetrics(ctx context.Context, lc net.ListenConfig, addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}, nil
}

// defaultBaseURL derives the base URL from the listening address; an
// unspecified host (0.0.0.0, ::) becomes localhost.
func defaultBaseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// loadKeyPair reads the SAML SP key (PKCS#1 or PKCS#8 RSA) and its
// certificate from PEM files and checks that they match.
func loadKeyPair(readFile readFileFunc, keyFile, certFile string) (*rsa.PrivateKey, *x509.Certificate, error) {
	keyPEM, err := readFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("saml key: %w", err)
	}
	certPEM, err := readFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("saml certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("saml key %s: no PEM block", keyFile)
	}
	var key *rsa.PrivateKey
	switch kb.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "PRIVATE KEY":
		var k any
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err == nil {
			var ok bool
			if key, ok = k.(*rsa.PrivateKey); !ok {
				err = errors.New("not an RSA key (IdPs encrypt assertions to RSA keys)")
			}
		}
	default:
		err = fmt.Errorf("unexpected PEM block %q", kb.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("saml key %s: %w", keyFile, err)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("saml certificate %s: no CERTIFICATE PEM block", certFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("saml certificate %s: %w", certFile, err)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, fmt.Errorf("saml certificate %s does not match the key %s", certFile, keyFile)
	}
	return key, cert, nil
}
