package conformance

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

func testUserCRUD(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	acct := newAccount(t, s, "alice@example.com")
	in := storage.User{AccountID: acct.ID, UserName: "Alice@Example.com", ExternalID: "okta-00u1",
		Emails: []string{"Alice@Example.com", "alice.home@example.net"}, Active: true, Verified: true,
		Source: storage.SourceSCIM, Roles: storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Operator"},
		Attributes: map[string]any{"displayName": "Alice A", "name": map[string]any{"givenName": "Alice"}}}
	u, err := s.CreateUser(ctx, wsA, in)
	must(t, err, "create")
	if u.ID == "" || u.Version != 1 || u.Created.IsZero() || !u.Modified.Equal(u.Created) || u.WorkspaceID != wsA {
		t.Fatalf("created user %+v: want id, version 1, created = modified, workspace %s", u, wsA)
	}
	_, err = s.CreateUser(ctx, "conf-missing", storage.User{UserName: "x"})
	wantErr(t, err, storage.ErrNotFound, "create in unknown workspace")

	check := func(what string, got storage.User) {
		t.Helper()
		if got.ID != u.ID || got.UserName != "Alice@Example.com" || got.ExternalID != "okta-00u1" ||
			got.AccountID != acct.ID || !got.Active || !got.Verified || got.Source != storage.SourceSCIM ||
			got.Roles != in.Roles || len(got.Emails) != 2 || got.WorkspaceID != wsA ||
			got.Attributes["displayName"] != "Alice A" || !got.Created.Equal(u.Created) || got.Version != u.Version {
			t.Fatalf("%s = %+v, want %+v", what, got, u)
		}
		name, _ := got.Attributes["name"].(map[string]any)
		if name["givenName"] != "Alice" {
			t.Fatalf("%s: nested attribute lost: %+v", what, got.Attributes)
		}
	}
	got, err := s.GetUser(ctx, wsA, u.ID)
	must(t, err, "get")
	check("get", got)
	got, err = s.GetUserByAccount(ctx, wsA, acct.ID)
	must(t, err, "get by account")
	check("get by account", got)
	for _, q := range []struct {
		by    storage.UserIndex
		value string
	}{
		{storage.UserByUserName, "alice@example.com"},
		{storage.UserByUserName, "ALICE@EXAMPLE.COM"},
		{storage.UserByExternalID, "okta-00u1"},
		{storage.UserByEmail, "alice@example.com"},
		{storage.UserByEmail, "ALICE.HOME@example.net"},
	} {
		us, err := findUsers(ctx, s, wsA, q.by, q.value)
		must(t, err, "find")
		if len(us) != 1 {
			t.Fatalf("FindUsers(%s=%q) = %d users, want 1", q.by, q.value, len(us))
		}
		check(fmt.Sprintf("find %s=%s", q.by, q.value), us[0])
	}
	// externalId is exact.
	if us, err := findUsers(ctx, s, wsA, storage.UserByExternalID, "OKTA-00U1"); err != nil || len(us) != 0 {
		t.Fatalf("externalId lookup must be case-sensitive: %d, %v", len(us), err)
	}
	_, err = s.GetUser(ctx, wsA, "no-such-user")
	wantErr(t, err, storage.ErrNotFound, "get unknown")
	_, err = s.GetUserByAccount(ctx, wsA, "no-such-account")
	wantErr(t, err, storage.ErrNotFound, "get by unknown account")

	// A second user sharing an email: the email index is not unique.
	bob := newUser(t, s, wsA, "bob@example.com")
	_, err = s.UpdateUser(ctx, wsA, bob.ID, 0, func(x *storage.User) error {
		x.Emails = append(x.Emails, "alice.home@EXAMPLE.net")
		return nil
	})
	must(t, err, "add shared email")
	us, err := findUsers(ctx, s, wsA, storage.UserByEmail, "alice.home@example.net")
	must(t, err, "find shared email")
	if len(us) != 2 || us[0].ID != u.ID || us[1].ID != bob.ID {
		t.Fatalf("shared email finds %v, want [%s %s] in creation order", userIDs(us), u.ID, bob.ID)
	}

	// Update moves index entries.
	up, err := s.UpdateUser(ctx, wsA, u.ID, 0, func(x *storage.User) error {
		x.UserName = "alice.renamed@example.com"
		x.ExternalID = "okta-00u2"
		x.Emails = []string{"alice.renamed@example.com"}
		x.Active = false
		x.Attributes["title"] = "CFO"
		return nil
	})
	must(t, err, "update")
	if up.Version != 2 || up.Modified.Before(u.Modified) || up.Active || !up.Created.Equal(u.Created) {
		t.Fatalf("updated = %+v", up)
	}
	got, err = s.GetUser(ctx, wsA, u.ID)
	must(t, err, "get after update")
	if got.UserName != "alice.renamed@example.com" || got.Version != 2 || got.Active || got.Attributes["title"] != "CFO" {
		t.Fatalf("after update = %+v", got)
	}
	for _, q := range []struct {
		by    storage.UserIndex
		value string
		want  int
	}{
		{storage.UserByUserName, "alice@example.com", 0},
		{storage.UserByUserName, "Alice.Renamed@example.com", 1},
		{storage.UserByExternalID, "okta-00u1", 0},
		{storage.UserByExternalID, "okta-00u2", 1},
		{storage.UserByEmail, "alice@example.com", 0},
		{storage.UserByEmail, "alice.renamed@example.com", 1},
		{storage.UserByEmail, "alice.home@example.net", 1}, // bob only now
	} {
		us, err := findUsers(ctx, s, wsA, q.by, q.value)
		must(t, err, "find after update")
		if len(us) != q.want {
			t.Fatalf("after update FindUsers(%s=%q) = %d, want %d", q.by, q.value, len(us), q.want)
		}
	}
	// Renaming away from an email keeps the email findable, and vice versa.
	_, err = s.UpdateUser(ctx, wsA, bob.ID, 0, func(x *storage.User) error { x.UserName = "robert"; return nil })
	must(t, err, "rename bob")
	if us, err := findUsers(ctx, s, wsA, storage.UserByEmail, "BOB@example.com"); err != nil || len(us) != 1 || us[0].ID != bob.ID {
		t.Fatalf("after renaming, bob's email finds %d users (%v)", len(us), err)
	}
	if us, err := findUsers(ctx, s, wsA, storage.UserByUserName, "bob@example.com"); err != nil || len(us) != 0 {
		t.Fatalf("after renaming, bob's old userName finds %d users (%v)", len(us), err)
	}
	_, err = s.UpdateUser(ctx, wsA, bob.ID, 0, func(x *storage.User) error {
		x.UserName = "bob@example.com"
		x.Emails = []string{"bob.work@example.com"}
		return nil
	})
	must(t, err, "rename bob back, new email")
	if us, err := findUsers(ctx, s, wsA, storage.UserByEmail, "bob@example.com"); err != nil || len(us) != 0 {
		t.Fatalf("a userName that is no longer an email is found by email: %d (%v)", len(us), err)
	}
	if us, err := findUsers(ctx, s, wsA, storage.UserByEmail, "bob.work@example.com"); err != nil || len(us) != 1 {
		t.Fatalf("bob's new email finds %d users (%v)", len(us), err)
	}

	// The freed userName and externalId can be taken by someone else.
	carol, err := s.CreateUser(ctx, wsA, storage.User{UserName: "ALICE@example.com", ExternalID: "okta-00u1"})
	must(t, err, "reuse freed userName and externalId")

	boom := errors.New("boom")
	_, err = s.UpdateUser(ctx, wsA, u.ID, 0, func(*storage.User) error { return boom })
	wantErr(t, err, boom, "update callback error")
	_, err = s.UpdateUser(ctx, wsA, "no-such-user", 0, func(*storage.User) error { return nil })
	wantErr(t, err, storage.ErrNotFound, "update unknown")

	otherSeesNothing(t, s, wsB, []string{u.ID, bob.ID, carol.ID}, nil,
		[]string{"alice@example.com", "alice.renamed@example.com", "bob@example.com", "alice.home@example.net"})

	must(t, s.DeleteUser(ctx, wsA, u.ID, 0), "delete")
	_, err = s.GetUser(ctx, wsA, u.ID)
	wantErr(t, err, storage.ErrNotFound, "get deleted")
	wantErr(t, s.DeleteUser(ctx, wsA, u.ID, 0), storage.ErrNotFound, "delete twice")
	_, err = s.GetUserByAccount(ctx, wsA, acct.ID)
	wantErr(t, err, storage.ErrNotFound, "get deleted by account")
	for _, q := range []struct {
		by    storage.UserIndex
		value string
	}{{storage.UserByUserName, "alice.renamed@example.com"}, {storage.UserByExternalID, "okta-00u2"},
		{storage.UserByEmail, "alice.renamed@example.com"}} {
		if us, err := findUsers(ctx, s, wsA, q.by, q.value); err != nil || len(us) != 0 {
			t.Fatalf("after delete FindUsers(%s=%q) = %d, %v", q.by, q.value, len(us), err)
		}
	}
	_, total, err := s.ListUsers(ctx, wsA, 0, 10)
	must(t, err, "list after delete")
	if total != 2 {
		t.Fatalf("total after delete = %d, want 2", total)
	}
	// The account may join again.
	_, err = s.CreateUser(ctx, wsA, storage.User{AccountID: acct.ID, UserName: "alice.again@example.com"})
	must(t, err, "account joins again after delete")
}

func testUserUniqueness(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	a := newUser(t, s, wsA, "dup@example.com")
	_, err := s.CreateUser(ctx, wsA, storage.User{UserName: "DUP@Example.COM"})
	wantConflict(t, err, "userName", "userName differing in case")
	_, err = s.UpdateUser(ctx, wsA, a.ID, 0, func(x *storage.User) error { x.ExternalID = "ext-1"; return nil })
	must(t, err, "set externalId")
	// externalId is indexed, not unique (RFC 7643 §3.1): a lookup returns
	// every user that has it, in creation order.
	b, err := s.CreateUser(ctx, wsA, storage.User{UserName: "other@example.com", ExternalID: "ext-1"})
	must(t, err, "shared externalId")
	if us, err := findUsers(ctx, s, wsA, storage.UserByExternalID, "ext-1"); err != nil || len(us) != 2 ||
		us[0].ID != a.ID || us[1].ID != b.ID {
		t.Fatalf("find by shared externalId = %v, %v; want %s, %s", userIDs(us), err, a.ID, b.ID)
	}
	// Empty externalIds never collide.
	_, err = s.CreateUser(ctx, wsA, storage.User{UserName: "noext1@example.com"})
	must(t, err, "empty externalId 1")
	_, err = s.CreateUser(ctx, wsA, storage.User{UserName: "noext2@example.com"})
	must(t, err, "empty externalId 2")
	_, err = s.CreateUser(ctx, wsA, storage.User{UserName: "second@example.com", AccountID: a.AccountID})
	wantConflict(t, err, "account", "second membership of one account")
	// A failed create leaves nothing behind.
	if us, err := findUsers(ctx, s, wsA, storage.UserByUserName, "second@example.com"); err != nil || len(us) != 0 {
		t.Fatalf("failed create left %d users, %v", len(us), err)
	}

	c, err := s.CreateUser(ctx, wsA, storage.User{UserName: "carol@example.com", ExternalID: "ext-2"})
	must(t, err, "create carol")
	_, err = s.UpdateUser(ctx, wsA, c.ID, 0, func(x *storage.User) error { x.UserName = "Dup@example.com"; return nil })
	wantConflict(t, err, "userName", "rename onto a taken userName")
	got, err := s.GetUser(ctx, wsA, c.ID)
	must(t, err, "get after the refused update")
	if got.UserName != "carol@example.com" || got.ExternalID != "ext-2" || got.Version != 1 {
		t.Fatalf("refused update changed the user: %+v", got)
	}
	// Moving onto a used externalId is allowed; the index follows.
	_, err = s.UpdateUser(ctx, wsA, c.ID, 0, func(x *storage.User) error { x.ExternalID = "ext-1"; return nil })
	must(t, err, "change onto a used externalId")
	if us, err := findUsers(ctx, s, wsA, storage.UserByExternalID, "ext-1"); err != nil || len(us) != 3 {
		t.Fatalf("find by ext-1 = %v, %v; want three users", userIDs(us), err)
	}
	if us, err := findUsers(ctx, s, wsA, storage.UserByExternalID, "ext-2"); err != nil || len(us) != 0 {
		t.Fatalf("find by the old ext-2 = %v, %v; want none", userIDs(us), err)
	}
	_, err = s.UpdateUser(ctx, wsA, c.ID, 0, func(x *storage.User) error { x.ExternalID = "ext-2"; return nil })
	must(t, err, "change back")
	// Changing only the case of one's own userName is allowed.
	_, err = s.UpdateUser(ctx, wsA, c.ID, 0, func(x *storage.User) error { x.UserName = "Carol@Example.com"; return nil })
	must(t, err, "change case of own userName")

	t.Run("other workspace has its own namespace", func(t *testing.T) {
		b, err := s.CreateUser(ctx, wsB, storage.User{UserName: "dup@example.com", ExternalID: "ext-1", AccountID: a.AccountID})
		must(t, err, "same userName, externalId and account in the other workspace")
		must(t, s.DeleteUser(ctx, wsB, b.ID, 0), "delete it again")
	})
	otherSeesNothing(t, s, wsB, []string{a.ID, c.ID}, nil, []string{"dup@example.com", "carol@example.com"})
}

func testUserUniquenessRace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	const n = 50
	names := []string{"race@example.com", "RACE@example.com", "Race@Example.Com"}
	ids := make([]string, n)
	errs := parallel(n, func(i int) error {
		u, err := s.CreateUser(ctx, wsA, storage.User{UserName: names[i%len(names)]})
		ids[i] = u.ID
		return err
	})
	oneWinner(t, errs, "userName", "parallel CreateUser of one userName")
	_, total, err := s.ListUsers(ctx, wsA, 0, 100)
	must(t, err, "list")
	if total != 1 {
		t.Fatalf("after the race the workspace has %d users, want 1", total)
	}

	// One membership per account under concurrency, different userNames.
	acct := newAccount(t, s, "member-race@example.com")
	errs = parallel(n, func(i int) error {
		_, err := s.CreateUser(ctx, wsA, storage.User{AccountID: acct.ID, UserName: fmt.Sprintf("m%d@example.com", i)})
		return err
	})
	oneWinner(t, errs, "account", "parallel memberships of one account")
	ms, err := s.AccountMemberships(ctx, acct.ID)
	must(t, err, "memberships")
	if len(ms) != 1 || ms[0].WorkspaceID != wsA {
		t.Fatalf("memberships after race = %+v", ms)
	}
	var won []string
	for _, id := range ids {
		if id != "" {
			won = append(won, id)
		}
	}
	otherSeesNothing(t, s, wsB, won, nil, []string{"race@example.com"})
}

func testUserPaging(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	const n = 25
	var want []string
	for i := 0; i < n; i++ {
		// Names sort differently from creation order on purpose.
		u := newUser(t, s, wsA, fmt.Sprintf("%c-user%02d@example.com", 'z'-i, i))
		want = append(want, u.ID)
	}
	page := func(off, lim int) ([]string, int) {
		t.Helper()
		us, total, err := s.ListUsers(ctx, wsA, off, lim)
		must(t, err, fmt.Sprintf("list %d,%d", off, lim))
		return userIDs(us), total
	}
	var got []string
	for off := 0; off < n; off += 7 {
		ids, total := page(off, 7)
		if total != n {
			t.Fatalf("total = %d, want %d", total, n)
		}
		got = append(got, ids...)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pages concatenated = %v\nwant creation order %v", got, want)
	}
	if ids, total := page(24, 10); len(ids) != 1 || ids[0] != want[24] || total != n {
		t.Fatalf("last page = %v total %d", ids, total)
	}
	if ids, total := page(n, 10); len(ids) != 0 || total != n {
		t.Fatalf("page past the end = %v total %d", ids, total)
	}
	if ids, total := page(1000000, 10); len(ids) != 0 || total != n {
		t.Fatalf("deep page = %v total %d", ids, total)
	}
	if ids, total := page(0, 0); len(ids) != 0 || total != n {
		t.Fatalf("count=0 page = %v total %d", ids, total)
	}
	// Deleting and updating keep the order of the rest stable.
	must(t, s.DeleteUser(ctx, wsA, want[3], 0), "delete one")
	_, err := s.UpdateUser(ctx, wsA, want[0], 0, func(u *storage.User) error { u.Active = false; return nil })
	must(t, err, "update first")
	want = append(want[:3:3], want[4:]...)
	ids, total := page(0, 100)
	if total != n-1 || strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("after delete+update: %v total %d, want %v", ids, total, want)
	}
	if ids, _ := page(3, 2); len(ids) != 2 || ids[0] != want[3] || ids[1] != want[4] {
		t.Fatalf("page 3,2 after delete = %v, want %v", ids, want[3:5])
	}
	otherSeesNothing(t, s, wsB, want, nil, nil)
}

func testUserConcurrentUpdates(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	u := newUser(t, s, wsA, "counter@example.com")
	const n = 50
	errs := parallel(n, func(i int) error {
		_, err := s.UpdateUser(ctx, wsA, u.ID, 0, func(x *storage.User) error {
			if x.Attributes == nil {
				x.Attributes = map[string]any{}
			}
			c, _ := x.Attributes["counter"].(float64)
			x.Attributes["counter"] = c + 1
			return nil
		})
		return err
	})
	for _, err := range errs {
		must(t, err, "parallel update")
	}
	got, err := s.GetUser(ctx, wsA, u.ID)
	must(t, err, "get")
	if got.Attributes["counter"] != float64(n) || got.Version != n+1 {
		t.Fatalf("after %d parallel increments: counter %v, version %d; want %d, %d",
			n, got.Attributes["counter"], got.Version, n, n+1)
	}
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"counter@example.com"})
}

func testUserPreconditions(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	u := newUser(t, s, wsA, "etag@example.com")
	up, err := s.UpdateUser(ctx, wsA, u.ID, 1, func(x *storage.User) error { x.Active = false; return nil })
	must(t, err, "update with current version")
	if up.Version != 2 {
		t.Fatalf("version = %d, want 2", up.Version)
	}
	called := false
	_, err = s.UpdateUser(ctx, wsA, u.ID, 1, func(x *storage.User) error { called = true; return nil })
	wantErr(t, err, storage.ErrPreconditionFailed, "update with stale version")
	if called {
		t.Fatalf("callback ran although the version precondition failed")
	}
	got, err := s.GetUser(ctx, wsA, u.ID)
	must(t, err, "get")
	if got.Version != 2 || got.Active {
		t.Fatalf("after refused update: %+v", got)
	}
	// A delete with a stale version is refused and leaves the user; with
	// the current version it deletes.
	wantErr(t, s.DeleteUser(ctx, wsA, u.ID, 1), storage.ErrPreconditionFailed, "delete with stale version")
	if _, err := s.GetUser(ctx, wsA, u.ID); err != nil {
		t.Fatalf("user gone after refused delete: %v", err)
	}
	wantErr(t, s.DeleteUser(ctx, wsB, u.ID, 2), storage.ErrNotFound, "delete with current version from another workspace")
	must(t, s.DeleteUser(ctx, wsA, u.ID, 2), "delete with current version")
	wantErr(t, s.DeleteUser(ctx, wsA, u.ID, 2), storage.ErrNotFound, "delete again")
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"etag@example.com"})
}

// testUnicodeKeys: userNames and emails are compared in Unicode NFC, so
// the composed and decomposed spellings of one name are one key, for
// uniqueness and for look-ups.
func testUnicodeKeys(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	const composed, decomposed = "jos\u00e9@example.com", "jose\u0301@example.com"
	u := newUser(t, s, wsA, composed)
	_, err := s.CreateUser(ctx, wsA, storage.User{UserName: strings.ToUpper(decomposed)})
	wantConflict(t, err, "userName", "the decomposed spelling of a taken userName")
	for _, q := range []string{composed, decomposed, strings.ToUpper(decomposed)} {
		us, err := findUsers(ctx, s, wsA, storage.UserByUserName, q)
		if err != nil || len(us) != 1 || us[0].ID != u.ID {
			t.Fatalf("find userName %q = %v, %v", q, userIDs(us), err)
		}
	}
	a := newAccount(t, s, "Ren\u00e9e@example.com")
	same, created, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "rene\u0301e@EXAMPLE.com"})
	if err != nil || created || same.ID != a.ID {
		t.Fatalf("the decomposed spelling of a taken email: %+v (created %v), %v; want %s", same, created, err, a.ID)
	}
	got, err := s.GetAccountByEmail(ctx, "RENE\u0301E@example.com")
	if err != nil || got.ID != a.ID {
		t.Fatalf("account by decomposed email = %+v, %v", got, err)
	}
	l, err := s.LoginLookup(ctx, wsA, "rene\u0301e@example.com")
	if err != nil || l.Account.ID != a.ID {
		t.Fatalf("login lookup by decomposed email = %+v, %v", l, err)
	}
	e, err := s.CreateUser(ctx, wsA, storage.User{UserName: "e1", Emails: []string{"Zo\u00eb@example.com"}})
	must(t, err, "user with an accented email")
	if us, err := findUsers(ctx, s, wsA, storage.UserByEmail, "zoe\u0308@example.com"); err != nil || len(us) != 1 || us[0].ID != e.ID {
		t.Fatalf("find by decomposed email = %v, %v", userIDs(us), err)
	}
	otherSeesNothing(t, s, wsB, []string{u.ID, e.ID}, nil, []string{composed})
}

// testWriteOps: a write names itself with Op; a user or group keeps the Op
// of the write that made its version, and a group change re-sent with the
// same Op changes nothing (not even the version), whatever IfVersion
// says.
func testWriteOps(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	u, err := s.CreateUser(ctx, wsA, storage.User{UserName: "op@example.com", Op: "op-create"})
	must(t, err, "create")
	got, err := s.GetUser(ctx, wsA, u.ID)
	must(t, err, "get")
	if got.Op != "op-create" {
		t.Fatalf("op after create = %q", got.Op)
	}
	upd, err := s.UpdateUser(ctx, wsA, u.ID, 0, func(x *storage.User) error { x.Op = "op-1"; x.Active = true; return nil })
	must(t, err, "update with op")
	if got, _ := s.GetUser(ctx, wsA, u.ID); got.Op != "op-1" || got.Version != upd.Version {
		t.Fatalf("after the named update: %+v", got)
	}
	unnamed, err := s.UpdateUser(ctx, wsA, u.ID, 0, func(x *storage.User) error { x.Active = false; return nil })
	must(t, err, "update without op")
	if got, _ := s.GetUser(ctx, wsA, u.ID); got.Op == "" || got.Op == "op-1" || got.Op != unnamed.Op {
		t.Fatalf("op after an unnamed update = %q (returned %q), want a new one", got.Op, unnamed.Op)
	}

	g, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "Ops", Op: "g-create"})
	must(t, err, "create group")
	if g.Op != "g-create" {
		t.Fatalf("group op after create = %q", g.Op)
	}
	ch, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{IfVersion: 1, AddMembers: []string{u.ID}, Op: "g-1"})
	must(t, err, "change")
	if ch.Version != 2 || ch.Op != "g-1" || len(ch.Members) != 1 {
		t.Fatalf("after the change: %+v", ch)
	}
	again, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{IfVersion: 1, AddMembers: []string{u.ID}, Op: "g-1"})
	must(t, err, "re-sent change")
	if again.Version != 2 || again.Op != "g-1" || len(again.Members) != 1 {
		t.Fatalf("re-sent change applied again: %+v", again)
	}
	_, err = s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{IfVersion: 1, RemoveMembers: []string{u.ID}, Op: "g-2"})
	wantErr(t, err, storage.ErrPreconditionFailed, "another change with a stale version")
	plain, err := s.ChangeGroup(ctx, wsA, g.ID, storage.GroupChange{RemoveMembers: []string{u.ID}})
	must(t, err, "unnamed change")
	if plain.Op != "" || plain.Version != 3 {
		t.Fatalf("after an unnamed change: %+v", plain)
	}
	otherSeesNothing(t, s, wsB, []string{u.ID}, []string{g.ID}, nil)
}
