package redisstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// BenchmarkListUsersPage reads a 100-user page at the start and at the end
// of a 20,000-user workspace on a real redis-server. The ordered index makes
// both cost about the same (ZRANGE by rank is O(log n + count)).
func BenchmarkListUsersPage(b *testing.B) {
	ctx := context.Background()
	s := redistest.NewRedisStore(b)
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "paging"}); err != nil {
		b.Fatal(err)
	}
	const n = 20000
	for i := 0; i < n; i++ {
		if _, err := s.CreateUser(ctx, "paging", oktaUser(i, "")); err != nil {
			b.Fatal(err)
		}
	}
	for _, off := range []int{0, n / 2, n - 100} {
		b.Run(fmt.Sprintf("offset=%d", off), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				us, total, err := s.ListUsers(ctx, "paging", off, 100)
				if err != nil || len(us) != 100 || total != n {
					b.Fatalf("page at %d: %d users, total %d, %v", off, len(us), total, err)
				}
			}
		})
	}
}
