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
// command resolved (vals) and the problems met reading secret files.
func serve(ctx context.Context, vals map[string]resolved, fileProblems []string, env environ, readFile readFileFunc, stdout, stderr io.Writer) error {
	cfg, err := newServeConfig(vals, fileProblems...)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	demo := cfg.Demo || !cfg.RedisConfigured()
	log.Info("effective configuration", redactedValues(vals)...)

	// Storage: real Redis, or the embedded in-memory server.
	var store *redisstore.Store
	if cfg.RedisConfigured() {
		if store, err = cfg.open(ctx); err != nil {
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

	if cfg.Bootstrap != "" {
		data, err := readFile(cfg.Bootstrap)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		b, err := server.ParseBootstrap(data)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.Bootstrap, err)
		}
		if err := server.ApplyBootstrap(ctx, store, log, b, server.SecretSource{LookupEnv: env, ReadFile: readFile,
			MetadataAllowPrivateHosts: cfg.IdPMetadataAllowPrivateHosts}); err != nil {
			return err
		}
		log.Info("bootstrap applied", "file", cfg.Bootstrap, "workspaces", len(b.Workspaces))
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

	// Mail for join verification: SMTP when configured, else the outbox.
	if cfg.SMTP.Host != "" {
		mailer, err := mail.New(store, log, cfg.SMTP)
		if err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
		samlCfg.Mailer = mailer
		if c, ok := mailer.(mail.Closer); ok {
			// Runs after Serve returned: let deliveries in flight finish.
			defer func() {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
				defer cancel()
				if err := c.Close(cctx); err != nil {
					log.Warn("mail: deliveries abandoned at shutdown", "err", err)
				}
			}()
		}
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
	if demo && adminToken == "" {
		adminToken = newAdminToken()
	}
	sc := cfg.serverConfig()
	sc.Store = store
	sc.Logger = log
	sc.BaseURL = baseURL
	sc.ListenAddr = ln.Addr().String()
	sc.AdminToken = adminToken
	sc.SAML = samlCfg
	sc.Demo = demo
	sc.Metrics = metricsRegisterer(reg)
	srv, err := server.New(sc)
	if err != nil {
		return err
	}
	if demo {
		info, err := setupDemo(ctx, store, srv, log)
		if err != nil {
			return fmt.Errorf("demo mode: %w", err)
		}
		info.BaseURL = baseURL.String()
		if cfg.AdminToken == "" {
			info.AdminToken = adminToken // generated: the banner is the only place it appears
		}
		info.InMemory = !cfg.RedisConfigured()
		printDemo(stdout, info)
	}
	return srv.Serve(ctx, ln)
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
	}
}

// samlConfig is the part of saml.Config that comes straight from the
// options; serve adds the key pair and the mailer.
func (c serveConfig) samlConfig() saml.Config {
	return saml.Config{
		ClockSkew:         c.SAMLClockSkew,
		SessionTTL:        c.SessionTTL,
		VerifyTTL:         c.VerifyTTL,
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
