package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// embeddedTimeout is the command timeout of the embedded store.
const embeddedTimeout = 10 * time.Second

// OpenEmbedded starts an in-process Redis-protocol server (miniredis) on a
// random loopback port and returns a store that talks to it through the
// same go-redis client code path as a real server. It is for development
// and demos: data lives in memory only and is lost on exit, and it is a
// single process (no sharing between server instances).
//
// miniredis does not expire keys on its own; a ticker advances its clock
// once a second (FastForward), so TTLs expire in real time to within about
// a second: a key set just before a tick loses up to a second, one set
// just after it lives up to a second longer. (miniredis' ClockTTL would
// re-scan all keys on every command.) Everything else reads the real
// clock: stream ids and the TIME that the rate limiter's script uses, so
// an early expiry of a rate-limit key gives back at most one second's
// worth of its rate. Close stops the ticker and the server.
func OpenEmbedded(ctx context.Context, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("redisstore: start embedded redis: %w", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case n := <-t.C:
				m.FastForward(n.Sub(last))
				last = n
			}
		}
	}()
	// The embedded server runs in this process: a command waits for CPU,
	// never for a network or another machine, and miniredis runs one
	// command (one Lua script) at a time. The longer command timeout keeps
	// a busy machine (a test suite under the race detector) from turning
	// slow commands into failures; request deadlines still apply.
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), DialTimeout: DialTimeout, ReadTimeout: embeddedTimeout,
		WriteTimeout: embeddedTimeout, PoolTimeout: embeddedTimeout + time.Second, ContextTimeoutEnabled: true,
		MaxRetries: noRetries})
	s := New(rdb, "")
	s.addr = m.Addr()
	var once sync.Once
	s.closeFn = func() error {
		once.Do(func() {
			close(stop)
			wg.Wait()
			m.Close()
		})
		return nil
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	logger.LogAttrs(ctx, slog.LevelWarn, "using the embedded in-memory redis: data is lost on exit and not shared between processes; set a redis url for production",
		slog.String("addr", m.Addr()))
	return s, nil
}
