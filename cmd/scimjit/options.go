package main

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/scimjit/scimjit/saml"
)

// option is one serve setting: a flag, its environment variable and its
// default. The table below is the single source of the flags, the effective
// configuration log line and docs/configuration.md (a test compares them).
type option struct {
	Flag    string
	Default string
	Usage   string
	Bool    bool
	// Secret values are redacted when logged and may come from a file
	// named by <ENV>_FILE.
	Secret bool
}

// Env is the option's environment variable: SCIMJIT_ + upper-cased flag.
func (o option) Env() string {
	return "SCIMJIT_" + strings.ToUpper(strings.ReplaceAll(o.Flag, "-", "_"))
}

var serveOptions = []option{
	{Flag: "listen", Default: "127.0.0.1:8080", Usage: "TCP address to listen on (use 0.0.0.0:8080 in a container)"},
	{Flag: "base-url", Usage: "public base URL clients and IdPs use (default: http:// + the listen address)"},
	{Flag: "redis-url", Usage: "redis:// or rediss:// URL of a single Redis server"},
	{Flag: "redis-addrs", Usage: "comma-separated host:port list: several = Redis Cluster; with --redis-master = the Sentinels"},
	{Flag: "redis-master", Usage: "Sentinel master name (Sentinel mode; --redis-addrs are the sentinels)"},
	{Flag: "redis-username", Usage: "Redis ACL username"},
	{Flag: "redis-password", Usage: "Redis password", Secret: true},
	{Flag: "redis-db", Default: "0", Usage: "Redis database number (single server and Sentinel only)"},
	{Flag: "redis-tls", Default: "false", Usage: "connect to Redis with TLS (implied by rediss://)", Bool: true},
	{Flag: "redis-timeout", Default: "3s", Usage: "how long one Redis command may take before the request fails with 503 (commands are never re-sent automatically)"},
	{Flag: "log-level", Default: "info", Usage: "debug, info, warn or error"},
	{Flag: "log-format", Default: "text", Usage: "text or json"},
	{Flag: "admin-token", Usage: "bearer token of the admin API: at least 32 characters, at least 8 different ones, not mostly repeated or consecutive characters (e.g. openssl rand -base64 32); empty disables the API; generated in demo mode", Secret: true},
	{Flag: "admin-tokens-file", Usage: "file of named admin API tokens, one name:token per line (# starts a comment); re-read when it changes and on SIGHUP, so tokens rotate without a restart; each token as strong as --admin-token requires; used together with --admin-token, which is named default"},
	{Flag: "admin-tokens-reload", Default: "5s", Usage: "how often --admin-tokens-file is checked for changes"},
	{Flag: "admin-auth-limit", Default: "10", Usage: "failed admin API authentications per minute from one client address, in bursts of as many (beyond: every request of that address gets 429 with Retry-After)"},
	{Flag: "shutdown-timeout", Default: "15s", Usage: "how long graceful shutdown waits for running requests"},
	{Flag: "http-read-header-timeout", Default: "10s", Usage: "how long a client may take to send the request headers"},
	{Flag: "http-read-timeout", Default: "30s", Usage: "how long a client may take to send a whole request, headers and body"},
	{Flag: "http-write-timeout", Default: "30s", Usage: "how long handling a request and writing the response may take"},
	{Flag: "http-idle-timeout", Default: "2m", Usage: "how long an idle keep-alive connection stays open"},
	{Flag: "scim-body-limit", Default: "1MiB", Usage: "largest request body under /scim/ (bytes, or with a KiB or MiB suffix)"},
	{Flag: "saml-body-limit", Default: "2MiB", Usage: "largest request body posted to the SAML ACS (bytes, or with a KiB or MiB suffix)"},
	{Flag: "admin-body-limit", Default: "1MiB", Usage: "largest admin API request body, e.g. IdP metadata (bytes, or with a KiB or MiB suffix)"},
	{Flag: "body-limit", Default: "64KiB", Usage: "largest request body on every other route (bytes, or with a KiB or MiB suffix)"},
	{Flag: "metrics-listen", Usage: "TCP address for Prometheus metrics at /metrics, e.g. 127.0.0.1:9090 (empty: metrics off; keep it off the public network)"},
	{Flag: "trusted-proxies", Usage: "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed (default: none, the peer address is the client)"},
	{Flag: "bootstrap", Usage: "YAML file declaring workspaces, applied idempotently at startup"},
	{Flag: "idp-metadata-allow-private-hosts", Default: "false", Usage: "let idp.metadataURL (admin API, bootstrap file) reach loopback, private, link-local and other non-public addresses (tests, IdPs on a private network)", Bool: true},
	{Flag: "webhooks-allow-private", Default: "false", Usage: "let webhook endpoints use http and reach loopback, private, link-local and other non-public addresses (tests, the demo, receivers on a private network)", Bool: true},
	{Flag: "demo", Default: "false", Usage: "demo mode: demo workspaces, demo IdP, printed tokens (forced on when no Redis is configured)", Bool: true},
	{Flag: "saml-key-file", Usage: "PEM RSA private key of the SAML service provider (default: a key pair generated once and stored in Redis, shared by every process; rotate it with scimjit sp-key)"},
	{Flag: "saml-cert-file", Usage: "PEM certificate matching --saml-key-file"},
	{Flag: "secret-key", Usage: "secret that encrypts the SAML SP private keys stored in Redis (AES-256-GCM, key derived with HKDF-SHA256; at least 32 characters, e.g. openssl rand -base64 32); empty: stored unencrypted, with a warning at startup; every process and scimjit sp-key need the same value", Secret: true},
	{Flag: "saml-clock-skew", Default: "2m", Usage: "allowed clock difference with IdPs"},
	{Flag: "session-ttl", Default: "12h", Usage: "lifetime of a browser session"},
	{Flag: "verify-ttl", Default: "30m", Usage: "lifetime of an emailed join-verification link"},
	{Flag: "saml-login-limit", Default: strconv.Itoa(saml.DefaultLoginLimit), Usage: "SP-initiated sign-ins (GET /saml/{ws}/login) per minute per client address and workspace, and workspace look-ups from the start page per client address, in bursts of as many; 429 beyond"},
	{Flag: "saml-acs-client-limit", Default: strconv.Itoa(saml.DefaultACSClientLimit), Usage: "SAML responses posted to the ACS per minute per client address (all workspaces), in bursts of as many; 429 beyond"},
	{Flag: "saml-acs-workspace-limit", Default: strconv.Itoa(saml.DefaultACSWorkspaceLimit), Usage: "SAML responses posted to one workspace's ACS per minute (all clients), in bursts of as many; 429 beyond"},
	{Flag: "smtp-host", Usage: "SMTP server for verification mail (empty: mail only goes to the outbox, GET /admin/v1/outbox)"},
	{Flag: "smtp-port", Default: "0", Usage: "SMTP port (0: 587 for starttls, 465 for tls, 25 for none)"},
	{Flag: "smtp-username", Usage: "SMTP username"},
	{Flag: "smtp-password", Usage: "SMTP password", Secret: true},
	{Flag: "smtp-from", Usage: "sender address of verification mail, e.g. \"scimjit <noreply@example.com>\""},
	{Flag: "smtp-tls", Default: "starttls", Usage: "none, starttls or tls"},
}

// optValue is a pflag.Value that records whether the flag was given.
type optValue struct {
	val    string
	set    bool
	isBool bool
}

func (v *optValue) String() string   { return v.val }
func (v *optValue) IsBoolFlag() bool { return v.isBool }
func (v *optValue) Set(s string) error {
	v.val, v.set = s, true
	return nil
}

// Type names the value in help ("bool" hides it, as for a plain bool flag).
func (v *optValue) Type() string {
	if v.isBool {
		return "bool"
	}
	return "string"
}

// resolved is an option's effective value and where it came from.
type resolved struct {
	Value  string
	Source string // "flag", "env", "file" or "default"
}

// environ looks up environment variables (os.LookupEnv in main).
type environ func(string) (string, bool)

// readFileFunc reads secret files (os.ReadFile in main).
type readFileFunc func(string) ([]byte, error)

// storeOptions are the serve options that open Redis and set up logging,
// which check shares with serve.
var storeOptions = func() []option {
	var out []option
	for _, o := range serveOptions {
		if strings.HasPrefix(o.Flag, "redis-") || strings.HasPrefix(o.Flag, "log-") {
			out = append(out, o)
		}
	}
	return out
}()

// optionSet is a table of options registered as flags on a command.
type optionSet struct {
	opts []option
	vals map[string]*optValue
}

// addOptions registers opts as flags of fs; after the command line is
// parsed, resolve gives every option its effective value.
func addOptions(fs *pflag.FlagSet, opts []option) *optionSet {
	s := &optionSet{opts: opts, vals: map[string]*optValue{}}
	for _, o := range opts {
		v := &optValue{isBool: o.Bool}
		s.vals[o.Flag] = v
		usage := o.Usage + " (env " + o.Env()
		if o.Secret {
			usage += ", or " + o.Env() + "_FILE"
		}
		usage += ")"
		if o.Default != "" {
			usage += " (default " + o.Default + ")"
		}
		f := fs.VarPF(v, o.Flag, "", usage)
		if o.Bool {
			f.NoOptDefVal = "true" // --demo alone means --demo=true
		}
	}
	return s
}

// resolve gives every option its value with the precedence flag >
// environment (> <ENV>_FILE for secrets) > default. Problems reading secret
// files come back as a list, to be reported with the validation problems.
func (s *optionSet) resolve(env environ, readFile readFileFunc) (map[string]resolved, []string) {
	out := map[string]resolved{}
	var problems []string
	for _, o := range s.opts {
		v := s.vals[o.Flag]
		switch {
		case v.set:
			out[o.Flag] = resolved{v.val, "flag"}
		default:
			if s, ok := env(o.Env()); ok && s != "" {
				out[o.Flag] = resolved{s, "env"}
				continue
			}
			if o.Secret {
				if path, ok := env(o.Env() + "_FILE"); ok && path != "" {
					data, err := readFile(path)
					if err != nil {
						problems = append(problems, fmt.Sprintf("%s_FILE: %v", o.Env(), err))
						continue
					}
					out[o.Flag] = resolved{strings.TrimSpace(string(data)), "file"}
					continue
				}
			}
			out[o.Flag] = resolved{o.Default, "default"}
		}
	}
	sort.Strings(problems)
	return out, problems
}

// redactedValues returns the effective configuration for the startup log:
// flag name → value, secrets replaced.
func redactedValues(vals map[string]resolved) []any {
	var attrs []any
	for _, o := range serveOptions {
		r := vals[o.Flag]
		v := r.Value
		if o.Secret && v != "" {
			v = "[redacted]"
		} else if u, err := url.Parse(v); err == nil && u.User != nil {
			v = u.Redacted() // a password in --redis-url
		}
		attrs = append(attrs, o.Flag, v+" ("+r.Source+")")
	}
	return attrs
}
