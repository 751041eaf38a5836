package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"
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
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals, fileProblems, err := parseServeFlags(fs, args, mapEnv(env), mapFiles(files))
	if err != nil {
		return serveConfig{}, vals, err
	}
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
		map[string]string{"/run/secrets/admin": "admin-token-from-a-file\n"},
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
	if cfg.AdminToken != "admin-token-from-a-file" || vals["admin-token"].Source != "file" {
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
		if strings.Contains(v, "admin-token-from-a-file") || strings.Contains(v, "from-env-password") {
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
				"--admin-token", "short", "--saml-key-file", "k.pem", "--redis-db", "x", "--smtp-tls", "maybe", "--smtp-host", "mail.test"},
			nil,
			[]string{"--listen", "--base-url", "--log-level", "--log-format", "--shutdown-timeout", "--session-ttl",
				"--trusted-proxies", "--admin-token", "--saml-key-file", "--redis-db", "smtp tls", "smtp from"}},
		{"redis url and addrs together", []string{"--redis-url", "redis://a:6379", "--redis-addrs", "b:6379"}, nil, []string{"exclusive"}},
		{"sentinel master without addrs", []string{"--redis-master", "m"}, nil, []string{"--redis-master"}},
		{"redis url scheme", []string{"--redis-url", "http://x"}, nil, []string{"--redis-url"}},
		{"cluster db", []string{"--redis-addrs", "a:1,b:2", "--redis-db", "3"}, nil, []string{"Cluster"}},
		{"redis password without redis", nil, map[string]string{"SCIMJIT_REDIS_PASSWORD": "x"}, []string{"no --redis-url"}},
		{"smtp settings without host", []string{"--smtp-from", "a@b.test"}, nil, []string{"--smtp-host"}},
		{"bad bool from env", nil, map[string]string{"SCIMJIT_DEMO": "perhaps"}, []string{"--demo"}},
		{"bad duration from env", nil, map[string]string{"SCIMJIT_VERIFY_TTL": "30"}, []string{"--verify-ttl"}},
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

func TestUnknownFlagAndStrayArguments(t *testing.T) {
	if _, _, err := parse(t, []string{"--no-such-flag"}, nil, nil); err == nil {
		t.Error("unknown flag accepted")
	}
	if _, _, err := parse(t, []string{"extra"}, nil, nil); err == nil || errors.Is(err, flag.ErrHelp) {
		t.Errorf("stray argument: %v", err)
	}
}
