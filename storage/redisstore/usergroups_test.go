package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// commandCalls returns how often Redis ran cmd since the last CONFIG
// RESETSTAT, from INFO commandstats.
func commandCalls(t *testing.T, s *redisstore.Store, cmd string) int {
	t.Helper()
	info, err := s.Client().Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			var n int
			fmt.Sscanf(rest, "%d", &n)
			return n
		}
	}
	return 0
}

// TestUserGroupsReadsNoMembers checks the cost promise of UserGroups on a
// real redis-server: one script call for a whole batch of users, and no
// read of any group's member set, however large.
func TestUserGroupsReadsNoMembers(t *testing.T) {
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redisstore.Options{URL: redistest.Start(t).URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "ug", Name: "ug"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 300; i++ {
		u, err := s.CreateUser(ctx, "ug", storage.User{UserName: fmt.Sprintf("u%d@ug.example", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	big, err := s.CreateGroup(ctx, "ug", storage.Group{DisplayName: "Everyone", Members: ids})
	if err != nil {
		t.Fatal(err)
	}
	// Load the script first (go-redis falls back from EVALSHA to EVAL once).
	if _, err := s.UserGroups(ctx, "ug", ids[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserGroups(ctx, "ug", ids[:100])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:100] {
		if len(got[id]) != 1 || got[id][0] != (storage.GroupRef{ID: big.ID, DisplayName: "Everyone"}) {
			t.Fatalf("groups of %s = %v, want [Everyone]", id, got[id])
		}
	}
	if n := commandCalls(t, s, "smembers") + commandCalls(t, s, "sscan") + commandCalls(t, s, "scard"); n != 0 {
		t.Fatalf("UserGroups read member sets %d times", n)
	}
	scripts := commandCalls(t, s, "evalsha") + commandCalls(t, s, "eval")
	if scripts != 1 {
		t.Fatalf("UserGroups for 100 users ran %d scripts, want 1 round trip", scripts)
	}
}
