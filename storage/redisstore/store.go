package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// Options select and authenticate the Redis deployment.
type Options struct {
	// URL is a redis:// or rediss:// URL of a single server. When set it
	// wins over Addrs and MasterName; Username, Password, DB and TLS, when
	// set, override what the URL says. A server that reports cluster mode
	// is used through the Cluster client.
	URL string
	// Addrs are host:port pairs: one for a single server, more than one for
	// a Cluster, the sentinels when MasterName is set.
	Addrs []string
	// MasterName selects Sentinel mode.
	MasterName string
	// Cluster forces the Cluster client even with a single seed address
	// (for example a managed service's configuration endpoint).
	Cluster bool
	// Username and Password authenticate (Redis 6 ACL user, or only a
	// password for requirepass).
	Username string
	Password string
	// DB selects the database number (single server and Sentinel only).
	DB int
	// TLS turns on TLS with the system roots (implied by rediss://).
	TLS bool
	// Prefix starts every key (default "sj"). It must not contain '{' or '}'.
	Prefix string
	// Timeout bounds each command's write and read (default
	// DefaultTimeout); connecting may take DialTimeout.
	Timeout time.Duration
}

// Client settings, chosen rather than inherited from go-redis' defaults
// (docs/storage.md, "Timeouts and retries").
const (
	// DefaultTimeout is how long a command may take to be written and
	// answered before the store call fails with ErrUnavailable.
	DefaultTimeout = 3 * time.Second
	// DialTimeout bounds opening a connection.
	DialTimeout = 5 * time.Second
	// noRetries makes go-redis never re-send a command by itself: a
	// command whose reply timed out may still run on the server, and
	// running it twice is the caller's decision. The caller (an IdP, a
	// browser) re-sends the whole request after its 503, and every write
	// recognises its own earlier effect.
	noRetries = -1
)

// Store is the Redis storage.Store.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	// oneServer: every key is on one server (not a Cluster), so a script
	// may span hash slots (CreateJITUser).
	oneServer bool
	// closeFn releases what the constructor started (the embedded server).
	closeFn func() error
	addr    string
	// clusterProbe, until Connect succeeds, holds the options of a single
	// address that may turn out to be a Cluster node.
	clusterProbe *redis.UniversalOptions
}

var _ storage.Store = (*Store)(nil)

// Open connects to the Redis deployment described by o and pings it: Dial
// and Connect.
func Open(ctx context.Context, o Options) (*Store, error) {
	s, err := Dial(o)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Dial builds the store's client for the deployment described by o without
// contacting Redis (go-redis connects on first use); Connect then checks
// that Redis answers. The error is a problem of o itself.
func Dial(o Options) (*Store, error) {
	prefix, err := checkPrefix(o.Prefix)
	if err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	uo := &redis.UniversalOptions{
		Addrs:                 o.Addrs,
		MasterName:            o.MasterName,
		IsClusterMode:         o.MasterName == "" && (o.Cluster || len(o.Addrs) > 1),
		Username:              o.Username,
		Password:              o.Password,
		DB:                    o.DB,
		DialTimeout:           DialTimeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		PoolTimeout:           timeout + time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            noRetries,
	}
	if o.TLS {
		uo.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if o.URL != "" {
		ro, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: parse redis url: %w", err)
		}
		uo.Addrs, uo.MasterName, uo.IsClusterMode = []string{ro.Addr}, "", false
		if uo.Username == "" {
			uo.Username = ro.Username
		}
		if uo.Password == "" {
			uo.Password = ro.Password
		}
		if uo.DB == 0 {
			uo.DB = ro.DB
		}
		if uo.TLSConfig == nil {
			uo.TLSConfig = ro.TLSConfig
		}
		if ro.Network == "unix" {
			uo.Dialer = func(ctx context.Context, _, addr string) (net.Conn, error) {
				return (&net.Dialer{Timeout: DialTimeout}).DialContext(ctx, "unix", addr)
			}
		}
	}
	if len(uo.Addrs) == 0 {
		return nil, errors.New("redisstore: no redis url or address given")
	}
	if uo.IsClusterMode && uo.DB != 0 {
		return nil, errors.New("redisstore: redis cluster has no databases other than 0")
	}
	s := New(redis.NewUniversalClient(uo), prefix)
	s.addr = strings.Join(uo.Addrs, ",")
	if !uo.IsClusterMode && uo.MasterName == "" {
		s.clusterProbe = uo
	}
	return s, nil
}

// Connect checks that Redis answers and that its eviction policy cannot
// drop index keys. A single address that turns out to be a node of a
// Cluster switches the store to the Cluster client here, so Connect must
// return nil before any other method is called, and must not run
// concurrently with them. When Redis cannot be reached the error wraps
// storage.ErrUnavailable and Connect may be called again; any other error
// is final.
func (s *Store) Connect(ctx context.Context) error {
	if uo := s.clusterProbe; uo != nil && clusterEnabled(ctx, s.rdb) {
		// A URL naming one node of a Cluster: its keys are spread over
		// the cluster's nodes, so only the Cluster client reaches them.
		if uo.DB != 0 {
			return errors.New("redisstore: redis cluster has no databases other than 0")
		}
		_ = s.rdb.Close()
		uo.IsClusterMode = true
		s.rdb, s.oneServer = redis.NewUniversalClient(uo), false
	}
	if err := s.Ping(ctx); err != nil {
		return err
	}
	if err := s.checkEviction(ctx); err != nil {
		return err
	}
	s.clusterProbe = nil
	return nil
}

// clusterEnabled reports whether the server says it runs in cluster mode
// (INFO cluster); false when it cannot tell.
func clusterEnabled(ctx context.Context, rdb redis.UniversalClient) bool {
	info, err := rdb.Info(ctx, "cluster").Result()
	return err == nil && strings.Contains(info, "cluster_enabled:1")
}

// checkEviction refuses a server that may evict keys without a TTL
// (maxmemory-policy allkeys-*): losing one index key would silently break
// uniqueness. When INFO is not allowed the check is skipped.
func (s *Store) checkEviction(ctx context.Context) error {
	info, err := s.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok && strings.HasPrefix(v, "allkeys-") {
			return fmt.Errorf("redisstore: redis maxmemory-policy is %s, which may evict index keys and break uniqueness; use noeviction (or a volatile-* policy)", v)
		}
	}
	return nil
}

// New wraps an existing client; prefix "" means "sj". It panics on a prefix
// with braces (a programming error). Close closes the client.
func New(client redis.UniversalClient, prefix string) *Store {
	p, err := checkPrefix(prefix)
	if err != nil {
		panic(err)
	}
	_, cluster := client.(*redis.ClusterClient)
	return &Store{rdb: client, prefix: p, oneServer: !cluster}
}

func checkPrefix(p string) (string, error) {
	if p == "" {
		return "sj", nil
	}
	if strings.ContainsAny(p, "{}") {
		return "", fmt.Errorf("redisstore: key prefix %q must not contain braces (they would become the hash tag)", p)
	}
	return p, nil
}

// Addr is the address the store connects to ("" when built with New).
func (s *Store) Addr() string { return s.addr }

// Client returns the underlying go-redis client (for tests and tools).
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// QueueName is the name of the durable task queue (package storage/queue)
// of the deployment that uses this store: "scimjit" for the default key
// prefix, "scimjit-<prefix>" otherwise, so that deployments sharing a
// Redis server with different prefixes do not run each other's tasks.
func (s *Store) QueueName() string {
	if s.prefix == "sj" {
		return "scimjit"
	}
	return "scimjit-" + s.prefix
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.wrap(s.rdb.Ping(ctx).Err())
}

// Close closes the client and, for the embedded server, stops it.
func (s *Store) Close() error {
	err := s.rdb.Close()
	if s.closeFn != nil {
		if cerr := s.closeFn(); err == nil {
			err = cerr
		}
	}
	return err
}

// Markers that Lua scripts put into their error replies. A single-word
// error_reply becomes "ERR WORD", so errors are matched with
// strings.Contains (see docs/storage.md).
const (
	luaNotFound = "SJ_NOTFOUND"
	luaConflict = "SJ_CONFLICT"
	luaPrecond  = "SJ_PRECOND"
	luaInvalRef = "SJ_INVALIDREF"
	luaRetry    = "SJ_RETRY"
)

// errRetry is returned by compare-and-set scripts whose expected value
// changed underneath; callers loop.
var errRetry = errors.New("redisstore: compare-and-set lost")

// maxRetries bounds optimistic read-modify-write loops.
const maxRetries = 100

// backoff waits before retry number attempt (0-based) of an optimistic
// loop that lost a race: nothing the first time, then a random wait of up
// to 1, 2, 4 … 32 ms, so that many writers of one record spread out instead
// of colliding again. It returns the context's error when ctx ends first.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return ctx.Err()
	}
	ceiling := time.Millisecond << min(attempt-1, 5)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(ceiling))) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, ctx.Err())
	case <-t.C:
		return nil
	}
}

// wrap maps go-redis errors to the storage sentinels: redis.Nil is
// ErrNotFound, Lua markers become their sentinel, server error replies stay
// plain errors (bugs), anything else (network, timeouts, closed client,
// cancelled context) is wrapped in ErrUnavailable.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.Nil) {
		return storage.ErrNotFound
	}
	msg := err.Error()
	var rerr redis.Error
	if errors.As(err, &rerr) {
		switch {
		case strings.Contains(msg, luaNotFound):
			return storage.ErrNotFound
		case strings.Contains(msg, luaConflict):
			field := strings.TrimSpace(msg[strings.Index(msg, luaConflict)+len(luaConflict):])
			if i := strings.IndexAny(field, " \n"); i >= 0 {
				field = field[:i]
			}
			return &storage.ConflictError{Field: field}
		case strings.Contains(msg, luaPrecond):
			return storage.ErrPreconditionFailed
		case strings.Contains(msg, luaInvalRef):
			return storage.ErrInvalidReference
		case strings.Contains(msg, luaRetry):
			return errRetry
		case errors.Is(err, redis.TxFailedErr):
			return errRetry
		case strings.HasPrefix(msg, "LOADING"), strings.HasPrefix(msg, "READONLY"),
			strings.HasPrefix(msg, "CLUSTERDOWN"), strings.HasPrefix(msg, "TRYAGAIN"),
			strings.HasPrefix(msg, "MASTERDOWN"):
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return fmt.Errorf("redisstore: %w", err)
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// Identifier checks. Workspace ids are slugs; other ids come from callers
// (SCIM clients put them in URLs) and must not break the key layout.
func validWS(id string) bool { return storage.ValidWorkspaceID(id) }

func validID(id string) bool {
	return id != "" && len(id) <= 256 && !strings.ContainsAny(id, "{}\x00")
}

// Key builders. See docs/storage.md for the whole layout.

// wsPrefix is the prefix of every key workspace ws owns: "<p>:{ws:<id>}:".
func (s *Store) wsPrefix(ws string) string { return s.prefix + ":{ws:" + ws + "}:" }

func (s *Store) wsKey(ws, name string) string { return s.wsPrefix(ws) + name }

func (s *Store) acctKey(id, name string) string { return s.prefix + ":{acct:" + id + "}:" + name }

func (s *Store) registryKey() string    { return s.prefix + ":{registry}:workspaces" }
func (s *Store) emailIndexKey() string  { return s.prefix + ":{accounts}:email" }
func (s *Store) domainIndexKey() string { return s.prefix + ":{registry}:domains" }
func (s *Store) sessionKey(k string) string {
	return s.prefix + ":sess:" + k
}
func (s *Store) rateKey(k string) string { return s.prefix + ":{rl}:" + k }
func (s *Store) mailKey(name string) string {
	return s.prefix + ":{mail}:" + name
}

// Wire time: microseconds since the epoch, UTC.
func toMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicro(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// now is the store's clock, truncated to the wire precision so that values
// returned by a write equal the values read back.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
