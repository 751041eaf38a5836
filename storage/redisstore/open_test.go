package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

func TestOpenRefusesBadOptions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    redisstore.Options
		want string
	}{
		{"nothing", redisstore.Options{}, "no redis url or address"},
		{"bad url", redisstore.Options{URL: "http://localhost"}, "parse redis url"},
		{"braces in prefix", redisstore.Options{URL: "redis://127.0.0.1:1", Prefix: "a{b}"}, "braces"},
		{"cluster db", redisstore.Options{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, DB: 3}, "databases"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.Open(ctx, tc.o)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%+v) succeeded", tc.o)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%+v) = %v, want an error about %q", tc.o, err, tc.want)
			}
		})
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestUnreachableRedisIsErrUnavailable(t *testing.T) {
	ctx := context.Background()
	addr := closedAddr(t)
	_, err := redisstore.Open(ctx, redisstore.Options{URL: "redis://" + addr})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open on a closed port = %v, want ErrUnavailable", err)
	}
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second}), "")
	defer s.Close()
	_, err = s.GetUser(ctx, "ws", "id")
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUser without a server = %v, want ErrUnavailable", err)
	}
	_, err = s.CreateUser(ctx, "ws", storage.User{UserName: "x"})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("CreateUser without a server = %v, want ErrUnavailable", err)
	}
}

func TestCancelledContextIsErrUnavailableAndContextError(t *testing.T) {
	s := redistest.NewRedisStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.GetWorkspace(ctx, "ws")
	if !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("GetWorkspace with a cancelled context = %v, want ErrUnavailable and context.Canceled", err)
	}
}

func TestURLOptionsReachTheServer(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	// DB from the URL: a workspace written in DB 2 is not in DB 0.
	s2, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL() + "/2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.CreateWorkspace(ctx, storage.Workspace{ID: "db2"}); err != nil {
		t.Fatal(err)
	}
	s0, err := redisstore.Open(ctx, redisstore.Options{Addrs: []string{srv.Addr}, Password: srv.Password, Prefix: "sj"})
	if err != nil {
		t.Fatal(err)
	}
	defer s0.Close()
	if _, err := s0.GetWorkspace(ctx, "db2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("DB 0 sees DB 2's workspace: %v", err)
	}
	// A different prefix is a different namespace on the same server.
	other, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL() + "/2", Prefix: "other"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.GetWorkspace(ctx, "db2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("prefix other sees prefix sj's workspace: %v", err)
	}
	if s2.Addr() != srv.Addr {
		t.Fatalf("Addr() = %q, want %q", s2.Addr(), srv.Addr)
	}
}

func TestOpenEmbeddedSaysItIsEphemeralAndCloses(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	s, err := redisstore.OpenEmbedded(ctx, logger)
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("embedded server listens on %q, want a loopback address", s.Addr())
	}
	if !strings.Contains(logs.String(), "data is lost on exit") {
		t.Fatalf("startup log does not say the embedded store is ephemeral: %s", logs.String())
	}
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "emb"}); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("embedded server still accepts connections after Close")
	}
}

func TestOpenRefusesAServerThatEvictsAnyKey(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client(t)
	if err := c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	s, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL()})
	if err == nil {
		_ = s.Close()
		t.Fatalf("Open accepted a server with maxmemory-policy allkeys-lru")
	}
	if !strings.Contains(err.Error(), "allkeys-lru") {
		t.Fatalf("error does not name the policy: %v", err)
	}
	if err := c.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err(); err != nil {
		t.Fatal(err)
	}
	s, err = redisstore.Open(ctx, redisstore.Options{URL: srv.URL()})
	if err != nil {
		t.Fatalf("Open refused volatile-lru: %v", err)
	}
	_ = s.Close()
}
