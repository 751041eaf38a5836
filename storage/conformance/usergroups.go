package conformance

import (
	"fmt"
	"sort"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// refsString renders group refs as "id=name,..." for comparisons.
func refsString(rs []storage.GroupRef) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ","
		}
		out += r.ID + "=" + r.DisplayName
	}
	return out
}

// sortedRefs returns the refs of gs ordered by group id, as UserGroups
// promises them.
func sortedRefs(gs ...storage.Group) []storage.GroupRef {
	out := make([]storage.GroupRef, 0, len(gs))
	for _, g := range gs {
		out = append(out, storage.GroupRef{ID: g.ID, DisplayName: g.DisplayName, ExternalID: g.ExternalID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func wantRefs(t *testing.T, got map[string][]storage.GroupRef, id string, want []storage.GroupRef, what string) {
	t.Helper()
	rs, ok := got[id]
	if !ok {
		t.Fatalf("%s: id %q missing from the result %v", what, id, got)
	}
	if rs == nil {
		t.Fatalf("%s: id %q maps to nil, want an empty or filled slice", what, id)
	}
	if refsString(rs) != refsString(want) {
		t.Fatalf("%s: groups of %q = [%s], want [%s]", what, id, refsString(rs), refsString(want))
	}
}

// testUserGroups checks the member-free group look-up of users: ordering,
// batching, renamed and deleted groups, deleted and unknown users, and
// workspace isolation.
func testUserGroups(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	a := newUser(t, s, wsA, "ug-a@example.com")
	b := newUser(t, s, wsA, "ug-b@example.com")
	c := newUser(t, s, wsA, "ug-c@example.com")
	var gs []storage.Group
	for i := 0; i < 4; i++ {
		members := []string{a.ID}
		if i%2 == 0 {
			members = append(members, b.ID)
		}
		g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: fmt.Sprintf("UG %d", i), Members: members})
		must(t, err, "create group")
		gs = append(gs, g)
	}
	// A large group must not change what is returned (nor be read).
	bulk := []string{a.ID}
	for i := 0; i < 50; i++ {
		bulk = append(bulk, newUser(t, s, wsA, fmt.Sprintf("ug-bulk%02d@example.com", i)).ID)
	}
	big, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "UG big", Members: bulk})
	must(t, err, "create big group")

	got, err := s.UserGroups(ctx, wsA, []string{a.ID, b.ID, c.ID, "no-such-user", a.ID})
	must(t, err, "user groups")
	if len(got) != 4 {
		t.Fatalf("result has %d keys, want 4 (a, b, c, unknown): %v", len(got), got)
	}
	wantRefs(t, got, a.ID, sortedRefs(gs[0], gs[1], gs[2], gs[3], big), "a")
	wantRefs(t, got, b.ID, sortedRefs(gs[0], gs[2]), "b")
	wantRefs(t, got, c.ID, nil, "c (no groups)")
	wantRefs(t, got, "no-such-user", nil, "unknown id")

	t.Run("empty input", func(t *testing.T) {
		got, err := s.UserGroups(ctx, wsA, nil)
		must(t, err, "user groups of nothing")
		if len(got) != 0 {
			t.Fatalf("got %v for no ids", got)
		}
	})

	t.Run("rename shows the new name", func(t *testing.T) {
		_, err := s.ChangeGroup(ctx, wsA, gs[1].ID, storage.GroupChange{DisplayName: strp("UG renamed")})
		must(t, err, "rename")
		gs[1].DisplayName = "UG renamed"
		got, err := s.UserGroups(ctx, wsA, []string{a.ID})
		must(t, err, "user groups")
		wantRefs(t, got, a.ID, sortedRefs(gs[0], gs[1], gs[2], gs[3], big), "a after rename")
	})

	t.Run("removed member and deleted group disappear", func(t *testing.T) {
		_, err := s.ChangeGroup(ctx, wsA, gs[0].ID, storage.GroupChange{RemoveMembers: []string{b.ID}})
		must(t, err, "remove b")
		must(t, s.DeleteGroup(ctx, wsA, gs[3].ID, 0), "delete group 3")
		got, err := s.UserGroups(ctx, wsA, []string{a.ID, b.ID})
		must(t, err, "user groups")
		wantRefs(t, got, a.ID, sortedRefs(gs[0], gs[1], gs[2], big), "a after delete")
		wantRefs(t, got, b.ID, sortedRefs(gs[2]), "b after removal")
	})

	t.Run("deleted user has no groups", func(t *testing.T) {
		must(t, s.DeleteUser(ctx, wsA, b.ID, 0), "delete b")
		got, err := s.UserGroups(ctx, wsA, []string{b.ID})
		must(t, err, "user groups")
		wantRefs(t, got, b.ID, nil, "deleted b")
	})

	t.Run("other workspace sees nothing", func(t *testing.T) {
		got, err := s.UserGroups(ctx, wsB, []string{a.ID, c.ID})
		must(t, err, "user groups in the other workspace")
		wantRefs(t, got, a.ID, nil, "a seen from "+wsB)
		wantRefs(t, got, c.ID, nil, "c seen from "+wsB)
		// A group in B with a user of B does not leak into A's answer.
		ub := newUser(t, s, wsB, "ug-b-only@example.com")
		gb, err := s.CreateGroup(ctx, wsB, storage.Group{DisplayName: "UG 0", Members: []string{ub.ID}})
		must(t, err, "group in B")
		got, err = s.UserGroups(ctx, wsB, []string{ub.ID})
		must(t, err, "user groups in B")
		wantRefs(t, got, ub.ID, sortedRefs(gb), "B's own user")
		got, err = s.UserGroups(ctx, wsA, []string{ub.ID, a.ID})
		must(t, err, "user groups in A")
		wantRefs(t, got, ub.ID, nil, "B's user seen from A")
		wantRefs(t, got, a.ID, sortedRefs(gs[0], gs[1], gs[2], big), "a unchanged by B")
	})

	t.Run("unknown workspace", func(t *testing.T) {
		got, err := s.UserGroups(ctx, "no-such-ws", []string{a.ID})
		must(t, err, "user groups in an unknown workspace")
		wantRefs(t, got, a.ID, nil, "unknown workspace")
	})
}

// testFindUsersWithGroups checks that FindUsers with FindOptions.Groups
// returns what FindUsers without it and UserGroups return separately, for
// every index, and nothing across workspaces.
func testFindUsersWithGroups(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	a := newUser(t, s, wsA, "fwg-a@example.com")
	acct, _, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "fwg-b@example.com", Source: storage.SourceSCIM,
		OriginWorkspace: wsA})
	must(t, err, "account b")
	b, err := s.CreateUser(ctx, wsA, storage.User{AccountID: acct.ID, UserName: "Fwg-B-Name", ExternalID: "ext-b",
		Emails: []string{"fwg-b@example.com", "fwg-b-home@example.com"}, Active: true})
	must(t, err, "user b")
	g1, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "FWG one", Members: []string{a.ID, b.ID}})
	must(t, err, "group one")
	g2, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "FWG two", Members: []string{b.ID}})
	must(t, err, "group two")

	cases := []struct {
		by    storage.UserIndex
		value string
		want  []string
	}{
		{storage.UserByID, a.ID, []string{a.ID}},
		{storage.UserByID, b.ID, []string{b.ID}},
		{storage.UserByID, "no-such-id", nil},
		{storage.UserByUserName, "FWG-A@EXAMPLE.COM", []string{a.ID}},
		{storage.UserByUserName, "fwg-b-name", []string{b.ID}},
		{storage.UserByExternalID, "ext-b", []string{b.ID}},
		{storage.UserByExternalID, "EXT-B", nil},
		{storage.UserByEmail, "FWG-B-HOME@example.com", []string{b.ID}},
		{storage.UserByEmail, "fwg-a@example.com", []string{a.ID}},
		{storage.UserByEmail, "fwg-b-name", nil}, // a userName, not an email
		{storage.UserByUserName, "", nil},
	}
	for _, c := range cases {
		what := fmt.Sprintf("%s %q", c.by, c.value)
		found, err := s.FindUsers(ctx, wsA, c.by, c.value, storage.FindOptions{Groups: true})
		must(t, err, what)
		us, refs := found.Users, found.Groups
		if !sameSet(userIDs(us), c.want) {
			t.Fatalf("%s: users %v, want %v", what, userIDs(us), c.want)
		}
		plain, err := findUsers(ctx, s, wsA, c.by, c.value)
		must(t, err, "FindUsers "+what)
		if !sameSet(userIDs(plain), userIDs(us)) {
			t.Fatalf("%s: without groups %v, with groups %v", what, userIDs(plain), userIDs(us))
		}
		if len(refs) != len(us) {
			t.Fatalf("%s: %d group entries for %d users: %v", what, len(refs), len(us), refs)
		}
		sep, err := s.UserGroups(ctx, wsA, userIDs(us))
		must(t, err, "UserGroups "+what)
		for _, u := range us {
			if u.WorkspaceID != wsA || u.Version < 1 {
				t.Fatalf("%s: incomplete user %+v", what, u)
			}
			wantRefs(t, refs, u.ID, sep[u.ID], what)
		}
	}
	found, err := s.FindUsers(ctx, wsA, storage.UserByID, b.ID, storage.FindOptions{Groups: true})
	must(t, err, "by id")
	us, refs := found.Users, found.Groups
	wantRefs(t, refs, b.ID, sortedRefs(g1, g2), "b's groups")
	if len(us) != 1 || us[0].UserName != "Fwg-B-Name" || us[0].ExternalID != "ext-b" {
		t.Fatalf("by id: %+v", us)
	}

	t.Run("other workspace sees nothing", func(t *testing.T) {
		for _, c := range cases {
			found, err := s.FindUsers(ctx, wsB, c.by, c.value, storage.FindOptions{Groups: true})
			must(t, err, "in "+wsB)
			us, refs := found.Users, found.Groups
			if len(us) != 0 || len(refs) != 0 {
				t.Fatalf("%s %q seen from %s: %v %v", c.by, c.value, wsB, userIDs(us), refs)
			}
		}
	})
}

// testGroupChangeOmitMembers: a change with OmitMembers applies like any
// other and returns the group without its members.
func testGroupChangeOmitMembers(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	a := newUser(t, s, wsA, "omit-a@example.com")
	b := newUser(t, s, wsA, "omit-b@example.com")
	g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Omit", Members: []string{a.ID}})
	must(t, err, "create")
	got, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{IfVersion: g.Version, AddMembers: []string{b.ID},
		DisplayName: strp("Omit renamed"), OmitMembers: true})
	must(t, err, "change omitting members")
	if got.Members != nil {
		t.Fatalf("members returned although omitted: %v", got.Members)
	}
	if got.ID != g.ID || got.DisplayName != "Omit renamed" || got.Version != g.Version+1 || got.WorkspaceID != wsA {
		t.Fatalf("changed group %+v", got)
	}
	full, err := s.GetGroup(ctx, wsA, g.ID)
	must(t, err, "get")
	if !sameSet(full.Members, []string{a.ID, b.ID}) || full.Version != got.Version {
		t.Fatalf("after change: members %v version %d", full.Members, full.Version)
	}
	_, err = s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{IfVersion: g.Version, OmitMembers: true})
	wantErr(t, err, storage.ErrPreconditionFailed, "stale version with OmitMembers")
	_, err = s.ChangeGroup(ctx, wsB, g.ID, storage.GroupChange{OmitMembers: true, AddMembers: []string{a.ID}})
	wantErr(t, err, storage.ErrNotFound, "change from the other workspace")
	again, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{RemoveMembers: []string{a.ID}})
	must(t, err, "change with members")
	if !sameSet(again.Members, []string{b.ID}) {
		t.Fatalf("members %v, want [%s]", again.Members, b.ID)
	}
}
