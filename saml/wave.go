package saml

import (
	"sync"
	"sync/atomic"
)

// firstSignIns tracks, per workspace, how many of its recent sign-ins
// were first sign-ins (JIT creations), to decide whether handleACS
// prepares a creation before it knows whether the person exists.
//
// Preparing it lets the store consume the assertion, look the email up and
// create in one round trip instead of two (ConsumeOnceAndLoginLookupOrCreate),
// but costs a sign-in of a known person the encoding and shipping of a
// creation that is then dropped (about 90 µs of CPU, docs/benchmarks.md).
// Known people are most sign-ins of a workspace in use; first sign-ins
// come in waves, when a company rolls the workspace out. So the creation
// is prepared only while at least half of the workspace's recent sign-ins
// were first sign-ins: an exponentially weighted share with weight 1/16
// for the newest, starting at zero, so it takes eleven first sign-ins in a
// row to start preparing and about as many sign-ins of known people to
// stop. Either way the outcome of a sign-in is the same; only the number
// of round trips differs.
type firstSignIns struct {
	m sync.Map // workspace id -> *atomic.Uint32, the share in 1/65536
}

const (
	waveOne       = 1 << 16 // a share of 1
	waveThreshold = waveOne / 2
	waveShift     = 4 // weight 1/16
)

// prepare reports whether a sign-in to ws should prepare its creation.
func (f *firstSignIns) prepare(ws string) bool {
	v, ok := f.m.Load(ws)
	return ok && v.(*atomic.Uint32).Load() >= waveThreshold
}

// record adds a sign-in to ws: first is true for a person without an
// account (created, or refused by a JIT rule), false for a known one.
func (f *firstSignIns) record(ws string, first bool) {
	v, ok := f.m.Load(ws)
	if !ok {
		if !first {
			return // a workspace's share starts at zero: nothing to lower
		}
		v, _ = f.m.LoadOrStore(ws, new(atomic.Uint32))
	}
	share := v.(*atomic.Uint32)
	var x uint32
	if first {
		x = waveOne
	}
	for {
		old := share.Load()
		next := old - old>>waveShift + x>>waveShift
		if share.CompareAndSwap(old, next) {
			return
		}
	}
}
