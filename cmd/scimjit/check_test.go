package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestCheckCommand runs `scimjit check` against a redis-server holding the
// damage a stalled Redis left before writes were made safe to re-send: the
// email index names an account record that was deleted while two
// memberships use it. It checks the output, the exit codes (1 while
// problems remain, 0 once repaired, 2 on errors) and that the log names no
// email.
func TestCheckCommand(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	s := redistest.OpenStore(t, srv)
	for _, ws := range []string{"one", "two"} {
		if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: ws}); err != nil {
			t.Fatal(err)
		}
	}
	a, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "bob@example.com", OriginWorkspace: "one"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ws := range []string{"one", "two"} {
		if _, err := s.CreateUser(ctx, ws, storage.User{AccountID: a.ID, UserName: "bob@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Client().Del(ctx, "sj:{acct:"+a.ID+"}:a").Err(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SCIMJIT_REDIS_URL": srv.URL()}
	check := func(env map[string]string, args ...string) (int, string, string) {
		t.Helper()
		var out, logs bytes.Buffer
		code := run(ctx, append([]string{"check"}, args...), mapEnv(env), os.ReadFile, &out, &logs)
		if strings.Contains(logs.String(), "bob@example.com") {
			t.Errorf("an email reached the log:\n%s", logs.String())
		}
		return code, out.String(), logs.String()
	}

	code, out, logs := check(env)
	line := "email-index-dangling\tsj:{accounts}:email\t\"bob@example.com\"\tthe entry names account " + a.ID
	if code != 1 || !strings.Contains(out, line) || !strings.Contains(out, "\tnot fixed\n") ||
		!strings.Contains(out, "checked 2 workspaces, 2 users, 0 groups, 0 accounts: 1 problems, 0 fixed, 1 left\n") ||
		!strings.Contains(out, "run with --fix") {
		t.Fatalf("check = %d\n%s\nlog:\n%s", code, out, logs)
	}
	if !strings.Contains(logs, "check: done") {
		t.Errorf("no summary in the log:\n%s", logs)
	}
	if code, out, logs = check(env, "--fix", "--log-format", "json"); code != 0 || !strings.Contains(out, line) ||
		!strings.Contains(out, "\tfixed\n") || !strings.Contains(out, "1 problems, 1 fixed, 0 left") {
		t.Fatalf("check --fix = %d\n%s\nlog:\n%s", code, out, logs)
	}
	if l, err := s.LoginLookup(ctx, "two", "bob@example.com"); err != nil || !l.Member || l.Account.ID != a.ID {
		t.Fatalf("bob's sign-in after the repair = %+v, %v", l, err)
	}
	code, out, _ = check(env, "--json")
	var rep redisstore.CheckReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Problems) != 0 ||
		rep.Workspaces != 2 || rep.Users != 2 || rep.Accounts != 1 {
		t.Fatalf("check --json = %d %v\n%s", code, err, out)
	}

	// A problem that needs a person stays: exit 1 even with --fix.
	if err := s.Client().HSet(ctx, "sj:{accounts}:email", "mallory@example.com", a.ID).Err(); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = check(env, "--fix", "--json"); code != 1 || json.Unmarshal([]byte(out), &rep) != nil ||
		len(rep.Problems) != 1 || rep.Problems[0].Kind != redisstore.KindEmailIndexWrongAccount || rep.Problems[0].Fixed {
		t.Fatalf("check --fix with a wrong email entry = %d\n%s", code, out)
	}
	// One workspace does not include the email index.
	if code, out, _ = check(env, "--workspace", "one"); code != 0 ||
		!strings.Contains(out, "checked 1 workspaces, 1 users") {
		t.Fatalf("check --workspace one = %d\n%s", code, out)
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no redis configured", nil, nil, "no Redis configured"},
		{"unknown workspace", env, []string{"--workspace", "nope"}, `workspace "nope": storage: not found`},
		{"unreachable redis", nil, []string{"--redis-url", "redis://127.0.0.1:1"}, "open redis"},
		{"bad grace", env, []string{"--grace", "0s"}, "--grace must be positive"},
		{"unknown flag", env, []string{"--listen", ":0"}, "unknown flag: --listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, logs := check(tc.env, tc.args...)
			if code != 2 || !strings.Contains(logs, tc.want) {
				t.Errorf("exit %d, want 2 with %q\nout:\n%s\nstderr:\n%s", code, tc.want, out, logs)
			}
		})
	}
	var help bytes.Buffer
	if code := run(ctx, []string{"check", "-h"}, mapEnv(nil), os.ReadFile, &help, io.Discard); code != 0 ||
		!strings.Contains(help.String(), "Exit status: 0 when nothing is left") ||
		!strings.Contains(help.String(), "--redis-url") || !strings.Contains(help.String(), "--fix") {
		t.Errorf("check -h = %d\n%s", code, help.String())
	}
}
