package conformance

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

func strp(s string) *string { return &s }

func testGroupCRUD(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	u1 := newUser(t, s, wsA, "g1@example.com")
	u2 := newUser(t, s, wsA, "g2@example.com")
	g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Finance Team", ExternalID: "okta-g1",
		Members: []string{u1.ID, u2.ID}, Attributes: map[string]any{"description": "money"}})
	must(t, err, "create")
	if g.ID == "" || g.Version != 1 || g.Created.IsZero() || !sameSet(g.Members, []string{u1.ID, u2.ID}) ||
		g.WorkspaceID != wsA {
		t.Fatalf("created group %+v", g)
	}
	_, err = s.CreateGroup(ctx, "conf-missing", storage.Group{DisplayName: "x"})
	wantErr(t, err, storage.ErrNotFound, "create in unknown workspace")
	_, err = s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Bad", Members: []string{"no-such-user"}})
	wantErr(t, err, storage.ErrInvalidReference, "create with unknown member")
	if gs, err := s.FindGroups(ctx, wsA, storage.GroupByName, "bad"); err != nil || len(gs) != 0 {
		t.Fatalf("refused create left a group: %d, %v", len(gs), err)
	}

	got, err := s.GetGroup(ctx, wsA, g.ID)
	must(t, err, "get")
	if got.DisplayName != "Finance Team" || got.ExternalID != "okta-g1" || got.Attributes["description"] != "money" ||
		!sameSet(got.Members, g.Members) || got.Version != 1 || !got.Created.Equal(g.Created) {
		t.Fatalf("get group = %+v, want %+v", got, g)
	}
	for _, q := range []struct {
		by    storage.GroupIndex
		value string
	}{
		{storage.GroupByName, "finance team"},
		{storage.GroupByName, "FINANCE TEAM"},
		{storage.GroupByExternal, "okta-g1"},
		{storage.GroupByMember, u1.ID},
		{storage.GroupByMember, u2.ID},
	} {
		gs, err := s.FindGroups(ctx, wsA, q.by, q.value)
		must(t, err, "find")
		if len(gs) != 1 || gs[0].ID != g.ID {
			t.Fatalf("FindGroups(%s=%q) = %v, want [%s]", q.by, q.value, groupIDs(gs), g.ID)
		}
	}
	_, err = s.GetGroup(ctx, wsA, "no-such-group")
	wantErr(t, err, storage.ErrNotFound, "get unknown")

	// Rename and new externalId move the index entries.
	ch, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{DisplayName: strp("Finance"),
		ExternalID: strp("okta-g2"), Attributes: map[string]any{"description": "more money"}})
	must(t, err, "rename")
	if ch.Version != 2 || ch.DisplayName != "Finance" || ch.Attributes["description"] != "more money" ||
		!sameSet(ch.Members, g.Members) {
		t.Fatalf("after rename = %+v", ch)
	}
	for _, q := range []struct {
		by    storage.GroupIndex
		value string
		want  int
	}{
		{storage.GroupByName, "finance team", 0},
		{storage.GroupByName, "finance", 1},
		{storage.GroupByExternal, "okta-g1", 0},
		{storage.GroupByExternal, "okta-g2", 1},
	} {
		gs, err := s.FindGroups(ctx, wsA, q.by, q.value)
		must(t, err, "find after rename")
		if len(gs) != q.want {
			t.Fatalf("after rename FindGroups(%s=%q) = %d, want %d", q.by, q.value, len(gs), q.want)
		}
	}
	// A change that sets nothing still bumps the version (it is a write).
	ch, err = s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{})
	must(t, err, "empty change")
	if ch.Version != 3 {
		t.Fatalf("version after empty change = %d, want 3", ch.Version)
	}

	t.Run("members of another workspace are invalid references", func(t *testing.T) {
		other := newUser(t, s, wsB, "outsider@example.com")
		_, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{AddMembers: []string{other.ID}})
		wantErr(t, err, storage.ErrInvalidReference, "add a member of the other workspace")
		_, err = s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Mixed", Members: []string{u1.ID, other.ID}})
		wantErr(t, err, storage.ErrInvalidReference, "create with a member of the other workspace")
		must(t, s.DeleteUser(ctx, wsB, other.ID, 0), "delete outsider")
	})
	otherSeesNothing(t, s, wsB, []string{u1.ID, u2.ID}, []string{g.ID}, nil)
	t.Run("other workspace may reuse the names", func(t *testing.T) {
		b, err := s.CreateGroup(ctx, wsB, storage.Group{DisplayName: "Finance", ExternalID: "okta-g2"})
		must(t, err, "same displayName and externalId in the other workspace")
		must(t, s.DeleteGroup(ctx, wsB, b.ID, 0), "delete it again")
	})

	must(t, s.DeleteGroup(ctx, wsA, g.ID, 0), "delete")
	_, err = s.GetGroup(ctx, wsA, g.ID)
	wantErr(t, err, storage.ErrNotFound, "get deleted")
	wantErr(t, s.DeleteGroup(ctx, wsA, g.ID, 0), storage.ErrNotFound, "delete twice")
	for _, q := range []struct {
		by    storage.GroupIndex
		value string
	}{{storage.GroupByName, "finance"}, {storage.GroupByExternal, "okta-g2"}, {storage.GroupByMember, u1.ID}} {
		if gs, err := s.FindGroups(ctx, wsA, q.by, q.value); err != nil || len(gs) != 0 {
			t.Fatalf("after delete FindGroups(%s=%q) = %d, %v", q.by, q.value, len(gs), err)
		}
	}
	// Users are untouched by a group delete.
	if _, err := s.GetUser(ctx, wsA, u1.ID); err != nil {
		t.Fatalf("member gone after group delete: %v", err)
	}
}

func testGroupUniqueness(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	a, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Legal", ExternalID: "x-1"})
	must(t, err, "create")
	_, err = s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "LEGAL"})
	wantConflict(t, err, "displayName", "displayName differing in case")
	// externalId is indexed, not unique (RFC 7643 §3.1).
	o, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Other", ExternalID: "x-1"})
	must(t, err, "shared externalId")
	if gs, err := s.FindGroups(ctx, wsA, storage.GroupByExternal, "x-1"); err != nil || len(gs) != 2 ||
		gs[0].ID != a.ID || gs[1].ID != o.ID {
		t.Fatalf("find by shared externalId = %d groups, %v", len(gs), err)
	}
	must(t, s.DeleteGroup(ctx, wsA, o.ID, 0), "delete the second")
	b, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "HR"})
	must(t, err, "create second")
	_, err = s.ChangeGroup(ctx, wsA, b.ID, storage.GroupChange{DisplayName: strp("legal")})
	wantConflict(t, err, "displayName", "rename onto a taken displayName")
	got, err := s.GetGroup(ctx, wsA, b.ID)
	must(t, err, "get after refused changes")
	if got.DisplayName != "HR" || got.ExternalID != "" || got.Version != 1 {
		t.Fatalf("refused change altered the group: %+v", got)
	}
	_, err = s.ChangeGroup(ctx, wsA, a.ID, storage.GroupChange{DisplayName: strp("legal")})
	must(t, err, "change case of own displayName")

	const n = 50
	errs := parallel(n, func(i int) error {
		_, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: []string{"Ops", "OPS", "ops"}[i%3]})
		return err
	})
	oneWinner(t, errs, "displayName", "parallel CreateGroup of one displayName")
	otherSeesNothing(t, s, wsB, nil, []string{a.ID, b.ID}, nil)
}

func testGroupChangeSemantics(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	var u []storage.User
	for i := 0; i < 5; i++ {
		u = append(u, newUser(t, s, wsA, fmt.Sprintf("sem%d@example.com", i)))
	}
	g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Sem", Members: []string{u[0].ID, u[1].ID}})
	must(t, err, "create")
	// Replace, then remove, then add, in that order.
	rep := []string{u[1].ID, u[2].ID, u[3].ID}
	ch, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{ReplaceMembers: &rep,
		RemoveMembers: []string{u[3].ID, "never-a-member"}, AddMembers: []string{u[4].ID, u[4].ID}})
	must(t, err, "replace+remove+add")
	if !sameSet(ch.Members, []string{u[1].ID, u[2].ID, u[4].ID}) {
		t.Fatalf("members = %v", ch.Members)
	}
	for i, want := range []int{0, 1, 1, 0, 1} {
		gs, err := s.FindGroups(ctx, wsA, storage.GroupByMember, u[i].ID)
		must(t, err, "find by member")
		if len(gs) != want {
			t.Fatalf("user %d is in %d groups by the reverse index, want %d", i, len(gs), want)
		}
	}
	// Replace with an empty list empties the group.
	empty := []string{}
	ch, err = s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{ReplaceMembers: &empty})
	must(t, err, "replace with nothing")
	if len(ch.Members) != 0 {
		t.Fatalf("members after empty replace = %v", ch.Members)
	}
	// An unknown member refuses the whole change.
	_, err = s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{DisplayName: strp("Renamed"),
		AddMembers: []string{u[0].ID, "no-such-user"}})
	wantErr(t, err, storage.ErrInvalidReference, "add unknown member")
	got, err := s.GetGroup(ctx, wsA, g.ID)
	must(t, err, "get")
	if got.DisplayName != "Sem" || len(got.Members) != 0 || got.Version != ch.Version {
		t.Fatalf("refused change altered the group: %+v", got)
	}
	// IfVersion.
	_, err = s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{IfVersion: ch.Version - 1, AddMembers: []string{u[0].ID}})
	wantErr(t, err, storage.ErrPreconditionFailed, "stale IfVersion")
	ok, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{IfVersion: ch.Version, AddMembers: []string{u[0].ID}})
	must(t, err, "current IfVersion")
	if ok.Version != ch.Version+1 || !sameSet(ok.Members, []string{u[0].ID}) {
		t.Fatalf("after IfVersion change: %+v", ok)
	}
	_, err = s.ChangeGroup(ctx, wsA, "no-such-group", storage.GroupChange{})
	wantErr(t, err, storage.ErrNotFound, "change unknown group")
	otherSeesNothing(t, s, wsB, userIDs(u), []string{g.ID}, nil)
	// A delete with a stale version is refused and changes nothing.
	wantErr(t, s.DeleteGroup(ctx, wsA, g.ID, ok.Version-1), storage.ErrPreconditionFailed, "delete with stale version")
	if got, err := s.GetGroup(ctx, wsA, g.ID); err != nil || !sameSet(got.Members, []string{u[0].ID}) {
		t.Fatalf("after refused delete: %+v, %v", got, err)
	}
	wantErr(t, s.DeleteGroup(ctx, wsB, g.ID, ok.Version), storage.ErrNotFound, "delete from another workspace")
	must(t, s.DeleteGroup(ctx, wsA, g.ID, ok.Version), "delete with current version")
}

func testGroupConcurrentAdds(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	const n = 200
	ids := make([]string, n)
	errs := parallel(n, func(i int) error {
		u, err := s.CreateUser(ctx, wsA, storage.User{UserName: fmt.Sprintf("member%03d@example.com", i)})
		ids[i] = u.ID
		return err
	})
	for _, err := range errs {
		must(t, err, "create member")
	}
	g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Everyone"})
	must(t, err, "create group")
	errs = parallel(n, func(i int) error {
		_, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{AddMembers: []string{ids[i]}})
		return err
	})
	for _, err := range errs {
		must(t, err, "parallel add")
	}
	got, err := s.GetGroup(ctx, wsA, g.ID)
	must(t, err, "get")
	if !sameSet(got.Members, ids) || got.Version != n+1 {
		t.Fatalf("after %d parallel adds: %d members, version %d; want %d, %d", n, len(got.Members), got.Version, n, n+1)
	}
	// Concurrent removes and adds of disjoint halves.
	errs = parallel(n, func(i int) error {
		var ch storage.GroupChange
		if i%2 == 0 {
			ch.RemoveMembers = []string{ids[i]}
		} else {
			ch.AddMembers = []string{ids[i]}
		}
		_, err := s.ChangeGroup(ctx, wsA, g.ID, ch)
		return err
	})
	for _, err := range errs {
		must(t, err, "parallel add/remove")
	}
	got, err = s.GetGroup(ctx, wsA, g.ID)
	must(t, err, "get")
	if len(got.Members) != n/2 {
		t.Fatalf("after removing half in parallel: %d members, want %d", len(got.Members), n/2)
	}
	otherSeesNothing(t, s, wsB, ids[:10], []string{g.ID}, nil)
}

func testGroupPaging(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	var want []string
	for i := 0; i < 12; i++ {
		g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: fmt.Sprintf("%c-group", 'z'-i)})
		must(t, err, "create")
		want = append(want, g.ID)
	}
	var got []string
	for off := 0; off < 12; off += 5 {
		gs, total, err := s.ListGroups(ctx, wsA, off, 5)
		must(t, err, "list")
		if total != 12 {
			t.Fatalf("total = %d, want 12", total)
		}
		got = append(got, groupIDs(gs)...)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("group pages = %v, want creation order %v", got, want)
	}
	gs, total, err := s.ListGroups(ctx, wsA, 500000, 5)
	must(t, err, "deep page")
	if len(gs) != 0 || total != 12 {
		t.Fatalf("deep page = %d groups, total %d", len(gs), total)
	}
	must(t, s.DeleteGroup(ctx, wsA, want[5], 0), "delete one")
	gs, total, err = s.ListGroups(ctx, wsA, 4, 3)
	must(t, err, "list after delete")
	if total != 11 || strings.Join(groupIDs(gs), ",") != strings.Join([]string{want[4], want[6], want[7]}, ",") {
		t.Fatalf("after delete: %v total %d", groupIDs(gs), total)
	}
	otherSeesNothing(t, s, wsB, nil, want, nil)
}

func testDeleteUserCleansGroups(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	u := newUser(t, s, wsA, "leaver@example.com")
	stay := newUser(t, s, wsA, "stayer@example.com")
	g1, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "One", Members: []string{u.ID, stay.ID}})
	must(t, err, "group one")
	g2, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Two", Members: []string{u.ID}})
	must(t, err, "group two")
	must(t, s.DeleteUser(ctx, wsA, u.ID, 0), "delete user")
	for _, g := range []storage.Group{g1, g2} {
		got, err := s.GetGroup(ctx, wsA, g.ID)
		must(t, err, "get group")
		for _, m := range got.Members {
			if m == u.ID {
				t.Fatalf("deleted user still a member of %s", g.DisplayName)
			}
		}
		if got.Version != g.Version+1 {
			t.Fatalf("group %s version %d after losing a member, want %d", g.DisplayName, got.Version, g.Version+1)
		}
	}
	got, err := s.GetGroup(ctx, wsA, g1.ID)
	must(t, err, "get one")
	if !sameSet(got.Members, []string{stay.ID}) {
		t.Fatalf("group one members = %v, want [%s]", got.Members, stay.ID)
	}
	if gs, err := s.FindGroups(ctx, wsA, storage.GroupByMember, u.ID); err != nil || len(gs) != 0 {
		t.Fatalf("reverse index still lists %d groups for the deleted user (%v)", len(gs), err)
	}
	// A new user may not be added under the deleted id.
	_, err = s.ChangeGroup(ctx, wsA, g2.ID, storage.GroupChange{AddMembers: []string{u.ID}})
	wantErr(t, err, storage.ErrInvalidReference, "add the deleted user")
	ms, err := s.AccountMemberships(ctx, u.AccountID)
	must(t, err, "memberships")
	if len(ms) != 0 {
		t.Fatalf("deleted user's account still lists memberships %v", ms)
	}
	otherSeesNothing(t, s, wsB, []string{u.ID, stay.ID}, []string{g1.ID, g2.ID}, []string{"leaver@example.com"})
}
