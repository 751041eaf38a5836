package queue_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage/queue"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// backends runs f on a real redis-server and on the embedded store.
func backends(t *testing.T, f func(t *testing.T, c redis.UniversalClient)) {
	t.Run("redis", func(t *testing.T) {
		f(t, redistest.Start(t).Client(t))
	})
	t.Run("embedded", func(t *testing.T) {
		s, err := redisstore.OpenEmbedded(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		f(t, s.Client())
	})
}

// fast is a configuration for tests: short polls and a retry schedule in
// milliseconds.
func fast(b queue.Backoff) queue.Config {
	return queue.Config{PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second, Backoff: b}
}

func newQueue(t *testing.T, c redis.UniversalClient, cfg queue.Config) *queue.Queue {
	t.Helper()
	q, err := queue.New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func start(t *testing.T, q *queue.Queue) {
	t.Helper()
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Shutdown)
}

// calls records a handler's invocations.
type calls struct {
	mu   sync.Mutex
	got  []string
	when []time.Time
	ch   chan struct{}
}

func newCalls() *calls { return &calls{ch: make(chan struct{}, 1000)} }

func (c *calls) add(s string) {
	c.mu.Lock()
	c.got = append(c.got, s)
	c.when = append(c.when, time.Now())
	c.mu.Unlock()
	c.ch <- struct{}{}
}

func (c *calls) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// wait waits for n more calls.
func (c *calls) wait(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-c.ch:
		case <-time.After(15 * time.Second):
			t.Fatalf("waited for call %d of %d; calls so far: %q", i+1, n, c.list())
		}
	}
}

func TestEnqueueRunsOnceAndDeduplicates(t *testing.T) {
	backends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		q := newQueue(t, c, fast(queue.Backoff{}))
		got := newCalls()
		q.Handle("t:echo", func(ctx context.Context, p []byte) error {
			got.add(queue.TaskID(ctx) + "=" + string(p))
			return nil
		})
		// Enqueued twice before any worker runs: the second is a no-op.
		for range 2 {
			if err := q.Enqueue(ctx, "t:echo", "ws/ep/1", []byte("one")); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Enqueue(ctx, "t:echo", "ws/ep/2", []byte("two")); err != nil {
			t.Fatal(err)
		}
		st, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending != 2 {
			t.Fatalf("pending = %d, want 2 (one per task id)", st.Pending)
		}
		start(t, q)
		got.wait(t, 2)
		time.Sleep(100 * time.Millisecond) // five polls: a duplicate would have run
		l := got.list()
		if len(l) != 2 || !(l[0] == "ws/ep/1=one" && l[1] == "ws/ep/2=two" || l[1] == "ws/ep/1=one" && l[0] == "ws/ep/2=two") {
			t.Fatalf("calls = %q, want ws/ep/1=one and ws/ep/2=two once each", l)
		}
	})
}

func TestRetryThenSucceed(t *testing.T) {
	backends(t, func(t *testing.T, c redis.UniversalClient) {
		q := newQueue(t, c, fast(queue.Backoff{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, Retries: 5}))
		got := newCalls()
		q.Handle("t:flaky", func(ctx context.Context, p []byte) error {
			got.add(fmt.Sprint(queue.Attempt(ctx)))
			if queue.Attempt(ctx) < 3 {
				return errors.New("receiver down")
			}
			return nil
		})
		if err := q.Enqueue(t.Context(), "t:flaky", "", []byte("x")); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		got.wait(t, 3)
		time.Sleep(100 * time.Millisecond)
		if l := got.list(); fmt.Sprint(l) != "[1 2 3]" {
			t.Fatalf("attempts = %v, want [1 2 3]", l)
		}
		st, err := q.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st != (queue.Stats{}) {
			t.Fatalf("stats after success = %+v, want all zero", st)
		}
	})
}

func TestRetryAfterDelay(t *testing.T) {
	backends(t, func(t *testing.T, c redis.UniversalClient) {
		q := newQueue(t, c, fast(queue.Backoff{Base: time.Millisecond, Max: time.Millisecond, Retries: 3}))
		got := newCalls()
		q.Handle("t:busy", func(ctx context.Context, p []byte) error {
			got.add(fmt.Sprint(queue.Attempt(ctx)))
			if queue.Attempt(ctx) == 1 {
				return queue.RetryAfter(errors.New("429"), time.Second)
			}
			return nil
		})
		if err := q.Enqueue(t.Context(), "t:busy", "", nil); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		got.wait(t, 2)
		got.mu.Lock()
		gap := got.when[1].Sub(got.when[0])
		got.mu.Unlock()
		if gap < time.Second {
			t.Fatalf("second attempt %v after the first, want at least the 1s Retry-After (the backoff says 1ms)", gap)
		}
	})
}

func TestPermanentArchivesAndRedeliver(t *testing.T) {
	backends(t, func(t *testing.T, c redis.UniversalClient) {
		ctx := t.Context()
		q := newQueue(t, c, fast(queue.Backoff{Base: time.Millisecond, Retries: 10}))
		got := newCalls()
		var mu sync.Mutex
		fail := true
		q.Handle("t:gone", func(ctx context.Context, p []byte) error {
			got.add(queue.TaskID(ctx))
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return queue.Permanent(errors.New("410 Gone"))
			}
			return nil
		})
		if err := q.Enqueue(ctx, "t:gone", "ws/ep/9", []byte("body")); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		got.wait(t, 1)
		failed := waitFailed(t, q, 1)
		f := failed[0]
		if f.ID != "ws/ep/9" || f.Type != "t:gone" || string(f.Payload) != "body" || f.Attempts != 1 ||
			f.LastErr == "" || f.FailedAt.IsZero() {
			t.Fatalf("archived task = %+v, want ws/ep/9 after 1 attempt with its error", f)
		}
		// Archived, its id still refuses a duplicate.
		if err := q.Enqueue(ctx, "t:gone", "ws/ep/9", []byte("other")); err != nil {
			t.Fatal(err)
		}
		if one, err := q.FailedTask(ctx, "ws/ep/9"); err != nil || string(one.Payload) != "body" {
			t.Fatalf("FailedTask = %+v, %v; want the archived body", one, err)
		}
		if _, err := q.FailedTask(ctx, "nope"); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("FailedTask(nope) = %v, want ErrNotFound", err)
		}
		if err := q.Redeliver(ctx, "nope"); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("Redeliver(nope) = %v, want ErrNotFound", err)
		}
		mu.Lock()
		fail = false
		mu.Unlock()
		if err := q.Redeliver(ctx, "ws/ep/9"); err != nil {
			t.Fatal(err)
		}
		got.wait(t, 1)
		waitFailed(t, q, 0)
		if l := got.list(); len(l) != 2 {
			t.Fatalf("calls = %q, want 2", l)
		}
	})
}

func TestRetriesExhaustedArchive(t *testing.T) {
	backends(t, func(t *testing.T, c redis.UniversalClient) {
		q := newQueue(t, c, fast(queue.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond, Retries: 2}))
		got := newCalls()
		q.Handle("t:down", func(ctx context.Context, p []byte) error {
			got.add(fmt.Sprint(queue.Attempt(ctx), queue.LastAttempt(ctx)))
			return errors.New("connection refused")
		})
		if err := q.Enqueue(t.Context(), "t:down", "d1", nil); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		got.wait(t, 3)
		f := waitFailed(t, q, 1)[0]
		if f.Attempts != 3 || f.LastErr != "connection refused" {
			t.Fatalf("archived = %+v, want 3 attempts (2 retries) and the last error", f)
		}
		if l := got.list(); fmt.Sprint(l) != "[1 false 2 false 3 true]" {
			t.Fatalf("attempts (number, last) = %v", l)
		}
		st, err := q.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Archived != 1 || st.Pending+st.Retry+st.Active != 0 {
			t.Fatalf("stats = %+v, want one archived", st)
		}
	})
}

func waitFailed(t *testing.T, q *queue.Queue, n int) []queue.Task {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		f, err := q.Failed(t.Context(), 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(f) == n {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("archived = %+v, want %d", f, n)
		}
		time.Sleep(20 * time.Millisecond) // polling the queue's archive
	}
}

func TestBackoffSchedule(t *testing.T) {
	b := queue.DefaultBackoff
	if span := b.MinSpan(); span < 24*time.Hour {
		t.Fatalf("default schedule retries for at least %v, want at least 24h", span)
	}
	for n := range b.Retries {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 200 {
			d := b.Delay(n)
			lo, hi = min(lo, d), max(hi, d)
		}
		ceil := min(b.Base<<n, b.Max)
		if n > 20 {
			ceil = b.Max
		}
		if lo < ceil/2 || hi > ceil {
			t.Fatalf("retry %d: delays in [%v, %v], want within [%v, %v]", n, lo, hi, ceil/2, ceil)
		}
		if hi == lo {
			t.Fatalf("retry %d: 200 delays all %v: no jitter", n, lo)
		}
	}
}

// helperEnv makes the test binary a worker process for TestKilledWorker:
// it runs the queue on the redis-server named in the variable
// (addr password) and blocks in the handler.
const helperEnv = "SCIMJIT_QUEUE_TEST_WORKER"

func TestMain(m *testing.M) {
	if v := os.Getenv(helperEnv); v != "" {
		addr, password, _ := strings.Cut(v, " ")
		c := redis.NewClient(&redis.Options{Addr: addr, Password: password})
		q, err := queue.New(c, fast(queue.Backoff{Base: time.Millisecond, Retries: 3}))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		q.Handle("t:slow", func(ctx context.Context, p []byte) error {
			fmt.Println("started", queue.TaskID(ctx))
			select {} // killed mid-task
		})
		if err := q.Start(); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		select {}
	}
	os.Exit(m.Run())
}

// TestKilledWorker: a process SIGKILLed while it runs a task leaves the
// task leased to nobody; once the lease has run out, the next process to
// start takes the task back and runs it again with the same task id.
// asynq leases for 30 s and reclaims leases 30 s past their end; the test
// moves the dead worker's lease into the past instead of waiting a minute.
func TestKilledWorker(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+srv.Addr+" "+srv.Password)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	q := newQueue(t, c, fast(queue.Backoff{Base: time.Millisecond, Retries: 3}))
	if err := q.Enqueue(ctx, "t:slow", "ws/ep/42", []byte("payload")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "started ws/ep/42" {
		t.Fatalf("worker said %q, %v; want started ws/ep/42", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	leases := "asynq:{" + queue.DefaultName + "}:lease"
	ids, err := c.ZRange(ctx, leases, 0, -1).Result()
	if err != nil || len(ids) != 1 {
		t.Fatalf("leases after the kill = %v, %v; want the killed worker's one", ids, err)
	}
	if err := c.ZAdd(ctx, leases, redis.Z{Score: float64(time.Now().Add(-time.Minute).Unix()), Member: ids[0]}).Err(); err != nil {
		t.Fatal(err)
	}

	got := newCalls()
	q.Handle("t:slow", func(ctx context.Context, p []byte) error {
		got.add(fmt.Sprintf("%s %s attempt %d", queue.TaskID(ctx), p, queue.Attempt(ctx)))
		return nil
	})
	start(t, q)
	got.wait(t, 1)
	if l := got.list(); len(l) != 1 || l[0] != "ws/ep/42 payload attempt 2" {
		t.Fatalf("after the kill: %q, want the same task once more as attempt 2", l)
	}
}

// TestStatsOfANewQueue: a queue nothing was ever enqueued to has zero
// stats and no failed tasks (asynq does not know it yet).
func TestStatsOfANewQueue(t *testing.T) {
	backends(t, func(t *testing.T, c redis.UniversalClient) {
		q := newQueue(t, c, queue.Config{Name: "fresh"})
		if st, err := q.Stats(t.Context()); err != nil || st != (queue.Stats{}) {
			t.Fatalf("stats %+v, %v", st, err)
		}
		if f, err := q.Failed(t.Context(), 1, 10); err != nil || len(f) != 0 {
			t.Fatalf("failed %v, %v", f, err)
		}
		if err := q.Redeliver(t.Context(), "x"); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("redeliver: %v", err)
		}
	})
}
