package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage/redistest"
)

// jsonLogRecords parses every line of a JSON log, failing the test on a
// line that is not a JSON object.
func jsonLogRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(logs, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON (%v): %s", i+1, err, line)
			continue
		}
		recs = append(recs, rec)
	}
	return recs
}

// waitFor polls cond every 50ms until it holds or 30s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling a server in another goroutine
	}
}

// statusOf returns the status and Retry-After of a GET.
func statusOf(t *testing.T, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestServeWaitsForRedisWithJSONLogs starts serve before its Redis, as a
// container orchestrator does: the server listens and reports not ready,
// retries with backoff, becomes ready once Redis is up, and during the
// outages before and after, every line of its --log-format json output,
// go-redis' own included, is JSON. Not parallel: go-redis has one logger
// per process.
func TestServeWaitsForRedisWithJSONLogs(t *testing.T) {
	rs := redistest.Reserve(t)
	const adminToken = "admin-token-0123456789-Vq3xL9sK2mR7tW"
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--redis-url", rs.URL(), "--log-format", "json",
			"--admin-token", adminToken, "--redis-timeout", "500ms"}, mapEnv(nil), os.ReadFile, io.Discard, logs)
	}()
	logged := func(msg string) map[string]any {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
		return nil
	}
	waitFor(t, "the listening line", func() bool { return logged("listening") != nil })
	base, _ := logged("listening")["base_url"].(string)

	// Redis is not up: live, not ready, requests get 503 with Retry-After.
	if code, _ := statusOf(t, base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz while Redis is down: %d", code)
	}
	if code, _ := statusOf(t, base+"/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while Redis is down: %d", code)
	}
	if code, ra := statusOf(t, base+"/admin/v1/workspaces", adminToken); code != http.StatusServiceUnavailable || ra == "" {
		t.Errorf("admin call while Redis is down: %d, Retry-After %q", code, ra)
	}
	waitFor(t, "a second retry", func() bool {
		rec := logged("startup: storage not reachable, retrying")
		return rec != nil && strings.Contains(logs.String(), `"attempt":2`)
	})
	if rec := logged("startup: storage not reachable, retrying"); rec["next_attempt_in"] == nil || rec["level"] != "WARN" {
		t.Errorf("retry record without its next delay or not at warn: %v", rec)
	}

	rs = redistest.StartReserved(t, rs)
	waitFor(t, "/readyz 200", func() bool { code, _ := statusOf(t, base+"/readyz", ""); return code == http.StatusOK })
	code, body := httpDo(t, http.MethodPost, base+"/admin/v1/workspaces", adminToken, map[string]any{"id": "late", "name": "Late"})
	if code != http.StatusCreated {
		t.Fatalf("create workspace after Redis came up: %d %s", code, body)
	}
	code, body = httpDo(t, http.MethodPost, base+"/admin/v1/workspaces/late/scim-tokens", adminToken, map[string]any{"name": "idp"})
	var tok struct{ Token string }
	if code != http.StatusCreated || json.Unmarshal(body, &tok) != nil {
		t.Fatalf("create SCIM token: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodGet, base+"/scim/v2/late/Users", tok.Token, nil); code != http.StatusOK {
		t.Fatalf("SCIM after Redis came up: %d %s", code, body)
	}

	// Redis goes away again.
	rs.Stop()
	if code, ra := statusOf(t, base+"/scim/v2/late/Users", tok.Token); code != http.StatusServiceUnavailable || ra == "" {
		t.Errorf("SCIM while Redis is down again: %d, Retry-After %q", code, ra)
	}
	if code, _ := statusOf(t, base+"/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while Redis is down again: %d", code)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited with %d", code)
	}

	recs := jsonLogRecords(t, logs.String())
	fromRedis := 0
	for _, rec := range recs {
		if rec["component"] == "redis" {
			fromRedis++
			if rec["level"] != "WARN" {
				t.Errorf("go-redis line not at warn: %v", rec)
			}
		}
	}
	if fromRedis == 0 {
		t.Errorf("no go-redis line in the log (a failed dial logs one):\n%s", logs.String())
	}
	if strings.Contains(logs.String(), rs.Password) {
		t.Errorf("the Redis password reached the log:\n%s", logs.String())
	}
}

// TestServeFailureIsJSON: a configuration error found after the logger
// exists is one JSON record, not plain text.
func TestServeFailureIsJSON(t *testing.T) {
	var errOut syncBuffer
	code := run(t.Context(), []string{"serve", "--log-format", "json", "--listen", "x", "--redis-url", "redis://127.0.0.1:1"},
		mapEnv(nil), os.ReadFile, io.Discard, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut.String())
	}
	recs := jsonLogRecords(t, errOut.String())
	if len(recs) != 1 || recs[0]["level"] != "ERROR" || !strings.Contains(recs[0]["err"].(string), "--listen") {
		t.Errorf("want one error record naming --listen, got %v", recs)
	}
}
