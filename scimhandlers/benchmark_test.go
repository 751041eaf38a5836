package scimhandlers_test

// Benchmarks of the SCIM surface through the real HTTP stack (server.New on
// an httptest server over loopback) against a real redis-server spawned by
// redistest, with a bare Echo handler measured in the same run as the
// ceiling. docs/benchmarks.md describes the method and the results.
//
//	go test -run '^$' -bench 'BenchmarkSCIM$' -benchtime 3s ./scimhandlers/
//	SCIMJIT_BENCH_USERS=10000,1000000 SCIMJIT_BENCH_ROUNDS=3 \
//	  go test -v -run '^$' -bench 'BenchmarkSCIM$' -benchtime 3s -timeout 90m ./scimhandlers/
//
// -v adds the seeding time, the Redis memory per user and the Redis
// commands per request to the output.
// The workspace is seeded through the storage API (many goroutines), not
// over HTTP: an account and a membership per user, shaped like the user an
// Okta POST creates (the template is created by a real POST first).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// benchUsersEnv selects the workspace sizes (comma-separated user counts).
// The default keeps `go test -bench` quick; 1M users is opt-in.
const benchUsersEnv = "SCIMJIT_BENCH_USERS"

// benchConcurrencyEnv overrides the concurrency levels (comma-separated
// numbers of client workers); default "1,16".
const benchConcurrencyEnv = "SCIMJIT_BENCH_CONCURRENCY"

const (
	benchWS        = "bench"
	benchGroups    = 200
	benchSeedProcs = 64
	benchPageSize  = 100
)

func benchInts(b *testing.B, env, def string) []int {
	s := os.Getenv(env)
	if s == "" {
		s = def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s: %q is not a positive integer", env, f)
		}
		out = append(out, n)
	}
	return out
}

// benchRoundsEnv repeats every measurement (default 1); take the median
// over rounds.
const benchRoundsEnv = "SCIMJIT_BENCH_ROUNDS"

// BenchmarkSCIM measures each SCIM operation per workspace size and
// concurrency level, reporting req/s, p50/p99 latency in µs, the CPU time
// of this process (HTTP client and server) and of redis-server per
// request, and the Redis commands a request runs. All workspaces are
// seeded first; then each operation runs against every size back to back,
// so that the sizes of one operation are compared under the same machine
// load.
func BenchmarkSCIM(b *testing.B) {
	sizes := benchInts(b, benchUsersEnv, "10000")
	conc := benchInts(b, benchConcurrencyEnv, "1,16")
	rounds := benchInts(b, benchRoundsEnv, "1")[0]
	fixtures := make([]*benchFixture, len(sizes))
	for i, n := range sizes {
		fixtures[i] = newBenchFixture(b, n)
	}
	for r := 0; r < rounds; r++ {
		for _, c := range conc {
			b.Run(fmt.Sprintf("echo-bare/c=%d", c), func(b *testing.B) {
				runOp(b, fixtures[0], fixtures[0].bareOp(), c)
			})
		}
		for k, op := range fixtures[0].ops() {
			for _, f := range fixtures {
				if fo := f.ops()[k]; fo.setup != nil {
					fo.setup(b)
				}
			}
			for _, c := range conc {
				if op.onlyC != 0 && c != op.onlyC {
					continue
				}
				for _, f := range fixtures {
					b.Run(fmt.Sprintf("%s/users=%d/c=%d", op.name, f.n, c), func(b *testing.B) {
						runOp(b, f, f.ops()[k], c)
					})
				}
			}
			for _, f := range fixtures {
				if fo := f.ops()[k]; fo.teardown != nil {
					fo.teardown(b)
				}
			}
		}
		// POST grew the workspaces: shrink them back for the next round.
		for _, f := range fixtures {
			f.removePosted(b)
		}
	}
}

// BenchmarkSCIMShare measures the share the throughput target is
// about, indexed GETs against the bare Echo handler, with the two
// interleaved: slices of benchShareSlice requests to the bare handler and
// to the operation alternate, each with c concurrent clients, and each
// side's req/s is its requests over the summed time of its slices. A drift
// of the machine's speed during the run (BenchmarkSCIM measures the two
// seconds apart) then affects both sides alike. Reports bare-req/s, req/s
// and share-% (= req/s / bare-req/s).
//
//	SCIMJIT_BENCH_USERS=10000,1000000 go test -run '^$' -bench BenchmarkSCIMShare -benchtime 40000x ./scimhandlers/
func BenchmarkSCIMShare(b *testing.B) {
	sizes := benchInts(b, benchUsersEnv, "10000")
	conc := benchInts(b, benchConcurrencyEnv, "16")
	for _, n := range sizes {
		f := newBenchFixture(b, n)
		bare := f.bareOp()
		for _, op := range f.ops() {
			if op.name != "get-id" && op.name != "get-filter-userName" {
				continue
			}
			for _, c := range conc {
				b.Run(fmt.Sprintf("%s/users=%d/c=%d", op.name, n, c), func(b *testing.B) {
					bare.check(b)
					op.check(b)
					runtime.GC()
					var tBare, tOp time.Duration
					b.ResetTimer()
					for done := 0; done < b.N; done += benchShareSlice {
						k := min(benchShareSlice, b.N-done)
						tBare += loadSlice(b, c, k, bare.do)
						tOp += loadSlice(b, c, k, op.do)
					}
					b.StopTimer()
					b.ReportMetric(float64(b.N)/tBare.Seconds(), "bare-req/s")
					b.ReportMetric(float64(b.N)/tOp.Seconds(), "req/s")
					b.ReportMetric(100*tBare.Seconds()/tOp.Seconds(), "share-%")
				})
			}
		}
	}
}

// benchShareSlice is the number of requests per slice of
// BenchmarkSCIMShare: about 30 ms of the bare handler, 100 ms of a lookup.
const benchShareSlice = 1000

// loadSlice sends n requests with c concurrent clients and returns the
// wall time; any failed request fails the benchmark.
func loadSlice(b *testing.B, c, n int, do func(*rand.Rand) error) time.Duration {
	errs := make(chan error, c)
	start := time.Now()
	workers(c, n, func(_ int, rng *rand.Rand) bool {
		if err := do(rng); err != nil {
			errs <- err
			return false
		}
		return true
	})
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("request failed: %v", err)
	}
	return elapsed
}

// workers runs c goroutines that share n requests: each takes the next
// one and calls each with its worker number and its own generator, until
// the requests run out or each returns false.
func workers(c, n int, each func(w int, rng *rand.Rand) bool) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(time.Now().UnixNano())))
			for next.Add(1) <= int64(n) && each(w, rng) {
			}
		}(w)
	}
	wg.Wait()
}

func runOp(b *testing.B, f *benchFixture, op benchOp, c int) {
	if op.check != nil {
		op.check(b)
	}
	before := f.redisStats(b, true)
	goCPU := benchProcessCPU()
	runLoad(b, c, op.do)
	b.ReportMetric(float64((benchProcessCPU()-goCPU).Microseconds())/float64(b.N), "go-cpu-µs/op")
	f.reportRedis(b, before)
}

// benchFixture is one seeded workspace behind a running server, plus a bare
// Echo server on the same loopback for the ceiling.
type benchFixture struct {
	n       int
	srv     *server.Server
	base    string // the server's URL, e.g. http://127.0.0.1:1234
	url     string // SCIM base, e.g. http://127.0.0.1:1234/scim/v2/bench
	bareURL string
	token   string
	client  *http.Client
	store   *redisstore.Store
	rdb     redis.UniversalClient
	ids     []string // ids[i] is user i's id
	groups  []string
	posted  atomic.Int64 // POST benchmark counter
	// bigGroup is the large group of get-id-in-large-group while it exists.
	bigGroup string
}

func benchEmail(i int) string { return fmt.Sprintf("user%07d@bench.example.com", i) }

// benchUserBody is the user as Okta's SCIM 2.0 client sends it (POST
// /Users, idp-clients.md): userName = email, externalId, name, emails,
// displayName, locale, active, plus Workato's role extension.
func benchUserBody(i int) []byte {
	d := fmt.Sprintf("%07d", i)
	body := map[string]any{
		"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"},
		"userName":    benchEmail(i),
		"externalId":  "00u" + d + "abcdEFGh5d7",
		"name":        map[string]any{"givenName": "Given" + d, "familyName": "Family" + d},
		"emails":      []any{map[string]any{"primary": true, "value": benchEmail(i), "type": "work"}},
		"displayName": "Given" + d + " Family" + d,
		"locale":      "en-US",
		"active":      true,
		"password":    "Pw" + d + "!x",
		"groups":      []any{},
		"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole": map[string]any{
			"workato_role": "Analyst", "workato_role_test": "Operator", "workato_role_prod": "NoAccess",
		},
	}
	raw, _ := json.Marshal(body)
	return raw
}

// newBenchFixture seeds a workspace of n users behind a server built as
// cmd/scimjit builds it; mutate, when given, changes the server's
// configuration first.
func newBenchFixture(b *testing.B, n int, mutate ...func(*server.Config)) *benchFixture {
	b.Helper()
	ctx := context.Background()
	store, err := redisstore.Open(ctx, redisstore.Options{URL: redistest.Start(b).URL()})
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	b.Cleanup(func() { _ = store.Close() })
	rdb := store.Client()
	memBefore := benchUsedMemory(b, rdb)

	// The server exactly as cmd/scimjit builds it, logging JSON at info
	// level (one access-log line per request) to a discarding writer.
	hs := httptest.NewUnstartedServer(nil)
	base, _ := url.Parse("http://" + hs.Listener.Addr().String())
	cfg := server.Config{
		Store:      store,
		Redis:      rdb,
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		BaseURL:    base,
		ListenAddr: hs.Listener.Addr().String(),
		AdminToken: "adm_bench",
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		b.Fatalf("server.New: %v", err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	b.Cleanup(hs.Close)

	// The ceiling: a bare Echo instance with one route returning small JSON.
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/ping", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"ok": true, "service": "bench"})
	})
	bare := httptest.NewServer(e)
	b.Cleanup(bare.Close)

	if _, err := store.CreateWorkspace(ctx, storage.Workspace{ID: benchWS, Name: "Bench", Settings: storage.DefaultSettings()}); err != nil {
		b.Fatalf("create workspace: %v", err)
	}
	tok, hash := server.NewSCIMToken()
	if err := store.CreateSCIMToken(ctx, benchWS, storage.SCIMToken{ID: uuid.NewString(), Name: "bench", Hash: hash, CreatedAt: time.Now().UTC()}); err != nil {
		b.Fatalf("create token: %v", err)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	b.Cleanup(tr.CloseIdleConnections)
	f := &benchFixture{
		n: n, srv: srv, base: hs.URL, url: hs.URL + "/scim/v2/" + benchWS, bareURL: bare.URL + "/ping", token: tok,
		client: &http.Client{Transport: tr, Timeout: 60 * time.Second}, store: store, rdb: rdb, ids: make([]string, n),
	}

	// User 0 is created by a real POST; its stored form is the template
	// for the rest, so seeded users are shaped exactly like POSTed ones.
	status, body := f.send(ctx, http.MethodPost, "/Users", benchUserBody(0))
	if status != http.StatusCreated {
		b.Fatalf("template POST: %d %s", status, body)
	}
	var created struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &created)
	tmpl, err := store.GetUser(ctx, benchWS, created.ID)
	if err != nil {
		b.Fatalf("template read: %v", err)
	}
	f.ids[0] = tmpl.ID
	tmplAttrs, _ := json.Marshal(tmpl.Attributes)

	start := time.Now()
	f.seed(b, tmpl, string(tmplAttrs))
	f.reportMemory(b, rdb, memBefore, time.Since(start))

	for g := 0; g < benchGroups; g++ {
		grp, err := store.CreateGroup(ctx, benchWS, storage.Group{DisplayName: fmt.Sprintf("bench-group-%03d", g), ExternalID: fmt.Sprintf("00g%03dbench", g)})
		if err != nil {
			b.Fatalf("create group: %v", err)
		}
		f.groups = append(f.groups, grp.ID)
	}
	return f
}

// seed creates users 1..n-1 through the storage API the way createUser
// does: GetOrCreateAccount, then CreateUser with the account id.
func (f *benchFixture) seed(b *testing.B, tmpl storage.User, tmplAttrs string) {
	ctx := context.Background()
	var next atomic.Int64
	next.Store(1)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for w := 0; w < benchSeedProcs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= f.n {
					return
				}
				if err := f.seedOne(ctx, tmpl, tmplAttrs, i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("seed: %v", firstErr)
	}
}

func (f *benchFixture) seedOne(ctx context.Context, tmpl storage.User, tmplAttrs string, i int) error {
	d := fmt.Sprintf("%07d", i)
	email := benchEmail(i)
	acct, created, err := f.store.GetOrCreateAccount(ctx, storage.Account{
		Email: email, FullName: "Given" + d + " Family" + d, Source: storage.SourceSCIM, OriginWorkspace: benchWS,
	})
	if err != nil {
		return err
	}
	var attrs map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(tmplAttrs, "0000000", d)), &attrs); err != nil {
		return err
	}
	u := storage.User{
		AccountID: acct.ID, UserName: email,
		ExternalID: strings.ReplaceAll(tmpl.ExternalID, "0000000", d),
		Emails:     []string{email}, Active: true, Verified: created, Source: storage.SourceSCIM,
		Roles: tmpl.Roles, Attributes: attrs,
	}
	u, err = f.store.CreateUser(ctx, benchWS, u)
	if err != nil {
		return err
	}
	f.ids[i] = u.ID
	return nil
}

func benchUsedMemory(b *testing.B, rdb redis.UniversalClient) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatalf("info memory: %v", err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("info memory: no used_memory")
	return 0
}

// reportMemory logs Redis memory per user two ways: MEMORY USAGE (exact,
// SAMPLES 0) summed over every key, split into the workspace's user keys
// (records and user indexes, named one by one), the rest of the workspace
// and the account side (account records, back-pointer sets, the global
// email index); and the INFO used_memory delta over the seeding divided by
// n, which also counts Redis' own per-key overhead outside the values.
func (f *benchFixture) reportMemory(b *testing.B, rdb redis.UniversalClient, before int64, seedTime time.Duration) {
	ctx := context.Background()
	wsPrefix := "sj:{ws:" + benchWS + "}:"
	perKey := map[string]int64{}
	var wsUser, wsOther, acct, other int64
	var keys int
	var cursor uint64
	for {
		batch, next, err := rdb.Scan(ctx, cursor, "*", 2000).Result()
		if err != nil {
			b.Fatalf("scan: %v", err)
		}
		cmds := make([]*redis.IntCmd, len(batch))
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.MemoryUsage(ctx, k, 0)
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			b.Fatalf("memory usage: %v", err)
		}
		for i, k := range batch {
			n, _ := cmds[i].Result()
			keys++
			switch name, inWS := strings.CutPrefix(k, wsPrefix); {
			case inWS && (name == "users" || strings.HasPrefix(name, "ix:u") || name == "seq:u"):
				wsUser += n
				perKey[name] += n
			case inWS:
				wsOther += n
			case strings.HasPrefix(k, "sj:{acct:") || strings.HasPrefix(k, "sj:{accounts}:"):
				acct += n
			default:
				other += n
			}
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	after := benchUsedMemory(b, rdb)
	names := make([]string, 0, len(perKey))
	for k := range perKey {
		names = append(names, k)
	}
	slices.Sort(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, float64(perKey[k])/float64(f.n)))
	}
	per := func(x int64) float64 { return float64(x) / float64(f.n) }
	b.Logf("seeded %d users in %v (%.0f users/s)", f.n, seedTime.Round(time.Millisecond), float64(f.n)/seedTime.Seconds())
	b.Logf("memory per user (MEMORY USAGE over %d keys): workspace user keys %.0f B [%s]; account side %.0f B; total %.0f B; other workspace keys %d B, other keys %d B in all; INFO used_memory delta/n %.0f B",
		keys, per(wsUser), strings.Join(parts, " "), per(acct), per(wsUser+acct), wsOther, other, per(after-before))
}

// send does one SCIM request with the workspace token and returns the
// status and body.
func (f *benchFixture) send(ctx context.Context, method, path string, body []byte) (int, []byte) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.url+path, rd)
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// exchange sends one request and drains the response; an unexpected status
// is an error.
func (f *benchFixture) exchange(method, rawURL string, auth bool, body []byte, want int) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		return err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, rawURL, resp.StatusCode, want)
	}
	return cerr
}

// benchOp is one measured request kind. do runs one request (rng is the
// worker's own); check, run once before the measurement, asserts that the
// request really returns what it is meant to.
type benchOp struct {
	name  string
	check func(b *testing.B)
	do    func(rng *rand.Rand) error
	// setup and teardown, when set, run (untimed) before and after the
	// operation's sub-benchmarks on a fixture, once per round.
	setup, teardown func(b *testing.B)
	// onlyC, when not zero, restricts the operation to that concurrency.
	onlyC int
}

// userPatch sets a user's active flag (to the value it has: every PATCH
// is still a write).
var userPatch = []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":true}]}`)

func filterPath(i int) string {
	return "/Users?filter=" + url.QueryEscape(`userName eq "`+benchEmail(i)+`"`)
}

func (f *benchFixture) ops() []benchOp {
	deepStart := f.n - benchPageSize + 1
	patch := func(uid string) []byte {
		return []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + uid + `"}]}]}`)
	}
	return []benchOp{
		{name: "get-filter-userName", check: func(b *testing.B) {
			i := f.n / 2
			f.expectList(b, filterPath(i), 1, 1, func(r map[string]any) bool { return r["id"] == f.ids[i] && r["userName"] == benchEmail(i) })
		}, do: func(rng *rand.Rand) error {
			return f.exchange(http.MethodGet, f.url+filterPath(rng.IntN(f.n)), true, nil, http.StatusOK)
		}},
		{name: "get-id", check: func(b *testing.B) {
			i := f.n - 1
			status, body := f.send(context.Background(), http.MethodGet, "/Users/"+f.ids[i], nil)
			var u map[string]any
			if status != http.StatusOK || json.Unmarshal(body, &u) != nil || u["userName"] != benchEmail(i) {
				b.Fatalf("GET /Users/{id}: %d %.300s", status, body)
			}
		}, do: func(rng *rand.Rand) error {
			return f.exchange(http.MethodGet, f.url+"/Users/"+f.ids[rng.IntN(f.n)], true, nil, http.StatusOK)
		}},
		{name: "page-first", check: func(b *testing.B) {
			f.expectList(b, "/Users?startIndex=1&count=100", f.n, benchPageSize, func(r map[string]any) bool { return r["id"] == f.ids[0] })
		}, do: func(*rand.Rand) error {
			return f.exchange(http.MethodGet, f.url+"/Users?startIndex=1&count=100", true, nil, http.StatusOK)
		}},
		{name: "page-deep", check: func(b *testing.B) {
			f.expectList(b, "/Users?startIndex="+strconv.Itoa(deepStart)+"&count=100", f.n, benchPageSize, nil)
		}, do: func(*rand.Rand) error {
			return f.exchange(http.MethodGet, f.url+"/Users?startIndex="+strconv.Itoa(deepStart)+"&count=100", true, nil, http.StatusOK)
		}},
		// GET /Users/{id} of a user who is a member of one large group
		// (n/10 members: "Everyone in Engineering"): the user's groups
		// attribute is rendered from the member index.
		{name: "get-id-in-large-group", onlyC: 1, setup: func(b *testing.B) {
			f.bigGroup = f.makeBigGroup(b)
		}, teardown: func(b *testing.B) {
			if err := f.store.DeleteGroup(context.Background(), benchWS, f.bigGroup, 0); err != nil {
				b.Fatalf("delete large group: %v", err)
			}
		}, check: func(b *testing.B) {
			status, body := f.send(context.Background(), http.MethodGet, "/Users/"+f.ids[0], nil)
			if status != http.StatusOK || !bytes.Contains(body, []byte(f.bigGroup)) {
				b.Fatalf("GET /Users/{id} of a large group's member: %d %.300s", status, body)
			}
		}, do: func(rng *rand.Rand) error {
			return f.exchange(http.MethodGet, f.url+"/Users/"+f.ids[rng.IntN(f.n/10)], true, nil, http.StatusOK)
		}},
		{name: "patch-group-add", teardown: f.emptyGroups, check: func(b *testing.B) {
			status, body := f.send(context.Background(), http.MethodPatch, "/Groups/"+f.groups[0], patch(f.ids[1]))
			if status != http.StatusOK || !bytes.Contains(body, []byte(f.ids[1])) {
				b.Fatalf("PATCH group: %d %.300s", status, body)
			}
		}, do: func(rng *rand.Rand) error {
			return f.exchange(http.MethodPatch, f.url+"/Groups/"+f.groups[rng.IntN(len(f.groups))], true, patch(f.ids[rng.IntN(f.n)]), http.StatusOK)
		}},
		// PATCH of a user's active flag: a user write that re-evaluates
		// the user's roles (no group rules in the fixture's workspace).
		{name: "patch-user", check: func(b *testing.B) {
			status, body := f.send(context.Background(), http.MethodPatch, "/Users/"+f.ids[1], userPatch)
			if status != http.StatusOK || !bytes.Contains(body, []byte(f.ids[1])) {
				b.Fatalf("PATCH user: %d %.300s", status, body)
			}
		}, do: func(rng *rand.Rand) error {
			return f.exchange(http.MethodPatch, f.url+"/Users/"+f.ids[rng.IntN(f.n)], true, userPatch, http.StatusOK)
		}},
		// Last: it grows the workspace.
		{name: "post-user", do: func(*rand.Rand) error {
			i := f.n + int(f.posted.Add(1))
			return f.exchange(http.MethodPost, f.url+"/Users", true, benchUserBody(i), http.StatusCreated)
		}},
	}
}

// bareOp is the ceiling: GET of the bare Echo handler.
func (f *benchFixture) bareOp() benchOp {
	return benchOp{name: "echo-bare", check: func(b *testing.B) {
		if err := f.exchange(http.MethodGet, f.bareURL, false, nil, http.StatusOK); err != nil {
			b.Fatal(err)
		}
	}, do: func(*rand.Rand) error {
		return f.exchange(http.MethodGet, f.bareURL, false, nil, http.StatusOK)
	}}
}

// makeBigGroup creates a group whose members are users 0 .. n/10-1.
func (f *benchFixture) makeBigGroup(b *testing.B) string {
	ctx := context.Background()
	g, err := f.store.CreateGroup(ctx, benchWS, storage.Group{DisplayName: "bench-large-group", ExternalID: "00glargebench"})
	if err != nil {
		b.Fatalf("create large group: %v", err)
	}
	members := f.ids[:f.n/10]
	for len(members) > 0 {
		k := min(len(members), 5000)
		if _, err := f.store.ChangeGroup(ctx, benchWS, g.ID, storage.GroupChange{AddMembers: members[:k]}); err != nil {
			b.Fatalf("fill large group: %v", err)
		}
		members = members[k:]
	}
	return g.ID
}

// emptyGroups removes the members the PATCH benchmark added, so that the
// next round's reads see users without groups again.
func (f *benchFixture) emptyGroups(b *testing.B) {
	for _, g := range f.groups {
		if _, err := f.store.ChangeGroup(context.Background(), benchWS, g, storage.GroupChange{ReplaceMembers: &[]string{}}); err != nil {
			b.Fatalf("empty group: %v", err)
		}
	}
}

// removePosted deletes the users the POST benchmark created (through the
// store, untimed), so the workspace has its nominal size again.
func (f *benchFixture) removePosted(b *testing.B) {
	ctx := context.Background()
	last := int(f.posted.Load())
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := 0; w < benchSeedProcs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > last {
					return
				}
				found, err := f.store.FindUsers(ctx, benchWS, storage.UserByUserName, benchEmail(f.n+i), storage.FindOptions{})
				if err != nil || len(found.Users) == 0 {
					continue // already removed in an earlier round
				}
				if err := f.store.DeleteUser(ctx, benchWS, found.Users[0].ID, 0); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("removing posted users: %d deletes failed", failed.Load())
	}
}

// expectList checks a ListResponse: totalResults, the number of resources,
// and (when first is not nil) the first resource.
func (f *benchFixture) expectList(b *testing.B, path string, total, items int, first func(map[string]any) bool) {
	b.Helper()
	status, body := f.send(context.Background(), http.MethodGet, path, nil)
	var lr struct {
		TotalResults int              `json:"totalResults"`
		ItemsPerPage int              `json:"itemsPerPage"`
		Resources    []map[string]any `json:"Resources"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &lr) != nil {
		b.Fatalf("GET %s: %d %.300s", path, status, body)
	}
	if lr.TotalResults != total || lr.ItemsPerPage != items || len(lr.Resources) != items {
		b.Fatalf("GET %s: totalResults %d itemsPerPage %d resources %d, want %d/%d", path, lr.TotalResults, lr.ItemsPerPage, len(lr.Resources), total, items)
	}
	if first != nil && !first(lr.Resources[0]) {
		b.Fatalf("GET %s: unexpected first resource %v", path, lr.Resources[0])
	}
}

// runLoad runs b.N requests from c workers, each taking the next request
// as soon as its previous one is answered (closed loop), and reports
// throughput and latency percentiles.
func runLoad(b *testing.B, c int, do func(*rand.Rand) error) {
	lat := make([][]time.Duration, c)
	for w := range lat {
		lat[w] = make([]time.Duration, 0, b.N/c+1)
	}
	var errCount atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	runtime.GC()
	b.ResetTimer()
	start := time.Now()
	workers(c, b.N, func(w int, rng *rand.Rand) bool {
		t0 := time.Now()
		err := do(rng)
		lat[w] = append(lat[w], time.Since(t0))
		if err != nil && errCount.Add(1) == 1 {
			errMu.Lock()
			firstErr = err
			errMu.Unlock()
		}
		return true
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := errCount.Load(); n > 0 {
		errMu.Lock()
		defer errMu.Unlock()
		b.Fatalf("%d of %d requests failed; first: %v", n, b.N, firstErr)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		i := int(float64(len(all)-1) * p)
		return float64(all[i].Nanoseconds()) / 1e3
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// benchProcessCPU is this process's CPU time (user+sys): the HTTP client
// and the server under test together.
func benchProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisStats reads redis-server's CPU time (user+sys, µs) and, per command,
// the number of calls and their total µs; reset clears the command
// statistics first.
type redisStats struct {
	cpuUS float64
	cmds  map[string][2]float64 // calls, usec
}

func (f *benchFixture) redisStats(b *testing.B, reset bool) redisStats {
	ctx := context.Background()
	if reset {
		if err := f.rdb.ConfigResetStat(ctx).Err(); err != nil {
			b.Fatalf("config resetstat: %v", err)
		}
	}
	info, err := f.rdb.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		b.Fatalf("info: %v", err)
	}
	st := redisStats{cmds: map[string][2]float64{}}
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_sys" || k == "used_cpu_user":
			x, _ := strconv.ParseFloat(v, 64)
			st.cpuUS += x * 1e6
		case strings.HasPrefix(k, "cmdstat_"):
			var calls, usec float64
			for _, kv := range strings.Split(v, ",") {
				name, val, _ := strings.Cut(kv, "=")
				switch name {
				case "calls":
					calls, _ = strconv.ParseFloat(val, 64)
				case "usec":
					usec, _ = strconv.ParseFloat(val, 64)
				}
			}
			st.cmds[strings.TrimPrefix(k, "cmdstat_")] = [2]float64{calls, usec}
		}
	}
	return st
}

// reportRedis reports redis-server's CPU per request and the commands each
// request costs (measured over the last run of b.N requests).
func (f *benchFixture) reportRedis(b *testing.B, before redisStats) {
	after := f.redisStats(b, false)
	n := float64(b.N)
	var calls float64
	names := make([]string, 0, len(after.cmds))
	for name, c := range after.cmds {
		if name == "info" || name == "config|resetstat" {
			continue
		}
		calls += c[0]
		names = append(names, name)
	}
	slices.Sort(names)
	var parts []string
	for _, name := range names {
		c := after.cmds[name]
		parts = append(parts, fmt.Sprintf("%s %.2f×%.1fµs", name, c[0]/n, c[1]/max(c[0], 1)))
	}
	b.ReportMetric((after.cpuUS-before.cpuUS)/n, "redis-cpu-µs/op")
	b.ReportMetric(calls/n, "redis-calls/op")
	b.Logf("redis commands per request: %s", strings.Join(parts, ", "))
}
