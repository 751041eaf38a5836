package scimhandlers_test

// Benchmarks of webhook delivery: SCIM creates on the benchmark fixture
// (BenchmarkSCIM's server and redis-server, with the durable queue's
// workers and the webhook dispatcher running as `scimjit serve` runs them)
// delivered to receivers on loopback that verify every signature.
// docs/benchmarks.md describes the method and the results.
//
//	go test -run '^$' -bench 'BenchmarkWebhooks$' -benchtime 3000x ./scimhandlers/
//	go test -run '^$' -bench 'BenchmarkWebhooks$/idle' -benchtime 40x ./scimhandlers/
//	go test -run '^$' -bench BenchmarkWebhookCost -benchtime 6000x ./scimhandlers/

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/scimjit/scimjit/server"
)

// benchReceiver is a webhook receiver on loopback for any number of
// endpoints (path /hook/<n>, each with its own secret). It verifies every
// request with the Standard Webhooks library and records, per endpoint,
// when the user.created of each user id first arrived.
type benchReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	cond *sync.Cond
	// hooks verifies each endpoint's deliveries, by path.
	hooks map[string]*standardwebhooks.Webhook
	// arrived[path][user id] is the first verified delivery's time.
	arrived map[string]map[string]time.Time
	bad     []string
}

func newBenchReceiver(b *testing.B) *benchReceiver {
	r := &benchReceiver{hooks: map[string]*standardwebhooks.Webhook{}, arrived: map[string]map[string]time.Time{}}
	r.cond = sync.NewCond(&r.mu)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	b.Cleanup(r.srv.Close)
	return r
}

func (r *benchReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	at := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	hook := r.hooks[req.URL.Path]
	var env struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	switch {
	case err != nil || hook == nil:
		r.bad = append(r.bad, fmt.Sprintf("%s: unknown endpoint or unread body (%v)", req.URL.Path, err))
	case hook.Verify(body, req.Header) != nil:
		r.bad = append(r.bad, req.URL.Path+": signature not verified")
	case json.Unmarshal(body, &env) != nil || env.Type != "user.created" || env.Data.ID == "":
		r.bad = append(r.bad, fmt.Sprintf("%s: unexpected payload %.200s", req.URL.Path, body))
	default:
		if _, dup := r.arrived[req.URL.Path][env.Data.ID]; !dup {
			r.arrived[req.URL.Path][env.Data.ID] = at
		}
		r.cond.Broadcast()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.cond.Broadcast()
	w.WriteHeader(http.StatusUnauthorized)
}

// addEndpoints creates n endpoints on the fixture's workspace, each to
// its own path of r, and returns their ids.
func (r *benchReceiver) addEndpoints(b *testing.B, f *benchFixture, n int) []string {
	var ids []string
	for range n {
		r.mu.Lock()
		path := "/hook/" + strconv.Itoa(len(r.hooks))
		r.mu.Unlock()
		body, _ := json.Marshal(map[string]any{"url": r.srv.URL + path, "types": []string{"user.created"}})
		var ep server.WebhookJSON
		if err := f.admin(http.MethodPost, "/webhooks", body, http.StatusCreated, &ep); err != nil {
			b.Fatalf("create endpoint: %v", err)
		}
		hook, err := standardwebhooks.NewWebhook(ep.Secret)
		if err != nil {
			b.Fatalf("endpoint secret: %v", err)
		}
		r.mu.Lock()
		r.hooks[path], r.arrived[path] = hook, map[string]time.Time{}
		r.mu.Unlock()
		ids = append(ids, ep.ID)
	}
	return ids
}

// deleteEndpoints deletes the fixture's endpoints ids.
func (r *benchReceiver) deleteEndpoints(b *testing.B, f *benchFixture, ids []string) {
	for _, id := range ids {
		if err := f.admin(http.MethodDelete, "/webhooks/"+id, nil, http.StatusNoContent, nil); err != nil {
			b.Fatalf("delete endpoint: %v", err)
		}
	}
}

// waitFor waits until missing (called with r.mu held) reports nothing
// missing for every endpoint path created since from, or fails after a
// minute; any refused request fails the benchmark.
func (r *benchReceiver) waitFor(b *testing.B, from int, missing func(path string) string) {
	deadline := time.Now().Add(time.Minute)
	timer := time.AfterFunc(time.Minute, func() { r.mu.Lock(); r.cond.Broadcast(); r.mu.Unlock() })
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if len(r.bad) > 0 {
			b.Fatalf("receiver refused deliveries: %q", r.bad[:min(len(r.bad), 3)])
		}
		short := ""
		for i := from; i < len(r.hooks) && short == ""; i++ {
			short = missing("/hook/" + strconv.Itoa(i))
		}
		if short == "" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("deliveries missing after a minute: %s", short)
		}
		r.cond.Wait()
	}
}

// waitDelivered waits until each endpoint path created since from has
// received total distinct users.
func (r *benchReceiver) waitDelivered(b *testing.B, from, total int) {
	r.waitFor(b, from, func(p string) string {
		if n := len(r.arrived[p]); n < total {
			return fmt.Sprintf("%s has %d of %d", p, n, total)
		}
		return ""
	})
}

// waitUser waits until every endpoint path created since from has the
// user's delivery.
func (r *benchReceiver) waitUser(b *testing.B, from int, id string) {
	r.waitFor(b, from, func(p string) string {
		if _, ok := r.arrived[p][id]; !ok {
			return p + " lacks user " + id
		}
		return ""
	})
}

// admin sends an admin API request for the fixture's workspace (path
// after /admin/v1/workspaces/<ws>) and decodes the answer into out.
func (f *benchFixture) admin(method, path string, body []byte, want int, out any) error {
	req, err := http.NewRequest(method, f.base+"/admin/v1/workspaces/"+benchWS+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer adm_bench")
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %.300s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// newWebhookFixture is the benchmark fixture with the queue's workers and
// the dispatcher running, with their default settings (as `scimjit
// serve` runs them), deliveries to loopback allowed.
func newWebhookFixture(b *testing.B) *benchFixture {
	f := newBenchFixture(b, benchInts(b, benchUsersEnv, "10000")[0], func(c *server.Config) {
		c.Webhooks.AllowPrivate = true
	})
	stop, err := f.srv.StartWork(context.Background())
	if err != nil {
		b.Fatalf("start work: %v", err)
	}
	b.Cleanup(stop)
	return f
}

// postUser creates the next benchmark user and returns its id and when
// the answer arrived.
func (f *benchFixture) postUser() (string, time.Time, error) {
	i := f.n + int(f.posted.Add(1))
	status, body := f.send(context.Background(), http.MethodPost, "/Users", benchUserBody(i))
	at := time.Now()
	var u struct {
		ID string `json:"id"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &u) != nil || u.ID == "" {
		return "", at, fmt.Errorf("POST /Users: %d %.300s", status, body)
	}
	return u.ID, at, nil
}

// BenchmarkWebhooks measures delivery: b.N SCIM creates (user.created
// events) from c clients, each delivered to every one of the endpoints.
// Reports events/s (events delivered to every endpoint, from the first
// create to the last delivery), deliveries/s, the creates' own req/s,
// the latency from each create's answer to each endpoint's verified
// delivery (p50-µs, p99-µs), and the CPU of this process (SCIM client,
// server and receivers) and of redis-server per event. "idle" waits for
// an event's deliveries before the next create: the latency of an
// otherwise idle stack.
func BenchmarkWebhooks(b *testing.B) {
	f := newWebhookFixture(b)
	r := newBenchReceiver(b)
	for _, tc := range []struct {
		name      string
		endpoints int
		c         int
		wait      bool
	}{
		{"endpoints=1/c=16", 1, 16, false},
		{"endpoints=10/c=16", 10, 16, false},
		{"idle/endpoints=1/c=1", 1, 1, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			from := len(r.hooks)
			ids := r.addEndpoints(b, f, tc.endpoints)
			defer r.deleteEndpoints(b, f, ids)
			sent := make([]map[string]time.Time, tc.c)
			for w := range sent {
				sent[w] = map[string]time.Time{}
			}
			before := f.redisStats(b, true)
			goCPU := benchProcessCPU()
			runtime.GC()
			b.ResetTimer()
			start := time.Now()
			var tCreate time.Duration
			errs := make(chan error, tc.c)
			workers(tc.c, b.N, func(w int, _ *rand.Rand) bool {
				id, at, err := f.postUser()
				if err != nil {
					errs <- err
					return false
				}
				sent[w][id] = at
				if tc.wait {
					r.waitUser(b, from, id)
				}
				return true
			})
			tCreate = time.Since(start)
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			r.waitDelivered(b, from, b.N)
			elapsed := time.Since(start)
			b.StopTimer()
			events := float64(b.N)
			b.ReportMetric(events/elapsed.Seconds(), "events/s")
			b.ReportMetric(events*float64(tc.endpoints)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(events/tCreate.Seconds(), "create-req/s")
			lat := r.latencies(from, sent)
			b.ReportMetric(percentileUS(lat, 0.50), "p50-µs")
			b.ReportMetric(percentileUS(lat, 0.99), "p99-µs")
			b.ReportMetric(float64((benchProcessCPU()-goCPU).Microseconds())/events, "go-cpu-µs/event")
			after := f.redisStats(b, false)
			b.ReportMetric((after.cpuUS-before.cpuUS)/events, "redis-cpu-µs/event")
		})
	}
}

// latencies are, for every endpoint path created since from and every
// user in sent (by worker: user id → answer time), the time from the
// create's answer to the delivery. A delivery that overtook the answer
// counts as 0.
func (r *benchReceiver) latencies(from int, sent []map[string]time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for i := from; i < len(r.hooks); i++ {
		got := r.arrived["/hook/"+strconv.Itoa(i)]
		for _, m := range sent {
			for id, at := range m {
				out = append(out, max(got[id].Sub(at), 0))
			}
		}
	}
	slices.Sort(out)
	return out
}

// percentileUS is the p-quantile of sorted durations in µs.
func percentileUS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(float64(len(sorted)-1)*p)].Nanoseconds()) / 1e3
}

// benchCostSlice is the number of creates per slice of
// BenchmarkWebhookCost.
const benchCostSlice = 1000

// BenchmarkWebhookCost measures what an endpoint adds to a SCIM create
// (BenchmarkSCIM's post-user) at the same concurrency, interleaved: slices
// of benchCostSlice creates alternate between the workspace without an
// endpoint and with one (created before its slice, deleted after it), so
// that a drift of the machine's speed affects both sides alike. A slice
// with the endpoint ends when its creates are answered (hook-req/s,
// cost-%) and again when the receiver has all their deliveries
// (drained-req/s, drained-cost-%: the delivery's work counted in full,
// none of it left to the next slice). cost-% is how much slower the
// creates are with the endpoint than without.
func BenchmarkWebhookCost(b *testing.B) {
	f := newWebhookFixture(b)
	r := newBenchReceiver(b)
	var post benchOp
	for _, op := range f.ops() {
		if op.name == "post-user" {
			post = op
		}
	}
	for _, c := range benchInts(b, benchConcurrencyEnv, "1,16") {
		b.Run("post-user/c="+strconv.Itoa(c), func(b *testing.B) {
			runtime.GC()
			var tPlain, tHook, tDrained time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; done += benchCostSlice {
				k := min(benchCostSlice, b.N-done)
				tPlain += loadSlice(b, c, k, post.do)
				b.StopTimer()
				from := len(r.hooks)
				ids := r.addEndpoints(b, f, 1)
				b.StartTimer()
				start := time.Now()
				tHook += loadSlice(b, c, k, post.do)
				r.waitDelivered(b, from, k)
				tDrained += time.Since(start)
				b.StopTimer()
				r.deleteEndpoints(b, f, ids)
				b.StartTimer()
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(n/tPlain.Seconds(), "plain-req/s")
			b.ReportMetric(n/tHook.Seconds(), "hook-req/s")
			b.ReportMetric(n/tDrained.Seconds(), "drained-req/s")
			b.ReportMetric(100*(tHook.Seconds()/tPlain.Seconds()-1), "cost-%")
			b.ReportMetric(100*(tDrained.Seconds()/tPlain.Seconds()-1), "drained-cost-%")
		})
	}
}
