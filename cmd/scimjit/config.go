package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/scimjit/scimjit/saml/mail"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// serveConfig is the typed serve configuration.
type serveConfig struct {
	Listen  string
	BaseURL string

	redisConfig
	logConfig

	AdminToken string
	// AdminTokensFile names a file of named admin tokens, re-read every
	// AdminTokensReload and on SIGHUP (admintokens.go).
	AdminTokensFile   string
	AdminTokensReload time.Duration
	AdminAuthLimit    int
	ShutdownTimeout   time.Duration
	TrustedProxies    []netip.Prefix
	MetricsListen     string
	Bootstrap         string
	Demo              bool

	// The http.Server timeouts and the request body caps in bytes.
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPWriteTimeout      time.Duration
	HTTPIdleTimeout       time.Duration
	SCIMBodyLimit         int64
	SAMLBodyLimit         int64
	AdminBodyLimit        int64
	BodyLimit             int64

	SAMLKeyFile   string
	SAMLCertFile  string
	SecretKey     string
	SAMLClockSkew time.Duration
	SessionTTL    time.Duration
	VerifyTTL     time.Duration
	// Rate limits per minute (saml.Config).
	SAMLLoginLimit        int
	SAMLACSClientLimit    int
	SAMLACSWorkspaceLimit int
	// IdPMetadataAllowPrivateHosts lets metadata URLs reach non-public
	// addresses.
	IdPMetadataAllowPrivateHosts bool
	// WebhooksAllowPrivate lets webhook endpoints use http and reach
	// non-public addresses.
	WebhooksAllowPrivate bool

	SMTP mail.SMTPConfig
}

// configProblems collects every problem found while building and
// validating a configuration.
type configProblems []string

func (p *configProblems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

func (p configProblems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New("invalid configuration:\n  - " + strings.Join(p, "\n  - "))
}

// optionReader converts resolved option values, collecting a problem for
// each value that does not parse.
type optionReader struct {
	v map[string]resolved
	p *configProblems
}

func (r optionReader) str(name string) string { return strings.TrimSpace(r.v[name].Value) }

func (r optionReader) dur(name string) time.Duration {
	s := r.str(name)
	d, err := time.ParseDuration(s)
	if err != nil {
		r.p.add("--%s: %q is not a duration (e.g. 30s, 5m, 12h)", name, s)
		return 0
	}
	return d
}

func (r optionReader) boolean(name string) bool {
	s := r.str(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.p.add("--%s: %q is not true or false", name, s)
	}
	return b
}

func (r optionReader) size(name string) int64 {
	s := r.str(name)
	n, err := parseByteSize(s)
	if err != nil {
		r.p.add("--%s: %q is not a size (bytes, or with a KiB or MiB suffix, e.g. 65536, 512KiB, 2MiB)", name, s)
		return 0
	}
	return n
}

func (r optionReader) integer(name string) int {
	s := r.str(name)
	n, err := strconv.Atoi(s)
	if err != nil {
		r.p.add("--%s: %q is not an integer", name, s)
	}
	return n
}

// list splits a comma-separated value, dropping empty items.
func (r optionReader) list(name string) []string {
	var out []string
	for _, s := range strings.Split(r.str(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// redisConfig is how to reach Redis: the --redis-* options, which serve
// and check share.
type redisConfig struct {
	RedisURL      string
	RedisAddrs    []string
	RedisMaster   string
	RedisUsername string
	RedisPassword string
	RedisDB       int
	RedisTLS      bool
	RedisTimeout  time.Duration
}

func (r optionReader) redis() redisConfig {
	return redisConfig{
		RedisURL:      r.str("redis-url"),
		RedisAddrs:    r.list("redis-addrs"),
		RedisMaster:   r.str("redis-master"),
		RedisUsername: r.str("redis-username"),
		RedisPassword: r.v["redis-password"].Value,
		RedisDB:       r.integer("redis-db"),
		RedisTLS:      r.boolean("redis-tls"),
		RedisTimeout:  r.dur("redis-timeout"),
	}
}

// logConfig is the --log-* options.
type logConfig struct {
	LogLevel  string
	LogFormat string
}

func (r optionReader) log() logConfig {
	return logConfig{LogLevel: strings.ToLower(r.str("log-level")), LogFormat: strings.ToLower(r.str("log-format"))}
}

// newServeConfig converts resolved option values to a serveConfig and
// validates it, reporting every problem at once, after the earlier ones
// (secret files that could not be read).
func newServeConfig(v map[string]resolved, earlier ...string) (serveConfig, error) {
	p := configProblems(earlier)
	r := optionReader{v, &p}
	c := serveConfig{
		Listen:            r.str("listen"),
		BaseURL:           r.str("base-url"),
		redisConfig:       r.redis(),
		logConfig:         r.log(),
		AdminToken:        r.str("admin-token"),
		AdminTokensFile:   r.str("admin-tokens-file"),
		AdminTokensReload: r.dur("admin-tokens-reload"),
		AdminAuthLimit:    r.integer("admin-auth-limit"),
		ShutdownTimeout:   r.dur("shutdown-timeout"),
		Bootstrap:         r.str("bootstrap"),
		MetricsListen:     r.str("metrics-listen"),
		Demo:              r.boolean("demo"),
		SAMLKeyFile:       r.str("saml-key-file"),
		SAMLCertFile:      r.str("saml-cert-file"),
		SecretKey:         v["secret-key"].Value,
		SAMLClockSkew:     r.dur("saml-clock-skew"),
		SessionTTL:        r.dur("session-ttl"),
		VerifyTTL:         r.dur("verify-ttl"),

		SAMLLoginLimit:               r.integer("saml-login-limit"),
		SAMLACSClientLimit:           r.integer("saml-acs-client-limit"),
		SAMLACSWorkspaceLimit:        r.integer("saml-acs-workspace-limit"),
		IdPMetadataAllowPrivateHosts: r.boolean("idp-metadata-allow-private-hosts"),
		WebhooksAllowPrivate:         r.boolean("webhooks-allow-private"),
		SMTP: mail.SMTPConfig{
			Host:     r.str("smtp-host"),
			Port:     r.integer("smtp-port"),
			Username: r.str("smtp-username"),
			Password: v["smtp-password"].Value,
			From:     r.str("smtp-from"),
			TLS:      strings.ToLower(r.str("smtp-tls")),
		},
	}
	c.HTTPReadHeaderTimeout = r.dur("http-read-header-timeout")
	c.HTTPReadTimeout = r.dur("http-read-timeout")
	c.HTTPWriteTimeout = r.dur("http-write-timeout")
	c.HTTPIdleTimeout = r.dur("http-idle-timeout")
	c.SCIMBodyLimit = r.size("scim-body-limit")
	c.SAMLBodyLimit = r.size("saml-body-limit")
	c.AdminBodyLimit = r.size("admin-body-limit")
	c.BodyLimit = r.size("body-limit")
	for _, s := range r.list("trusted-proxies") {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				p.add("--trusted-proxies: %q is not a CIDR or IP address", s)
				continue
			}
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, pf.Masked())
	}
	p = append(p, c.validate()...)
	return c, p.err()
}

// RedisConfigured reports whether a Redis deployment was given (else
// serve runs the embedded in-memory server).
func (c redisConfig) RedisConfigured() bool {
	return c.RedisURL != "" || len(c.RedisAddrs) > 0
}

// validate returns every problem of c.
func (c serveConfig) validate() configProblems {
	var p configProblems
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("--listen: %q is not host:port", c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add("--listen: port %q is not a port number", port)
	} else if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, "/ ") {
		p.add("--listen: host %q is invalid", host)
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			p.add("--metrics-listen: %q is not host:port", c.MetricsListen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.add("--metrics-listen: port %q is not a port number", port)
		} else if c.MetricsListen == c.Listen && n != 0 {
			p.add("--metrics-listen must differ from --listen")
		}
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			p.add("--base-url: %q must be an absolute http(s) URL", c.BaseURL)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			p.add("--base-url: %q must not have a query, fragment or user info", c.BaseURL)
		}
	}
	p = append(p, c.redisConfig.validate()...)
	p = append(p, c.logConfig.validate()...)
	if c.AdminToken != "" {
		if err := checkAdminToken("--admin-token", c.AdminToken); err != nil {
			p.add("%v", err)
		}
	}
	if c.AdminTokensReload < 100*time.Millisecond {
		p.add("--admin-tokens-reload: at least 100ms")
	}
	if c.AdminAuthLimit < 1 {
		p.add("--admin-auth-limit must be at least 1")
	}
	if c.ShutdownTimeout < 0 {
		p.add("--shutdown-timeout must not be negative")
	}
	// Zero would silently mean the server default (to net/http: no timeout
	// at all), so every value must be positive.
	for _, o := range []struct {
		name string
		d    time.Duration
	}{
		{"http-read-header-timeout", c.HTTPReadHeaderTimeout},
		{"http-read-timeout", c.HTTPReadTimeout},
		{"http-write-timeout", c.HTTPWriteTimeout},
		{"http-idle-timeout", c.HTTPIdleTimeout},
	} {
		if o.d <= 0 {
			p.add("--%s must be positive", o.name)
		}
	}
	if c.HTTPReadTimeout > 0 && c.HTTPReadHeaderTimeout > c.HTTPReadTimeout {
		p.add("--http-read-header-timeout must not exceed --http-read-timeout (which includes the headers)")
	}
	for _, o := range []struct {
		name string
		n    int64
	}{
		{"scim-body-limit", c.SCIMBodyLimit},
		{"saml-body-limit", c.SAMLBodyLimit},
		{"admin-body-limit", c.AdminBodyLimit},
		{"body-limit", c.BodyLimit},
	} {
		switch {
		case o.n <= 0:
			p.add("--%s must be positive", o.name)
		case o.n > maxBodyLimit:
			p.add("--%s: at most %dMiB", o.name, maxBodyLimit>>20)
		}
	}
	for _, o := range []struct {
		name string
		n    int
	}{
		{"saml-login-limit", c.SAMLLoginLimit},
		{"saml-acs-client-limit", c.SAMLACSClientLimit},
		{"saml-acs-workspace-limit", c.SAMLACSWorkspaceLimit},
	} {
		if o.n < 1 || o.n > maxRateLimit {
			p.add("--%s: must be from 1 to %d (per minute)", o.name, maxRateLimit)
		}
	}
	for name, d := range map[string]time.Duration{"saml-clock-skew": c.SAMLClockSkew, "session-ttl": c.SessionTTL, "verify-ttl": c.VerifyTTL} {
		if d < 0 {
			p.add("--%s must not be negative", name)
		}
	}
	if c.SAMLClockSkew > 10*time.Minute {
		p.add("--saml-clock-skew: at most 10m")
	}
	if c.VerifyTTL > 0 && c.VerifyTTL < time.Minute {
		p.add("--verify-ttl: at least 1m")
	}
	if c.SessionTTL > 0 && c.SessionTTL < time.Minute {
		p.add("--session-ttl: at least 1m")
	}
	if (c.SAMLKeyFile == "") != (c.SAMLCertFile == "") {
		p.add("--saml-key-file and --saml-cert-file go together: set both or neither")
	}
	if err := checkSecretKey(c.SecretKey); err != nil {
		p.add("%v", err)
	}
	if c.SMTP.Host == "" {
		if c.SMTP.Username != "" || c.SMTP.Password != "" || c.SMTP.From != "" {
			p.add("SMTP settings are given but no --smtp-host")
		}
	} else if err := c.SMTP.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			p.add("SMTP: %s", line)
		}
	}
	return p
}

// open connects to the Redis deployment c describes.
func (c redisConfig) open(ctx context.Context) (*redisstore.Store, error) {
	s, err := redisstore.Open(ctx, c.options())
	if err != nil {
		return nil, fmt.Errorf("open redis: %w", err)
	}
	return s, nil
}

// dial builds the store for the Redis deployment c describes without
// connecting (redisstore.Dial); serve connects in the background.
func (c redisConfig) dial() (*redisstore.Store, error) {
	s, err := redisstore.Dial(c.options())
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return s, nil
}

func (c redisConfig) options() redisstore.Options {
	return redisstore.Options{
		URL:        c.RedisURL,
		Addrs:      c.RedisAddrs,
		MasterName: c.RedisMaster,
		Username:   c.RedisUsername,
		Password:   c.RedisPassword,
		DB:         c.RedisDB,
		TLS:        c.RedisTLS,
		Timeout:    c.RedisTimeout,
	}
}

// validate returns every problem of the Redis options.
func (c redisConfig) validate() configProblems {
	var p configProblems
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			p.add("--redis-url: must be a redis://, rediss:// or unix:// URL")
		}
		if len(c.RedisAddrs) > 0 {
			p.add("--redis-url and --redis-addrs are exclusive: use one")
		}
		if c.RedisMaster != "" {
			p.add("--redis-master needs --redis-addrs (the sentinels), not --redis-url")
		}
	}
	if c.RedisMaster != "" && len(c.RedisAddrs) == 0 {
		p.add("--redis-master needs --redis-addrs (the sentinel addresses)")
	}
	for _, a := range c.RedisAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.add("--redis-addrs: %q is not host:port", a)
		}
	}
	if c.RedisDB < 0 {
		p.add("--redis-db must not be negative")
	}
	if c.RedisTimeout < 100*time.Millisecond || c.RedisTimeout > time.Minute {
		p.add("--redis-timeout: from 100ms to 1m")
	}
	if c.RedisDB != 0 && len(c.RedisAddrs) > 1 && c.RedisMaster == "" {
		p.add("--redis-db: Redis Cluster has only database 0")
	}
	if !c.RedisConfigured() && (c.RedisUsername != "" || c.RedisPassword != "" || c.RedisTLS || c.RedisMaster != "") {
		p.add("Redis credentials or options are set but no --redis-url or --redis-addrs")
	}
	return p
}

// validate returns every problem of the log options.
func (c logConfig) validate() configProblems {
	var p configProblems
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.add("--log-level: %q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		p.add("--log-format: %q must be text or json", c.LogFormat)
	}
	return p
}

// minAdminTokenLength is the shortest admin token serve accepts, in bytes:
// with random characters (the generated demo token, `openssl rand -base64
// 32`) that is far beyond guessing.
const minAdminTokenLength = 32

// minAdminTokenDistinct is the fewest different characters an admin token
// must have, so that a long token made of a few repeated characters is
// refused. A random hex token of minAdminTokenLength characters has fewer
// only about once in 28 million.
const minAdminTokenDistinct = 8

// checkAdminToken refuses a weak admin token, saying why without showing
// it: shorter than minAdminTokenLength, fewer than minAdminTokenDistinct
// different characters, or a simple sequence: more than half of its
// neighbouring characters equal or next to each other in ASCII (aaaa,
// abcd, 4321). Random tokens, hex ones included, are nowhere near that
// half.
func checkAdminToken(what, tok string) error {
	var why []string
	if len(tok) < minAdminTokenLength {
		why = append(why, fmt.Sprintf("it has %d characters, at least %d are needed", len(tok), minAdminTokenLength))
	}
	var seen [256]bool
	distinct, steps := 0, 0
	for i := 0; i < len(tok); i++ {
		if !seen[tok[i]] {
			seen[tok[i]] = true
			distinct++
		}
		if i > 0 && max(tok[i], tok[i-1])-min(tok[i], tok[i-1]) <= 1 {
			steps++
		}
	}
	if distinct < minAdminTokenDistinct {
		why = append(why, fmt.Sprintf("it has %d different characters, at least %d are needed", distinct, minAdminTokenDistinct))
	} else if 2*steps > len(tok)-1 {
		why = append(why, "it is mostly repeated or consecutive characters (like aaaa, abcd or 4321)")
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%s is too weak: %s; use a random token, e.g. the output of `openssl rand -base64 32`",
		what, strings.Join(why, "; "))
}

// maxRateLimit caps the per-minute rate-limit options (10,000 a second): a
// larger value is a typo, and "no limit" is not offered.
const maxRateLimit = 600000

// maxBodyLimit caps the body-limit options: no SCIM request, SAML response
// or IdP metadata document comes near it, so a larger value is a typo.
const maxBodyLimit = 256 << 20

// parseByteSize parses a size in bytes: decimal digits, optionally followed
// by KiB (×1024) or MiB (×1024²). Nothing else is accepted (no sign, space,
// fraction or SI unit), so a typo cannot silently mean something else.
// Range checks are left to validate.
func parseByteSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "KiB"):
		s, mult = strings.TrimSuffix(s, "KiB"), 1<<10
	case strings.HasSuffix(s, "MiB"):
		s, mult = strings.TrimSuffix(s, "MiB"), 1<<20
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, errors.New("not a size")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, errors.New("size out of range")
	}
	return n * mult, nil
}

// minSecretKey is the shortest --secret-key: HKDF stretches nothing, so the
// secret itself must carry the strength (32 characters of base64 are 192
// bits).
const minSecretKey = 32

// checkSecretKey checks --secret-key ("" is allowed: keys stored
// unencrypted).
func checkSecretKey(k string) error {
	if k != "" && len(k) < minSecretKey {
		return fmt.Errorf("--secret-key: at least %d characters (e.g. openssl rand -base64 32)", minSecretKey)
	}
	return nil
}
