package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// RequireEnv is the environment variable that turns a missing redis-server
// into a test failure instead of a skip.
const RequireEnv = "SCIMJIT_REQUIRE_REDIS"

// Addr starts a redis-server on a free loopback port and returns its
// host:port. The server is killed in t.Cleanup.
func Addr(t testing.TB) string {
	t.Helper()
	return spawn(t)
}

// ClusterAddr starts a one-node Redis Cluster (cluster mode on, all 16384
// slots assigned to the node) and returns its address. Unlike a plain
// server it refuses cross-slot multi-key commands, transactions and
// scripts with CROSSSLOT, so a store that passes its tests on it keeps
// every atomic operation inside one hash slot.
func ClusterAddr(t testing.TB) string {
	t.Helper()
	addr := spawn(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("redistest: assign cluster slots: %v", err)
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return addr
		}
		if ctx.Err() != nil {
			t.Fatalf("redistest: cluster on %s not ready: %v %s", addr, err, info)
		}
		time.Sleep(20 * time.Millisecond) // polling for the node to declare the cluster ok
	}
}

// ClusterAddrs starts a Redis Cluster of n masters (no replicas) on
// loopback, splits the 16384 slots evenly between them, waits until every
// node reports the cluster ok, and returns the nodes' addresses. Keys of
// different hash tags land on different nodes, so clients must follow
// MOVED redirects and split pipelines per node.
func ClusterAddrs(t testing.TB, n int) []string {
	t.Helper()
	if n < 1 {
		t.Fatalf("redistest: cluster needs at least one node")
	}
	addrs := make([]string, n)
	clients := make([]*redis.Client, n)
	for i := range addrs {
		addrs[i] = spawn(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		clients[i] = redis.NewClient(&redis.Options{Addr: addrs[i]})
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
			host, port, _ := net.SplitHostPort(addrs[0])
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
				t.Fatalf("redistest: cluster node %d (%s) not ready: %v %s", i, addrs[i], err, info)
			}
			time.Sleep(50 * time.Millisecond) // polling for the nodes to gossip
		}
	}
	return addrs
}

// spawn finds redis-server (skip or fail when missing) and starts it with
// the extra arguments, retrying when the chosen port was taken meanwhile.
func spawn(t testing.TB, extra ...string) string {
	t.Helper()
	return spawnWithConfig(t, "", extra...)
}

// spawnWithConfig is spawn with a config file (first argument of
// redis-server) when conf is not empty.
func spawnWithConfig(t testing.TB, conf string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("redis-server not found on PATH and %s=1: %v", RequireEnv, err)
		}
		t.Skipf("redis-server not found on PATH (set %s=1 to fail instead): %v", RequireEnv, err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		addr, err := start(t, bin, conf, extra...)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatalf("redistest: could not start redis-server: %v", lastErr)
	return ""
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before redis-server binds it; Addr then retries.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(t testing.TB, bin, conf string, extra ...string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
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
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return "", fmt.Errorf("redis-server exited: %v: %s", err, out.String())
		default:
		}
		if ping(addr) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("redis-server on %s did not answer within 10s: %s", addr, out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling for the child process to listen
	}
	t.Cleanup(stop)
	return addr, nil
}

// ping sends an inline PING and waits for +PONG.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return bytes.HasPrefix(buf[:n], []byte("+PONG"))
}

// NewStore returns a redisstore.Store on a fresh redis-server (see Addr),
// closed in t.Cleanup.
func NewStore(t testing.TB) storage.Store {
	t.Helper()
	return NewRedisStore(t)
}

// NewRedisStore is NewStore with the concrete type, for tests that need the
// client or the address.
func NewRedisStore(t testing.TB) *redisstore.Store {
	t.Helper()
	addr := Addr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, redisstore.Options{URL: "redis://" + addr})
	if err != nil {
		t.Fatalf("redistest: open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// SentinelMaster is the master name SentinelAddr's sentinel monitors.
const SentinelMaster = "scimjit"

// SentinelAddr starts a redis-server and a Redis Sentinel (redis-server
// --sentinel) that monitors it under the name SentinelMaster, and returns
// the sentinel's address. Both are killed in t.Cleanup.
func SentinelAddr(t testing.TB) string {
	t.Helper()
	master := Addr(t)
	host, port, _ := net.SplitHostPort(master)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	body := fmt.Sprintf("sentinel monitor %s %s %s 1\n", SentinelMaster, host, port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// The config file must come first; spawn appends its flags after it.
	sentinel := spawnWithConfig(t, conf, "--sentinel")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer c.Close()
	for {
		addr, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		if err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) == master {
			return sentinel
		}
		if ctx.Err() != nil {
			t.Fatalf("redistest: sentinel on %s does not know the master: %v %v", sentinel, addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the sentinel to load its config
	}
}
