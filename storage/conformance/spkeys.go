package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// spKeyCases test the service provider's shared key pairs.
var spKeyCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"SPKeys", testSPKeys},
	{"SPKeysCreateRace", testSPKeysCreateRace},
	{"SPKeysConcurrentUpdates", testSPKeysConcurrentUpdates},
}

func spKey(n int) storage.SPKey {
	return storage.SPKey{Key: fmt.Appendf(nil, "key-%d", n), Certificate: fmt.Appendf(nil, "cert-%d", n),
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
}

func testSPKeys(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	_, err := s.SPKeys(ctx)
	wantErr(t, err, storage.ErrNotFound, "keys before create")
	_, err = s.UpdateSPKeys(ctx, func(*storage.SPKeys) error { return nil })
	wantErr(t, err, storage.ErrNotFound, "update before create")

	got, created, err := s.CreateSPKeys(ctx, storage.SPKeys{Current: spKey(1)})
	must(t, err, "create")
	if !created || got.Version != 1 || !bytes.Equal(got.Current.Key, []byte("key-1")) || got.Next != nil || got.Previous != nil {
		t.Fatalf("create = %+v, %v", got, created)
	}
	again, created, err := s.CreateSPKeys(ctx, storage.SPKeys{Current: spKey(2)})
	must(t, err, "second create")
	if created || !bytes.Equal(again.Current.Key, []byte("key-1")) {
		t.Fatalf("second create replaced the keys: %+v, %v", again, created)
	}
	read, err := s.SPKeys(ctx)
	must(t, err, "read")
	if !bytes.Equal(read.Current.Certificate, []byte("cert-1")) || !read.Current.CreatedAt.Equal(spKey(1).CreatedAt) {
		t.Fatalf("read = %+v", read)
	}

	// Rotate then promote, as the sp-key commands do.
	next := spKey(3)
	up, err := s.UpdateSPKeys(ctx, func(k *storage.SPKeys) error { k.Next = &next; return nil })
	must(t, err, "rotate")
	if up.Version != 2 || up.Next == nil || !bytes.Equal(up.Next.Key, []byte("key-3")) {
		t.Fatalf("rotate = %+v", up)
	}
	up, err = s.UpdateSPKeys(ctx, func(k *storage.SPKeys) error {
		old := k.Current
		k.Current, k.Next, k.Previous = *k.Next, nil, &old
		return nil
	})
	must(t, err, "promote")
	read, err = s.SPKeys(ctx)
	must(t, err, "read after promote")
	if read.Version != 3 || !bytes.Equal(read.Current.Key, []byte("key-3")) || read.Next != nil ||
		read.Previous == nil || !bytes.Equal(read.Previous.Key, []byte("key-1")) || up.Version != read.Version {
		t.Fatalf("after promote = %+v", read)
	}

	// A callback error writes nothing and comes back as is.
	boom := errors.New("boom")
	_, err = s.UpdateSPKeys(ctx, func(k *storage.SPKeys) error { k.Next = &next; return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("callback error = %v", err)
	}
	read, err = s.SPKeys(ctx)
	must(t, err, "read after failed update")
	if read.Version != 3 || read.Next != nil {
		t.Fatalf("failed update wrote: %+v", read)
	}

	// The key pairs are global: deleting a workspace leaves them.
	must(t, s.DeleteWorkspace(ctx, wsB), "delete workspace B")
	if _, err := s.SPKeys(ctx); err != nil {
		t.Fatalf("keys after deleting a workspace: %v", err)
	}
}

// testSPKeysCreateRace: processes starting together create one key pair,
// and every one of them gets that pair.
func testSPKeysCreateRace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	const n = 16
	var wg sync.WaitGroup
	results := make([]storage.SPKeys, n)
	createdBy := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], createdBy[i], errs[i] = s.CreateSPKeys(ctx, storage.SPKeys{Current: spKey(i)})
		}()
	}
	wg.Wait()
	winners := 0
	for i := range n {
		must(t, errs[i], "create")
		if createdBy[i] {
			winners++
		}
		if !bytes.Equal(results[i].Current.Key, results[0].Current.Key) {
			t.Fatalf("caller %d got %q, caller 0 got %q", i, results[i].Current.Key, results[0].Current.Key)
		}
	}
	if winners != 1 {
		t.Fatalf("%d callers created the key pairs, want exactly 1", winners)
	}
}

// testSPKeysConcurrentUpdates: parallel updates are all applied.
func testSPKeysConcurrentUpdates(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	_, _, err := s.CreateSPKeys(ctx, storage.SPKeys{Current: spKey(0)})
	must(t, err, "create")
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.UpdateSPKeys(ctx, func(k *storage.SPKeys) error {
				k.Current.Key = append(k.Current.Key, '+')
				return nil
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err, "update")
	}
	got, err := s.SPKeys(ctx)
	must(t, err, "read")
	if got.Version != n+1 || string(got.Current.Key) != "key-0"+string(bytes.Repeat([]byte{'+'}, n)) {
		t.Fatalf("after %d updates: version %d, key %q", n, got.Version, got.Current.Key)
	}
}
