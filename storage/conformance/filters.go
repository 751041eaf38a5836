package conformance

import (
	"fmt"
	"slices"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// filterCases check ListUsersFiltered against a model: the members
// ListUsers returns, filtered in Go.
var filterCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"UserFilters", testUserFilters},
	{"UserFiltersFollowGroupRoles", testUserFiltersFollowGroupRoles},
}

// matchesFilter is the model of storage.UserFilter.
func matchesFilter(u storage.User, f storage.UserFilter) bool {
	for i := range storage.Environments {
		if r := f.Roles.Env(i); r != "" && u.Roles.Env(i) != r {
			return false
		}
	}
	if f.Active != nil && u.Active != *f.Active {
		return false
	}
	if f.Verified != nil && u.Verified != *f.Verified {
		return false
	}
	switch f.Source {
	case storage.SourceJIT:
		return u.Source == storage.SourceJIT
	case storage.SourceSCIM:
		return u.Source != storage.SourceJIT
	}
	return true
}

// filterPages reads every page of f in ws, limit members at a time, and
// returns the members' ids and the first page's count.
func filterPages(t *testing.T, s storage.Store, ws string, f storage.UserFilter, limit int) ([]string, storage.UserPage) {
	t.Helper()
	var ids []string
	var first storage.UserPage
	after := ""
	for i := 0; ; i++ {
		p, err := s.ListUsersFiltered(ctxT(t), ws, f, after, limit)
		must(t, err, fmt.Sprintf("filter %+v page %d", f, i))
		if i == 0 {
			first = p
		}
		if len(p.Users) > limit {
			t.Fatalf("filter %+v page %d: %d users, limit %d", f, i, len(p.Users), limit)
		}
		ids = append(ids, userIDs(p.Users)...)
		if p.Next == "" {
			return ids, first
		}
		if i > 100 {
			t.Fatalf("filter %+v: no end after %d pages", f, i)
		}
		after = p.Next
	}
}

// wantFiltered checks that f in ws finds exactly the members the model
// picks from ListUsers, in creation order, paged by 1, 2 and 100, with
// an exact count; and returns their ids.
func wantFiltered(t *testing.T, s storage.Store, ws string, f storage.UserFilter, what string) []string {
	t.Helper()
	all, _, err := s.ListUsers(ctxT(t), ws, 0, 1000)
	must(t, err, "list users")
	want := []string{}
	for _, u := range all {
		if matchesFilter(u, f) {
			want = append(want, u.ID)
		}
	}
	for _, limit := range []int{1, 2, 100} {
		got, first := filterPages(t, s, ws, f, limit)
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: filter %+v by %d = %v, want %v", what, f, limit, got, want)
		}
		if first.Total != len(want) || !first.TotalExact {
			t.Fatalf("%s: filter %+v counts %d (exact %v), want %d", what, f, first.Total, first.TotalExact, len(want))
		}
	}
	return want
}

func ptr(b bool) *bool { return &b }

// filterSet is every filter the cases compare with the model: each facet
// alone, pairs, and a triple.
func filterSet() []storage.UserFilter {
	return []storage.UserFilter{
		{},
		{Roles: storage.Roles{Dev: storage.RoleAdmin}},
		{Roles: storage.Roles{Test: storage.RoleAdmin}},
		{Roles: storage.Roles{Prod: storage.RoleAnalyst}},
		{Roles: storage.Roles{Dev: "Auditor"}},
		{Active: ptr(true)},
		{Active: ptr(false)},
		{Verified: ptr(true)},
		{Verified: ptr(false)},
		{Source: storage.SourceJIT},
		{Source: storage.SourceSCIM},
		{Roles: storage.Roles{Dev: storage.RoleAdmin}, Active: ptr(false)},
		{Roles: storage.Roles{Dev: storage.RoleAdmin}, Active: ptr(true)},
		{Active: ptr(true), Verified: ptr(true)},
		{Source: storage.SourceJIT, Verified: ptr(false)},
		{Roles: storage.Roles{Dev: storage.RoleAdmin, Prod: storage.RoleAnalyst}, Source: storage.SourceSCIM},
		{Roles: storage.Roles{Dev: storage.RoleAdmin}, Active: ptr(false), Source: storage.SourceSCIM},
	}
}

// testUserFilters: every facet and combination finds what the records
// say, through creates (SCIM and JIT), updates and deletes; another
// workspace sees nothing.
func testUserFilters(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	roles := []storage.Roles{
		{Dev: storage.RoleAdmin, Test: storage.RoleOperator, Prod: storage.RoleAnalyst},
		{Dev: storage.RoleOperator, Test: storage.RoleAdmin, Prod: storage.RoleOperator},
		{Dev: storage.RoleAdmin, Test: storage.RoleAdmin, Prod: storage.RoleOperator},
		{Dev: "Auditor", Test: storage.RoleOperator, Prod: storage.RoleAnalyst},
	}
	var ids []string
	for i := 0; i < 12; i++ {
		a := newAccount(t, s, fmt.Sprintf("member%02d@example.com", i))
		u, err := s.CreateUser(ctx, wsA, storage.User{AccountID: a.ID, UserName: a.Email, Emails: []string{a.Email},
			Active: i%3 != 0, Verified: i%4 != 1, Source: storage.SourceSCIM, Roles: roles[i%len(roles)]})
		must(t, err, "create")
		ids = append(ids, u.ID)
	}
	for _, email := range []string{"jit1@example.com", "jit2@example.com"} {
		r, err := s.CreateJITUser(ctx, wsA, jitSignIn(email, wsA, "k-"+email))
		must(t, err, "jit create")
		ids = append(ids, r.User.ID)
	}
	for _, f := range filterSet() {
		wantFiltered(t, s, wsA, f, "after creates")
	}
	if got := wantFiltered(t, s, wsA, storage.UserFilter{Roles: storage.Roles{Dev: storage.RoleAdmin}, Active: ptr(false)},
		"dev admins deactivated"); !slices.Equal(got, []string{ids[0], ids[6]}) {
		t.Fatalf("dev admins deactivated = %v, want members 0 and 6", got)
	}

	// Updates move a member between values; a delete removes it.
	_, err := s.UpdateUser(ctx, wsA, ids[1], 0, func(u *storage.User) error {
		u.Roles.Dev, u.Active, u.Verified = "Auditor", false, true
		return nil
	})
	must(t, err, "update")
	_, err = s.UpdateUser(ctx, wsA, ids[0], 0, func(u *storage.User) error {
		u.Roles.Dev, u.Active = storage.RoleAnalyst, true
		return nil
	})
	must(t, err, "update")
	_, err = s.UpdateUser(ctx, wsA, ids[12], 0, func(u *storage.User) error {
		u.Verified = false
		return nil
	})
	must(t, err, "update jit")
	must(t, s.DeleteUser(ctx, wsA, ids[6], 0), "delete")
	must(t, s.DeleteUser(ctx, wsA, ids[13], 0), "delete jit")
	for _, f := range filterSet() {
		wantFiltered(t, s, wsA, f, "after updates and deletes")
	}
	if got := wantFiltered(t, s, wsA, storage.UserFilter{Roles: storage.Roles{Dev: "Auditor"}, Active: ptr(false)},
		"auditors deactivated"); !slices.Contains(got, ids[1]) || slices.Contains(got, ids[6]) {
		t.Fatalf("auditors deactivated = %v: want the updated member, not the deleted one", got)
	}

	// A cursor from the middle continues after it; one past the end
	// finds nothing.
	all, err := s.ListUsersFiltered(ctx, wsA, storage.UserFilter{}, "", 100)
	must(t, err, "list all")
	half, err := s.ListUsersFiltered(ctx, wsA, storage.UserFilter{}, "", 5)
	must(t, err, "first 5")
	rest, err := s.ListUsersFiltered(ctx, wsA, storage.UserFilter{}, half.Next, 100)
	must(t, err, "the rest")
	if got := append(userIDs(half.Users), userIDs(rest.Users)...); !slices.Equal(got, userIDs(all.Users)) || rest.Next != "" {
		t.Fatalf("first 5 then the rest = %v (next %q), want %v", got, rest.Next, userIDs(all.Users))
	}
	if p, err := s.ListUsersFiltered(ctx, wsA, storage.UserFilter{Source: "ldap"}, "", 10); err != nil || len(p.Users) != 0 || p.Total != 0 {
		t.Fatalf("an unknown source = %+v, %v; want nothing", p, err)
	}

	// Another workspace sees nothing under any filter.
	for _, f := range filterSet() {
		p, err := s.ListUsersFiltered(ctx, wsB, f, "", 100)
		must(t, err, "filter in the other workspace")
		if len(p.Users) != 0 || p.Total != 0 || p.Next != "" {
			t.Fatalf("workspace %s under %+v: %d users, total %d, next %q; want none", wsB, f, len(p.Users), p.Total, p.Next)
		}
	}
	otherSeesNothing(t, s, wsB, ids, nil, nil)
}

// testUserFiltersFollowGroupRoles: roles that group rules give follow
// group changes in the role filters (the group scripts write the records).
func testUserFiltersFollowGroupRoles(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	setGroupRules(t, s, wsA, false, storage.GroupRule{Group: "admins", Roles: storage.Roles{Dev: storage.RoleAdmin}})
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, scimUser(t, s, wsA, fmt.Sprintf("g%d@example.com", i), storage.Roles{}).ID)
	}
	admins := storage.UserFilter{Roles: storage.Roles{Dev: storage.RoleAdmin}}
	if got := wantFiltered(t, s, wsA, admins, "before the group"); len(got) != 0 {
		t.Fatalf("admins before the group = %v", got)
	}
	g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "admins", Members: ids[:2]})
	must(t, err, "create group")
	if got := wantFiltered(t, s, wsA, admins, "group created"); !slices.Equal(got, ids[:2]) {
		t.Fatalf("admins after the group = %v, want %v", got, ids[:2])
	}
	_, err = s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{RemoveMembers: ids[:1], AddMembers: ids[3:]})
	must(t, err, "change group")
	if got := wantFiltered(t, s, wsA, admins, "group changed"); !slices.Equal(got, []string{ids[1], ids[3]}) {
		t.Fatalf("admins after the change = %v, want %v", got, []string{ids[1], ids[3]})
	}
	must(t, s.DeleteGroup(ctx, wsA, g.ID, 0), "delete group")
	if got := wantFiltered(t, s, wsA, admins, "group deleted"); len(got) != 0 {
		t.Fatalf("admins after the delete = %v", got)
	}
	wantFiltered(t, s, wsA, storage.UserFilter{Roles: storage.Roles{Dev: storage.RoleOperator}}, "operators")
	otherSeesNothing(t, s, wsB, ids, []string{g.ID}, nil)
}
