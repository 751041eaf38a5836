package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage/queue"
	"github.com/scimjit/scimjit/storage/redistest"
)

// serveEnv makes the test binary run "scimjit serve" with the arguments
// in the variable (space-separated) instead of the tests, for tests that
// SIGKILL a server.
const serveEnv = "SCIMJIT_TEST_SERVE_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(serveEnv); args != "" {
		os.Exit(run(context.Background(), strings.Fields(args), mapEnv(nil), os.ReadFile, os.Stdout, os.Stdout))
	}
	os.Exit(m.Run())
}

// startServeProcess runs "scimjit serve" in a child process and returns it with
// its base URL (from its JSON "listening" log line).
func startServeProcess(t *testing.T, args string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+args)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		var rec map[string]any
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec["msg"] == "listening" {
			base, _ := rec["base_url"].(string)
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return cmd, base
		}
	}
	t.Fatalf("serve exited without listening: %v", lines.Err())
	return nil, ""
}

// TestServeKilledMidDelivery: a scimjit process is SIGKILLed while a
// webhook delivery is in flight (the receiver holds the request); a new
// process delivers the event again, with the same webhook-id. asynq hands
// a dead worker's task back once its lease is 30 s past its end; the test
// moves the lease, and then the retry time, into the past instead of
// waiting.
func TestServeKilledMidDelivery(t *testing.T) {
	rs := redistest.Start(t)
	const adminToken = "admin-token-0123456789-Vq3xL9sK2mR7tW"
	args := "serve --listen 127.0.0.1:0 --log-format json --webhooks-allow-private --admin-token " + adminToken +
		" --redis-url " + rs.URL()

	var mu sync.Mutex
	var ids []string
	hold := make(chan struct{})
	held := make(chan struct{}, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		first := len(ids) == 1
		mu.Unlock()
		if first {
			held <- struct{}{}
			<-hold // the first delivery hangs until its sender is killed
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	defer close(hold)

	a, base := startServeProcess(t, args)
	waitFor(t, "ready", func() bool { code, _ := statusOf(t, base+"/readyz", ""); return code == http.StatusOK })
	if code, body := httpDo(t, http.MethodPost, base+"/admin/v1/workspaces", adminToken, map[string]any{"id": "acme", "name": "Acme"}); code != http.StatusCreated {
		t.Fatalf("create workspace: %d %s", code, body)
	}
	code, body := httpDo(t, http.MethodPost, base+"/admin/v1/workspaces/acme/scim-tokens", adminToken, map[string]any{"name": "idp"})
	var tok struct{ Token string }
	if code != http.StatusCreated || json.Unmarshal(body, &tok) != nil {
		t.Fatalf("create SCIM token: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, base+"/admin/v1/workspaces/acme/webhooks", adminToken,
		map[string]any{"url": receiver.URL}); code != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, base+"/scim/v2/acme/Users", tok.Token, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "ada@example.com"}); code != http.StatusCreated {
		t.Fatalf("create user: %d %s", code, body)
	}
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery reached the receiver")
	}
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()

	c := rs.Client(t)
	ctx := t.Context()
	leases := "asynq:{" + queue.DefaultName + "}:lease"
	leased, err := c.ZRange(ctx, leases, 0, -1).Result()
	if err != nil || len(leased) != 1 {
		t.Fatalf("leases after the kill: %v, %v; want the killed delivery's", leased, err)
	}
	if err := c.ZAdd(ctx, leases, redis.Z{Score: float64(time.Now().Add(-time.Minute).Unix()), Member: leased[0]}).Err(); err != nil {
		t.Fatal(err)
	}

	startServeProcess(t, args)
	// The new process's recoverer schedules the task's retry on the
	// default backoff (15 s or more): make it due now.
	retry := "asynq:{" + queue.DefaultName + "}:retry"
	waitFor(t, "the task back in the retry set", func() bool {
		n, _ := c.ZCard(ctx, retry).Result()
		return n == 1
	})
	members, _ := c.ZRange(ctx, retry, 0, -1).Result()
	if err := c.ZAdd(ctx, retry, redis.Z{Score: float64(time.Now().Add(-time.Second).Unix()), Member: members[0]}).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if ids[0] == "" || ids[1] != ids[0] {
		t.Fatalf("webhook-ids %q: want the redelivery with the first attempt's id", ids)
	}
}
