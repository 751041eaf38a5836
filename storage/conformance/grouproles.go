package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// Group rules from SCIM groups: CreateGroup, ChangeGroup and DeleteGroup
// re-evaluate the roles of the members whose groups they change, in the
// same atomic step, and record one membership.roles_changed event per
// member whose roles changed.

var groupRoleCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"GroupRolesFollowMembership", testGroupRolesFollowMembership},
	{"GroupRolesRulesWin", testGroupRolesRulesWin},
	{"GroupRolesConcurrentChanges", testGroupRolesConcurrentChanges},
	{"GroupRolesUserWriteRace", testGroupRolesUserWriteRace},
	{"GroupRolesConcurrentUserWrites", testGroupRolesConcurrentUserWrites},
}

// setGroupRules gives ws the rules (explicit values win unless rulesWin).
func setGroupRules(t *testing.T, s storage.Store, ws string, rulesWin bool, rules ...storage.GroupRule) {
	t.Helper()
	_, err := s.UpdateWorkspace(ctxT(t), ws, func(w *storage.Workspace) error {
		w.Settings.Roles = storage.RoleSettings{GroupRules: rules, GroupRulesWin: rulesWin}
		return nil
	})
	must(t, err, "set group rules")
}

// scimUser creates a SCIM membership that was sent the explicit values
// (roles as a SCIM create decides them: explicit, else the default).
func scimUser(t *testing.T, s storage.Store, ws, userName string, explicit storage.Roles) storage.User {
	t.Helper()
	a, _, err := s.GetOrCreateAccount(ctxT(t), storage.Account{Email: userName, Source: storage.SourceSCIM, OriginWorkspace: ws})
	must(t, err, "account for "+userName)
	u, err := s.CreateUser(ctxT(t), ws, storage.User{AccountID: a.ID, UserName: userName, Active: true, Verified: true,
		Source: storage.SourceSCIM, ExplicitRoles: &explicit,
		Roles: storage.DefaultSettings().MemberRoles(explicit, nil).Roles})
	must(t, err, "create user "+userName)
	return u
}

func wantRoles(t *testing.T, s storage.Store, ws, id string, want storage.Roles, what string) storage.User {
	t.Helper()
	u, err := s.GetUser(ctxT(t), ws, id)
	must(t, err, what)
	if u.Roles != want {
		t.Fatalf("%s: roles %+v, want %+v", what, u.Roles, want)
	}
	return u
}

// rolesEvents returns the membership.roles_changed events of ws after
// cursor, and the new cursor.
func rolesEvents(t *testing.T, s storage.Store, ws, after string) ([]storage.Event, string) {
	t.Helper()
	evs, err := s.ListEvents(ctxT(t), ws, after, 1000)
	must(t, err, "list events")
	var out []storage.Event
	for _, e := range evs {
		if e.Type == storage.RolesChangedEvent {
			out = append(out, e)
		}
		after = e.ID
	}
	return out, after
}

// wantDetail checks the listed detail keys of e.
func wantDetail(t *testing.T, e storage.Event, what string, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if got := e.Detail[kv[i]]; got != kv[i+1] {
			t.Fatalf("%s: detail %s = %q, want %q (detail %v)", what, kv[i], got, kv[i+1], e.Detail)
		}
	}
}

func testGroupRolesFollowMembership(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	setGroupRules(t, s, wsA, false,
		storage.GroupRule{Group: "eng", Roles: storage.Roles{Dev: storage.RoleAdmin}},
		storage.GroupRule{Group: "ext-ops", Roles: storage.Roles{Dev: storage.RoleNoAccess, Prod: storage.RoleAnalyst}})
	op := storage.RoleOperator
	plain := scimUser(t, s, wsA, "plain@example.com", storage.Roles{})
	sent := scimUser(t, s, wsA, "sent@example.com", storage.Roles{Dev: storage.RoleAnalyst})
	_, cursor := rolesEvents(t, s, wsA, "")

	// A new group with members: the rule gives DEV Admin where no
	// explicit value was sent; the explicit value wins for the other.
	eng, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "eng", Members: []string{plain.ID, sent.ID}},
		storage.Event{Type: "scim.group.created", Actor: "scim"})
	must(t, err, "create eng")
	u := wantRoles(t, s, wsA, plain.ID, storage.Roles{Dev: storage.RoleAdmin, Test: op, Prod: op}, "plain in eng")
	if u.Version != plain.Version+1 {
		t.Fatalf("a roles change is a write: version %d, want %d", u.Version, plain.Version+1)
	}
	if u.Explicit() != (storage.Roles{}) {
		t.Fatalf("explicit values changed by a group: %+v", u.Explicit())
	}
	wantRoles(t, s, wsA, sent.ID, storage.Roles{Dev: storage.RoleAnalyst, Test: op, Prod: op}, "explicit wins")
	evs, cursor := rolesEvents(t, s, wsA, cursor)
	if len(evs) != 1 || evs[0].UserID != plain.ID {
		t.Fatalf("create: want one roles event for the plain member, got %+v", evs)
	}
	wantDetail(t, evs[0], "create event", "cause", "scim.group.created", "groupId", eng.ID, "displayName", "eng",
		"from", "dev=Operator,test=Operator,prod=Operator", "to", "dev=Admin,test=Operator,prod=Operator",
		"dev.source", storage.RoleSourceRule, "dev.rule", "1", "dev.group", "eng", "dev.scimGroup", eng.ID,
		"test.source", storage.RoleSourceDefault, "prod.source", storage.RoleSourceDefault)
	if evs[0].AccountID != plain.AccountID {
		t.Fatalf("event account %q, want %q", evs[0].AccountID, plain.AccountID)
	}

	// A group matched by its externalId; a change that changes no roles
	// records no roles event.
	ops, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Operations", ExternalID: "ext-ops"})
	must(t, err, "create ops")
	_, err = s.ChangeGroup(ctx, wsA, ops.ID, storage.GroupChange{AddMembers: []string{sent.ID},
		Events: []storage.Event{{Type: "scim.group.updated", Actor: "scim"}}})
	must(t, err, "add sent to ops")
	wantRoles(t, s, wsA, sent.ID, storage.Roles{Dev: storage.RoleAnalyst, Test: op, Prod: storage.RoleAnalyst}, "ops by externalId")
	evs, cursor = rolesEvents(t, s, wsA, cursor)
	if len(evs) != 1 || evs[0].UserID != sent.ID {
		t.Fatalf("add: want one roles event, got %+v", evs)
	}
	wantDetail(t, evs[0], "add event", "cause", "scim.group.updated", "groupId", ops.ID, "displayName", "Operations",
		"dev.source", storage.RoleSourceAttribute, "prod.source", storage.RoleSourceRule, "prod.rule", "2",
		"prod.group", "ext-ops", "prod.scimGroup", ops.ID, "to", "dev=Analyst,test=Operator,prod=Analyst")
	_, err = s.ChangeGroup(ctx, wsA, ops.ID, storage.GroupChange{AddMembers: []string{sent.ID},
		Events: []storage.Event{{Type: "scim.group.updated", Actor: "scim"}}})
	must(t, err, "add sent to ops again")
	if evs, _ = rolesEvents(t, s, wsA, cursor); len(evs) != 0 {
		t.Fatalf("a change that changes no roles recorded %+v", evs)
	}

	// A new externalId touches every member: the rule no longer matches.
	other := "other"
	_, err = s.ChangeGroup(ctx, wsA, ops.ID, storage.GroupChange{ExternalID: &other,
		Events: []storage.Event{{Type: "scim.group.updated", Actor: "scim"}}})
	must(t, err, "change externalId")
	wantRoles(t, s, wsA, sent.ID, storage.Roles{Dev: storage.RoleAnalyst, Test: op, Prod: op}, "externalId changed")
	// Renamed to a rule's group: matched by displayName.
	name := "ext-ops"
	_, err = s.ChangeGroup(ctx, wsA, ops.ID, storage.GroupChange{DisplayName: &name})
	must(t, err, "rename")
	wantRoles(t, s, wsA, sent.ID, storage.Roles{Dev: storage.RoleAnalyst, Test: op, Prod: storage.RoleAnalyst}, "renamed")

	// Replacing the members touches the old ones too; removal falls back
	// to the explicit value or the default.
	_, err = s.ChangeGroup(ctx, wsA, eng.ID, storage.GroupChange{ReplaceMembers: &[]string{sent.ID}})
	must(t, err, "replace eng members")
	wantRoles(t, s, wsA, plain.ID, storage.Roles{Dev: op, Test: op, Prod: op}, "replaced out of eng")
	// Rule 1 (eng, DEV Admin) comes before rule 2 (ext-ops, DEV NoAccess)
	// but the explicit DEV value still wins.
	wantRoles(t, s, wsA, sent.ID, storage.Roles{Dev: storage.RoleAnalyst, Test: op, Prod: storage.RoleAnalyst}, "still explicit")
	_, err = s.ChangeGroup(ctx, wsA, eng.ID, storage.GroupChange{AddMembers: []string{plain.ID}})
	must(t, err, "plain back in eng")
	_, err = s.ChangeGroup(ctx, wsA, ops.ID, storage.GroupChange{AddMembers: []string{plain.ID}})
	must(t, err, "plain in ops")
	wantRoles(t, s, wsA, plain.ID, storage.Roles{Dev: storage.RoleAdmin, Test: op, Prod: storage.RoleAnalyst}, "first rule wins")
	_, cursor = rolesEvents(t, s, wsA, cursor)

	// Deleting a group re-evaluates its members with the delete's event
	// as the cause, in the same step.
	must(t, s.DeleteGroup(ctx, wsA, eng.ID, 0, storage.Event{Type: "scim.group.deleted", Actor: "scim"}), "delete eng")
	wantRoles(t, s, wsA, plain.ID, storage.Roles{Dev: storage.RoleNoAccess, Test: op, Prod: storage.RoleAnalyst}, "eng deleted")
	evs, _ = rolesEvents(t, s, wsA, cursor)
	if len(evs) != 1 || evs[0].UserID != plain.ID {
		t.Fatalf("delete: want one roles event, got %+v", evs)
	}
	wantDetail(t, evs[0], "delete event", "cause", "scim.group.deleted", "groupId", eng.ID, "displayName", "eng",
		"from", "dev=Admin,test=Operator,prod=Analyst", "to", "dev=NoAccess,test=Operator,prod=Analyst",
		"dev.rule", "2", "dev.scimGroup", ops.ID)

	// A workspace without rules: membership changes no roles.
	b := scimUser(t, s, wsB, "b@example.com", storage.Roles{})
	g, err := s.CreateGroup(ctx, wsB, storage.Group{DisplayName: "eng", Members: []string{b.ID}})
	must(t, err, "group in the other workspace")
	wantRoles(t, s, wsB, b.ID, storage.Roles{Dev: op, Test: op, Prod: op}, "no rules")
	if u, _ := s.GetUser(ctx, wsB, b.ID); u.Version != b.Version {
		t.Fatalf("no rules: the member was written (version %d, want %d)", u.Version, b.Version)
	}
	if evs, _ := rolesEvents(t, s, wsB, ""); len(evs) != 0 {
		t.Fatalf("no rules: roles events %+v", evs)
	}
	must(t, s.DeleteGroup(ctx, wsB, g.ID, 0), "delete in the other workspace")
}

func testGroupRolesRulesWin(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	setGroupRules(t, s, wsA, true, storage.GroupRule{Group: "admins", Roles: storage.Roles{Prod: storage.RoleAdmin}})
	op := storage.RoleOperator
	u := scimUser(t, s, wsA, "sent@example.com", storage.Roles{Prod: storage.RoleNoAccess})
	g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "admins", Members: []string{u.ID}})
	must(t, err, "create")
	wantRoles(t, s, wsA, u.ID, storage.Roles{Dev: op, Test: op, Prod: storage.RoleAdmin}, "rules win")
	_, err = s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{RemoveMembers: []string{u.ID}})
	must(t, err, "remove")
	wantRoles(t, s, wsA, u.ID, storage.Roles{Dev: op, Test: op, Prod: storage.RoleNoAccess}, "back to the explicit value")
}

// redBlueUsers gives wsA rules for the groups red and blue and returns
// three SCIM users sent the explicit values.
func redBlueUsers(t *testing.T, s storage.Store, explicit storage.Roles) []storage.User {
	t.Helper()
	setGroupRules(t, s, wsA, false,
		storage.GroupRule{Group: "red", Roles: storage.Roles{Dev: storage.RoleAdmin}},
		storage.GroupRule{Group: "blue", Roles: storage.Roles{Dev: storage.RoleAnalyst, Test: storage.RoleAnalyst}})
	var users []storage.User
	for i := range 3 {
		users = append(users, scimUser(t, s, wsA, fmt.Sprintf("u%d@example.com", i), explicit))
	}
	return users
}

// testGroupRolesConcurrentChanges: concurrent changes of two groups that
// add and remove the same members end with every member's roles equal to
// a serial evaluation of its final groups, and the last roles event of
// each member says so.
func testGroupRolesConcurrentChanges(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	users := redBlueUsers(t, s, storage.Roles{})
	red, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "red"})
	must(t, err, "red")
	blue, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "blue", ExternalID: "blue-x"})
	must(t, err, "blue")
	groups := []string{red.ID, blue.ID}
	const writers, changes = 8, 12
	errs := parallel(writers, func(w int) error {
		r := rand.New(rand.NewPCG(uint64(w), 7))
		for range changes {
			ch := storage.GroupChange{Events: []storage.Event{{Type: "scim.group.updated", Actor: "scim"}}}
			m := users[r.IntN(len(users))].ID
			if r.IntN(2) == 0 {
				ch.AddMembers = []string{m}
			} else {
				ch.RemoveMembers = []string{m}
			}
			if _, err := s.ChangeGroup(context.Background(), wsA, groups[r.IntN(2)], ch); err != nil {
				return err
			}
		}
		return nil
	})
	settings, refs := afterWriters(t, s, errs, users)
	last := map[string]storage.Event{}
	for after := ""; ; {
		evs, err := s.ListEvents(ctx, wsA, after, 1000)
		must(t, err, "events")
		for _, e := range evs {
			if e.Type == storage.RolesChangedEvent {
				last[e.UserID] = e
			}
		}
		if len(evs) < 1000 {
			break
		}
		after = evs[len(evs)-1].ID
	}
	for _, u := range users {
		want := settings.MemberRoles(storage.Roles{}, storage.SCIMGroupNames(refs[u.ID])).Roles
		got := wantRoles(t, s, wsA, u.ID, want, "after concurrent changes of "+u.UserName+" in "+refsString(refs[u.ID]))
		if e, ok := last[u.ID]; ok && e.Detail["to"] != got.Roles.Detail() {
			t.Fatalf("%s: last roles event says %q, roles are %q", u.UserName, e.Detail["to"], got.Roles.Detail())
		}
		if _, ok := last[u.ID]; !ok && got.Roles != users[0].Roles {
			t.Fatalf("%s: roles changed without an event", u.UserName)
		}
		if got.Roles.Dev != storage.RoleOperator && last[u.ID].Detail["dev.source"] != storage.RoleSourceRule {
			t.Fatalf("%s: DEV %s from a rule, but the last event says %v", u.UserName, got.Roles.Dev, last[u.ID].Detail)
		}
	}
}

// afterWriters checks the errors of concurrent writers and returns what
// a serial evaluation of users' roles takes after them: the workspace's
// settings and the users' groups.
func afterWriters(t *testing.T, s storage.Store, errs []error, users []storage.User) (storage.Settings, map[string][]storage.GroupRef) {
	t.Helper()
	for _, err := range errs {
		must(t, err, "concurrent write")
	}
	ws, err := s.GetWorkspace(ctxT(t), wsA)
	must(t, err, "workspace")
	refs, err := s.UserGroups(ctxT(t), wsA, userIDs(users))
	must(t, err, "user groups")
	return ws.Settings, refs
}

// sendExplicit is an UpdateUser callback that sets the explicit role
// values and leaves the roles to the store, as a SCIM user write does.
func sendExplicit(explicit storage.Roles) func(*storage.User) error {
	return func(u *storage.User) error {
		u.ExplicitRoles, u.Roles = &explicit, storage.Roles{}
		return nil
	}
}

// testGroupRolesUserWriteRace: a group change that commits after a user
// write read the user (and that changes no roles, so not the user's
// record) makes the write start again: the roles it writes are decided
// from the user's groups as the write finds them when it is applied.
func testGroupRolesUserWriteRace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	setGroupRules(t, s, wsA, false, storage.GroupRule{Group: "eng", Roles: storage.Roles{Dev: storage.RoleAnalyst}})
	op := storage.RoleOperator
	sent := storage.Roles{Dev: storage.RoleAdmin}
	eng, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "eng"})
	must(t, err, "eng")
	for _, c := range []struct {
		name  string
		added bool // the group change adds the user to eng (else removes it)
		want  storage.Roles
	}{
		{"added", true, storage.Roles{Dev: storage.RoleAnalyst, Test: op, Prod: op}},
		{"removed", false, storage.Roles{Dev: op, Test: op, Prod: op}},
	} {
		u := scimUser(t, s, wsA, c.name+"@example.com", sent)
		if !c.added {
			_, err := s.ChangeGroup(ctx, wsA, eng.ID, storage.GroupChange{AddMembers: []string{u.ID}})
			must(t, err, c.name+": add before")
		}
		// The explicit value wins over the rule: being in eng or not
		// changes nothing of the user's record.
		wantRoles(t, s, wsA, u.ID, storage.Roles{Dev: storage.RoleAdmin, Test: op, Prod: op}, c.name+": explicit wins")
		calls := 0
		got, err := s.UpdateUser(ctx, wsA, u.ID, 0, func(x *storage.User) error {
			calls++
			if calls == 1 {
				var ch storage.GroupChange
				if c.added {
					ch.AddMembers = []string{u.ID}
				} else {
					ch.RemoveMembers = []string{u.ID}
				}
				if _, err := s.ChangeGroup(ctx, wsA, eng.ID, ch); err != nil {
					return err
				}
			}
			// The write takes the explicit value away: the rule decides
			// where the user is in eng when the write is applied.
			return sendExplicit(storage.Roles{})(x)
		})
		must(t, err, c.name+": user write")
		if got.Roles != c.want {
			t.Fatalf("%s: write returned roles %+v, want %+v (groups changed after the write read the user)", c.name, got.Roles, c.want)
		}
		wantRoles(t, s, wsA, u.ID, c.want, c.name+": stored roles")
		if calls < 2 {
			t.Fatalf("%s: the write did not start again after the group change (%d calls)", c.name, calls)
		}
	}
}

// testGroupRolesConcurrentUserWrites: concurrent user writes of the
// explicit values and group changes adding and removing the same users
// end with every user's roles equal to a serial evaluation of its final
// explicit values and groups.
func testGroupRolesConcurrentUserWrites(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	users := redBlueUsers(t, s, storage.Roles{Dev: storage.RoleNoAccess})
	red, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "red"})
	must(t, err, "red")
	blue, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "blue"})
	must(t, err, "blue")
	groups := []string{red.ID, blue.ID}
	values := []storage.Roles{{}, {Dev: storage.RoleNoAccess}, {Test: storage.RoleAdmin}, {Dev: storage.RoleOperator, Test: storage.RoleNoAccess}}
	const writers, writes = 8, 15
	errs := parallel(writers, func(w int) error {
		r := rand.New(rand.NewPCG(uint64(w), 13))
		for range writes {
			m := users[r.IntN(len(users))].ID
			var err error
			switch r.IntN(3) {
			case 0:
				_, err = s.UpdateUser(context.Background(), wsA, m, 0, sendExplicit(values[r.IntN(len(values))]))
			case 1:
				_, err = s.ChangeGroup(context.Background(), wsA, groups[r.IntN(2)], storage.GroupChange{AddMembers: []string{m}})
			default:
				_, err = s.ChangeGroup(context.Background(), wsA, groups[r.IntN(2)], storage.GroupChange{RemoveMembers: []string{m}})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	settings, refs := afterWriters(t, s, errs, users)
	for _, u := range users {
		got, err := s.GetUser(ctx, wsA, u.ID)
		must(t, err, "get "+u.UserName)
		want := settings.MemberRoles(got.Explicit(), storage.SCIMGroupNames(refs[u.ID])).Roles
		if got.Roles != want {
			t.Fatalf("%s (explicit %+v, in %s): roles %+v, a serial evaluation gives %+v",
				u.UserName, got.Explicit(), refsString(refs[u.ID]), got.Roles, want)
		}
	}
}
