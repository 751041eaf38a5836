package conformance

import (
	"errors"
	"fmt"
	"reflect"
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
	_, _, _, err := s.LoginLookup(ctx, wsA, "nobody@example.com")
	wantErr(t, err, storage.ErrNotFound, "unknown email")
	_, _, _, err = s.LoginLookup(ctx, wsA, "")
	wantErr(t, err, storage.ErrNotFound, "empty email")

	lone := newAccount(t, s, "Lone@Example.com")
	acct, _, has, err := s.LoginLookup(ctx, wsA, "lone@example.COM")
	must(t, err, "account without membership")
	if acct != lone || has {
		t.Fatalf("lookup = %+v, hasMember %v; want %+v without membership", acct, has, lone)
	}

	u := newUser(t, s, wsA, "Member@Example.com")
	want, err := s.GetAccountByEmail(ctx, "member@example.com")
	must(t, err, "account of member")
	acct, got, has, err := s.LoginLookup(ctx, wsA, " MEMBER@example.com ")
	must(t, err, "member lookup")
	if acct != want || !has || got.ID != u.ID || got.AccountID != want.ID || got.WorkspaceID != wsA ||
		got.UserName != u.UserName || got.Version != u.Version || !got.Active || !got.Verified || got.Roles != u.Roles {
		t.Fatalf("member lookup = %+v, %+v, %v; want %+v, %+v", acct, got, has, want, u)
	}

	t.Run("other workspace", func(t *testing.T) {
		acct, got, has, err := s.LoginLookup(ctx, wsB, "member@example.com")
		must(t, err, "lookup in the other workspace")
		if acct != want || has || got.ID != "" {
			t.Fatalf("lookup in %s = %+v, %+v, %v; want the account without membership", wsB, acct, got, has)
		}
		// A membership in B is B's own, and A's stays A's.
		ub, err := s.CreateUser(ctx, wsB, storage.User{AccountID: want.ID, UserName: "member@example.com"})
		must(t, err, "membership in B")
		_, got, has, err = s.LoginLookup(ctx, wsB, "member@example.com")
		must(t, err, "lookup in B")
		if !has || got.ID != ub.ID || got.WorkspaceID != wsB {
			t.Fatalf("lookup in B = %+v, %v; want %s", got, has, ub.ID)
		}
		_, got, _, err = s.LoginLookup(ctx, wsA, "member@example.com")
		must(t, err, "lookup in A")
		if got.ID != u.ID {
			t.Fatalf("lookup in A = %s, want %s", got.ID, u.ID)
		}
		must(t, s.DeleteUser(ctx, wsB, ub.ID, 0), "leave B")
		_, _, has, err = s.LoginLookup(ctx, wsB, "member@example.com")
		must(t, err, "lookup in B after leaving")
		if has {
			t.Fatal("deleted membership still found")
		}
		_, _, has, err = s.LoginLookup(ctx, "no-such-ws", "member@example.com")
		must(t, err, "lookup in a missing workspace")
		if has {
			t.Fatal("membership found in a missing workspace")
		}
	})

	t.Run("sees updates", func(t *testing.T) {
		_, err := s.UpdateUser(ctx, wsA, u.ID, 0, func(x *storage.User) error {
			x.Active = false
			return nil
		})
		must(t, err, "deactivate")
		_, got, has, err := s.LoginLookup(ctx, wsA, "member@example.com")
		must(t, err, "lookup after update")
		if !has || got.Active || got.Version != 2 {
			t.Fatalf("lookup after deactivation = %+v", got)
		}
	})
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"member@example.com"})
}

// testCreateAccountAndUser: the JIT first sign-in creates account and
// membership together; a taken email creates nothing; a membership that
// cannot be created leaves the account, as CreateAccount + CreateUser do.
func testCreateAccountAndUser(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	acct, u, err := s.CreateAccountAndUser(ctx, wsA, jitAccount("New@Example.com", wsA), jitMember("New@Example.com"))
	must(t, err, "create account and user")
	if acct.ID == "" || u.ID == "" || u.AccountID != acct.ID || u.WorkspaceID != wsA || u.Version != 1 ||
		u.Created.IsZero() {
		t.Fatalf("created %+v, %+v", acct, u)
	}
	byEmail, err := s.GetAccountByEmail(ctx, "new@example.com")
	must(t, err, "account by email")
	if byEmail != acct || acct.Email != "New@Example.com" || acct.Source != storage.SourceJIT || acct.OriginWorkspace != wsA {
		t.Fatalf("account by email = %+v, want %+v", byEmail, acct)
	}
	got, err := s.GetUserByAccount(ctx, wsA, acct.ID)
	must(t, err, "membership by account")
	if got.ID != u.ID || got.UserName != "New@Example.com" || got.Roles != u.Roles || !got.Verified ||
		got.Attributes["displayName"] != "JIT New@Example.com" {
		t.Fatalf("membership = %+v, want %+v", got, u)
	}
	if us, err := s.FindUsers(ctx, wsA, storage.UserByUserName, "new@example.com"); err != nil || len(us) != 1 || us[0].ID != u.ID {
		t.Fatalf("find by userName = %v, %v", userIDs(us), err)
	}
	ms, err := s.AccountMemberships(ctx, acct.ID)
	must(t, err, "memberships")
	if len(ms) != 1 || ms[0] != (storage.MembershipRef{WorkspaceID: wsA, UserID: u.ID}) {
		t.Fatalf("memberships = %+v", ms)
	}

	t.Run("email taken", func(t *testing.T) {
		a2, u2, err := s.CreateAccountAndUser(ctx, wsA, jitAccount("NEW@example.com", wsA), jitMember("NEW@example.com"))
		wantConflict(t, err, "email", "second create")
		if a2.ID != "" || u2.ID != "" {
			t.Fatalf("conflict returned %+v, %+v", a2, u2)
		}
		// Also in another workspace: the email is global.
		_, _, err = s.CreateAccountAndUser(ctx, wsB, jitAccount("new@example.com", wsB), jitMember("new@example.com"))
		wantConflict(t, err, "email", "create in B")
		if _, total, err := s.ListUsers(ctx, wsA, 0, 10); err != nil || total != 1 {
			t.Fatalf("users in A = %d, %v; want 1", total, err)
		}
		if a, _ := s.GetAccountByEmail(ctx, "new@example.com"); a != acct {
			t.Fatalf("account changed to %+v", a)
		}
	})

	t.Run("userName taken in the workspace", func(t *testing.T) {
		// An account of another email holds the userName in A (SCIM).
		other := newAccount(t, s, "holder@example.com")
		_, err := s.CreateUser(ctx, wsA, storage.User{AccountID: other.ID, UserName: "taken@example.com"})
		must(t, err, "holder")
		a, u, err := s.CreateAccountAndUser(ctx, wsA, jitAccount("taken@example.com", wsA), jitMember("taken@example.com"))
		wantConflict(t, err, "userName", "membership with a taken userName")
		if a.ID == "" || u.ID != "" {
			t.Fatalf("got %+v, %+v; want the created account and no membership", a, u)
		}
		if got, err := s.GetAccountByEmail(ctx, "taken@example.com"); err != nil || got != a {
			t.Fatalf("account after failed membership = %+v, %v; want %+v", got, err, a)
		}
		if _, err := s.GetUserByAccount(ctx, wsA, a.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("membership exists: %v", err)
		}
		if ms, err := s.AccountMemberships(ctx, a.ID); err != nil || len(ms) != 0 {
			t.Fatalf("memberships = %+v, %v; want none", ms, err)
		}
		_, _, has, err := s.LoginLookup(ctx, wsA, "taken@example.com")
		if err != nil || has {
			t.Fatalf("lookup = %v, %v; want the account without membership", has, err)
		}
	})

	t.Run("missing workspace", func(t *testing.T) {
		_, _, err := s.CreateAccountAndUser(ctx, "no-such-ws", jitAccount("ghost@example.com", "no-such-ws"),
			jitMember("ghost@example.com"))
		wantErr(t, err, storage.ErrNotFound, "create in a missing workspace")
	})
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"new@example.com", "taken@example.com"})
}

// testCreateAccountAndUserWithSession: a JIT first sign-in in one step
// writes account, membership, session and events, the last two with the
// new ids; when the account or the membership is refused, neither the
// session nor any event is written.
func testCreateAccountAndUserWithSession(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	sess := func(key string) storage.Session {
		n := time.Now()
		return storage.Session{Key: key, ActiveWorkspace: wsA, CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	}
	evs := func() []storage.Event {
		return []storage.Event{{Type: "jit.user.created", Actor: "saml"},
			{Type: "login.succeeded", Actor: "saml", Detail: map[string]string{"email": "x"}}}
	}
	r, err := s.CreateAccountAndUserWithSession(ctx, wsA, jitAccount("Signin@Example.com", wsA),
		jitMember("Signin@Example.com"), sess("ks1"), evs())
	must(t, err, "create with session")
	must(t, r.SessionErr, "session")
	must(t, r.EventsErr, "events")
	acct, u := r.Account, r.User
	if acct.ID == "" || u.ID == "" || u.AccountID != acct.ID || u.WorkspaceID != wsA || u.Version != 1 {
		t.Fatalf("created %+v, %+v", acct, u)
	}
	if got, err := s.GetAccountByEmail(ctx, "signin@example.com"); err != nil || got != acct {
		t.Fatalf("account by email = %+v, %v; want %+v", got, err, acct)
	}
	if got, err := s.GetUserByAccount(ctx, wsA, acct.ID); err != nil || got.ID != u.ID {
		t.Fatalf("membership = %+v, %v", got, err)
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
		if e.ID != r.Events[i].ID || e.Type != evs()[i].Type || e.UserID != u.ID || e.AccountID != acct.ID {
			t.Fatalf("event %d = %+v; want %s with user %s and account %s", i, e, evs()[i].Type, u.ID, acct.ID)
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

	t.Run("email taken", func(t *testing.T) {
		r, err := s.CreateAccountAndUserWithSession(ctx, wsA, jitAccount("SIGNIN@example.com", wsA),
			jitMember("SIGNIN@example.com"), sess("ks2"), evs())
		wantConflict(t, err, "email", "second create")
		if r.Account.ID != "" || r.User.ID != "" {
			t.Fatalf("conflict returned %+v", r)
		}
		noSignIn(t, "ks2")
	})
	t.Run("userName taken in the workspace", func(t *testing.T) {
		other := newAccount(t, s, "holder2@example.com")
		_, err := s.CreateUser(ctx, wsA, storage.User{AccountID: other.ID, UserName: "taken2@example.com"})
		must(t, err, "holder")
		r, err := s.CreateAccountAndUserWithSession(ctx, wsA, jitAccount("taken2@example.com", wsA),
			jitMember("taken2@example.com"), sess("ks3"), evs())
		wantConflict(t, err, "userName", "membership with a taken userName")
		if r.Account.ID == "" || r.User.ID != "" {
			t.Fatalf("got %+v; want the created account and no membership", r)
		}
		noSignIn(t, "ks3")
	})
	t.Run("missing workspace", func(t *testing.T) {
		_, err := s.CreateAccountAndUserWithSession(ctx, "no-such-ws", jitAccount("ghost2@example.com", "no-such-ws"),
			jitMember("ghost2@example.com"), sess("ks4"), evs())
		wantErr(t, err, storage.ErrNotFound, "create in a missing workspace")
		noSignIn(t, "ks4")
	})
	t.Run("no events", func(t *testing.T) {
		r, err := s.CreateAccountAndUserWithSession(ctx, wsA, jitAccount("quiet@example.com", wsA),
			jitMember("quiet@example.com"), sess("ks5"), nil)
		must(t, err, "create without events")
		must(t, r.SessionErr, "session")
		must(t, r.EventsErr, "no events")
		if x, err := s.GetSession(ctx, "ks5"); err != nil || x.AccountID != r.Account.ID {
			t.Fatalf("session = %+v, %v", x, err)
		}
	})
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"signin@example.com", "taken2@example.com", "quiet@example.com"})
}

// testCreateAccountAndUserRace: of concurrent first sign-ins of one email
// exactly one creates; the others get ConflictError "email"; one
// membership exists.
func testCreateAccountAndUserRace(t *testing.T, s storage.Store) {
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
			accts[i], _, results[i] = s.CreateAccountAndUser(ctx, wsA, jitAccount(email, wsA), jitMember(email))
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
		default:
			t.Fatalf("create %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d creates won, want 1", winners)
	}
	acct, u, has, err := s.LoginLookup(ctx, wsA, "race@example.com")
	must(t, err, "lookup")
	if acct != winner || !has || u.AccountID != winner.ID {
		t.Fatalf("lookup = %+v, %+v, %v; want the winner %+v", acct, u, has, winner)
	}
	if _, total, err := s.ListUsers(ctx, wsA, 0, 10); err != nil || total != 1 {
		t.Fatalf("users = %d, %v; want 1", total, err)
	}
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"race@example.com"})
}

// loginCases are registered in RunConformance.
var loginCases = []struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}{
	{"LoginLookup", testLoginLookup},
	{"CreateAccountAndUser", testCreateAccountAndUser},
	{"CreateAccountAndUserRace", testCreateAccountAndUserRace},
	{"CreateAccountAndUserWithSession", testCreateAccountAndUserWithSession},
	{"AppendEvents", testAppendEvents},
	{"GetWorkspaceAndTakeTemp", testGetWorkspaceAndTakeTemp},
	{"CreateSessionAndAppendEvents", testCreateSessionAndAppendEvents},
	{"ConsumeOnceAndLoginLookup", testConsumeOnceAndLoginLookup},
	{"ConsumeOnceAndLoginLookupRace", testConsumeOnceAndLoginLookupRace},
	{"ConsumeOnceAndLoginLookupOrCreate", testConsumeOnceAndLoginLookupOrCreate},
	{"ConsumeOnceAndLoginLookupOrCreateRace", testConsumeOnceAndLoginLookupOrCreateRace},
}

// testConsumeOnceAndLoginLookup: the key is consumed once per workspace
// (shared with ConsumeOnce); only the first consumer gets the look-up,
// which is LoginLookup's (case-insensitive email, membership of the asked
// workspace only).
func testConsumeOnceAndLoginLookup(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	exp := time.Now().Add(time.Minute)
	u := newUser(t, s, wsA, "Signin@Example.com")
	want, err := s.GetAccountByEmail(ctx, "signin@example.com")
	must(t, err, "account of member")

	first, acct, got, has, lookErr, err := s.ConsumeOnceAndLoginLookup(ctx, wsA, "k1", exp, " SIGNIN@example.com ")
	must(t, err, "consume k1")
	must(t, lookErr, "look-up with k1")
	if !first || acct != want || !has || got.ID != u.ID || got.WorkspaceID != wsA || got.Version != u.Version {
		t.Fatalf("first consume = %v, %+v, %+v, %v; want the member %+v, %+v", first, acct, got, has, want, u)
	}
	// Replayed: refused, and nothing is looked up.
	first, acct, got, has, lookErr, err = s.ConsumeOnceAndLoginLookup(ctx, wsA, "k1", exp, "signin@example.com")
	must(t, err, "consume k1 again")
	if first || acct.ID != "" || got.ID != "" || has || lookErr != nil {
		t.Fatalf("replay = %v, %+v, %+v, %v, %v; want refused with nothing", first, acct, got, has, lookErr)
	}
	// The same replay cache as ConsumeOnce, both ways.
	ok, err := s.ConsumeOnce(ctx, wsA, "k1", exp)
	must(t, err, "ConsumeOnce k1")
	if ok {
		t.Fatal("ConsumeOnce accepted a key ConsumeOnceAndLoginLookup consumed")
	}
	ok, err = s.ConsumeOnce(ctx, wsA, "k2", exp)
	must(t, err, "ConsumeOnce k2")
	if !ok {
		t.Fatal("ConsumeOnce refused a new key")
	}
	first, _, _, _, _, err = s.ConsumeOnceAndLoginLookup(ctx, wsA, "k2", exp, "signin@example.com")
	must(t, err, "consume k2")
	if first {
		t.Fatal("accepted a key ConsumeOnce consumed")
	}
	// Unknown and empty emails: consumed, ErrNotFound.
	first, acct, _, _, lookErr, err = s.ConsumeOnceAndLoginLookup(ctx, wsA, "k3", exp, "nobody@example.com")
	must(t, err, "consume k3")
	wantErr(t, lookErr, storage.ErrNotFound, "unknown email")
	if !first || acct.ID != "" {
		t.Fatalf("unknown email = %v, %+v", first, acct)
	}
	first, _, _, _, lookErr, err = s.ConsumeOnceAndLoginLookup(ctx, wsA, "k4", exp, "")
	must(t, err, "consume k4")
	wantErr(t, lookErr, storage.ErrNotFound, "empty email")
	if !first {
		t.Fatal("empty email: key not consumed")
	}
	ok, err = s.ConsumeOnce(ctx, wsA, "k4", exp)
	must(t, err, "ConsumeOnce k4")
	if ok {
		t.Fatal("key of the empty-email call was not consumed")
	}
	// Another workspace: its own replay cache, no membership of A.
	first, acct, got, has, lookErr, err = s.ConsumeOnceAndLoginLookup(ctx, wsB, "k1", exp, "signin@example.com")
	must(t, err, "consume k1 in B")
	must(t, lookErr, "look-up in B")
	if !first || acct != want || has || got.ID != "" {
		t.Fatalf("in %s = %v, %+v, %+v, %v; want the account without membership", wsB, first, acct, got, has)
	}
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"signin@example.com"})
}

// testConsumeOnceAndLoginLookupOrCreate: the consume and look-up are
// ConsumeOnceAndLoginLookup's; the creation happens only for the first
// consumer of an unknown email, and is CreateAccountAndUserWithSession's
// (account, membership, session, events; its refusals as there).
func testConsumeOnceAndLoginLookupOrCreate(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	exp := time.Now().Add(time.Minute)
	create := func(email, sessKey string) *storage.JITCreate {
		n := time.Now()
		return &storage.JITCreate{Account: jitAccount(email, wsA), User: jitMember(email),
			Session: storage.Session{Key: sessKey, ActiveWorkspace: wsA, CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
			Events: []storage.Event{{Type: "jit.user.created", Actor: "saml"},
				{Type: "login.succeeded", Actor: "saml", Detail: map[string]string{"email": email}}}}
	}
	noSession := func(t *testing.T, key string) {
		t.Helper()
		if _, err := s.GetSession(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("session %s written: %v", key, err)
		}
	}
	eventCount := func(t *testing.T) int {
		t.Helper()
		all, err := s.ListEvents(ctx, wsA, "", 100)
		must(t, err, "list events")
		return len(all)
	}

	// An unknown email: consumed, created, signed in.
	r, err := s.ConsumeOnceAndLoginLookupOrCreate(ctx, wsA, "c1", exp, " New@Example.com", create("New@Example.com", "cs1"))
	must(t, err, "consume c1")
	must(t, r.CreateErr, "create")
	must(t, r.JIT.SessionErr, "session")
	must(t, r.JIT.EventsErr, "events")
	wantErr(t, r.LookErr, storage.ErrNotFound, "look-up of a new email")
	acct, u := r.JIT.Account, r.JIT.User
	if !r.First || !r.Created || acct.ID == "" || u.AccountID != acct.ID || u.WorkspaceID != wsA || u.Version != 1 {
		t.Fatalf("new email = %+v", r)
	}
	if got, err := s.GetAccountByEmail(ctx, "new@example.com"); err != nil || got != acct {
		t.Fatalf("account by email = %+v, %v; want %+v", got, err, acct)
	}
	if got, err := s.GetUserByAccount(ctx, wsA, acct.ID); err != nil || got.ID != u.ID {
		t.Fatalf("membership = %+v, %v", got, err)
	}
	if x, err := s.GetSession(ctx, "cs1"); err != nil || x.AccountID != acct.ID || x.ActiveWorkspace != wsA {
		t.Fatalf("session = %+v, %v", x, err)
	}
	if len(r.JIT.Events) != 2 || r.JIT.Events[0].ID == "" || r.JIT.Events[1].UserID != u.ID || eventCount(t) != 2 {
		t.Fatalf("events = %+v", r.JIT.Events)
	}

	// Replayed: refused, nothing looked up or created.
	r, err = s.ConsumeOnceAndLoginLookupOrCreate(ctx, wsA, "c1", exp, "other@example.com", create("other@example.com", "cs2"))
	must(t, err, "consume c1 again")
	if r.First || r.Created || r.Account.ID != "" || r.LookErr != nil {
		t.Fatalf("replay = %+v; want refused with nothing", r)
	}
	noSession(t, "cs2")
	if _, err := s.GetAccountByEmail(ctx, "other@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("replay created an account: %v", err)
	}
	// The same replay cache as ConsumeOnce.
	if ok, err := s.ConsumeOnce(ctx, wsA, "c1", exp); err != nil || ok {
		t.Fatalf("ConsumeOnce of a consumed key = %v, %v", ok, err)
	}

	// A known person: the look-up, the prepared creation dropped.
	r, err = s.ConsumeOnceAndLoginLookupOrCreate(ctx, wsA, "c2", exp, "NEW@example.com", create("NEW@example.com", "cs3"))
	must(t, err, "consume c2")
	must(t, r.LookErr, "look-up of a member")
	if !r.First || r.Created || r.Account != acct || !r.HasMember || r.User.ID != u.ID {
		t.Fatalf("member = %+v; want the account and membership found", r)
	}
	noSession(t, "cs3")
	if eventCount(t) != 2 {
		t.Fatal("events appended for a known person")
	}

	// Without a creation: ConsumeOnceAndLoginLookup.
	r, err = s.ConsumeOnceAndLoginLookupOrCreate(ctx, wsA, "c3", exp, "nobody@example.com", nil)
	must(t, err, "consume c3")
	wantErr(t, r.LookErr, storage.ErrNotFound, "unknown email without creation")
	if !r.First || r.Created {
		t.Fatalf("without creation = %+v", r)
	}
	if _, err := s.GetAccountByEmail(ctx, "nobody@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("created without being asked: %v", err)
	}

	t.Run("userName taken in the workspace", func(t *testing.T) {
		other := newAccount(t, s, "holder3@example.com")
		_, err := s.CreateUser(ctx, wsA, storage.User{AccountID: other.ID, UserName: "taken3@example.com"})
		must(t, err, "holder")
		r, err := s.ConsumeOnceAndLoginLookupOrCreate(ctx, wsA, "c4", exp, "taken3@example.com", create("taken3@example.com", "cs4"))
		must(t, err, "consume c4")
		wantConflict(t, r.CreateErr, "userName", "membership with a taken userName")
		if !r.First || !r.Created || r.JIT.Account.ID == "" || r.JIT.User.ID != "" {
			t.Fatalf("got %+v; want the created account and no membership", r)
		}
		noSession(t, "cs4")
	})
	t.Run("missing workspace", func(t *testing.T) {
		c := create("ghost3@example.com", "cs5")
		c.Account.OriginWorkspace = "no-such-ws"
		r, err := s.ConsumeOnceAndLoginLookupOrCreate(ctx, "no-such-ws", "c5", exp, "ghost3@example.com", c)
		must(t, err, "consume c5")
		wantErr(t, r.CreateErr, storage.ErrNotFound, "create in a missing workspace")
		if !r.First || !r.Created {
			t.Fatalf("missing workspace = %+v", r)
		}
		noSession(t, "cs5")
	})
	otherSeesNothing(t, s, wsB, []string{u.ID}, nil, []string{"new@example.com", "taken3@example.com"})
}

// testConsumeOnceAndLoginLookupOrCreateRace: concurrent first sign-ins of
// one new email with different assertions: each consumes its key, exactly
// one creates, the others find the account or lose the creation on the
// email (as CreateAccountAndUser's race), and one membership exists.
func testConsumeOnceAndLoginLookupOrCreateRace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	exp := time.Now().Add(time.Minute)
	const n = 8
	var wg sync.WaitGroup
	rs := make([]storage.ConsumeLookup, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &storage.JITCreate{Account: jitAccount("crowd@example.com", wsA), User: jitMember("crowd@example.com"),
				Session: storage.Session{Key: fmt.Sprintf("crowd-%d", i), ActiveWorkspace: wsA, CreatedAt: time.Now(),
					ExpiresAt: time.Now().Add(time.Hour)}}
			rs[i], errs[i] = s.ConsumeOnceAndLoginLookupOrCreate(ctx, wsA, fmt.Sprintf("crowd-%d", i), exp, "crowd@example.com", c)
		}()
	}
	wg.Wait()
	created := 0
	for i, r := range rs {
		must(t, errs[i], "consume")
		if !r.First {
			t.Fatalf("sign-in %d: its own key was not consumed", i)
		}
		switch {
		case r.Created && r.CreateErr == nil:
			created++
		case r.Created:
			wantConflict(t, r.CreateErr, "email", "losing creation")
		case r.LookErr != nil:
			t.Fatalf("sign-in %d: look-up %v", i, r.LookErr)
		}
	}
	if created != 1 {
		t.Fatalf("%d creations; want exactly 1", created)
	}
	acct, err := s.GetAccountByEmail(ctx, "crowd@example.com")
	must(t, err, "account")
	if _, err := s.GetUserByAccount(ctx, wsA, acct.ID); err != nil {
		t.Fatalf("membership: %v", err)
	}
}

// testConsumeOnceAndLoginLookupRace: of concurrent calls with one key,
// exactly one is first, and only it gets the account.
func testConsumeOnceAndLoginLookupRace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	newUser(t, s, wsA, "racer@example.com")
	exp := time.Now().Add(time.Minute)
	const n = 8
	var wg sync.WaitGroup
	firsts := make([]bool, n)
	ids := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var acct storage.Account
			var lookErr error
			firsts[i], acct, _, _, lookErr, errs[i] = s.ConsumeOnceAndLoginLookup(ctx, wsA, "race", exp, "racer@example.com")
			if errs[i] == nil {
				errs[i] = lookErr
			}
			ids[i] = acct.ID
		}()
	}
	wg.Wait()
	winners := 0
	for i := range firsts {
		must(t, errs[i], fmt.Sprintf("call %d", i))
		if firsts[i] {
			winners++
			if ids[i] == "" {
				t.Fatalf("call %d was first without the account", i)
			}
		} else if ids[i] != "" {
			t.Fatalf("call %d was refused but got account %s", i, ids[i])
		}
	}
	if winners != 1 {
		t.Fatalf("%d calls were first, want 1", winners)
	}
}

// testAppendEvents: several events land in order, after the ones before,
// interleaved correctly with AppendEvent, only in their workspace.
func testAppendEvents(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	first, err := s.AppendEvent(ctx, wsA, storage.Event{Type: "before", Actor: "saml"})
	must(t, err, "append one")
	var in []storage.Event
	for i := 0; i < 3; i++ {
		in = append(in, storage.Event{Type: fmt.Sprintf("batch.%d", i), Actor: "saml", UserID: fmt.Sprintf("u%d", i),
			AccountID: "a", Detail: map[string]string{"n": fmt.Sprint(i)}})
	}
	got, err := s.AppendEvents(ctx, wsA, in)
	must(t, err, "append batch")
	if len(got) != 3 {
		t.Fatalf("appended %d events, want 3", len(got))
	}
	for i, e := range got {
		if e.ID == "" || e.Time.IsZero() || e.Type != in[i].Type {
			t.Fatalf("appended event %d = %+v", i, e)
		}
	}
	empty, err := s.AppendEvents(ctx, wsA, nil)
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty batch = %+v, %v", empty, err)
	}
	_, err = s.AppendEvents(ctx, "conf-missing", in)
	wantErr(t, err, storage.ErrNotFound, "append batch to unknown workspace")
	all, err := s.ListEvents(ctx, wsA, "", 100)
	must(t, err, "list")
	if len(all) != 4 || all[0].ID != first.ID {
		t.Fatalf("list = %+v, want 4 events starting with %s", all, first.ID)
	}
	for i, e := range all[1:] {
		if e.ID != got[i].ID || e.Type != in[i].Type || e.UserID != in[i].UserID || e.Detail["n"] != fmt.Sprint(i) ||
			e.Actor != "saml" || e.AccountID != "a" || !e.Time.Equal(got[i].Time) {
			t.Fatalf("event %d = %+v, want %+v", i, e, got[i])
		}
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

// testGetWorkspaceAndTakeTemp: the workspace as GetWorkspace returns it,
// always current, and the temp value taken once, from this workspace only.
func testGetWorkspaceAndTakeTemp(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	_, _, _, err := s.GetWorkspaceAndTakeTemp(ctx, "conf-missing", "k")
	wantErr(t, err, storage.ErrNotFound, "missing workspace")
	must(t, s.PutTemp(ctx, wsA, "k", []byte("value-a"), time.Minute), "put A")
	must(t, s.PutTemp(ctx, wsB, "k", []byte("value-b"), time.Minute), "put B")
	want, err := s.GetWorkspace(ctx, wsA)
	must(t, err, "get workspace")
	w, v, found, err := s.GetWorkspaceAndTakeTemp(ctx, wsA, "k")
	must(t, err, "get and take")
	if !reflect.DeepEqual(w, want) || !found || string(v) != "value-a" {
		t.Fatalf("got %+v, %q, %v; want %+v, value-a", w, v, found, want)
	}
	_, v, found, err = s.GetWorkspaceAndTakeTemp(ctx, wsA, "k")
	must(t, err, "second take")
	if found || v != nil {
		t.Fatalf("value taken twice: %q", v)
	}
	_, err = s.TakeTemp(ctx, wsA, "k")
	wantErr(t, err, storage.ErrNotFound, "TakeTemp after the take")
	_, _, found, err = s.GetWorkspaceAndTakeTemp(ctx, wsA, "other")
	if err != nil || found {
		t.Fatalf("unknown key: %v, %v", found, err)
	}

	t.Run("always current", func(t *testing.T) {
		upd, err := s.UpdateWorkspace(ctx, wsA, func(w *storage.Workspace) error {
			w.Settings.JIT.Enabled = true
			w.Settings.CustomRoles = []string{"Auditor"}
			return nil
		})
		must(t, err, "update")
		for i := 0; i < 2; i++ {
			w, _, _, err := s.GetWorkspaceAndTakeTemp(ctx, wsA, "k")
			must(t, err, "get after update")
			if !reflect.DeepEqual(w, upd) {
				t.Fatalf("got %+v, want %+v", w, upd)
			}
			// A caller changing its copy changes nothing for the next.
			w.Settings.CustomRoles[0] = "Changed"
		}
	})

	t.Run("other workspace keeps its value", func(t *testing.T) {
		w, v, found, err := s.GetWorkspaceAndTakeTemp(ctx, wsB, "k")
		must(t, err, "take in B")
		if w.ID != wsB || !found || string(v) != "value-b" {
			t.Fatalf("B: %+v, %q, %v", w, v, found)
		}
	})
}

// testCreateSessionAndAppendEvents: both writes happen, independently of
// each other, and the events only in their workspace.
func testCreateSessionAndAppendEvents(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	sess := func(key string, ttl time.Duration) storage.Session {
		n := time.Now()
		return storage.Session{Key: key, AccountID: "acct-1", ActiveWorkspace: wsA, CreatedAt: n, ExpiresAt: n.Add(ttl)}
	}
	evs := []storage.Event{{Type: "jit.user.created", Actor: "saml", UserID: "u1"},
		{Type: "login.succeeded", Actor: "saml", UserID: "u1"}}
	got, sessErr, evErr := s.CreateSessionAndAppendEvents(ctx, sess("k1", time.Hour), wsA, evs)
	must(t, sessErr, "session")
	must(t, evErr, "events")
	if len(got) != 2 || got[0].ID == "" || got[1].ID == "" {
		t.Fatalf("appended %+v", got)
	}
	x, err := s.GetSession(ctx, "k1")
	must(t, err, "get session")
	if x.AccountID != "acct-1" || x.ActiveWorkspace != wsA {
		t.Fatalf("session = %+v", x)
	}
	all, err := s.ListEvents(ctx, wsA, "", 10)
	must(t, err, "list")
	if len(all) != 2 || all[0].ID != got[0].ID || all[0].Type != "jit.user.created" || all[1].Type != "login.succeeded" {
		t.Fatalf("events = %+v", all)
	}

	t.Run("independent outcomes", func(t *testing.T) {
		_, sessErr, evErr := s.CreateSessionAndAppendEvents(ctx, sess("k2", time.Hour), "conf-missing", evs)
		must(t, sessErr, "session with a missing workspace's events")
		wantErr(t, evErr, storage.ErrNotFound, "events of a missing workspace")
		if _, err := s.GetSession(ctx, "k2"); err != nil {
			t.Fatalf("session not created: %v", err)
		}
		_, sessErr, evErr = s.CreateSessionAndAppendEvents(ctx, sess("k3", -time.Second), wsA, evs[:1])
		if sessErr == nil {
			t.Fatal("expired session accepted")
		}
		must(t, evErr, "events next to a refused session")
		if _, err := s.GetSession(ctx, "k3"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("expired session stored: %v", err)
		}
		got, sessErr, evErr := s.CreateSessionAndAppendEvents(ctx, sess("k4", time.Hour), wsA, nil)
		if sessErr != nil || evErr != nil || len(got) != 0 {
			t.Fatalf("no events: %+v, %v, %v", got, sessErr, evErr)
		}
		if _, err := s.GetSession(ctx, "k4"); err != nil {
			t.Fatalf("session without events not created: %v", err)
		}
		if all, err := s.ListEvents(ctx, wsA, "", 10); err != nil || len(all) != 3 {
			t.Fatalf("events in A = %d, %v; want 3", len(all), err)
		}
	})
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}
