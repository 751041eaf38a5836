package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const (
	ciToken  = "ci-token-Vq3xL9sK2mR7tW4zQ8pN1bC5"
	opsToken = "ops-token-H7dF2kS9mQ4vX1zR6tW3yL8"
)

func TestParseAdminTokens(t *testing.T) {
	got, err := parseAdminTokens([]byte("# rotated 2026-12\n\nci:" + ciToken + "\n  ops : " + opsToken + "  \n"))
	if err != nil || len(got) != 2 || got[0].Name != "ci" || got[0].Token != ciToken || got[1].Name != "ops" || got[1].Token != opsToken {
		t.Fatalf("good file: %+v, %v", got, err)
	}
	for _, c := range []struct {
		name, file string
		reserved   []string
		want       string
	}{
		{"no colon", "ci " + ciToken, nil, "line 1: not name:token"},
		{"bad name", "c i:" + ciToken, nil, `line 1: name "c i"`},
		{"empty name", ":" + ciToken, nil, `line 1: name ""`},
		{"duplicate name", "ci:" + ciToken + "\nci:" + opsToken, nil, `line 2: name "ci" is given twice (also on line 1)`},
		{"name of --admin-token", "default:" + ciToken, []string{"default"}, `line 1: name "default" is taken by --admin-token`},
		{"weak token", "ci:" + ciToken + "\nops:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", nil, `line 2: token "ops" is too weak`},
		{"short token", "ci:abc", nil, `line 1: token "ci" is too weak: it has 3 characters`},
		{"no token", "# all revoked\n", nil, "the file holds no token"},
		{"empty", "", nil, "the file holds no token"},
	} {
		got, err := parseAdminTokens([]byte(c.file), c.reserved...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %+v, %v; want an error saying %q", c.name, got, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), ciToken) || strings.Contains(err.Error(), opsToken) || strings.Contains(err.Error(), "aaaaaaaa") {
			t.Errorf("%s: the error shows a token: %v", c.name, err)
		}
	}
}

// writeTokens replaces an admin tokens file as the documentation says:
// write another file, then rename it over.
func writeTokens(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// adminStatus is the status of GET /admin/v1/workspaces with token.
func adminStatus(t *testing.T, base, token string) int {
	t.Helper()
	code, _ := statusOf(t, base+"/admin/v1/workspaces", token)
	return code
}

// TestAdminTokensFileRotatesWithoutRestart: both tokens of the file work
// and are named, never shown, in the access log and the events' actor;
// removing one from the file disables it within the poll interval; a bad
// file is refused with an error in the log and the tokens in force stay.
func TestAdminTokensFileRotatesWithoutRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "admin-tokens")
	writeTokens(t, file, "ci:"+ciToken, "ops:"+opsToken)
	banner, logs, stop := startServe(t, []string{"--listen", "127.0.0.1:0", "--log-format", "json",
		"--admin-tokens-file", file, "--admin-tokens-reload", "100ms"}, nil)
	defer stop()
	base := banner["Base URL"]
	if strings.HasPrefix(banner["Admin token"], "adm_") {
		t.Errorf("an admin token was generated although a tokens file is given: %q", banner["Admin token"])
	}
	for _, tok := range []string{ciToken, opsToken} {
		if code := adminStatus(t, base, tok); code != http.StatusOK {
			t.Fatalf("token from the file: %d", code)
		}
	}
	code, body := httpDo(t, http.MethodPost, base+"/admin/v1/workspaces", ciToken, map[string]any{"id": "rotated", "name": "Rotated"})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	code, body = httpDo(t, http.MethodGet, base+"/admin/v1/workspaces/rotated/events", opsToken, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"actor":"admin:ci"`) {
		t.Errorf("events: %d %s, want actor admin:ci", code, body)
	}

	writeTokens(t, file, "ops:"+opsToken)
	waitFor(t, "the removed token to stop working", func() bool { return adminStatus(t, base, ciToken) == http.StatusUnauthorized })
	if code := adminStatus(t, base, opsToken); code != http.StatusOK {
		t.Errorf("the remaining token after the reload: %d", code)
	}

	writeTokens(t, file, "ops:short")
	waitFor(t, "the bad file to be rejected", func() bool { return strings.Contains(logs.String(), "admin tokens file rejected") })
	if code := adminStatus(t, base, opsToken); code != http.StatusOK {
		t.Errorf("the token in force after a bad file: %d", code)
	}

	named := map[any]bool{}
	for _, rec := range jsonLogRecords(t, logs.String()) {
		if rec["msg"] == "request" {
			named[rec["admin_token"]] = true
		}
		if rec["msg"] == "admin tokens file rejected; the tokens in force stay" && rec["level"] != "ERROR" {
			t.Errorf("a rejected file logged at %v", rec["level"])
		}
	}
	if !named["ci"] || !named["ops"] {
		t.Errorf("access log names the tokens %v, want ci and ops", named)
	}
	if strings.Contains(logs.String(), ciToken) || strings.Contains(logs.String(), opsToken) {
		t.Error("a token value reached the log")
	}
}

// TestAdminTokensFileReloadsOnSIGHUP: with a poll interval far away, a
// SIGHUP applies the changed file at once. (The signal goes to this test
// process; serve has subscribed to it before it listens.)
func TestAdminTokensFileReloadsOnSIGHUP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "admin-tokens")
	writeTokens(t, file, "ci:"+ciToken, "ops:"+opsToken)
	banner, logs, stop := startServe(t, []string{"--listen", "127.0.0.1:0", "--log-format", "json",
		"--admin-tokens-file", file, "--admin-tokens-reload", "1h", "--admin-token", "default-token-Jk8sP3qW6zX9mN2vB5c"}, nil)
	defer stop()
	base := banner["Base URL"]
	for _, tok := range []string{ciToken, opsToken, "default-token-Jk8sP3qW6zX9mN2vB5c"} {
		if code := adminStatus(t, base, tok); code != http.StatusOK {
			t.Fatalf("token before the reload: %d", code)
		}
	}
	writeTokens(t, file, "ops:"+opsToken)
	if code := adminStatus(t, base, ciToken); code != http.StatusOK {
		t.Fatalf("the file was re-read before the SIGHUP: %d", code)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool { return adminStatus(t, base, ciToken) == http.StatusUnauthorized })
	for _, tok := range []string{opsToken, "default-token-Jk8sP3qW6zX9mN2vB5c"} {
		if code := adminStatus(t, base, tok); code != http.StatusOK {
			t.Errorf("token after the reload: %d", code)
		}
	}
	var names []any
	for _, rec := range jsonLogRecords(t, logs.String()) {
		if rec["msg"] == "admin tokens reloaded" {
			names, _ = rec["names"].([]any)
		}
	}
	if got, _ := json.Marshal(names); string(got) != `["default","ops"]` {
		t.Errorf("reload record names %s, want default and ops", got)
	}
}
