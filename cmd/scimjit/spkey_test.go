package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage/redistest"
)

// TestSPKeyCommands: serve creates the shared key pair encrypted with
// --secret-key; sp-key show, rotate and promote report and change it
// (rotate refuses a wrong secret); serve with a wrong secret stops at
// startup with a clear error.
func TestSPKeyCommands(t *testing.T) {
	srv := redistest.Start(t)
	const secret = "secret-key-0123456789-abcdefghijklmn"
	env := map[string]string{"SCIMJIT_REDIS_URL": srv.URL()}
	spKey := func(secret string, args ...string) (int, string, string) {
		t.Helper()
		e := map[string]string{"SCIMJIT_REDIS_URL": srv.URL(), "SCIMJIT_SECRET_KEY": secret}
		var out, logs bytes.Buffer
		code := run(t.Context(), append([]string{"sp-key"}, args...), mapEnv(e), os.ReadFile, &out, &logs)
		return code, out.String(), logs.String()
	}
	if code, _, logs := spKey(secret, "show"); code != 1 || !strings.Contains(logs, "no SP key pair stored yet") {
		t.Fatalf("show before any serve = %d\n%s", code, logs)
	}

	// serve creates the key pair at startup.
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	env["SCIMJIT_SECRET_KEY"] = secret
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, mapEnv(env), os.ReadFile, io.Discard, logs)
	}()
	waitFor(t, "the sp key pair", func() bool { return strings.Contains(logs.String(), "created the shared sp key pair") })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve = %d\n%s", code, logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the secret key reached the log")
	}

	code, out, errOut := spKey(secret, "show")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "current\tsha256=") || !strings.HasSuffix(lines[0], "\tencrypted") {
		t.Fatalf("show = %d\n%s\n%s", code, out, errOut)
	}
	current := strings.Split(lines[0], "\t")[1]

	if code, _, errOut := spKey("wrong-secret-0123456789-abcdefghijkl", "rotate"); code != 1 || !strings.Contains(errOut, "wrong secret key") {
		t.Fatalf("rotate with a wrong secret = %d\n%s", code, errOut)
	}
	if code, out, errOut := spKey(secret, "rotate"); code != 0 || !strings.Contains(out, "\nnext\tsha256=") || !strings.Contains(out, "current\t"+current) {
		t.Fatalf("rotate = %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = spKey(secret, "promote")
	if code != 0 || !strings.Contains(out, "previous\t"+current) || strings.Contains(out, "current\t"+current) {
		t.Fatalf("promote = %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := spKey(secret, "promote"); code != 1 || !strings.Contains(errOut, "no next SP key pair") {
		t.Fatalf("second promote = %d\n%s", code, errOut)
	}

	// A wrong secret stops serve at startup with a clear error.
	env["SCIMJIT_SECRET_KEY"] = "wrong-secret-0123456789-abcdefghijkl"
	wrongLogs := &syncBuffer{}
	code = run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, mapEnv(env), os.ReadFile, io.Discard, wrongLogs)
	var failed map[string]any
	for _, line := range strings.Split(wrongLogs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "serve failed" {
			failed = rec
		}
	}
	if code != 1 || failed == nil || !strings.Contains(failed["err"].(string), "wrong secret key") {
		t.Fatalf("serve with a wrong secret = %d\n%s", code, wrongLogs.String())
	}
}
