package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis' own log lines (a failed dial in its connection
// pool, a Sentinel failover) to log at warn level with component=redis,
// instead of the plain text go-redis writes to stderr by default, so that
// every line of a JSON log is JSON. go-redis has one logger per process
// (redis.SetLogger), so this is process-wide: the last call wins.
func SetLogger(log *slog.Logger) {
	redis.SetLogger(slogAdapter{log: log.With("component", "redis")})
}

// slogAdapter is go-redis' Logging interface (Printf with a context) over
// slog. go-redis hands over a printf format and no level; its lines are
// about connections failing or changing, hence warn.
type slogAdapter struct {
	log *slog.Logger
}

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	a.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
