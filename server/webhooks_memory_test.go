package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/server/webhooks/webhookstest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/queue"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// Bounds of TestWebhooksBoundedMemory. From 1,000 delivered events (×10
// endpoints) to 10,000, the Go heap (after a GC) may grow by memHeapGrowth
// and Redis' memory outside the capped streams by memRedisGrowth; from
// the start, Redis may grow by memRedisSetup (the queue's own records,
// the outbox's consumer group, scripts). Keeping anything per delivery
// would grow each by tens of MB over those 90,000 deliveries (the payload
// alone is about 300 bytes). Measured in two runs: heap +0.4 and +0.7
// MB; Redis +0.7 MB from the start, and +0.02 and +0.08 MB from 1,000
// to 10,000.
const (
	memHeapGrowth  = 4 << 20
	memRedisGrowth = 256 << 10
	memRedisSetup  = 2 << 20
)

// TestWebhooksBoundedMemory: 10 endpoints each receive all of 10,000
// events, every delivery verified (webhookstest.Verify) and counted by webhook-id
// and endpoint: each at least once, none missing. Memory stays bounded
// independently of the event count: the Go heap after 10,000 events is
// within memHeapGrowth of the heap after 1,000, and once everything is
// delivered Redis holds no outbox entry and no task record, and its
// memory outside the capped streams (the workspace's events, each
// endpoint's last attempts) is within memRedisGrowth of what it was after
// 1,000 and within memRedisSetup of where it started.
//
// 100,000 deliveries take too long under the race detector and under
// -short: then the test is skipped, and .ci/run runs it once without
// -race.
func TestWebhooksBoundedMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("100,000 deliveries: run without -race and -short (.ci/run does)")
	}
	const (
		endpoints = 10
		events    = 10000
	)
	env := servertest.New(t, func(c *server.Config) {
		c.Logger = slog.New(slog.DiscardHandler)
		c.Webhooks = server.WebhooksConfig{AllowPrivate: true, PollInterval: 50 * time.Millisecond}
		c.Queue = queue.Config{Concurrency: 32, PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second}
	})
	env.CreateWorkspace(t, "acme", nil)
	rdb := env.Config.Redis
	ctx := t.Context()

	// The receiver: one path per endpoint; got[i][e] counts the verified
	// deliveries of event e to endpoint i.
	var (
		mu      sync.Mutex
		secrets [endpoints]string
		ids     [events]string
		got     [endpoints][events]uint8
		bad     []string
	)
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		i, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hook/"))
		mu.Lock()
		defer mu.Unlock()
		var env struct {
			Data struct {
				Detail struct{ N string } `json:"detail"`
			} `json:"data"`
		}
		n := -1
		if err == nil && i >= 0 && i < endpoints && json.Unmarshal(body, &env) == nil {
			n, _ = strconv.Atoi(env.Data.Detail.N)
		}
		switch {
		case n < 0 || n >= events:
			bad = append(bad, fmt.Sprintf("%s: unexpected %.200s", req.URL.Path, body))
		case webhookstest.Verify(secrets[i], req.Header, body, time.Now()) != nil:
			bad = append(bad, req.URL.Path+": signature not verified")
		case req.Header.Get("webhook-id") != ids[n]:
			bad = append(bad, fmt.Sprintf("event %d: webhook-id %s, want %s", n, req.Header.Get("webhook-id"), ids[n]))
		default:
			if got[i][n] < 255 {
				got[i][n]++
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(rec.Close)
	for i := range endpoints {
		resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/webhooks",
			map[string]any{"url": rec.URL + "/hook/" + strconv.Itoa(i)})
		wantStatus(t, resp, body, http.StatusCreated)
		var ep server.WebhookJSON
		if err := json.Unmarshal(body, &ep); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		secrets[i] = ep.Secret
		mu.Unlock()
	}

	// A phase appends events [from, to) in batches, as sign-ins record
	// them, and waits until every endpoint has every one of them and the
	// queue is empty.
	q, err := queue.New(rdb, queue.Config{Name: env.Store.(*redisstore.Store).QueueName()})
	if err != nil {
		t.Fatal(err)
	}
	phase := func(from, to int) {
		t.Helper()
		for b := from; b < to; b += 500 {
			batch := make([]storage.Event, 0, 500)
			for n := b; n < min(b+500, to); n++ {
				batch = append(batch, storage.Event{Type: "login.succeeded", UserID: "u" + strconv.Itoa(n),
					Detail: map[string]string{"n": strconv.Itoa(n)}})
			}
			mu.Lock() // the receiver reads ids
			appended, err := env.Store.AppendEvents(ctx, "acme", batch...)
			if err == nil {
				for k, e := range appended {
					ids[b+k] = e.ID
				}
			}
			mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			mu.Lock()
			missing, where := 0, ""
			for i := range endpoints {
				for n := from; n < to; n++ {
					if got[i][n] == 0 {
						if missing == 0 {
							where = fmt.Sprintf("event %d to endpoint %d", n, i)
						}
						missing++
					}
				}
			}
			if len(bad) > 0 {
				t.Fatalf("receiver refused deliveries: %q", bad[:min(len(bad), 3)])
			}
			mu.Unlock()
			st, err := q.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if missing == 0 && st == (queue.Stats{}) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d deliveries missing (first: %s); queue %+v", missing, where, st)
			}
			time.Sleep(50 * time.Millisecond) // polling the receiver and the queue
		}
	}
	base := redisUncapped(t, rdb)
	phase(0, 1000)
	heap1 := heapAfterGC()
	redis1 := redisUncapped(t, rdb)
	phase(1000, events)
	heap2 := heapAfterGC()
	redis2 := redisUncapped(t, rdb)
	t.Logf("Go heap after GC: %.1f MB after 1,000 events, %.1f MB after 10,000", mb(heap1), mb(heap2))
	t.Logf("Redis used_memory outside the capped streams: %.2f MB at the start, %.2f MB after 1,000, %.2f MB after 10,000",
		mb(base), mb(redis1), mb(redis2))

	mu.Lock()
	total, dup := 0, 0
	for i := range endpoints {
		for n := range events {
			total += int(min(got[i][n], 1))
			dup += int(got[i][n]) - 1
		}
	}
	mu.Unlock()
	if total != endpoints*events {
		t.Fatalf("%d distinct deliveries, want %d", total, endpoints*events)
	}
	t.Logf("%d deliveries verified, %d duplicates", total, dup)
	if heap2 > heap1+memHeapGrowth {
		t.Errorf("Go heap grew from %.1f MB to %.1f MB between 1,000 and 10,000 events, more than %.0f MB",
			mb(heap1), mb(heap2), mb(memHeapGrowth))
	}
	if redis2 > redis1+memRedisGrowth || redis2 > base+memRedisSetup {
		t.Errorf("Redis memory outside the capped streams: %.2f MB at the start, %.2f MB after 1,000 events, %.2f MB after 10,000; want at most %.2f MB more than after 1,000 and %.0f MB more than at the start",
			mb(base), mb(redis1), mb(redis2), mb(memRedisGrowth), mb(memRedisSetup))
	}
	if n, err := rdb.XLen(ctx, "sj:{ws:acme}:outbox").Result(); err != nil || n != 0 {
		t.Errorf("outbox holds %d entries (%v), want none once delivered", n, err)
	}
	var tasks []string
	iter := rdb.Scan(ctx, 0, "asynq:*:t:*", 1000).Iterator()
	for iter.Next(ctx) {
		tasks = append(tasks, iter.Val())
	}
	if len(tasks) > 0 || iter.Err() != nil {
		t.Errorf("%d task records left in Redis (%v), want none: %q", len(tasks), iter.Err(), tasks[:min(len(tasks), 3)])
	}
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// heapAfterGC is the Go heap in use after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// redisUncapped is Redis' used_memory minus what the capped streams of
// workspace acme use (its two event streams and every endpoint's
// attempts, by MEMORY USAGE).
func redisUncapped(t *testing.T, rdb redis.UniversalClient) uint64 {
	t.Helper()
	ctx := context.Background()
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	var used uint64
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			used, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	capped := []string{"sj:{ws:acme}:events", "sj:{ws:acme}:events:login"}
	iter := rdb.Scan(ctx, 0, "sj:{ws:acme}:webhook:*:attempts", 1000).Iterator()
	for iter.Next(ctx) {
		capped = append(capped, iter.Val())
	}
	for _, k := range capped {
		n, err := rdb.MemoryUsage(ctx, k, 0).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		used -= uint64(n)
	}
	return used
}
