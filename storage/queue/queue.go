// Package queue is scimjit's durable task queue: tasks live in Redis (the
// same server as the store, or the embedded one in demo mode), any process
// of a deployment runs them, a process that dies mid-task leaves it to
// another once its lease runs out, failed attempts are retried on a backoff
// schedule and a task that runs out of retries is archived, where it can be
// listed and run again.
//
// It is a thin layer over github.com/hibiken/asynq on the server's own
// go-redis client, so that the rest of scimjit neither imports asynq nor
// configures it: a subsystem registers a handler for its task type with
// Handle and enqueues with Enqueue; the server owns one Queue, started at
// startup and shut down on exit.
//
// Delivery is at least once: a handler may run more than once for a task
// (after a crash, or when its result could not be recorded), so handlers
// must be idempotent or their effects tolerate repeats.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DefaultName is the queue name when Config.Name is empty.
const DefaultName = "scimjit"

// Config configures a Queue. The zero value is usable.
type Config struct {
	// Name is the asynq queue name; its keys are asynq:{Name}:… (one hash
	// slot on Redis Cluster). Two deployments that share a Redis server
	// need different names. Default DefaultName.
	Name string
	// Concurrency is the number of tasks this process runs at once.
	// Default 10.
	Concurrency int
	// Backoff is the retry schedule of failed tasks. Zero fields take
	// DefaultBackoff's.
	Backoff Backoff
	// PollInterval is how often an idle worker looks for new tasks and how
	// often scheduled and retried tasks that came due are moved to the
	// pending list. Default 1 s.
	PollInterval time.Duration
	// ShutdownTimeout is how long Shutdown waits for running tasks before
	// it gives them back to the queue. Default 10 s.
	ShutdownTimeout time.Duration
	// Logger receives asynq's warnings and errors. Default: discarded.
	Logger *slog.Logger
}

// Backoff is an exponential retry schedule with jitter: the delay before
// retry n (0-based) is Base·2ⁿ capped at Max, then randomised to between
// half and all of that. A task is retried Retries times, then archived.
type Backoff struct {
	Base    time.Duration
	Max     time.Duration
	Retries int
}

// DefaultBackoff retries for at least a day: delays double from 30 s to a
// cap of one hour, 55 retries, which take at least 24.5 hours even when
// every delay lands at the low end of its jitter (MinSpan).
var DefaultBackoff = Backoff{Base: 30 * time.Second, Max: time.Hour, Retries: 55}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = DefaultBackoff.Base
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.Retries <= 0 {
		b.Retries = DefaultBackoff.Retries
	}
	return b
}

// ceiling is the delay before retry n before jitter.
func (b Backoff) ceiling(n int) time.Duration {
	d := b.Base
	for range n {
		if d >= b.Max/2 {
			return b.Max
		}
		d *= 2
	}
	return min(d, b.Max)
}

// Delay is the delay before retry n (0-based), jittered.
func (b Backoff) Delay(n int) time.Duration {
	c := b.ceiling(n)
	return c/2 + rand.N(c/2+1)
}

// MinSpan is the least time from the first failure to the last retry: the
// sum of the schedule's delays at the low end of their jitter.
func (b Backoff) MinSpan() time.Duration {
	var total time.Duration
	for n := range b.Retries {
		total += b.ceiling(n) / 2
	}
	return total
}

// RetryAfterError asks for the next attempt after Delay (an HTTP
// Retry-After) instead of the backoff schedule's. It still counts as a
// failed attempt.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the task's next attempt is after d.
func RetryAfter(err error, d time.Duration) error { return &RetryAfterError{Err: err, Delay: d} }

// maxRetryAfter caps an explicit delay, so that a receiver's Retry-After
// of a year does not hold a task for a year.
const maxRetryAfter = 24 * time.Hour

// Permanent wraps err so that the task is archived at once, without the
// remaining retries (a failure that retrying cannot fix).
func Permanent(err error) error { return fmt.Errorf("%w (%w)", err, asynq.SkipRetry) }

// IsPermanent reports whether err is (or wraps) a Permanent error.
func IsPermanent(err error) bool { return errors.Is(err, asynq.SkipRetry) }

// Handler runs one task. A nil error completes the task; an error retries
// it on the backoff schedule (or RetryAfter's delay), or archives it when
// it is Permanent or the retries are used up.
type Handler func(ctx context.Context, payload []byte) error

// Queue is the process's handle on the durable queue.
type Queue struct {
	cfg     Config
	backoff Backoff
	client  *asynq.Client
	server  *asynq.Server
	insp    *asynq.Inspector
	mux     *asynq.ServeMux
}

// New returns a Queue on the given client; nothing runs until Start.
// Handlers must be registered before Start.
func New(client redis.UniversalClient, cfg Config) (*Queue, error) {
	if client == nil {
		return nil, errors.New("queue: no redis client")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	q := &Queue{cfg: cfg, backoff: cfg.Backoff.withDefaults(), mux: asynq.NewServeMux()}
	q.client = asynq.NewClientFromRedisClient(client)
	q.insp = asynq.NewInspectorFromRedisClient(client)
	q.server = asynq.NewServerFromRedisClient(client, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{cfg.Name: 1},
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.PollInterval,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		RetryDelayFunc:           q.retryDelay,
		Logger:                   slogAdapter{cfg.Logger},
		LogLevel:                 asynq.WarnLevel,
	})
	return q, nil
}

func (q *Queue) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if ra, ok := errors.AsType[*RetryAfterError](err); ok {
		// asynq keeps retry times in whole seconds and runs a task once
		// its second has begun: one more second keeps it from running
		// before the delay asked for.
		return min(max(ra.Delay, 0), maxRetryAfter) + time.Second
	}
	return q.backoff.Delay(n)
}

// Handle registers h for tasks of taskType. Call it before Start.
func (q *Queue) Handle(taskType string, h Handler) {
	q.mux.HandleFunc(taskType, func(ctx context.Context, t *asynq.Task) error {
		return h(ctx, t.Payload())
	})
}

// Option changes one enqueued task.
type Option func(*[]asynq.Option)

// ProcessIn delays the task's first attempt by d.
func ProcessIn(d time.Duration) Option {
	return func(o *[]asynq.Option) { *o = append(*o, asynq.ProcessIn(d)) }
}

// Timeout bounds one attempt of the task (default 30 minutes).
func Timeout(d time.Duration) Option {
	return func(o *[]asynq.Option) { *o = append(*o, asynq.Timeout(d)) }
}

// Retention keeps the task, once done, for d: its id keeps refusing
// duplicates for that long.
func Retention(d time.Duration) Option {
	return func(o *[]asynq.Option) { *o = append(*o, asynq.Retention(d)) }
}

// Enqueue adds a task. taskID names it in the queue: while a task with that
// id is queued, retrying or archived (or retained, see Retention), Enqueue
// of the same id does nothing and returns nil, so a producer that may
// enqueue twice (after a crash between enqueue and its own bookkeeping)
// gives it an id derived from what it delivers. An empty taskID gets a
// random one.
func (q *Queue) Enqueue(ctx context.Context, taskType, taskID string, payload []byte, opts ...Option) error {
	ao := []asynq.Option{asynq.Queue(q.cfg.Name), asynq.MaxRetry(q.backoff.Retries)}
	if taskID != "" {
		ao = append(ao, asynq.TaskID(taskID))
	}
	for _, o := range opts {
		o(&ao)
	}
	_, err := q.client.EnqueueContext(ctx, asynq.NewTask(taskType, payload), ao...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: enqueue %s %s: %w", taskType, taskID, err)
	}
	return nil
}

// Start starts this process's workers.
func (q *Queue) Start() error {
	if err := q.server.Start(q.mux); err != nil {
		return fmt.Errorf("queue: start: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks, waits up to Config.ShutdownTimeout for the
// running ones and gives back those still running (another process or the
// next start runs them again).
func (q *Queue) Shutdown() { q.server.Shutdown() }

// TaskID is the id of the task a handler runs (from its ctx).
func TaskID(ctx context.Context) string {
	id, _ := asynq.GetTaskID(ctx)
	return id
}

// Attempt is the 1-based number of the attempt a handler runs (from its
// ctx).
func Attempt(ctx context.Context) int {
	n, _ := asynq.GetRetryCount(ctx)
	return n + 1
}

// LastAttempt reports whether the attempt a handler runs (from its ctx) is
// the task's last one: when it fails, the task is archived, not retried.
func LastAttempt(ctx context.Context) bool {
	n, ok := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok && ok2 && n >= max
}

// Task is an archived (failed) task.
type Task struct {
	ID       string
	Type     string
	Payload  []byte
	Attempts int
	LastErr  string
	FailedAt time.Time
}

// ErrNotFound: no archived task has that id.
var ErrNotFound = errors.New("queue: task not found")

// Failed lists archived tasks, the most recent failure first,
// page 1-based of size entries.
func (q *Queue) Failed(ctx context.Context, page, size int) ([]Task, error) {
	infos, err := q.insp.ListArchivedTasks(q.cfg.Name, asynq.Page(page), asynq.PageSize(size))
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: list archived: %w", err)
	}
	out := make([]Task, 0, len(infos))
	for _, ti := range infos {
		out = append(out, Task{ID: ti.ID, Type: ti.Type, Payload: ti.Payload, Attempts: ti.Retried + 1,
			LastErr: ti.LastErr, FailedAt: ti.LastFailedAt})
	}
	return out, nil
}

// FailedTask returns the archived task id, or ErrNotFound.
func (q *Queue) FailedTask(ctx context.Context, id string) (Task, error) {
	ti, err := q.insp.GetTaskInfo(q.cfg.Name, id)
	if errors.Is(err, asynq.ErrQueueNotFound) || errors.Is(err, asynq.ErrTaskNotFound) ||
		(err == nil && ti.State != asynq.TaskStateArchived) {
		return Task{}, ErrNotFound
	}
	if err != nil {
		return Task{}, fmt.Errorf("queue: task %s: %w", id, err)
	}
	return Task{ID: ti.ID, Type: ti.Type, Payload: ti.Payload, Attempts: ti.Retried + 1,
		LastErr: ti.LastErr, FailedAt: ti.LastFailedAt}, nil
}

// Redeliver moves the archived task id back to the pending list with its
// retries reset, or returns ErrNotFound.
func (q *Queue) Redeliver(ctx context.Context, id string) error {
	if _, err := q.FailedTask(ctx, id); err != nil {
		return err
	}
	err := q.insp.RunTask(q.cfg.Name, id)
	if errors.Is(err, asynq.ErrTaskNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("queue: redeliver %s: %w", id, err)
	}
	return nil
}

// Stats is the queue's state across all processes.
type Stats struct {
	// Pending tasks wait for a worker; Scheduled ones for their time;
	// Retry ones for their next attempt; Active ones run now; Archived
	// ones failed for good.
	Pending, Scheduled, Retry, Active, Archived int
	// OldestPending is how long the oldest pending task has waited.
	OldestPending time.Duration
}

// Stats reads the queue's counts.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	// asynq knows a queue once a task was enqueued to it; before that
	// GetQueueInfo fails with an error of its internal package.
	names, err := q.insp.Queues()
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	if !slices.Contains(names, q.cfg.Name) {
		return Stats{}, nil
	}
	qi, err := q.insp.GetQueueInfo(q.cfg.Name)
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	return Stats{Pending: qi.Pending, Scheduled: qi.Scheduled, Retry: qi.Retry, Active: qi.Active,
		Archived: qi.Archived, OldestPending: qi.Latency}, nil
}

// slogAdapter is asynq's Logger on slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a slogAdapter) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a slogAdapter) Warn(args ...any)  { a.l.Warn("queue: " + fmt.Sprint(args...)) }
func (a slogAdapter) Error(args ...any) { a.l.Error("queue: " + fmt.Sprint(args...)) }
func (a slogAdapter) Fatal(args ...any) { a.l.Error("queue: fatal: " + fmt.Sprint(args...)) }
