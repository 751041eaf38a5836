package redisstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestUpdateUserUnderHeavyContention: 150 concurrent read-modify-writes of
// one user all succeed (the retry loop backs off instead of giving up with
// ErrConflictRetries after maxRetries=100 lost races) and each one is
// counted once.
func TestUpdateUserUnderHeavyContention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := redistest.NewStore(t)
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "hot"}); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, "hot", storage.User{UserName: "hot@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 150
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = s.UpdateUser(ctx, "hot", u.ID, 0, func(x *storage.User) error {
				if x.Attributes == nil {
					x.Attributes = map[string]any{}
				}
				c, _ := x.Attributes["n"].(float64)
				x.Attributes["n"] = c + 1
				return nil
			})
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent update failed: %v", err)
		}
	}
	got, err := s.GetUser(ctx, "hot", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attributes["n"] != float64(n) || got.Version != n+1 {
		t.Fatalf("after %d updates: n=%v version=%d", n, got.Attributes["n"], got.Version)
	}
}
