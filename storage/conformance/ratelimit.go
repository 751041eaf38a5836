package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// rateCases are the cases of Store.Allow (a GCRA limiter).
var rateCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"RateBurstThenRefused", testRateBurstThenRefused},
	{"RateNoDoubleBurstAtBoundary", testRateNoDoubleBurst},
	{"RateKeysIndependent", testRateKeysIndependent},
	{"RateRace", testRateRace},
	{"RateRecovers", testRateRecovers},
	{"RateSeveralLimits", testRateSeveralLimits},
	{"RateCheck", testRateCheck},
}

// allowN calls Allow n times and returns how many were allowed and the
// last verdict.
func allowN(t *testing.T, s storage.Store, key string, r storage.Rate, n int) (int, storage.Allowed) {
	t.Helper()
	ok := 0
	var last storage.Allowed
	for range n {
		var err error
		last, err = s.Allow(ctxT(t), storage.Limit{Key: key, Rate: r})
		must(t, err, "allow "+key)
		if last.OK {
			ok++
			if last.RetryAfter != 0 {
				t.Fatalf("allowed with RetryAfter %v, want 0", last.RetryAfter)
			}
		}
	}
	return ok, last
}

// testRateBurstThenRefused: a burst of Burst events passes at once, the
// next is refused with a RetryAfter of at most one emission interval
// (Period/Limit), and a refusal is not counted.
func testRateBurstThenRefused(t *testing.T, s storage.Store) {
	r := storage.Rate{Limit: 3, Burst: 3, Period: time.Minute}
	if ok, _ := allowN(t, s, "burst", r, 3); ok != 3 {
		t.Fatalf("%d of a burst of 3 allowed, want 3", ok)
	}
	ok, last := allowN(t, s, "burst", r, 5)
	if ok != 0 {
		t.Fatalf("%d allowed after the burst, want 0", ok)
	}
	if last.RetryAfter <= 0 || last.RetryAfter > 20*time.Second {
		t.Fatalf("RetryAfter = %v, want in (0, 20s] (one event per 20s)", last.RetryAfter)
	}
	// Burst 0 means Limit; a rate with no limit or period is an error.
	if ok, _ := allowN(t, s, "burst-default", storage.Rate{Limit: 2, Period: time.Hour}, 3); ok != 2 {
		t.Fatalf("Burst 0: %d of 3 allowed, want Limit = 2", ok)
	}
	if _, err := s.Allow(ctxT(t), storage.Limit{Key: "bad", Rate: storage.Rate{Limit: 0, Period: time.Minute}}); err == nil {
		t.Fatalf("Allow with Limit 0: no error")
	}
	if _, err := s.Allow(ctxT(t), storage.Limit{Key: "bad", Rate: storage.Rate{Limit: 1}}); err == nil {
		t.Fatalf("Allow with Period 0: no error")
	}
	if _, err := s.Allow(ctxT(t)); err == nil {
		t.Fatalf("Allow without limits: no error")
	}
	if got := storage.PerMinute(7); got != (storage.Rate{Limit: 7, Burst: 7, Period: time.Minute}) {
		t.Fatalf("PerMinute(7) = %+v", got)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

// testRateNoDoubleBurst: around the end of what a fixed window would be
// (one Period after the first event), no interval lets through more
// than Burst + d/T events (d its length, T = Period/Limit). A fixed
// window lets almost twice the limit through there: the rest of the old
// window just before the boundary and a whole new window just after.
// The waits are real time: the limiter runs on the server's clock. (The
// burst takes 2s to refill, so that a backend whose keys expire up to a
// second early, like the embedded server, still keeps the state.)
func testRateNoDoubleBurst(t *testing.T, s storage.Store) {
	r := storage.Rate{Limit: 20, Burst: 20, Period: 2 * time.Second}
	interval := r.Period / time.Duration(r.Limit)
	t0 := time.Now()
	if ok, _ := allowN(t, s, "boundary", r, 1); ok != 1 {
		t.Fatalf("first event refused")
	}
	ttlWait(1800*time.Millisecond - time.Since(t0)) // just before one Period
	a := time.Now()
	before, _ := allowN(t, s, "boundary", r, 20)
	ttlWait(2300*time.Millisecond - time.Since(t0)) // just after it
	after, _ := allowN(t, s, "boundary", r, 20)
	d := time.Since(a)
	bound := r.Burst + int(d/interval) + 1
	if before+after > bound {
		t.Fatalf("%d + %d events allowed within %v around the boundary, want at most %d (burst %d + one per %v)",
			before, after, d, bound, r.Burst, interval)
	}
	if before != r.Burst {
		t.Fatalf("%d allowed after a long pause, want a full burst of %d", before, r.Burst)
	}
}

// testRateKeysIndependent: one client using up its burst leaves another
// client's (another key's) untouched.
func testRateKeysIndependent(t *testing.T, s storage.Store) {
	r := storage.Rate{Limit: 3, Period: time.Hour}
	if ok, _ := allowN(t, s, "client:a", r, 10); ok != 3 {
		t.Fatalf("client a: %d of 10 allowed, want 3", ok)
	}
	if ok, _ := allowN(t, s, "client:b", r, 10); ok != 3 {
		t.Fatalf("client b after client a used its burst: %d of 10 allowed, want 3", ok)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

// testRateRace: of 20 racing events with a burst of 5, exactly 5 pass.
func testRateRace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	r := storage.Rate{Limit: 5, Period: time.Hour}
	results := make([]storage.Allowed, 20)
	errs := parallel(20, func(i int) error {
		var err error
		results[i], err = s.Allow(ctx, storage.Limit{Key: "race", Rate: r})
		return err
	})
	allowed := 0
	for i, err := range errs {
		must(t, err, fmt.Sprintf("racing allow %d", i))
		if results[i].OK {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of 20 racing events allowed with a burst of 5", allowed)
	}
}

// testRateRecovers: after RetryAfter (a real wait) the next event passes.
func testRateRecovers(t *testing.T, s storage.Store) {
	r := storage.Rate{Limit: 4, Burst: 2, Period: time.Second}
	if ok, _ := allowN(t, s, "recover", r, 2); ok != 2 {
		t.Fatalf("burst of 2 not allowed")
	}
	ok, last := allowN(t, s, "recover", r, 1)
	if ok != 0 || last.RetryAfter <= 0 || last.RetryAfter > 250*time.Millisecond {
		t.Fatalf("third event: ok=%d RetryAfter=%v, want refused with RetryAfter in (0, 250ms]", ok, last.RetryAfter)
	}
	ttlWait(last.RetryAfter + 50*time.Millisecond)
	if ok, _ := allowN(t, s, "recover", r, 1); ok != 1 {
		t.Fatalf("event after RetryAfter refused")
	}
}

// testRateSeveralLimits: an event is counted against every limit or none.
// While all allow, each counts it; when one refuses, Allowed names it and
// none counts it; keys shared by several calls count each call once.
func testRateSeveralLimits(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	client := storage.Limit{Key: "several:client", Rate: storage.Rate{Limit: 2, Period: time.Hour}}
	ws := storage.Limit{Key: "several:ws", Rate: storage.Rate{Limit: 3, Period: time.Hour}}
	for i := range 2 {
		a, err := s.Allow(ctx, client, ws)
		must(t, err, "allow both")
		if !a.OK {
			t.Fatalf("event %d refused: %+v", i, a)
		}
	}
	// The client's burst of 2 is used up: refused by limit 0, and the
	// workspace's count stays at 2.
	for range 3 {
		a, err := s.Allow(ctx, client, ws)
		must(t, err, "allow over the client's limit")
		if a.OK || a.Limit != 0 || a.RetryAfter <= 0 || a.RetryAfter > 30*time.Minute {
			t.Fatalf("over the client's limit: %+v; want refused by limit 0 within 30m", a)
		}
	}
	other := storage.Limit{Key: "several:other", Rate: storage.Rate{Limit: 5, Period: time.Hour}}
	a, err := s.Allow(ctx, other, ws)
	must(t, err, "another client")
	if !a.OK {
		t.Fatalf("the workspace's third event refused: %+v (refusals were counted)", a)
	}
	// Now the workspace's burst of 3 is used up: limit 1 refuses, and
	// the other client's event is not counted (it keeps 4 of 5).
	a, err = s.Allow(ctx, other, ws)
	must(t, err, "over the workspace's limit")
	if a.OK || a.Limit != 1 {
		t.Fatalf("over the workspace's limit: %+v; want refused by limit 1", a)
	}
	if ok, _ := allowN(t, s, other.Key, other.Rate, 10); ok != 4 {
		t.Fatalf("the other client's limit alone: %d allowed, want 4 (one counted)", ok)
	}
}

// testRateCheck: CheckRate counts nothing, and tells when the next event
// would pass: after a burst of 1 at one event a second, RetryAfter is
// the rest of that second.
func testRateCheck(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	l := storage.Limit{Key: "check", Rate: storage.Rate{Limit: 60, Burst: 1, Period: time.Minute}}
	for range 3 {
		a, err := s.CheckRate(ctx, l)
		must(t, err, "check a fresh key")
		if !a.OK {
			t.Fatalf("check of a fresh key: %+v", a)
		}
	}
	t0 := time.Now()
	a, err := s.Allow(ctx, l)
	must(t, err, "allow")
	if !a.OK {
		t.Fatalf("first event refused after checks: %+v (checks were counted)", a)
	}
	a, err = s.CheckRate(ctx, l)
	must(t, err, "check after the burst")
	elapsed := time.Since(t0)
	if a.OK || a.RetryAfter <= 0 || a.RetryAfter > time.Second || a.RetryAfter < time.Second-elapsed-100*time.Millisecond {
		t.Fatalf("check after the burst: %+v; want refused with RetryAfter close to 1s", a)
	}
	b, err := s.Allow(ctx, l)
	must(t, err, "allow after the burst")
	if b.OK {
		t.Fatal("second event allowed within the second")
	}
}
