package saml

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestFirstSignInsWave pins the wave detector: a workspace starts without
// preparing, prepares after eleven first sign-ins in a row, stops after
// enough sign-ins of known people, and workspaces do not share a share.
func TestFirstSignInsWave(t *testing.T) {
	var f firstSignIns
	if f.prepare("a") {
		t.Fatal("a workspace with no sign-ins prepares")
	}
	f.record("a", false)
	for i := 1; i <= 10; i++ {
		f.record("a", true)
		if f.prepare("a") {
			t.Fatalf("prepares after %d first sign-ins", i)
		}
	}
	f.record("a", true)
	if !f.prepare("a") {
		t.Fatal("does not prepare after 11 first sign-ins")
	}
	if f.prepare("b") {
		t.Fatal("workspace b shares a's wave")
	}
	for i := 0; i < 200; i++ {
		f.record("a", true) // saturates without overflowing
	}
	if !f.prepare("a") {
		t.Fatal("a long wave stopped preparing")
	}
	known := 0
	for f.prepare("a") {
		f.record("a", false)
		known++
	}
	if known < 8 || known > 12 {
		t.Fatalf("stopped after %d sign-ins of known people; want about eleven", known)
	}
}

// TestFirstSignInsConcurrent: concurrent records lose no update. Forty
// first sign-ins from zero give the same share in any order; one lost
// update would leave it lower (run with -race as well).
func TestFirstSignInsConcurrent(t *testing.T) {
	var want uint32
	for i := 0; i < 40; i++ {
		want = want - want>>waveShift + waveOne>>waveShift
	}
	var f firstSignIns
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				f.record("w", true)
				_ = f.prepare("w")
			}
		}()
	}
	wg.Wait()
	v, _ := f.m.Load("w")
	if got := v.(*atomic.Uint32).Load(); got != want {
		t.Fatalf("share after 40 concurrent first sign-ins = %d, want %d", got, want)
	}
}
