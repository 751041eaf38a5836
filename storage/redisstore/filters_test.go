package redisstore_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestFilterBoundsPerCall: a combined filter whose matches are sparse
// examines a bounded number of entries per call. The page comes back
// short with a cursor that continues where the walk stopped, the pages
// together hold every match, and the count beyond the count bound is an
// estimate from the entries examined (TotalExact false).
func TestFilterBoundsPerCall(t *testing.T) {
	ctx := t.Context()
	s := redistest.NewRedisStore(t)
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "big", Name: "big"}); err != nil {
		t.Fatal(err)
	}
	const n = 6000
	active := map[int]bool{0: true, 3000: true, 5500: true}
	var want []string
	for i := range n {
		u, err := s.CreateUser(ctx, "big", storage.User{UserName: fmt.Sprintf("u%d@example.com", i), Active: active[i],
			Verified: true, Source: storage.SourceSCIM, Roles: storage.Roles{Dev: storage.RoleAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		if active[i] {
			want = append(want, u.ID)
		}
	}
	f := storage.UserFilter{Roles: storage.Roles{Dev: storage.RoleAdmin}, Active: new(true)}
	first, err := s.ListUsersFiltered(ctx, "big", f, "", 25)
	if err != nil {
		t.Fatal(err)
	}
	// The page walk stops after 5,000 entries (users 0..4999): two
	// matches, and a cursor.
	if got := userIDsOf(first.Users); !slices.Equal(got, want[:2]) || first.Next != "5000" {
		t.Fatalf("first page %v, next %q; want %v and a cursor after the 5,000th member", got, first.Next, want[:2])
	}
	// The count examines 2,000 entries (one match) and scales to the 6,000.
	if first.TotalExact || first.Total != 3 {
		t.Errorf("count %d (exact %v), want the estimate 3", first.Total, first.TotalExact)
	}
	rest, err := s.ListUsersFiltered(ctx, "big", f, first.Next, 25)
	if err != nil {
		t.Fatal(err)
	}
	if got := userIDsOf(rest.Users); !slices.Equal(got, want[2:]) || rest.Next != "" {
		t.Fatalf("second page %v, next %q; want %v and the end", got, rest.Next, want[2:])
	}
	// One condition is counted exactly, whatever the size.
	all, err := s.ListUsersFiltered(ctx, "big", storage.UserFilter{Active: new(false)}, "", 1)
	if err != nil || all.Total != n-3 || !all.TotalExact {
		t.Errorf("deactivated: %d (exact %v), %v; want %d exactly", all.Total, all.TotalExact, err, n-3)
	}
}

func userIDsOf(us []storage.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}
