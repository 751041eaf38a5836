package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server"
)

func mapEnv(m map[string]string) environ {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mapFiles(m map[string]string) readFileFunc {
	return func(p string) ([]byte, error) {
		if v, ok := m[p]; ok {
			return []byte(v), nil
		}
		return nil, os.ErrNotExist
	}
}

func parse(t *testing.T, args []string, env map[string]string, files map[string]string) (serveConfig, map[string]resolved, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts := addOptions(fs, serveOptions)
	if err := fs.Parse(args); err != nil {
		return serveConfig{}, nil, err
	}
	vals, fileProblems := opts.resolve(mapEnv(env), mapFiles(files))
	cfg, err := newServeConfig(vals, fileProblems...)
	return cfg, vals, err
}

func TestPrecedenceFlagOverEnvOverDefault(t *testing.T) {
	cfg, vals, err := parse(t,
		[]string{"--listen", "127.0.0.1:9999", "--demo"},
		map[string]string{
			"SCIMJIT_LISTEN":              "127.0.0.1:7777",
			"SCIMJIT_LOG_LEVEL":           "debug",
			"SCIMJIT_ADMIN_TOKEN_FILE":    "/run/secrets/admin",
			"SCIMJIT_REDIS_URL":           "redis://127.0.0.1:6390/0",
			"SCIMJIT_REDIS_PASSWORD":      "from-env-password",
			"SCIMJIT_REDIS_PASSWORD_FILE": "/ignored/because/env/wins",
		},
		map[string]string{"/run/secrets/admin": "admin-token-from-a-file-Vq3xL9sK2mR7tW4z\n"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || vals["listen"].Source != "flag" {
		t.Errorf("listen %q from %s, want the flag", cfg.Listen, vals["listen"].Source)
	}
	if cfg.LogLevel != "debug" || vals["log-level"].Source != "env" {
		t.Errorf("log level %q from %s, want the env", cfg.LogLevel, vals["log-level"].Source)
	}
	if cfg.LogFormat != "text" || vals["log-format"].Source != "default" {
		t.Errorf("log format %q from %s, want the default", cfg.LogFormat, vals["log-format"].Source)
	}
	if cfg.AdminToken != "admin-token-from-a-file-Vq3xL9sK2mR7tW4z" || vals["admin-token"].Source != "file" {
		t.Errorf("admin token %q from %s, want the file (trimmed)", cfg.AdminToken, vals["admin-token"].Source)
	}
	if cfg.RedisPassword != "from-env-password" {
		t.Errorf("redis password %q", cfg.RedisPassword)
	}
	if !cfg.Demo || !cfg.RedisConfigured() || cfg.ShutdownTimeout != 15*time.Second {
		t.Errorf("config %+v", cfg)
	}
	// Secrets are redacted in the effective-configuration log.
	logged := redactedValues(vals)
	for i := 0; i < len(logged); i += 2 {
		v := logged[i+1].(string)
		if strings.Contains(v, "admin-token-from-a-file-Vq3xL9sK2mR7tW4z") || strings.Contains(v, "from-env-password") {
			t.Errorf("%v logged in clear: %s", logged[i], v)
		}
	}
}

func TestMissingSecretFileIsReportedWithOtherProblems(t *testing.T) {
	_, _, err := parse(t, []string{"--log-level", "loud"}, map[string]string{"SCIMJIT_SMTP_PASSWORD_FILE": "/nope", "SCIMJIT_ADMIN_TOKEN_FILE": "/nope2"}, nil)
	if err == nil || !strings.Contains(err.Error(), "SCIMJIT_SMTP_PASSWORD_FILE") || !strings.Contains(err.Error(), "SCIMJIT_ADMIN_TOKEN_FILE") ||
		!strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings, each must appear
	}{
		{"defaults are valid", nil, nil, nil},
		{"real redis, sentinel and cluster forms are valid", []string{"--redis-addrs", "10.0.0.1:26379,10.0.0.2:26379", "--redis-master", "mymaster", "--redis-password", "p"}, nil, nil},
		{"bad values everywhere",
			[]string{"--listen", "nope", "--base-url", "ftp://x", "--log-level", "loud", "--log-format", "xml",
				"--shutdown-timeout", "soon", "--session-ttl", "-1h", "--trusted-proxies", "10.0.0.0/8,banana",
				"--admin-token", "short", "--saml-key-file", "k.pem", "--redis-db", "x", "--smtp-tls", "maybe", "--smtp-host", "mail.test",
				"--admin-auth-limit", "0"},
			nil,
			[]string{"--listen", "--base-url", "--log-level", "--log-format", "--shutdown-timeout", "--session-ttl",
				"--trusted-proxies", "--admin-token", "--saml-key-file", "--redis-db", "smtp tls", "smtp from",
				"--admin-auth-limit"}},
		{"redis url and addrs together", []string{"--redis-url", "redis://a:6379", "--redis-addrs", "b:6379"}, nil, []string{"exclusive"}},
		{"sentinel master without addrs", []string{"--redis-master", "m"}, nil, []string{"--redis-master"}},
		{"redis url scheme", []string{"--redis-url", "http://x"}, nil, []string{"--redis-url"}},
		{"cluster db", []string{"--redis-addrs", "a:1,b:2", "--redis-db", "3"}, nil, []string{"Cluster"}},
		{"redis password without redis", nil, map[string]string{"SCIMJIT_REDIS_PASSWORD": "x"}, []string{"no --redis-url"}},
		{"smtp settings without host", []string{"--smtp-from", "a@b.test"}, nil, []string{"--smtp-host"}},
		{"bad bool from env", nil, map[string]string{"SCIMJIT_DEMO": "perhaps"}, []string{"--demo"}},
		{"bad duration from env", nil, map[string]string{"SCIMJIT_VERIFY_TTL": "30"}, []string{"--verify-ttl"}},
		{"short secret key", nil, map[string]string{"SCIMJIT_SECRET_KEY": "too-short"}, []string{"--secret-key: at least 32"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, tc.args, tc.env, nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestUnknownFlagAndStrayArguments: a command-line mistake exits 2 with the
// reason, with or without the serve command named.
func TestUnknownFlagAndStrayArguments(t *testing.T) {
	for _, args := range [][]string{{"serve", "--no-such-flag"}, {"--no-such-flag"}, {"serve", "extra"}} {
		var out, errOut bytes.Buffer
		code := run(t.Context(), args, mapEnv(nil), os.ReadFile, &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), "scimjit serve: ") {
			t.Errorf("%q: exit %d, stderr %s", args, code, errOut.String())
		}
	}
}

// TestHTTPOptionsReachServerConfig pins down that the http-* timeouts and
// the body limits parse from flags and the environment (flag first) and end
// up in the server.Config that serve builds; unset, they are the server's
// own defaults.
func TestHTTPOptionsReachServerConfig(t *testing.T) {
	defaults := server.Config{
		ReadHeaderTimeout: server.DefaultReadHeaderTimeout,
		ReadTimeout:       server.DefaultReadTimeout,
		WriteTimeout:      server.DefaultWriteTimeout,
		IdleTimeout:       server.DefaultIdleTimeout,
		ShutdownTimeout:   server.DefaultShutdownTimeout,
		SCIMBodyLimit:     server.DefaultSCIMBodyLimit,
		SAMLBodyLimit:     server.DefaultSAMLBodyLimit,
		AdminBodyLimit:    server.DefaultAdminBodyLimit,
		DefaultBodyLimit:  server.DefaultDefaultBodyLimit,
		AdminAuthLimit:    server.DefaultAdminAuthLimit,
	}
	tuned := server.Config{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ShutdownTimeout:   20 * time.Second,
		SCIMBodyLimit:     4 << 20,
		SAMLBodyLimit:     3145728,
		AdminBodyLimit:    8 << 20,
		DefaultBodyLimit:  128 << 10,
		AdminAuthLimit:    30,
	}
	// tunedFlags set every option to its value in tuned.
	tunedFlags := []string{"--http-read-header-timeout", "5s", "--http-read-timeout", "1m", "--http-write-timeout", "90s",
		"--http-idle-timeout", "5m", "--shutdown-timeout", "20s", "--scim-body-limit", "4MiB",
		"--saml-body-limit", "3145728", "--admin-body-limit", "8MiB", "--body-limit", "128KiB", "--admin-auth-limit", "30"}
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		want   server.Config
		source string
	}{
		{"defaults", nil, nil, defaults, "default"},
		{"flags", tunedFlags, nil, tuned, "flag"},
		{"environment", nil,
			map[string]string{
				"SCIMJIT_HTTP_READ_HEADER_TIMEOUT": "5s", "SCIMJIT_HTTP_READ_TIMEOUT": "1m",
				"SCIMJIT_HTTP_WRITE_TIMEOUT": "90s", "SCIMJIT_HTTP_IDLE_TIMEOUT": "5m", "SCIMJIT_SHUTDOWN_TIMEOUT": "20s",
				"SCIMJIT_SCIM_BODY_LIMIT": "4MiB", "SCIMJIT_SAML_BODY_LIMIT": "3145728",
				"SCIMJIT_ADMIN_BODY_LIMIT": "8MiB", "SCIMJIT_BODY_LIMIT": "128KiB",
				"SCIMJIT_ADMIN_AUTH_LIMIT": "30",
			},
			tuned, "env"},
		{"flags over environment",
			tunedFlags,
			map[string]string{
				"SCIMJIT_HTTP_READ_HEADER_TIMEOUT": "1s", "SCIMJIT_HTTP_READ_TIMEOUT": "2s",
				"SCIMJIT_HTTP_WRITE_TIMEOUT": "3s", "SCIMJIT_HTTP_IDLE_TIMEOUT": "4s", "SCIMJIT_SHUTDOWN_TIMEOUT": "5s",
				"SCIMJIT_SCIM_BODY_LIMIT": "1", "SCIMJIT_SAML_BODY_LIMIT": "2",
				"SCIMJIT_ADMIN_BODY_LIMIT": "3", "SCIMJIT_BODY_LIMIT": "4",
				"SCIMJIT_ADMIN_AUTH_LIMIT": "5",
			},
			tuned, "flag"},
	}
	options := []string{"http-read-header-timeout", "http-read-timeout", "http-write-timeout", "http-idle-timeout",
		"scim-body-limit", "saml-body-limit", "admin-body-limit", "body-limit", "admin-auth-limit"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, vals, err := parse(t, tc.args, tc.env, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.serverConfig()
			if got.ReadHeaderTimeout != tc.want.ReadHeaderTimeout || got.ReadTimeout != tc.want.ReadTimeout ||
				got.WriteTimeout != tc.want.WriteTimeout || got.IdleTimeout != tc.want.IdleTimeout ||
				got.ShutdownTimeout != tc.want.ShutdownTimeout {
				t.Errorf("timeouts: got header %v read %v write %v idle %v shutdown %v, want %v %v %v %v %v",
					got.ReadHeaderTimeout, got.ReadTimeout, got.WriteTimeout, got.IdleTimeout, got.ShutdownTimeout,
					tc.want.ReadHeaderTimeout, tc.want.ReadTimeout, tc.want.WriteTimeout, tc.want.IdleTimeout, tc.want.ShutdownTimeout)
			}
			if got.SCIMBodyLimit != tc.want.SCIMBodyLimit || got.SAMLBodyLimit != tc.want.SAMLBodyLimit ||
				got.AdminBodyLimit != tc.want.AdminBodyLimit || got.DefaultBodyLimit != tc.want.DefaultBodyLimit {
				t.Errorf("body limits: got scim %d saml %d admin %d default %d, want %d %d %d %d",
					got.SCIMBodyLimit, got.SAMLBodyLimit, got.AdminBodyLimit, got.DefaultBodyLimit,
					tc.want.SCIMBodyLimit, tc.want.SAMLBodyLimit, tc.want.AdminBodyLimit, tc.want.DefaultBodyLimit)
			}
			if got.AdminAuthLimit != tc.want.AdminAuthLimit {
				t.Errorf("admin auth limit %d, want %d", got.AdminAuthLimit, tc.want.AdminAuthLimit)
			}
			// Each option is in the effective-configuration log line with
			// its source.
			logged := map[string]string{}
			attrs := redactedValues(vals)
			for i := 0; i < len(attrs); i += 2 {
				logged[attrs[i].(string)] = attrs[i+1].(string)
			}
			for _, o := range options {
				if want := vals[o].Value + " (" + tc.source + ")"; logged[o] != want {
					t.Errorf("logged %s = %q, want %q", o, logged[o], want)
				}
			}
		})
	}
}

func TestHTTPOptionsRejectInvalidValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"timeout not a duration", []string{"--http-read-timeout", "soon"}, nil, `--http-read-timeout: "soon" is not a duration`},
		{"timeout without unit from env", nil, map[string]string{"SCIMJIT_HTTP_READ_HEADER_TIMEOUT": "10"}, "--http-read-header-timeout"},
		{"zero timeout", []string{"--http-idle-timeout", "0s"}, nil, "--http-idle-timeout must be positive"},
		{"negative timeout from env", nil, map[string]string{"SCIMJIT_HTTP_WRITE_TIMEOUT": "-1s"}, "--http-write-timeout must be positive"},
		{"header timeout longer than read timeout", []string{"--http-read-header-timeout", "1m", "--http-read-timeout", "30s"}, nil,
			"--http-read-header-timeout must not exceed --http-read-timeout"},
		{"zero size", []string{"--scim-body-limit", "0"}, nil, "--scim-body-limit must be positive"},
		{"zero size with suffix", []string{"--body-limit", "0KiB"}, nil, "--body-limit must be positive"},
		{"negative size", []string{"--saml-body-limit", "-1"}, nil, `--saml-body-limit: "-1" is not a size`},
		{"SI unit", []string{"--admin-body-limit", "2MB"}, nil, `--admin-body-limit: "2MB" is not a size`},
		{"unsupported unit", []string{"--admin-body-limit", "1GiB"}, nil, `--admin-body-limit: "1GiB" is not a size`},
		{"fraction", []string{"--body-limit", "1.5MiB"}, nil, `--body-limit: "1.5MiB" is not a size`},
		{"space before the unit", []string{"--body-limit", "64 KiB"}, nil, `--body-limit: "64 KiB" is not a size`},
		{"bare unit", []string{"--body-limit", "KiB"}, nil, `--body-limit: "KiB" is not a size`},
		{"empty from env", nil, map[string]string{"SCIMJIT_SCIM_BODY_LIMIT": " "}, `--scim-body-limit: "" is not a size`},
		{"absurd size", []string{"--saml-body-limit", "300MiB"}, nil, "--saml-body-limit: at most 256MiB"},
		{"overflowing size from env", nil, map[string]string{"SCIMJIT_SCIM_BODY_LIMIT": "9223372036854775807MiB"}, "--scim-body-limit"},
		{"garbage from env", nil, map[string]string{"SCIMJIT_ADMIN_BODY_LIMIT": "lots"}, "--admin-body-limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, tc.args, tc.env, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true},
		{"65536", 65536, true},
		{"64KiB", 64 << 10, true},
		{"2MiB", 2 << 20, true},
		{"0", 0, true}, // rejected by validate, with the option's name
		{"", 0, false},
		{"MiB", 0, false},
		{"+5", 0, false},
		{"-5", 0, false},
		{"5kib", 0, false},
		{"5 KiB", 0, false},
		{"5KiBMiB", 0, false},
		{"0x10", 0, false},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"8796093022208MiB", 0, false}, // 2^43 MiB = 2^63 bytes: overflows
	}
	for _, tc := range cases {
		got, err := parseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestServeAppliesBodyLimitOption runs serve with a small --scim-body-limit
// and checks that the running server answers 413 above it and serves a
// request below it.
func TestServeAppliesBodyLimitOption(t *testing.T) {
	banner, _, stop := startServe(t, []string{"serve", "--listen", "127.0.0.1:0", "--scim-body-limit", "2KiB"}, nil)
	defer stop()
	scimBase, scimToken := banner["SCIM base URL"], banner["SCIM token"]
	user := func(name string) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": name}
	}
	if code, body := httpDo(t, http.MethodPost, scimBase+"/Users", scimToken, user("small@example.com")); code != http.StatusCreated {
		t.Fatalf("small user: %d %s", code, body)
	}
	big := user("big@example.com")
	big["displayName"] = strings.Repeat("x", 3<<10)
	if code, body := httpDo(t, http.MethodPost, scimBase+"/Users", scimToken, big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("3 KiB user with a 2 KiB limit: %d %s", code, body)
	}
}

// TestWeakAdminTokensAreRefused: serve refuses a short admin token, one of
// few different characters and a simple sequence, with a message that
// says why and does not show the token; random tokens, the generated demo
// token included, pass.
func TestWeakAdminTokensAreRefused(t *testing.T) {
	weak := map[string]string{
		strings.Repeat("a", 16):                "at least 32",
		strings.Repeat("a", 40):                "different characters",
		strings.Repeat("ab", 20):               "different characters",
		"abcdefghijklmnopqrstuvwxyzABCDEFGH":   "consecutive",
		"0123456789012345678901234567890123":   "consecutive",
		"aaaabbbbccccddddeeeeffffgggghhhhiiii": "consecutive",
		"zyxwvutsrqponmlkjihgfedcbaZYXWVUTS":   "consecutive",
		"Passw0rd!":                            "at least 32",
	}
	for tok, why := range weak {
		_, _, err := parse(t, []string{"--admin-token", tok}, nil, nil)
		if err == nil {
			t.Errorf("--admin-token %q accepted", tok)
			continue
		}
		if !strings.Contains(err.Error(), "--admin-token is too weak") || !strings.Contains(err.Error(), why) {
			t.Errorf("--admin-token %q: error %q does not say %q", tok, err, why)
		}
		if strings.Contains(err.Error(), tok) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	strong := []string{
		"sjK3r9Q0vX7mZ1pLwT5bN8cY2fH6gD4a",                                 // 32 random base64 characters
		"3q2+7wAAvS1u6m0yK0+7l4qU5rZ1bXk9TzF2cQ8yWm0=",                     // openssl rand -base64 32
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", // openssl rand -hex 32
		"550e8400-e29b-41d4-a716-446655440000",
	}
	for i := 0; i < 2000; i++ {
		strong = append(strong, newAdminToken())
	}
	for _, tok := range strong {
		if _, _, err := parse(t, []string{"--admin-token", tok}, nil, nil); err != nil {
			t.Errorf("--admin-token %q refused: %v", tok, err)
		}
	}
}

// TestSAMLLimitOptionsReachConfig: the sign-in rate limits and the
// metadata-host switch reach the saml and server configs; unset they are
// the documented defaults, and a limit must be a positive number.
func TestSAMLLimitOptionsReachConfig(t *testing.T) {
	cfg, _, err := parse(t, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.samlConfig()
	if sc.LoginLimit != saml.DefaultLoginLimit || sc.ACSClientLimit != saml.DefaultACSClientLimit ||
		sc.ACSWorkspaceLimit != saml.DefaultACSWorkspaceLimit || cfg.serverConfig().MetadataAllowPrivateHosts {
		t.Fatalf("defaults: %+v, allow private %v", sc, cfg.serverConfig().MetadataAllowPrivateHosts)
	}
	cfg, _, err = parse(t, []string{"--saml-login-limit", "60", "--saml-acs-client-limit", "1000",
		"--idp-metadata-allow-private-hosts"}, map[string]string{"SCIMJIT_SAML_ACS_WORKSPACE_LIMIT": "20000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc = cfg.samlConfig()
	if sc.LoginLimit != 60 || sc.ACSClientLimit != 1000 || sc.ACSWorkspaceLimit != 20000 || !cfg.serverConfig().MetadataAllowPrivateHosts {
		t.Fatalf("tuned: %+v, allow private %v", sc, cfg.serverConfig().MetadataAllowPrivateHosts)
	}
	for _, bad := range [][]string{{"--saml-login-limit", "0"}, {"--saml-acs-client-limit", "-5"},
		{"--saml-acs-workspace-limit", "10000000"}, {"--saml-acs-workspace-limit", "many"}} {
		if _, _, err := parse(t, bad, nil, nil); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: error %v, want one naming %s", bad, err, bad[0])
		}
	}
}
