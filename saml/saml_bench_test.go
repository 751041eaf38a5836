package saml_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage/redisstore"
)

// benchLogin is one pre-made sign-in: the signed response and the tracked
// request it answers.
type benchLogin struct {
	resp, relay, requestID string
	// form is the URL-encoded ACS body, made with the response (outside
	// the timer), as a browser would send it.
	form string
}

// prepareLogins starts n SP-initiated logins in one ssoBrowser and signs a
// fresh response for each (outside the timer). email(i) names the person.
func prepareLogins(b *testing.B, env *servertest.Env, idp *ssoIdP, ws string, n int, email func(int) string) (logins []benchLogin, bindCookie string) {
	br := newSSOBrowser(env)
	for i := 0; i < n; i++ {
		// Each login comes from its own client address (the server trusts
		// the loopback proxy): n people signing in, not one client
		// hammering /login, which is rate-limited per client.
		req := br.startLoginFrom(b, idp, ws, "", benchClientIP(i))
		l := benchLogin{
			resp:      idp.respond(b, req, assertionOpts{NameID: email(i), Attrs: []crewjam.Attribute{attr("workato_role", "Analyst")}}),
			relay:     req.RelayState,
			requestID: req.Request.ID,
		}
		l.form = url.Values{"SAMLResponse": {l.resp}, "RelayState": {l.relay}}.Encode()
		logins = append(logins, l)
	}
	u, _ := url.Parse(env.URL + "/saml/")
	for _, c := range br.c.Jar.Cookies(u) {
		if c.Name == "scimjit_saml_bind" {
			bindCookie = c.Value
		}
	}
	return logins, bindCookie
}

// postACS posts one login to the ACS as the ssoBrowser that started it (the
// binding cookie only: no earlier session to replace).
func postACS(b *testing.B, client *http.Client, env *servertest.Env, ws, bind string, l benchLogin) {
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/saml/"+ws+"/acs", strings.NewReader(l.form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "scimjit_saml_bind", Value: bind})
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("acs status %d", resp.StatusCode)
	}
}

// ceilingSP is a bare crewjam ServiceProvider for the same workspace, with
// an in-memory replay cache: ParseResponse alone, no HTTP, no Redis.
func ceilingSP(b *testing.B, env *servertest.Env, idp *ssoIdP, ws string) *crewjam.ServiceProvider {
	ed, err := samlsp.ParseMetadata([]byte(idp.metadataXML(b)))
	if err != nil {
		b.Fatal(err)
	}
	md, _ := url.Parse(env.URL + "/saml/" + ws + "/metadata")
	acs, _ := url.Parse(env.URL + "/saml/" + ws + "/acs")
	return &crewjam.ServiceProvider{EntityID: md.String(), MetadataURL: *md, AcsURL: *acs, IDPMetadata: ed,
		ReplayCache: samlsp.NewMemoryReplayCache(1 << 20)}
}

func parseOnly(b *testing.B, sp *crewjam.ServiceProvider, l benchLogin) {
	req := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: sp.AcsURL.Path},
		PostForm: url.Values{"SAMLResponse": {l.resp}}}
	req.Form = req.PostForm
	if _, err := sp.ParseResponse(req, []string{l.requestID}); err != nil {
		b.Fatal(err)
	}
}

// benchClientIP is the i-th client address of a benchmark (198.18.0.0/15,
// the range set aside for benchmarking).
func benchClientIP(i int) string {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)}).String()
}

// BenchmarkACS measures ACS sign-ins per second over real HTTP and a real
// redis-server, for an existing member and for a JIT creation, against
// crewjam's ParseResponse alone on the same responses (the ceiling). Every
// iteration uses a fresh signed response, made before the timer starts.
// The two are interleaved (parse response i, then post response i to the
// ACS) and timed separately, so that both see the same machine load; the
// metrics are ceiling/s, acs/s, acs/ceiling in percent, and the Redis
// calls per sign-in (a command or a pipeline each; some run at the same
// time). See docs/benchmarks.md, "SAML sign-ins".
func BenchmarkACS(b *testing.B) {
	env := servertest.New(b, func(c *server.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		// One client posts every sign-in: the rate limits (two Redis
		// calls per sign-in, counted below) must not refuse them.
		c.SAML.ACSClientLimit = 600000
		c.SAML.ACSWorkspaceLimit = 600000
	})
	idp := newSSOIdP(b, "https://idp.test")
	addWorkspace(b, env, "bench", idp, nil)
	// The member signs in once so that later sign-ins find the membership.
	if pg := newSSOBrowser(env).signIn(b, idp, "bench", assertionOpts{NameID: "member@bench.example"}); pg.Status != http.StatusSeeOther {
		b.Fatalf("setup sign-in: %d", pg.Status)
	}
	// Keep a connection per concurrent sign-in alive (the default keeps 2),
	// as a browser population would have its own connections.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	calls := &callCounter{}
	env.Store.(*redisstore.Store).Client().AddHook(calls)
	var seq atomic.Int64
	for _, kind := range []struct {
		name  string
		email func(int) string
	}{
		{"existing-member", func(int) string { return "member@bench.example" }},
		{"jit-create", func(i int) string { return fmt.Sprintf("jit-%d-%d@bench.example", seq.Add(1), i) }},
	} {
		b.Run("serial/"+kind.name, func(b *testing.B) {
			logins, bind := prepareLogins(b, env, idp, "bench", b.N, kind.email)
			sp := ceilingSP(b, env, idp, "bench")
			var parse, acs, parseCPU, acsCPU time.Duration
			redisCPU := redisCPUTime(b, env)
			calls.n.Store(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0, c0 := time.Now(), processCPU()
				parseOnly(b, sp, logins[i])
				t1, c1 := time.Now(), processCPU()
				postACS(b, client, env, "bench", bind, logins[i])
				acs += time.Since(t1)
				acsCPU += processCPU() - c1
				parse += t1.Sub(t0)
				parseCPU += c1 - c0
			}
			b.StopTimer()
			reportACS(b, parse, acs, calls.n.Load())
			reportCPU(b, parseCPU, acsCPU, redisCPUTime(b, env)-redisCPU)
		})
		// Throughput: 8 concurrent sign-ins. Chunks of 64 responses are
		// parsed alone, then posted to the ACS, alternately, so that both
		// see the same machine load.
		b.Run("parallel/"+kind.name, func(b *testing.B) {
			logins, bind := prepareLogins(b, env, idp, "bench", b.N, kind.email)
			sp := ceilingSP(b, env, idp, "bench")
			var parse, acs, parseCPU, acsCPU time.Duration
			redisCPU := redisCPUTime(b, env)
			calls.n.Store(0)
			b.ResetTimer()
			for off := 0; off < b.N; off += 64 {
				chunk := logins[off:min(off+64, b.N)]
				t0, c0 := time.Now(), processCPU()
				concurrently(8, chunk, func(l benchLogin) { parseOnly(b, sp, l) })
				t1, c1 := time.Now(), processCPU()
				concurrently(8, chunk, func(l benchLogin) { postACS(b, client, env, "bench", bind, l) })
				acs += time.Since(t1)
				acsCPU += processCPU() - c1
				parse += t1.Sub(t0)
				parseCPU += c1 - c0
			}
			b.StopTimer()
			reportACS(b, parse, acs, calls.n.Load())
			reportCPU(b, parseCPU, acsCPU, redisCPUTime(b, env)-redisCPU)
		})
	}
}

// concurrently runs f over ls with n goroutines and waits.
func concurrently(n int, ls []benchLogin, f func(benchLogin)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ls) {
					return
				}
				f(ls[i])
			}
		}()
	}
	wg.Wait()
}

func reportACS(b *testing.B, parse, acs time.Duration, calls int64) {
	b.ReportMetric(float64(calls)/float64(b.N), "redis-calls/op")
	b.ReportMetric(float64(b.N)/parse.Seconds(), "ceiling/s")
	b.ReportMetric(float64(b.N)/acs.Seconds(), "acs/s")
	b.ReportMetric(100*parse.Seconds()/acs.Seconds(), "%ceiling")
}

// reportCPU reports the CPU time per sign-in of this process (HTTP
// client, server, GC) while it parsed alone and while it signed in through
// the ACS, and of redis-server over the whole measurement (it is idle while
// responses are parsed alone).
func reportCPU(b *testing.B, parse, acs, redis time.Duration) {
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	b.ReportMetric(per(parse), "ceiling-cpu-µs/op")
	b.ReportMetric(per(acs), "acs-cpu-µs/op")
	b.ReportMetric(per(redis), "redis-cpu-µs/op")
}

// processCPU is this process's CPU time (user + sys).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPUTime is redis-server's CPU time (user + sys) from INFO cpu,
// read through a client of its own (not counted as the server's calls).
func redisCPUTime(b *testing.B, env *servertest.Env) time.Duration {
	rc, ok := env.Store.(*redisstore.Store).Client().(*redis.Client)
	if !ok {
		b.Fatal("the benchmark's store is not a single redis-server")
	}
	opt := rc.Options()
	c := redis.NewClient(&redis.Options{Addr: opt.Addr, Username: opt.Username, Password: opt.Password})
	defer c.Close()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatalf("INFO cpu: %v", err)
	}
	var total time.Duration
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "used_cpu_sys" && k != "used_cpu_user") {
			continue
		}
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.Fatalf("INFO cpu %s: %v", line, err)
		}
		total += time.Duration(sec * float64(time.Second))
	}
	return total
}

// callCounter counts Redis round trips: one per command, one per pipeline.
type callCounter struct{ n atomic.Int64 }

func (h *callCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *callCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *callCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
