package redistest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// RequireEnv is the environment variable that turns a missing redis-server
// into a test failure instead of a skip.
const RequireEnv = "SCIMJIT_REQUIRE_REDIS"

// Server is a redis-server started for one test. It requires Password
// (requirepass), a random value made for it, so that a client which reaches
// another server on the same port (one that some other process started
// there) fails at once instead of silently using the wrong data. Every
// client of the server must send the password: use URL, Options or Client.
type Server struct {
	// Addr is the server's loopback host:port.
	Addr string
	// Password is the server's requirepass.
	Password string
	stop     func()
	// durable is the append-only setup of a StartDurable server, which
	// Restart starts again.
	durable []string
}

// URL returns redis://:password@host:port, for redisstore.Options.URL and
// --redis-url. Append "/2" for database 2.
func (s Server) URL() string {
	return (&url.URL{Scheme: "redis", User: url.UserPassword("", s.Password), Host: s.Addr}).String()
}

// Options returns go-redis options for a client of the server.
func (s Server) Options() *redis.Options {
	return &redis.Options{Addr: s.Addr, Password: s.Password}
}

// Client returns a client of the server, closed in t.Cleanup.
func (s Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(s.Options())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server now (for tests of an unreachable store). It is
// also done in t.Cleanup; calling it more than once is fine.
func (s Server) Stop() {
	if s.stop != nil {
		s.stop()
	}
}

// Start starts a redis-server on a free loopback port and returns it. The
// server is killed in t.Cleanup. On Redis 7 and later DEBUG is enabled for
// loopback clients (DEBUG SLEEP makes a server stall).
func Start(t testing.TB) Server {
	t.Helper()
	return startServer(t, newSecret(t))
}

// StartDurable starts a redis-server that appends every write to its
// append-only file and fsyncs it before answering (appendonly yes,
// appendfsync always), in a data directory of the test's, for tests of
// what survives a crash: Restart kills it and starts it again.
func StartDurable(t testing.TB) Server {
	t.Helper()
	durable := []string{"--appendonly", "yes", "--appendfsync", "always", "--dir", t.TempDir()}
	s := startServer(t, newSecret(t), durable...)
	s.durable = durable
	return s
}

// Restart kills a StartDurable server (SIGKILL: no shutdown save) and
// starts it again on the same address, password and data directory, so
// that it loads its append-only file. It returns the running server.
func (s Server) Restart(t testing.TB) Server {
	t.Helper()
	if s.durable == nil {
		t.Fatalf("redistest: Restart needs a StartDurable server")
	}
	s.Stop()
	_, portStr, _ := net.SplitHostPort(s.Addr)
	port, _ := strconv.Atoi(portStr)
	_, stop, err := start(t, redisServer(t), port, "", answersAuth(s.Password),
		append(passwordArgs(t, s.Password), s.durable...)...)
	if err != nil {
		t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr, err)
	}
	s.stop = stop
	return s
}

// Reserve picks a free loopback port and a password for a redis-server
// that is not running yet, for tests of a client that starts before Redis
// does; StartReserved starts it. Until then the address refuses
// connections (unless another process takes the port meanwhile, which
// StartReserved then reports).
func Reserve(t testing.TB) Server {
	t.Helper()
	redisServer(t) // skip now, not halfway through the test
	port, err := freePort()
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	return Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Password: newSecret(t)}
}

// StartReserved starts the redis-server that Reserve described, on its
// address and with its password, and returns it running (killed in
// t.Cleanup, or by Stop).
func StartReserved(t testing.TB, s Server) Server {
	t.Helper()
	_, portStr, _ := net.SplitHostPort(s.Addr)
	port, _ := strconv.Atoi(portStr)
	_, stop, err := start(t, redisServer(t), port, "", answersAuth(s.Password), passwordArgs(t, s.Password)...)
	if err != nil {
		t.Fatalf("redistest: start reserved redis-server on %s: %v", s.Addr, err)
	}
	s.stop = stop
	return s
}

// Cluster is a Redis Cluster started for one test: masters only, all with
// the same Password.
type Cluster struct {
	// Addrs are the nodes' addresses.
	Addrs []string
	// Password is every node's requirepass (and masterauth).
	Password string
	nodes    []Server
}

// Options returns go-redis options for a cluster client seeded with every
// node.
func (c Cluster) Options() *redis.ClusterOptions {
	return &redis.ClusterOptions{Addrs: c.Addrs, Password: c.Password}
}

// Node returns node i as a single server, for a plain client of it.
func (c Cluster) Node(i int) Server { return c.nodes[i] }

// StartCluster starts a Redis Cluster of n masters (no replicas) on
// loopback, splits the 16384 slots evenly between them and waits until
// every node reports the cluster ok. Unlike a plain server a cluster
// refuses cross-slot multi-key commands, transactions and scripts with
// CROSSSLOT, so a store that passes its tests on a one-node cluster keeps
// every atomic operation inside one hash slot; with several nodes keys of
// different hash tags land on different nodes, so clients must follow
// MOVED redirects and split pipelines per node.
func StartCluster(t testing.TB, n int) Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("redistest: cluster needs at least one node")
	}
	cl := Cluster{Addrs: make([]string, n), Password: newSecret(t), nodes: make([]Server, n)}
	clients := make([]*redis.Client, n)
	for i := range cl.Addrs {
		cl.nodes[i] = startServer(t, cl.Password, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		cl.Addrs[i] = cl.nodes[i].Addr
		clients[i] = redis.NewClient(cl.nodes[i].Options())
		defer clients[i].Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	per := 16384 / n
	for i, c := range clients {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("redistest: assign slots %d-%d: %v", lo, hi, err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(cl.Addrs[0])
			if err := c.ClusterMeet(ctx, host, port).Err(); err != nil {
				t.Fatalf("redistest: cluster meet: %v", err)
			}
		}
	}
	for i, c := range clients {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d\r\n", n)) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("redistest: cluster node %d (%s) not ready: %v %s", i, cl.Addrs[i], err, info)
			}
			time.Sleep(20 * time.Millisecond) // polling for the nodes to gossip
		}
	}
	return cl
}

// SentinelMaster is the master name StartSentinel's sentinel monitors.
const SentinelMaster = "scimjit"

// Sentinel is a Redis Sentinel started for one test and the master it
// monitors under MasterName.
type Sentinel struct {
	// Addr is the sentinel's address. The sentinel itself needs no
	// password; it proved at start that it is this test's process by its
	// random run id (SENTINEL MYID).
	Addr string
	// MasterName is SentinelMaster.
	MasterName string
	// Master is the monitored server; clients that the sentinel sends to
	// it need Master.Password (the sentinel has it as auth-pass).
	Master Server
}

// StartSentinel starts a redis-server and a Redis Sentinel (redis-server
// --sentinel) that monitors it under SentinelMaster, and waits until the
// sentinel knows the master. Both are killed in t.Cleanup.
func StartSentinel(t testing.TB) Sentinel {
	t.Helper()
	master := Start(t)
	host, port, _ := net.SplitHostPort(master.Addr)
	var id [20]byte
	_, _ = rand.Read(id[:])
	myid := hex.EncodeToString(id[:])
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	body := fmt.Sprintf("sentinel myid %s\nsentinel monitor %s %s %s 1\nsentinel auth-pass %s %s\n",
		myid, SentinelMaster, host, port, SentinelMaster, master.Password)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// The config file must come first; spawn appends its flags after it.
	addr, _ := spawn(t, conf, func(addr string) bool {
		return answers(addr, "SENTINEL MYID\r\n", "$40\r\n"+myid+"\r\n")
	}, "--sentinel")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer c.Close()
	for {
		got, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		if err == nil && len(got) == 2 && net.JoinHostPort(got[0], got[1]) == master.Addr {
			return Sentinel{Addr: addr, MasterName: SentinelMaster, Master: master}
		}
		if ctx.Err() != nil {
			t.Fatalf("redistest: sentinel on %s does not know the master: %v %v", addr, got, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the sentinel to load its config
	}
}

// NewStore returns a redisstore.Store on a fresh redis-server (see Start),
// closed in t.Cleanup.
func NewStore(t testing.TB) storage.Store {
	t.Helper()
	return NewRedisStore(t)
}

// NewRedisStore is NewStore with the concrete type, for tests that need the
// client.
func NewRedisStore(t testing.TB) *redisstore.Store {
	t.Helper()
	return OpenStore(t, Start(t))
}

// OpenStore opens a redisstore.Store on srv (with its password), closed in
// t.Cleanup. Tests that also need the server itself (to stall or stop it)
// start it with Start and open the store with OpenStore.
func OpenStore(t testing.TB, srv Server) *redisstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL()})
	if err != nil {
		t.Fatalf("redistest: open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newSecret returns 128 random bits in hex: a password that needs no
// escaping in a URL, a config file or an inline command.
func newSecret(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("redistest: random password: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// startServer starts a redis-server that requires password (also as
// masterauth, for replicas) with the extra arguments, and returns it once
// it answers AUTH password with +OK: only the process this call started
// can, so a server another process runs on the same port is never taken
// for it.
func startServer(t testing.TB, password string, extra ...string) Server {
	t.Helper()
	addr, stop := spawn(t, "", answersAuth(password), append(passwordArgs(t, password), extra...)...)
	return Server{Addr: addr, Password: password, stop: stop}
}

// passwordArgs are the redis-server arguments of a server that requires
// password (also as masterauth, for replicas).
func passwordArgs(t testing.TB, password string) []string {
	return append([]string{"--requirepass", password, "--masterauth", password}, debugArgs(t)...)
}

// answersAuth reports whether the server at an address accepts password:
// only the process started with it can, so a server another process runs
// on the same port is never taken for ours.
func answersAuth(password string) func(addr string) bool {
	return func(addr string) bool {
		return answers(addr, "AUTH "+password+"\r\nPING\r\n", "+OK\r\n+PONG\r\n")
	}
}

// redisServer finds redis-server on PATH, skipping the test (or failing it
// when RequireEnv is 1) when it is missing.
func redisServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("redis-server not found on PATH and %s=1: %v", RequireEnv, err)
		}
		t.Skipf("redis-server not found on PATH (set %s=1 to fail instead): %v", RequireEnv, err)
	}
	return bin
}

var (
	majorOnce    sync.Once
	majorVersion int
	versionRe    = regexp.MustCompile(`v=(\d+)\.`)
)

// debugArgs enables DEBUG for loopback clients on Redis 7 and later, where
// it is off by default (older versions do not know the option and allow
// DEBUG anyway).
func debugArgs(t testing.TB) []string {
	bin := redisServer(t)
	majorOnce.Do(func() {
		out, _ := exec.Command(bin, "--version").Output()
		if m := versionRe.FindSubmatch(out); m != nil {
			majorVersion, _ = strconv.Atoi(string(m[1]))
		}
	})
	if majorVersion >= 7 {
		return []string{"--enable-debug-command", "local"}
	}
	return nil
}

// spawn starts redis-server with the config file conf (when not empty) and
// the extra arguments on a free port, and returns its address once ours
// reports true for it, and a function that kills the process. It retries
// with another port when the chosen one was taken meanwhile.
func spawn(t testing.TB, conf string, ours func(addr string) bool, extra ...string) (string, func()) {
	t.Helper()
	bin := redisServer(t)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		addr, stop, err := start(t, bin, port, conf, ours, extra...)
		if err == nil {
			return addr, stop
		}
		lastErr = err
	}
	t.Fatalf("redistest: could not start redis-server: %v", lastErr)
	return "", nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before redis-server binds it; spawn then retries.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on port and waits until ours(addr) holds. It
// fails when the process exits first (the port was taken) or does not get
// ready within 10 s.
func start(t testing.TB, bin string, port int, conf string, ours func(addr string) bool, extra ...string) (string, func(), error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dir := t.TempDir()
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--loglevel", "warning",
	}
	if conf != "" {
		args = append([]string{conf}, args...)
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			err := <-exited
			exited <- err
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return "", nil, fmt.Errorf("redis-server exited: %v: %s", err, out.String())
		default:
		}
		if ours(addr) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not answer within 10s: %s", addr, out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling for the child process to listen
	}
	t.Cleanup(stop)
	return addr, stop, nil
}

// answers sends the inline commands cmds to addr and reports whether the
// replies are exactly want.
func answers(addr, cmds, want string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte(cmds)); err != nil {
		return false
	}
	got := make([]byte, 0, len(want))
	buf := make([]byte, len(want))
	for len(got) < len(want) {
		n, err := c.Read(buf[:len(want)-len(got)])
		got = append(got, buf[:n]...)
		if !strings.HasPrefix(want, string(got)) {
			return false
		}
		if err != nil {
			return false
		}
	}
	return true
}
