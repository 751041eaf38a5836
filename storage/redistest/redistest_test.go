package redistest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestServerRefusesClientWithoutPassword: a started server is not usable
// without its password, so a client can only talk to it deliberately; with
// the password (URL, Options) it answers.
func TestServerRefusesClientWithoutPassword(t *testing.T) {
	srv := Start(t)
	ctx := context.Background()
	bare := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer bare.Close()
	if err := bare.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without password: err = %v, want NOAUTH", err)
	}
	if err := srv.Client(t).Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with the password: %v", err)
	}
	opt, err := redis.ParseURL(srv.URL())
	if err != nil || opt.Password != srv.Password || opt.Addr != srv.Addr {
		t.Fatalf("URL %q parses to %+v, %v", srv.URL(), opt, err)
	}
}

// TestStartRefusesAForeignServerOnItsPort: when another process already
// serves Redis on the chosen port, start fails (and spawn retries on
// another port) instead of handing out the foreign server, which answers
// PING but not this server's password.
func TestStartRefusesAForeignServerOnItsPort(t *testing.T) {
	bin := redisServer(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	foreign := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	if err := foreign.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = foreign.Process.Kill(); _ = foreign.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !answers(addr, "PING\r\n", "+PONG\r\n") {
		if time.Now().After(deadline) {
			t.Fatal("the foreign redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond) // polling for the child process to listen
	}

	password := newSecret(t)
	got, stop, err := start(t, bin, port, "", func(addr string) bool {
		return answers(addr, "AUTH "+password+"\r\nPING\r\n", "+OK\r\n+PONG\r\n")
	}, "--requirepass", password)
	if err == nil {
		stop()
		t.Fatalf("start handed out %s, which another process serves", got)
	}
}

// TestClusterAndSentinelNeedThePassword: cluster nodes and the sentinel's
// master require the password too, and the clients built from the helpers'
// values work.
func TestClusterAndSentinelNeedThePassword(t *testing.T) {
	ctx := context.Background()
	cl := StartCluster(t, 2)
	cc := redis.NewClusterClient(cl.Options())
	defer cc.Close()
	for i := range 20 {
		if err := cc.Set(ctx, "k"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatalf("cluster SET: %v", err)
		}
	}
	bare := redis.NewClient(&redis.Options{Addr: cl.Addrs[1]})
	defer bare.Close()
	if err := bare.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("cluster node without password: err = %v, want NOAUTH", err)
	}

	s := StartSentinel(t)
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: []string{s.Addr},
		Password: s.Master.Password})
	defer fc.Close()
	if err := fc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the sentinel: %v", err)
	}
	if v, err := s.Master.Client(t).Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("master GET = %q, %v", v, err)
	}
}

// TestFaultProxy: through the proxy a command runs normally without
// faults; a cut before the request leaves the data untouched; a cut after
// it runs the command but the client gets an error; a delay beyond the
// client's timeout runs it too, the client timing out.
func TestFaultProxy(t *testing.T) {
	srv := Start(t)
	p := StartFaultProxy(t, srv.Addr, 1)
	direct := srv.Client(t)
	via := redis.NewClient(&redis.Options{Addr: p.Addr(), Password: srv.Password, MaxRetries: -1,
		ReadTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	defer via.Close()
	ctx := context.Background()
	if err := via.Set(ctx, "plain", "1", 0).Err(); err != nil {
		t.Fatalf("no faults: %v", err)
	}
	check := func(key string, wantSet bool) {
		t.Helper()
		n, err := direct.Exists(ctx, key).Result()
		if err != nil || (n == 1) != wantSet {
			t.Fatalf("%s exists = %d, %v; want %v", key, n, err, wantSet)
		}
	}
	check("plain", true)

	p.SetFaults(Faults{CutBefore: 1})
	if err := via.Set(ctx, "before", "1", 0).Err(); err == nil {
		t.Fatal("cut before: no error")
	}
	check("before", false)

	p.SetFaults(Faults{CutAfter: 1})
	if err := via.Set(ctx, "after", "1", 0).Err(); err == nil {
		t.Fatal("cut after: no error")
	}
	check("after", true)

	p.SetFaults(Faults{Delay: 1, DelayFor: 500 * time.Millisecond})
	if err := via.Set(ctx, "delayed", "1", 0).Err(); err == nil {
		t.Fatal("delay: no timeout")
	}
	check("delayed", true)
	if p.CutsBefore.Load() != 1 || p.CutsAfter.Load() != 1 || p.Delays.Load() < 1 {
		t.Fatalf("counts: before %d, after %d, delays %d", p.CutsBefore.Load(), p.CutsAfter.Load(), p.Delays.Load())
	}

	p.SetFaults(Faults{})
	if err := via.Set(ctx, "again", "1", 0).Err(); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	check("again", true)
}

// TestDurableRestart: a write answered by a StartDurable server survives a
// SIGKILL and restart.
func TestDurableRestart(t *testing.T) {
	s := StartDurable(t)
	c := redis.NewClient(s.Options())
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s = s.Restart(t)
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}
