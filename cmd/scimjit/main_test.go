package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage/redistest"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServe runs `scimjit args...` in-process and returns the demo
// banner's key/value lines once it is printed (or nil when the server is
// not in demo mode and readyURL answers), plus a stop function.
func startServe(t *testing.T, args []string, env map[string]string) (banner map[string]string, logs *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs = &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, mapEnv(env), os.ReadFile, pw, logs)
		pw.Close()
	}()
	banner = map[string]string{}
	sc := bufio.NewScanner(pr)
	rules := 0
	for rules < 2 && sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "=====") {
			rules++
			continue
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "    ") {
			banner[k] = strings.TrimSpace(v)
		}
		banner["_text"] += line + "\n"
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if rules < 2 {
		cancel()
		t.Fatalf("no demo banner; exit %v; log:\n%s", <-done, logs.String())
	}
	stop = func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited with %d; log:\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop after cancel")
		}
	}
	return banner, logs, stop
}

func httpDo(t *testing.T, method, url, bearer string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// The servers here are not servertest's: check the admin API answers
	// against the OpenAPI document from the client side.
	resp, err := servertest.ValidatingClient(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// TestDemoModePrintsWorkingURLs is the quick start: with no command named
// and no Redis configured, scimjit runs serve, which starts the embedded
// store in demo mode and prints URLs and tokens that work as printed.
func TestDemoModePrintsWorkingURLs(t *testing.T) {
	banner, logs, stop := startServe(t, []string{"--listen", "127.0.0.1:0"}, nil)
	defer stop()

	if !strings.Contains(banner["_text"], "IN MEMORY ONLY") || !strings.Contains(logs.String(), "IN MEMORY ONLY") {
		t.Errorf("no unmistakable in-memory notice:\n%s", banner["_text"])
	}
	base := banner["Base URL"]
	admin, adminToken := banner["Admin API"], banner["Admin token"]
	scimBase, scimToken := banner["SCIM base URL"], banner["SCIM token"]
	if base == "" || admin != base+"/admin/v1" || scimBase != base+"/scim/v2/demo" || adminToken == "" ||
		!strings.HasPrefix(scimToken, server.SCIMTokenPrefix) || banner["SAML metadata"] != base+"/saml/demo/metadata" ||
		banner["Demo sign-in"] != base+"/demo/idp" || banner["Mail outbox"] != base+"/demo/outbox" || banner["Outbox API"] != admin+"/outbox" {
		t.Fatalf("banner %q", banner)
	}

	// The printed admin token creates a workspace and a SCIM token.
	code, body := httpDo(t, http.MethodPost, admin+"/workspaces", adminToken, map[string]any{"id": "finance", "name": "Finance"})
	if code != http.StatusCreated {
		t.Fatalf("create workspace: %d %s", code, body)
	}
	code, body = httpDo(t, http.MethodPost, admin+"/workspaces/finance/scim-tokens", adminToken, map[string]any{"name": "okta"})
	if code != http.StatusCreated || !strings.Contains(string(body), `"token":"sjt_`) {
		t.Fatalf("create token: %d %s", code, body)
	}
	// The demo workspaces exist with JIT on.
	for _, id := range []string{"demo", "demo-hr"} {
		code, body = httpDo(t, http.MethodGet, admin+"/workspaces/"+id, adminToken, nil)
		var ws server.WorkspaceJSON
		if code != http.StatusOK || json.Unmarshal(body, &ws) != nil || !ws.Settings.JIT.Enabled {
			t.Fatalf("demo workspace %s: %d %s", id, code, body)
		}
		if ws.Settings.IdP.EntityID != base+"/demo/idp/metadata" || ws.Settings.IdP.MetadataXML == "" {
			t.Errorf("demo workspace %s is not wired to the demo IdP: %+v", id, ws.Settings.IdP)
		}
	}
	// The printed SCIM token works on the printed SCIM base URL.
	code, body = httpDo(t, http.MethodGet, scimBase+"/Users", scimToken, nil)
	if code != http.StatusOK {
		t.Fatalf("SCIM list users with the printed token: %d %s", code, body)
	}
	code, _ = httpDo(t, http.MethodGet, scimBase+"/Users", adminToken, nil)
	if code != http.StatusUnauthorized {
		t.Errorf("SCIM with the admin token: %d, want 401", code)
	}
	code, body = httpDo(t, http.MethodGet, banner["Outbox API"], adminToken, nil)
	if code != http.StatusOK {
		t.Fatalf("outbox API: %d %s", code, body)
	}
	code, body = httpDo(t, http.MethodGet, banner["Mail outbox"], "", nil)
	if code != http.StatusOK {
		t.Fatalf("outbox page: %d %s", code, body)
	}
	code, body = httpDo(t, http.MethodGet, banner["Admin console"], "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), "admin token") {
		t.Fatalf("admin console sign-in page: %d %s", code, body)
	}
	var hcOut, hcErr bytes.Buffer
	listen := strings.TrimPrefix(base, "http://")
	if code := run(t.Context(), []string{"healthcheck"}, mapEnv(map[string]string{"SCIMJIT_LISTEN": listen}), os.ReadFile, &hcOut, &hcErr); code != 0 {
		t.Errorf("healthcheck: %d %s", code, hcErr.String())
	}
	if code := run(t.Context(), []string{"healthcheck", "--url", base + "/nope"}, mapEnv(nil), os.ReadFile, &hcOut, &hcErr); code != 1 {
		t.Errorf("healthcheck of a 404: %d", code)
	}
	code, body = httpDo(t, http.MethodGet, banner["SAML metadata"], "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), "EntityDescriptor") {
		t.Errorf("SAML metadata: %d %s", code, body)
	}
	code, body = httpDo(t, http.MethodGet, banner["Demo sign-in"], "", nil)
	if code != http.StatusOK {
		t.Errorf("demo IdP: %d %s", code, body)
	}
	// Tokens are printed to stdout for the newcomer, never logged.
	if strings.Contains(logs.String(), adminToken) || strings.Contains(logs.String(), scimToken) {
		t.Error("a printed token reached the log")
	}
}

// TestServeOnRealRedisWithBootstrap starts serve against a spawned
// redis-server with a bootstrap file, restarts it, and checks that the
// second start changed nothing.
func TestServeOnRealRedisWithBootstrap(t *testing.T) {
	rs := redistest.Start(t)
	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "workspaces.yaml")
	const fileToken = "sjt_bootstrap-token-from-a-file-0123456789"
	if err := os.WriteFile(filepath.Join(dir, "tok"), []byte(fileToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := `
workspaces:
  - id: finance
    name: Finance
    settings:
      jit:
        enabled: true
        defaultRole: Auditor
      customRoles: [Auditor]
    scimTokens:
      - name: okta
        file: ` + filepath.Join(dir, "tok") + `
`
	if err := os.WriteFile(bootstrap, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	const adminToken = "admin-token-0123456789-Vq3xL9sK2mR7tW"
	args := []string{"serve", "--listen", "127.0.0.1:0", "--redis-url", rs.URL(), "--bootstrap", bootstrap,
		"--admin-token", adminToken, "--demo", "--log-format", "json"}
	check := func(wantVersion float64) {
		banner, _, stop := startServe(t, args, nil)
		defer stop()
		if strings.Contains(banner["_text"], "IN MEMORY ONLY") {
			t.Error("real Redis announced as in-memory")
		}
		if strings.Contains(banner["_text"], adminToken) {
			t.Error("the configured admin token was printed")
		}
		base := banner["Base URL"]
		code, body := httpDo(t, http.MethodGet, base+"/admin/v1/workspaces/finance", adminToken, nil)
		var ws map[string]any
		if code != http.StatusOK || json.Unmarshal(body, &ws) != nil || ws["version"] != wantVersion {
			t.Fatalf("finance: %d %s, want version %v", code, body, wantVersion)
		}
		code, body = httpDo(t, http.MethodGet, base+"/admin/v1/workspaces/finance/scim-tokens", adminToken, nil)
		if code != http.StatusOK || strings.Count(string(body), `"name":"okta"`) != 1 {
			t.Fatalf("tokens: %d %s", code, body)
		}
		code, body = httpDo(t, http.MethodGet, base+"/scim/v2/finance/Users", fileToken, nil)
		if code != http.StatusOK {
			t.Fatalf("SCIM with the bootstrap token: %d %s", code, body)
		}
	}
	check(1)
	check(1) // idempotent: the second start finds nothing to change
}

func TestServeRefusesInvalidConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"serve", "--log-level", "loud", "--listen", "x"}, mapEnv(nil), os.ReadFile, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "--log-level") || !strings.Contains(errOut.String(), "--listen") {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
}

// TestAdminCLI drives the workspace and token subcommands against a real
// server.
func TestAdminCLI(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.Demo = true }) // for the demo IdP's metadata
	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		args = append(args, "--server", env.URL)
		code := run(t.Context(), args, mapEnv(map[string]string{"SCIMJIT_ADMIN_TOKEN": env.AdminToken}), os.ReadFile, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := cli("workspace", "create", "--id", "legal", "--name", "Legal", "--settings", `{"jit":{"enabled":true}}`, "-o", "json")
	if code != 0 || !strings.Contains(out, `"id": "legal"`) {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	code, out, errOut = cli("workspace", "update", "legal", "--settings", `{"jit":{"existingAccount":"auto"}}`, "--output", "json")
	if code != 0 || !strings.Contains(out, `"existingAccount": "auto"`) {
		t.Fatalf("update: %d %s %s", code, out, errOut)
	}
	mdFile := demoMetadataFile(t, env)
	code, out, errOut = cli("workspace", "update", "legal", "--idp-metadata-file", mdFile, "--settings", `{"idp":{"allowIdPInitiated":true}}`, "-o", "json")
	if code != 0 || !strings.Contains(out, `"entityID": "`+env.URL+`/demo/idp/metadata"`) || !strings.Contains(out, `"allowIdPInitiated": true`) {
		t.Fatalf("update with metadata file: %d %s %s", code, out, errOut)
	}
	code, out, _ = cli("workspace", "list", "-o", "json")
	if code != 0 || !strings.Contains(out, `"legal"`) {
		t.Fatalf("list: %d %s", code, out)
	}
	code, out, errOut = cli("token", "create", "legal", "--name", "entra", "-o", "json")
	var tok server.SCIMTokenJSON
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !strings.HasPrefix(tok.Token, server.SCIMTokenPrefix) {
		t.Fatalf("token create: %d %s %s", code, out, errOut)
	}
	code, out, _ = cli("token", "list", "legal")
	if code != 0 || !strings.Contains(out, tok.ID) || strings.Contains(out, tok.Token) {
		t.Fatalf("token list: %d %s", code, out)
	}
	code, _, _ = cli("token", "revoke", "legal", tok.ID)
	if code != 0 {
		t.Fatalf("token revoke: %d", code)
	}
	code, out, _ = cli("workspace", "events", "legal")
	if code != 0 || !strings.Contains(out, "admin.scim_token.revoked") {
		t.Fatalf("events: %d %s", code, out)
	}
	// Errors carry the server's message and a non-zero exit code.
	code, _, errOut = cli("workspace", "create", "--id", "Bad!", "--name", "x")
	if code != 1 || !strings.Contains(errOut, "400") || !strings.Contains(errOut, "id") {
		t.Fatalf("bad create: %d %s", code, errOut)
	}
	code, _, errOut = cli("workspace", "get", "nope")
	if code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("get unknown: %d %s", code, errOut)
	}
	code, _, errOut = cli("workspace", "delete", "legal")
	if code != 0 {
		t.Fatalf("delete: %d %s", code, errOut)
	}
	var out2, errOut2 bytes.Buffer
	if code := run(t.Context(), []string{"workspace", "list", "--server", env.URL, "--admin-token", "wrong-token-000000"}, mapEnv(nil), os.ReadFile, &out2, &errOut2); code != 1 || !strings.Contains(errOut2.String(), "401") {
		t.Fatalf("wrong token: %d %s", code, errOut2.String())
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"version"}, mapEnv(nil), os.ReadFile, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "scimjit ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run(t.Context(), []string{"frobnicate"}, mapEnv(nil), os.ReadFile, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
}

// TestMetricsOnTheirOwnListener checks that --metrics-listen serves
// Prometheus metrics, labelled by route template, apart from the API port.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	banner, logs, stop := startServe(t, []string{"serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"}, nil)
	defer stop()
	code, _ := httpDo(t, http.MethodGet, banner["Base URL"]+"/healthz", "", nil)
	if code != http.StatusOK {
		t.Fatal(code)
	}
	var addr string
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "metrics listening" {
			addr, _ = rec["addr"].(string)
		}
	}
	if addr == "" {
		t.Fatalf("no metrics listener in the log:\n%s", logs.String())
	}
	code, body := httpDo(t, http.MethodGet, "http://"+addr+"/metrics", "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), `scimjit_http_requests_total{method="GET",route="/healthz",status="200"} 1`) ||
		!strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
	if code, _ := httpDo(t, http.MethodGet, banner["Base URL"]+"/metrics", "", nil); code != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d", code)
	}
}
