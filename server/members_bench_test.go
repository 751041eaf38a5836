package server_test

// BenchmarkConsoleMembers measures the console's Members page through the
// real HTTP stack (servertest: the server on loopback, a spawned
// redis-server) with an operator's session, in a workspace seeded through
// the storage API. docs/benchmarks.md describes the method and records
// the results.
//
//	go test -run '^$' -bench BenchmarkConsoleMembers -benchtime 500x ./server/
//	SCIMJIT_BENCH_USERS=1000000 go test -run '^$' -bench BenchmarkConsoleMembers \
//	  -benchtime 500x -timeout 60m ./server/

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// benchMember is member i of the seeded workspace: every 10th is a DEV
// Admin, every 7th deactivated, every 13th pending, every 5th from JIT.
func benchMember(i int) storage.User {
	email := fmt.Sprintf("member%07d@bench.example.com", i)
	roles := storage.Roles{Dev: storage.RoleOperator, Test: storage.RoleOperator, Prod: storage.RoleNoAccess}
	if i%10 == 0 {
		roles.Dev = storage.RoleAdmin
	}
	source := storage.SourceSCIM
	if i%5 == 0 {
		source = storage.SourceJIT
	}
	return storage.User{UserName: email, ExternalID: fmt.Sprintf("00u%07dbench", i), Emails: []string{email},
		Active: i%7 != 0, Verified: i%13 != 0, Source: source, Roles: roles,
		Attributes: map[string]any{"displayName": fmt.Sprintf("Member %07d", i)}}
}

func BenchmarkConsoleMembers(b *testing.B) {
	n := 10000
	if v := os.Getenv("SCIMJIT_BENCH_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("SCIMJIT_BENCH_USERS=%q: want a number of users (at least 100)", v)
		}
	}
	env := servertest.New(b, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	env.CreateWorkspace(b, "bench", nil)
	start := time.Now()
	seedMembers(b, env.Store, "bench", n)
	b.Logf("seeded %d members in %v", n, time.Since(start).Round(time.Second))

	br := newConsoleBrowser(b, env)
	br.operatorSignIn(env.AdminToken)
	base := "/console/w/bench/members"
	for _, op := range []struct{ name, query, want string }{
		{"first-page", "", fmt.Sprintf("%d members", n)},
		{"search-email", "?by=email&q=" + url.QueryEscape(benchMember(n/2).UserName), "1 found"},
		{"search-name", "?by=name&q=" + url.QueryEscape(strings.TrimSuffix(benchMember(n/2).FullName(), "0")), "10 found"},
		{"search-name-first-100", "?by=name&q=member", "100 found"},
		{"filter-admin-deactivated", "?role=Admin&status=deactivated", "members match"},
		{"filter-jit-pending-active", "?source=jit&verification=pending&status=active", "members match"},
		{"filter-admin-next-page", "?role=Admin&after=" + strconv.Itoa(n/2), "members match"},
	} {
		b.Run(fmt.Sprintf("%s/users=%d", op.name, n), func(b *testing.B) {
			if st, body := br.do(http.MethodGet, base+op.query, nil); st != http.StatusOK || !strings.Contains(body, op.want) {
				b.Fatalf("GET %s: %d, want 200 with %q", op.query, st, op.want)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if st, _ := br.do(http.MethodGet, base+op.query, nil); st != http.StatusOK {
					b.Fatalf("GET %s: %d", op.query, st)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
			b.ReportMetric(q(0.5), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
		})
	}
}

// seedMembers creates members 0..n-1 of ws through the storage API on 64
// goroutines (no accounts: the Members page reads memberships only).
func seedMembers(b *testing.B, s storage.Store, ws string, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	ctx := context.Background()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, err := s.CreateUser(ctx, ws, benchMember(i)); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("seed: %v", firstErr)
	}
}
