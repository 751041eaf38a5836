package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// jitMember is the membership a JIT first sign-in creates for email.
func jitMember(email string) storage.User {
	return storage.User{UserName: email, Emails: []string{email}, Active: true, Verified: true,
		Source: storage.SourceJIT, Roles: storage.Roles{Dev: storage.RoleAnalyst, Test: storage.RoleOperator,
			Prod: storage.RoleNoAccess},
		Attributes: map[string]any{"displayName": "JIT " + email}}
}

func jitAccount(email, ws string) storage.Account {
	return storage.Account{Email: email, FullName: "JIT " + email, Source: storage.SourceJIT, OriginWorkspace: ws}
}

// testLoginLookup: the sign-in look-up finds the account by email
// (case-insensitively) and its membership in the asked workspace only.
func testLoginLookup(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	_, err := s.LoginLookup(ctx, wsA, "nobody@example.com")
	wantErr(t, err, storage.ErrNotFound, "unknown email")
	_, err = s.LoginLookup(ctx, wsA, "")
	wantErr(t, err, storage.ErrNotFound, "empty email")

	lone := newAccount(t, s, "Lone@Example.com")
	l, err := s.LoginLookup(ctx, wsA, "lone@example.COM")
	must(t, err, "account without membership")
	if l.Account != lone || l.Member {
		t.Fatalf("lookup = %+v; want %+v without membership", l, lone)
	}

	u := newUser(t, s, wsA, "Member@Example.com")
	want, err := s.GetAccountByEmail(ctx, "member@example.com")
	must(t, err, "account of member")
	l, err = s.LoginLookup(ctx, wsA, " MEMBER@example.com ")
	must(t, err, "member lookup")
	acct, got, has := l.Account, l.User, l.Member
	if acct != want || !has || got.ID != u.ID || got.AccountID != want.ID || got.WorkspaceID != wsA ||
		got.UserName != u.UserName || got.Version != u.Version || !got.Active || !got.Verified || got.Roles != u.Roles {
		t.Fatalf("member lookup = %+v, %+v, %v; want %+v, %+v", acct, got, has, want, u)
	}

	t.Run("other workspace", func(t *testing.T) {
		l, err := s.LoginLookup(ctx, wsB, "member@example.com")
		must(t, err, "lookup in the other workspace")
		acct, got, has := l.Account, l.User, l.Member
		if acct != want || has || got.ID != "" {
			t.Fatalf("lookup in %s = %+v, %+v, %v; want the account without membership", wsB, acct, got, has)
		}
		// A membership in B is B's own, and A's stays A's.
		ub, err := s.CreateUser(ctx, wsB, storage.User{AccountID: want.ID, UserName: "member@example.com"})
		must(t, err, "membership in B")
		l, err = s.LoginLookup(ctx, wsB, "member@example.com")
		must(t, err, "lookup in B")
		got, has = l.User, l.Member
		if !has || got.ID != ub.ID || got.WorkspaceID != wsB {
			t.Fatalf("lookup in B = %+v, %v; want %s", got, has, ub.ID)
		}
		l, err = s.LoginLookup(ctx, wsA, "member@example.com")
		must(t, err, "lookup in A")
		got = l.User
		if got.ID != u.ID {
			t.Fatalf("lookup in A = %s, want %s", got.ID, u.ID)
		}
		must(t, s.DeleteUser(ctx, wsB, ub.ID, 0), "leave B")
		l, err = s.LoginLookup(ctx, wsB, "member@example.com")
		must(t, err, "lookup in B after leaving")
		if l.Member {
			t.Fatal("deleted membership still found")
		}
		l, err = s.LoginLookup(ctx, "no-such-ws", "member@example.com")
		must(t, err, "lookup in a missing workspace")
		if l.Member {
			t.Fatal("membership found in a missing workspace")
		}
	})

	t.Run("sees updates", func(t *testing.T) {
		_, err := s.UpdateUser(ctx, wsA, u.ID, 0, func(x *storage.User) error {
			x.Active = false
			return nil
		})
		must(t, err, "deactivate")
		l, err := s.LoginLookup(ctx, wsA, "member@example.com")
		must(t, err, "lookup after update")
		if got := l.User; !l.Member || got.Active || got.Version != 2 {
			t.Fatalf("lookup after deactivation = %+v", got)
		}
	})
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"member@example.com"})
}

// jitSignIn is a JIT first sign-in of email into ws, with a session key
// and the two events a sign-in records.
func jitSignIn(email, ws, sessionKey string) storage.JITUser {
	n := time.Now()
	return storage.JITUser{
		Account: jitAccount(email, ws),
		User:    jitMember(email),
		Session: storage.Session{Key: sessionKey, ActiveWorkspace: ws, CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
		Events: []storage.Event{{Type: "jit.user.created", Actor: "saml"},
			{Type: "login.succeeded", Actor: "saml", Detail: map[string]string{"email": email}}},
	}
}

// testCreateJITUser: a JIT first sign-in writes account, membership,
// session and events, the last two with the new ids; when the account or
// the membership is refused, neither the session nor any event is
// written; a membership that cannot be created leaves the account, as
// CreateAccount followed by CreateUser would.
func testCreateJITUser(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	r, err := s.CreateJITUser(ctx, wsA, jitSignIn("Signin@Example.com", wsA, "ks1"))
	must(t, err, "create")
	acct, u := r.Account, r.User
	if acct.ID == "" || u.ID == "" || u.AccountID != acct.ID || u.WorkspaceID != wsA || u.Version != 1 ||
		u.Created.IsZero() || r.Session.AccountID != acct.ID {
		t.Fatalf("created %+v", r)
	}
	if got, err := s.GetAccountByEmail(ctx, "signin@example.com"); err != nil || got != acct ||
		acct.Email != "Signin@Example.com" || acct.Source != storage.SourceJIT || acct.OriginWorkspace != wsA {
		t.Fatalf("account by email = %+v, %v; want %+v", got, err, acct)
	}
	got, err := s.GetUserByAccount(ctx, wsA, acct.ID)
	must(t, err, "membership by account")
	if got.ID != u.ID || got.UserName != "Signin@Example.com" || got.Roles != u.Roles || !got.Verified ||
		got.Attributes["displayName"] != "JIT Signin@Example.com" || got.Version != 1 || !got.Created.Equal(u.Created) {
		t.Fatalf("membership = %+v, want %+v", got, u)
	}
	if us, err := findUsers(ctx, s, wsA, storage.UserByUserName, "signin@example.com"); err != nil || len(us) != 1 || us[0].ID != u.ID {
		t.Fatalf("find by userName = %v, %v", userIDs(us), err)
	}
	ms, err := s.AccountMemberships(ctx, acct.ID)
	must(t, err, "memberships")
	if len(ms) != 1 || ms[0] != (storage.MembershipRef{WorkspaceID: wsA, UserID: u.ID}) {
		t.Fatalf("memberships = %+v", ms)
	}
	x, err := s.GetSession(ctx, "ks1")
	must(t, err, "get session")
	if x.AccountID != acct.ID || x.ActiveWorkspace != wsA {
		t.Fatalf("session = %+v, want account %s in %s", x, acct.ID, wsA)
	}
	all, err := s.ListEvents(ctx, wsA, "", 10)
	must(t, err, "list events")
	if len(r.Events) != 2 || len(all) != 2 {
		t.Fatalf("appended %+v, stream %+v; want 2 each", r.Events, all)
	}
	for i, e := range all {
		if e.ID != r.Events[i].ID || e.Type != r.Events[i].Type || e.UserID != u.ID || e.AccountID != acct.ID {
			t.Fatalf("event %d = %+v; want %s with user %s and account %s", i, e, r.Events[i].Type, u.ID, acct.ID)
		}
	}
	noSignIn := func(t *testing.T, key string) {
		t.Helper()
		if _, err := s.GetSession(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("session %s written: %v", key, err)
		}
		if all, err := s.ListEvents(ctx, wsA, "", 10); err != nil || len(all) != 2 {
			t.Fatalf("events = %d, %v; want the 2 of the first sign-in", len(all), err)
		}
	}

	t.Run("re-sent", func(t *testing.T) {
		// The same sign-in, ids included, sent again (its answer was
		// lost): it succeeds and creates nothing twice.
		j := jitSignIn("Signin@Example.com", wsA, "ks1")
		j.Account.ID, j.Account.CreatedAt = acct.ID, acct.CreatedAt
		j.User.ID, j.User.Created = u.ID, u.Created
		again, err := s.CreateJITUser(ctx, wsA, j)
		must(t, err, "re-send")
		if again.Account != acct || again.User.ID != u.ID {
			t.Fatalf("re-send = %+v, want %+v", again, r)
		}
		if _, total, err := s.ListUsers(ctx, wsA, 0, 10); err != nil || total != 1 {
			t.Fatalf("users = %d, %v; want 1", total, err)
		}
		if ms, err := s.AccountMemberships(ctx, acct.ID); err != nil || len(ms) != 1 {
			t.Fatalf("memberships = %+v, %v", ms, err)
		}
	})
	t.Run("email taken", func(t *testing.T) {
		r, err := s.CreateJITUser(ctx, wsA, jitSignIn("SIGNIN@example.com", wsA, "ks2"))
		wantConflict(t, err, "email", "second create")
		if r.Account.ID != "" || r.User.ID != "" {
			t.Fatalf("conflict returned %+v", r)
		}
		noSignIn(t, "ks2")
		// Also in another workspace: the email is global.
		_, err = s.CreateJITUser(ctx, wsB, jitSignIn("signin@example.com", wsB, "ks2b"))
		wantConflict(t, err, "email", "create in B")
		if a, _ := s.GetAccountByEmail(ctx, "signin@example.com"); a != acct {
			t.Fatalf("account changed to %+v", a)
		}
	})
	t.Run("userName taken in the workspace", func(t *testing.T) {
		other := newAccount(t, s, "holder2@example.com")
		_, err := s.CreateUser(ctx, wsA, storage.User{AccountID: other.ID, UserName: "taken2@example.com"})
		must(t, err, "holder")
		r, err := s.CreateJITUser(ctx, wsA, jitSignIn("taken2@example.com", wsA, "ks3"))
		wantConflict(t, err, "userName", "membership with a taken userName")
		if r.Account.ID == "" || r.User.ID != "" {
			t.Fatalf("got %+v; want the created account and no membership", r)
		}
		noSignIn(t, "ks3")
		if got, err := s.GetAccountByEmail(ctx, "taken2@example.com"); err != nil || got != r.Account {
			t.Fatalf("account after failed membership = %+v, %v; want %+v", got, err, r.Account)
		}
		if ms, err := s.AccountMemberships(ctx, r.Account.ID); err != nil || len(ms) != 0 {
			t.Fatalf("memberships = %+v, %v; want none", ms, err)
		}
		l, err := s.LoginLookup(ctx, wsA, "taken2@example.com")
		if err != nil || l.Member {
			t.Fatalf("lookup = %+v, %v; want the account without membership", l, err)
		}
	})
	t.Run("missing workspace", func(t *testing.T) {
		_, err := s.CreateJITUser(ctx, "no-such-ws", jitSignIn("ghost2@example.com", "no-such-ws", "ks4"))
		wantErr(t, err, storage.ErrNotFound, "create in a missing workspace")
		noSignIn(t, "ks4")
		if _, err := s.GetAccountByEmail(ctx, "ghost2@example.com"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("account after a missing workspace: %v", err)
		}
	})
	t.Run("no events", func(t *testing.T) {
		j := jitSignIn("quiet@example.com", wsA, "ks5")
		j.Events = nil
		r, err := s.CreateJITUser(ctx, wsA, j)
		must(t, err, "create without events")
		if x, err := s.GetSession(ctx, "ks5"); err != nil || x.AccountID != r.Account.ID {
			t.Fatalf("session = %+v, %v", x, err)
		}
	})
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"signin@example.com", "taken2@example.com", "quiet@example.com"})
}

// testCreateJITUserRace: of concurrent first sign-ins of one email
// (in any letter case) exactly one creates; the others get ConflictError
// "email" and write nothing; one membership exists.
func testCreateJITUserRace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]error, n)
	accts := make([]storage.Account, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := "race@example.com"
			if i%2 == 1 {
				email = "RACE@example.com"
			}
			var r storage.JITUser
			r, results[i] = s.CreateJITUser(ctx, wsA, jitSignIn(email, wsA, fmt.Sprintf("race-%d", i)))
			accts[i] = r.Account
		}()
	}
	wg.Wait()
	winners := 0
	var winner storage.Account
	for i, err := range results {
		var ce *storage.ConflictError
		switch {
		case err == nil:
			winners++
			winner = accts[i]
		case errors.As(err, &ce) && ce.Field == "email":
			if _, err := s.GetSession(ctx, fmt.Sprintf("race-%d", i)); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("loser %d has a session: %v", i, err)
			}
		default:
			t.Fatalf("create %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d creates won, want 1", winners)
	}
	l, err := s.LoginLookup(ctx, wsA, "race@example.com")
	must(t, err, "lookup")
	if l.Account != winner || !l.Member || l.User.AccountID != winner.ID {
		t.Fatalf("lookup = %+v; want the winner %+v", l, winner)
	}
	if _, total, err := s.ListUsers(ctx, wsA, 0, 10); err != nil || total != 1 {
		t.Fatalf("users = %d, %v; want 1", total, err)
	}
	otherSeesNothing(t, s, wsB, []string{l.User.ID}, nil, []string{"race@example.com"})
}

// signInCases are registered in RunConformance.
var signInCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"LoginLookup", testLoginLookup},
	{"ReceiveResponse", testReceiveResponse},
	{"AcceptLogin", testAcceptLogin},
	{"StartSession", testStartSession},
	{"CreateJITUser", testCreateJITUser},
	{"CreateJITUserRace", testCreateJITUserRace},
	{"AppendEvents", testAppendEvents},
}

// testAppendEvents: several events land in order, after the ones before,
// interleaved correctly with AppendEvent, only in their workspace.
func testAppendEvents(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	firsts, err := s.AppendEvents(ctx, wsA, storage.Event{Type: "before", Actor: "saml"})
	must(t, err, "append one")
	var in []storage.Event
	for i := 0; i < 3; i++ {
		in = append(in, storage.Event{Type: fmt.Sprintf("batch.%d", i), Actor: "saml", UserID: fmt.Sprintf("u%d", i),
			AccountID: "a", Detail: map[string]string{"n": fmt.Sprint(i)}})
	}
	got, err := s.AppendEvents(ctx, wsA, in...)
	must(t, err, "append batch")
	if len(got) != 3 {
		t.Fatalf("appended %d events, want 3", len(got))
	}
	for i, e := range got {
		if e.ID == "" || e.Time.IsZero() || e.Type != in[i].Type {
			t.Fatalf("appended event %d = %+v", i, e)
		}
	}
	empty, err := s.AppendEvents(ctx, wsA)
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty batch = %+v, %v", empty, err)
	}
	_, err = s.AppendEvents(ctx, "conf-missing", in...)
	wantErr(t, err, storage.ErrNotFound, "append batch to unknown workspace")
	all, err := s.ListEvents(ctx, wsA, "", 100)
	must(t, err, "list")
	if len(all) != 4 || all[0].ID != firsts[0].ID {
		t.Fatalf("list = %+v, want 4 events starting with %s", all, firsts[0].ID)
	}
	for i, e := range all[1:] {
		if e.ID != got[i].ID || e.Type != in[i].Type || e.UserID != in[i].UserID || e.Detail["n"] != fmt.Sprint(i) ||
			e.Actor != "saml" || e.AccountID != "a" || !e.Time.Equal(got[i].Time) {
			t.Fatalf("event %d = %+v, want %+v", i, e, got[i])
		}
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

// testReceiveResponse: the workspace and the temp value, taken once; a
// missing value is no error; a missing workspace is ErrNotFound.
func testReceiveResponse(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	want, err := s.GetWorkspace(ctx, wsA)
	must(t, err, "get workspace")
	must(t, s.PutTemp(ctx, wsA, "authn:r1", []byte("tracked"), time.Minute), "put temp")
	r, err := s.ReceiveResponse(ctx, wsA, "authn:r1")
	must(t, err, "receive")
	if r.Workspace.ID != wsA || r.Workspace.Name != want.Name || string(r.Request) != "tracked" {
		t.Fatalf("receive = %+v", r)
	}
	r, err = s.ReceiveResponse(ctx, wsA, "authn:r1")
	must(t, err, "receive again")
	if r.Workspace.ID != wsA || r.Request != nil {
		t.Fatalf("receive again = %+v; want the workspace and no request (taken once)", r)
	}
	r, err = s.ReceiveResponse(ctx, wsA, "")
	must(t, err, "receive without a key")
	if r.Workspace.ID != wsA || r.Request != nil {
		t.Fatalf("receive without a key = %+v", r)
	}
	_, err = s.ReceiveResponse(ctx, "conf-missing", "authn:r1")
	wantErr(t, err, storage.ErrNotFound, "missing workspace")
	t.Run("other workspace", func(t *testing.T) {
		must(t, s.PutTemp(ctx, wsA, "authn:r2", []byte("a's"), time.Minute), "put temp in A")
		r, err := s.ReceiveResponse(ctx, wsB, "authn:r2")
		must(t, err, "receive in B")
		if r.Workspace.ID != wsB || r.Request != nil {
			t.Fatalf("receive in B = %+v; want B without A's value", r)
		}
		if b, err := s.TakeTemp(ctx, wsA, "authn:r2"); err != nil || string(b) != "a's" {
			t.Fatalf("A's value after B's receive: %q, %v", b, err)
		}
	})
}

// testAcceptLogin: the first use of a key looks the person up as
// LoginLookup does; every later use (from any caller) is Replayed and
// looks nothing up.
func testAcceptLogin(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	until := time.Now().Add(time.Minute)
	_, err := s.AcceptLogin(ctx, wsA, storage.Once{Key: "assertion:1", Until: until}, "nobody@example.com")
	wantErr(t, err, storage.ErrNotFound, "unknown email")
	l, err := s.AcceptLogin(ctx, wsA, storage.Once{Key: "assertion:1", Until: until}, "nobody@example.com")
	must(t, err, "replay")
	if !l.Replayed || l.Member || l.Account.ID != "" {
		t.Fatalf("replay = %+v; want Replayed only", l)
	}
	_, err = s.AcceptLogin(ctx, wsA, storage.Once{Key: "assertion:2", Until: until}, "")
	wantErr(t, err, storage.ErrNotFound, "empty email")

	u := newUser(t, s, wsA, "Member@Example.com")
	want, err := s.LoginLookup(ctx, wsA, "member@example.com")
	must(t, err, "lookup")
	l, err = s.AcceptLogin(ctx, wsA, storage.Once{Key: "assertion:3", Until: until}, " MEMBER@example.com ")
	must(t, err, "member")
	if l.Replayed || !l.Member || l.User.ID != u.ID || l.Account != want.Account || l.User.Version != want.User.Version {
		t.Fatalf("member = %+v; want %+v", l, want)
	}
	l, err = s.AcceptLogin(ctx, wsB, storage.Once{Key: "assertion:3", Until: until}, "member@example.com")
	must(t, err, "same key in B")
	if l.Replayed || l.Member || l.Account != want.Account {
		t.Fatalf("same key in B = %+v; want the account without membership (B's own replay cache)", l)
	}
	if first, err := s.ConsumeOnce(ctx, wsA, "assertion:3", until); err != nil || first {
		t.Fatalf("ConsumeOnce of an accepted key = %v, %v; want false", first, err)
	}

	t.Run("concurrent", func(t *testing.T) {
		var firsts, replays int
		var mu sync.Mutex
		errs := parallel(8, func(int) error {
			l, err := s.AcceptLogin(ctx, wsA, storage.Once{Key: "assertion:race", Until: until}, "member@example.com")
			mu.Lock()
			defer mu.Unlock()
			if l.Replayed {
				replays++
			} else if l.Member {
				firsts++
			}
			return err
		})
		for _, err := range errs {
			must(t, err, "concurrent accept")
		}
		if firsts != 1 || replays != 7 {
			t.Fatalf("%d accepted, %d replayed; want 1 and 7", firsts, replays)
		}
	})
}

// testStartSession: the session and the events are written together; the
// events land in the session's workspace after the ones before.
func testStartSession(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	before, err := s.AppendEvents(ctx, wsA, storage.Event{Type: "before", Actor: "saml"})
	must(t, err, "append before")
	must(t, s.StartSession(ctx, storage.Session{Key: "start-1", AccountID: "acct-1", ActiveWorkspace: wsA, ExpiresAt: exp},
		storage.Event{Type: "role.synced", Actor: "saml", UserID: "u1"},
		storage.Event{Type: "login.succeeded", Actor: "saml", UserID: "u1", Detail: map[string]string{"email": "x@example.com"}}),
		"start session")
	got, err := s.GetSession(ctx, "start-1")
	must(t, err, "get session")
	if got.AccountID != "acct-1" || got.ActiveWorkspace != wsA || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("session = %+v", got)
	}
	evs, err := s.ListEvents(ctx, wsA, before[0].ID, 10)
	must(t, err, "list events")
	if len(evs) == 2 && evs[0].Type == "login.succeeded" {
		// Events of both kinds appended together may come in either order.
		evs[0], evs[1] = evs[1], evs[0]
	}
	if len(evs) != 2 || evs[0].Type != "role.synced" || evs[1].Type != "login.succeeded" ||
		evs[1].Detail["email"] != "x@example.com" || evs[0].UserID != "u1" {
		t.Fatalf("events after start = %+v", evs)
	}
	must(t, s.StartSession(ctx, storage.Session{Key: "start-2", AccountID: "acct-1", ActiveWorkspace: wsA, ExpiresAt: exp}),
		"start without events")
	if _, err := s.GetSession(ctx, "start-2"); err != nil {
		t.Fatalf("session without events: %v", err)
	}
	err = s.StartSession(ctx, storage.Session{Key: "start-3", AccountID: "acct-1", ActiveWorkspace: "conf-missing", ExpiresAt: exp},
		storage.Event{Type: "login.succeeded"})
	wantErr(t, err, storage.ErrNotFound, "events of a missing workspace")
	err = s.StartSession(ctx, storage.Session{Key: "start-4", AccountID: "acct-1", ActiveWorkspace: wsA,
		ExpiresAt: time.Now().Add(-time.Second)}, storage.Event{Type: "login.succeeded"})
	if err == nil {
		t.Fatal("expired session accepted")
	}
	if evs, err := s.ListEvents(ctx, wsA, before[0].ID, 10); err != nil || len(evs) != 2 {
		t.Fatalf("events after the refused start: %d, %v; want the 2 of the first start", len(evs), err)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}
