package conformance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// Workspaces every case creates: the one it works in and the other one
// whose view must stay unchanged.
const (
	wsA = "conf-a"
	wsB = "conf-b"
)

// RunConformance runs every case against stores made by newStore. Cases
// run in parallel, each on its own store; newStore must return an empty
// store and arrange its cleanup with t.Cleanup.
func RunConformance(t *testing.T, newStore func(t *testing.T) storage.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Workspaces", testWorkspaces},
		{"EmailDomains", testEmailDomains},
		{"SCIMTokens", testSCIMTokens},
		{"Accounts", testAccounts},
		{"AccountRaces", testAccountRaces},
		{"UserCRUD", testUserCRUD},
		{"UserUniqueness", testUserUniqueness},
		{"UserUniquenessRace", testUserUniquenessRace},
		{"UnicodeKeys", testUnicodeKeys},
		{"WriteOps", testWriteOps},
		{"UserPaging", testUserPaging},
		{"UserConcurrentUpdates", testUserConcurrentUpdates},
		{"UserPreconditions", testUserPreconditions},
		{"GroupCRUD", testGroupCRUD},
		{"GroupUniqueness", testGroupUniqueness},
		{"GroupChangeSemantics", testGroupChangeSemantics},
		{"GroupConcurrentAdds", testGroupConcurrentAdds},
		{"GroupPaging", testGroupPaging},
		{"DeleteUserCleansGroups", testDeleteUserCleansGroups},
		{"UserGroups", testUserGroups},
		{"FindUsersWithGroups", testFindUsersWithGroups},
		{"GroupChangeOmitMembers", testGroupChangeOmitMembers},
		{"AccountMemberships", testAccountMemberships},
		{"DeleteWorkspace", testDeleteWorkspace},
		{"Events", testEvents},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"Verifications", testVerifications},
		{"VerificationRace", testVerificationRace},
		{"VerificationExpiry", testVerificationExpiry},
		{"TempValues", testTempValues},
		{"ConsumeOnce", testConsumeOnce},
		{"Mail", testMail},
	}
	cases = append(cases, signInCases...)     // signin.go
	cases = append(cases, rateCases...)       // ratelimit.go
	cases = append(cases, eventCases...)      // events.go
	cases = append(cases, spKeyCases...)      // spkeys.go
	cases = append(cases, groupRoleCases...)  // grouproles.go
	cases = append(cases, webhookCases...)    // webhooks.go
	cases = append(cases, filterCases...)     // filters.go
	cases = append(cases, nameSearchCases...) // namesearch.go
	cases = append(cases, activityCases...)   // activity.go
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			ctx := context.Background()
			for _, ws := range []string{wsA, wsB} {
				if _, err := s.CreateWorkspace(ctx, storage.Workspace{ID: ws, Name: "Conformance " + ws,
					Settings: storage.DefaultSettings()}); err != nil {
					t.Fatalf("create workspace %s: %v", ws, err)
				}
			}
			c.fn(t, s)
		})
	}
}

// ---- helpers ----

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func wantConflict(t *testing.T, err error, field, what string) {
	t.Helper()
	var ce *storage.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("%s: got %v, want ConflictError{%s}", what, err, field)
	}
	if ce.Field != field {
		t.Fatalf("%s: conflict field %q, want %q", what, ce.Field, field)
	}
}

// findUsers is FindUsers without options, returning the users.
func findUsers(ctx context.Context, s storage.Store, ws string, by storage.UserIndex, value string) ([]storage.User, error) {
	found, err := s.FindUsers(ctx, ws, by, value, storage.FindOptions{})
	return found.Users, err
}

func newAccount(t *testing.T, s storage.Store, email string) storage.Account {
	t.Helper()
	a, created, err := s.GetOrCreateAccount(ctxT(t), storage.Account{Email: email, FullName: "Person " + email,
		Source: storage.SourceSCIM, OriginWorkspace: wsA})
	must(t, err, "create account "+email)
	if !created {
		t.Fatalf("account %s existed already", email)
	}
	return a
}

func newUser(t *testing.T, s storage.Store, ws, userName string) storage.User {
	t.Helper()
	a, _, err := s.GetOrCreateAccount(ctxT(t), storage.Account{Email: userName, Source: storage.SourceSCIM,
		OriginWorkspace: ws})
	must(t, err, "account for "+userName)
	u, err := s.CreateUser(ctxT(t), ws, storage.User{AccountID: a.ID, UserName: userName,
		Emails: []string{userName}, Active: true, Verified: true, Source: storage.SourceSCIM,
		Roles: storage.Roles{Dev: storage.RoleOperator, Test: storage.RoleOperator, Prod: storage.RoleOperator}})
	must(t, err, "create user "+userName)
	return u
}

func userIDs(us []storage.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func groupIDs(gs []storage.Group) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// otherSeesNothing is the isolation check run at the end of every case:
// the other workspace has no users, groups, tokens or events, and the
// given ids and userNames of the case's workspace are invisible there.
func otherSeesNothing(t *testing.T, s storage.Store, other string, userIDs, groupIDs, userNames []string) {
	t.Helper()
	t.Run("other workspace sees nothing", func(t *testing.T) {
		ctx := ctxT(t)
		us, total, err := s.ListUsers(ctx, other, 0, 100)
		must(t, err, "list users")
		if total != 0 || len(us) != 0 {
			t.Errorf("workspace %s lists %d users (total %d), want none", other, len(us), total)
		}
		gs, total, err := s.ListGroups(ctx, other, 0, 100)
		must(t, err, "list groups")
		if total != 0 || len(gs) != 0 {
			t.Errorf("workspace %s lists %d groups (total %d), want none", other, len(gs), total)
		}
		toks, err := s.ListSCIMTokens(ctx, other)
		must(t, err, "list tokens")
		if len(toks) != 0 {
			t.Errorf("workspace %s has %d tokens, want none", other, len(toks))
		}
		evs, err := s.ListEvents(ctx, other, "", 100)
		must(t, err, "list events")
		if len(evs) != 0 {
			t.Errorf("workspace %s has %d events, want none", other, len(evs))
		}
		for _, id := range userIDs {
			if _, err := s.GetUser(ctx, other, id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetUser(%s, %s) = %v, want ErrNotFound", other, id, err)
			}
			if _, err := s.UpdateUser(ctx, other, id, 0, func(*storage.User) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("UpdateUser(%s, %s) = %v, want ErrNotFound", other, id, err)
			}
			if err := s.DeleteUser(ctx, other, id, 0); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("DeleteUser(%s, %s) = %v, want ErrNotFound", other, id, err)
			}
			if gs, err := s.FindGroups(ctx, other, storage.GroupByMember, id); err != nil || len(gs) != 0 {
				t.Errorf("FindGroups(%s, member %s) = %d, %v; want none", other, id, len(gs), err)
			}
		}
		for _, id := range groupIDs {
			if _, err := s.GetGroup(ctx, other, id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetGroup(%s, %s) = %v, want ErrNotFound", other, id, err)
			}
			if _, err := s.ChangeGroup(ctx, other, id, storage.GroupChange{}); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("ChangeGroup(%s, %s) = %v, want ErrNotFound", other, id, err)
			}
			if err := s.DeleteGroup(ctx, other, id, 0); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("DeleteGroup(%s, %s) = %v, want ErrNotFound", other, id, err)
			}
		}
		for _, n := range userNames {
			for _, by := range []storage.UserIndex{storage.UserByUserName, storage.UserByEmail} {
				if us, err := findUsers(ctx, s, other, by, n); err != nil || len(us) != 0 {
					t.Errorf("FindUsers(%s, %s=%s) = %d, %v; want none", other, by, n, len(us), err)
				}
			}
		}
	})
}

// parallel runs fn(i) for i in [0,n) on n goroutines started together and
// returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}(i)
	}
	close(start)
	wg.Wait()
	return errs
}

// ---- workspaces and tokens ----

func testWorkspaces(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	ws, err := s.CreateWorkspace(ctx, storage.Workspace{ID: "conf-c", Name: "C", Settings: storage.DefaultSettings()})
	must(t, err, "create")
	if ws.Version != 1 || ws.CreatedAt.IsZero() {
		t.Fatalf("created workspace %+v: want version 1 and a creation time", ws)
	}
	_, err = s.CreateWorkspace(ctx, storage.Workspace{ID: "conf-c", Name: "again"})
	wantConflict(t, err, "workspace", "duplicate workspace")
	got, err := s.GetWorkspace(ctx, "conf-c")
	must(t, err, "get")
	if got.Name != "C" || got.Settings.JIT.DefaultRole != storage.RoleOperator || got.Version != 1 {
		t.Fatalf("get workspace = %+v", got)
	}
	_, err = s.GetWorkspace(ctx, "conf-missing")
	wantErr(t, err, storage.ErrNotFound, "get unknown workspace")

	list, err := s.ListWorkspaces(ctx)
	must(t, err, "list")
	var ids []string
	for _, w := range list {
		ids = append(ids, w.ID)
	}
	if strings.Join(ids, ",") != "conf-a,conf-b,conf-c" {
		t.Fatalf("list workspaces = %v, want conf-a,conf-b,conf-c in id order", ids)
	}

	up, err := s.UpdateWorkspace(ctx, "conf-c", func(w *storage.Workspace) error {
		w.Name = "C2"
		w.Settings.JIT.Enabled = true
		w.Settings.CustomRoles = []string{"Auditor"}
		w.Settings.IdP.MetadataXML = "<EntityDescriptor/>"
		return nil
	})
	must(t, err, "update")
	if up.Version != 2 || up.Name != "C2" {
		t.Fatalf("updated workspace = %+v, want version 2 name C2", up)
	}
	got, err = s.GetWorkspace(ctx, "conf-c")
	must(t, err, "get after update")
	if got.Version != 2 || !got.Settings.JIT.Enabled || !got.Settings.ValidRole("Auditor") ||
		got.Settings.IdP.MetadataXML != "<EntityDescriptor/>" {
		t.Fatalf("workspace after update = %+v", got)
	}
	boom := errors.New("boom")
	_, err = s.UpdateWorkspace(ctx, "conf-c", func(*storage.Workspace) error { return boom })
	wantErr(t, err, boom, "update callback error")
	_, err = s.UpdateWorkspace(ctx, "conf-missing", func(*storage.Workspace) error { return nil })
	wantErr(t, err, storage.ErrNotFound, "update unknown")

	// Concurrent updates of one workspace lose nothing.
	errs := parallel(20, func(i int) error {
		_, err := s.UpdateWorkspace(ctx, "conf-c", func(w *storage.Workspace) error {
			w.Settings.CustomRoles = append(w.Settings.CustomRoles, fmt.Sprintf("R%d", i))
			return nil
		})
		return err
	})
	for _, err := range errs {
		must(t, err, "parallel update")
	}
	got, err = s.GetWorkspace(ctx, "conf-c")
	must(t, err, "get after parallel updates")
	if len(got.Settings.CustomRoles) != 21 || got.Version != 22 {
		t.Fatalf("after 20 parallel updates: %d roles, version %d; want 21, 22", len(got.Settings.CustomRoles), got.Version)
	}

	t.Run("other workspace unchanged", func(t *testing.T) {
		b, err := s.GetWorkspace(ctx, wsB)
		must(t, err, "get other")
		if b.Version != 1 || b.Settings.JIT.Enabled || b.Name != "Conformance "+wsB {
			t.Fatalf("other workspace changed: %+v", b)
		}
	})

	testMetadataRefreshRoundTrip(t, s)

	must(t, s.DeleteWorkspace(ctx, "conf-c"), "delete")
	_, err = s.GetWorkspace(ctx, "conf-c")
	wantErr(t, err, storage.ErrNotFound, "get deleted")
	wantErr(t, s.DeleteWorkspace(ctx, "conf-c"), storage.ErrNotFound, "delete twice")
	list, err = s.ListWorkspaces(ctx)
	must(t, err, "list after delete")
	if len(list) != 2 {
		t.Fatalf("list after delete = %d workspaces, want 2", len(list))
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

func testSCIMTokens(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	t1 := storage.SCIMToken{ID: "tok-1", Name: "okta", Hash: []byte{1, 2, 3, 4}, CreatedAt: time.Now().Add(-time.Minute)}
	t2 := storage.SCIMToken{ID: "tok-2", Name: "rotation", Hash: []byte{5, 6, 7, 8}, CreatedAt: time.Now()}
	must(t, s.CreateSCIMToken(ctx, wsA, t1), "create token 1")
	must(t, s.CreateSCIMToken(ctx, wsA, t2), "create token 2")
	wantErr(t, s.CreateSCIMToken(ctx, "conf-missing", t1), storage.ErrNotFound, "token in unknown workspace")
	toks, err := s.ListSCIMTokens(ctx, wsA)
	must(t, err, "list")
	if len(toks) != 2 || toks[0].ID != "tok-1" || toks[1].ID != "tok-2" || string(toks[0].Hash) != string(t1.Hash) ||
		toks[1].Name != "rotation" {
		t.Fatalf("tokens = %+v", toks)
	}
	if !toks[0].LastUsed.IsZero() {
		t.Fatalf("a token never used has LastUsed %v", toks[0].LastUsed)
	}

	// Last use: the latest time recorded wins, whatever the order.
	used := time.Now().Truncate(time.Millisecond)
	must(t, s.TouchSCIMToken(ctx, wsA, "tok-1", used), "touch")
	must(t, s.TouchSCIMToken(ctx, wsA, "tok-1", used.Add(-time.Second)), "touch with an older time")
	wantErr(t, s.TouchSCIMToken(ctx, wsB, "tok-1", used), storage.ErrNotFound, "touch from the other workspace")
	wantErr(t, s.TouchSCIMToken(ctx, wsA, "tok-unknown", used), storage.ErrNotFound, "touch an unknown token")
	wantErr(t, s.TouchSCIMToken(ctx, "conf-missing", "tok-1", used), storage.ErrNotFound, "touch in an unknown workspace")
	toks, err = s.ListSCIMTokens(ctx, wsA)
	must(t, err, "list after touch")
	if !toks[0].LastUsed.Equal(used) || !toks[1].LastUsed.IsZero() {
		t.Fatalf("last used = %v, %v; want %v and never", toks[0].LastUsed, toks[1].LastUsed, used)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.TouchSCIMToken(ctx, wsA, "tok-2", used.Add(time.Duration(i)*time.Millisecond)); err != nil {
				t.Errorf("concurrent touch: %v", err)
			}
		}()
	}
	wg.Wait()
	toks, err = s.ListSCIMTokens(ctx, wsA)
	must(t, err, "list after concurrent touches")
	if want := used.Add(19 * time.Millisecond); !toks[1].LastUsed.Equal(want) {
		t.Fatalf("last used after concurrent touches = %v, want the latest %v", toks[1].LastUsed, want)
	}

	otherSeesNothing(t, s, wsB, nil, nil, nil)
	wantErr(t, s.RevokeSCIMToken(ctx, wsB, "tok-1"), storage.ErrNotFound, "revoke from the other workspace")
	must(t, s.RevokeSCIMToken(ctx, wsA, "tok-1"), "revoke")
	wantErr(t, s.RevokeSCIMToken(ctx, wsA, "tok-1"), storage.ErrNotFound, "revoke twice")
	toks, err = s.ListSCIMTokens(ctx, wsA)
	must(t, err, "list after revoke")
	if len(toks) != 1 || toks[0].ID != "tok-2" {
		t.Fatalf("tokens after revoke = %+v", toks)
	}
	// A revoked token records no use, and one created again under its id
	// starts unused.
	wantErr(t, s.TouchSCIMToken(ctx, wsA, "tok-1", used), storage.ErrNotFound, "touch a revoked token")
	must(t, s.CreateSCIMToken(ctx, wsA, t1), "create token 1 again")
	toks, err = s.ListSCIMTokens(ctx, wsA)
	must(t, err, "list after re-create")
	if len(toks) != 2 || toks[0].ID != "tok-1" || !toks[0].LastUsed.IsZero() {
		t.Fatalf("re-created token = %+v", toks)
	}
}

// ---- accounts ----

func testAccounts(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	a, created, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "Jane.Doe@Example.com", FullName: "Jane Doe",
		Source: storage.SourceJIT, OriginWorkspace: wsA})
	must(t, err, "create")
	if !created || a.ID == "" || a.CreatedAt.IsZero() {
		t.Fatalf("created account %+v (created %v): want id and time", a, created)
	}
	same, created, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "jane.doe@example.COM"})
	must(t, err, "same email, other case")
	if created || same.ID != a.ID {
		t.Fatalf("same email, other case: %+v (created %v), want %s", same, created, a.ID)
	}
	got, err := s.GetAccount(ctx, a.ID)
	must(t, err, "get")
	if got.Email != "Jane.Doe@Example.com" || got.FullName != "Jane Doe" || got.Source != storage.SourceJIT ||
		got.OriginWorkspace != wsA || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("get account = %+v, want %+v", got, a)
	}
	byEmail, err := s.GetAccountByEmail(ctx, "JANE.DOE@example.com")
	must(t, err, "by email")
	if byEmail.ID != a.ID {
		t.Fatalf("by email = %s, want %s", byEmail.ID, a.ID)
	}
	again, created, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "jane.doe@example.com", FullName: "Other"})
	must(t, err, "get or create existing")
	if created || again.ID != a.ID || again.FullName != "Jane Doe" {
		t.Fatalf("get or create existing = %+v created=%v", again, created)
	}
	fresh, created, err := s.GetOrCreateAccount(ctx, storage.Account{Email: "new@example.com", Source: storage.SourceSCIM})
	must(t, err, "get or create new")
	if !created || fresh.ID == "" || fresh.ID == a.ID {
		t.Fatalf("get or create new = %+v created=%v", fresh, created)
	}
	_, err = s.GetAccount(ctx, "no-such-account")
	wantErr(t, err, storage.ErrNotFound, "get unknown")
	_, err = s.GetAccountByEmail(ctx, "nobody@example.com")
	wantErr(t, err, storage.ErrNotFound, "by unknown email")
	ms, err := s.AccountMemberships(ctx, a.ID)
	must(t, err, "memberships")
	if len(ms) != 0 {
		t.Fatalf("memberships of a new account = %v", ms)
	}
	otherSeesNothing(t, s, wsB, nil, nil, []string{"jane.doe@example.com"})
}

func testAccountRaces(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	const n = 50
	accts := make([]storage.Account, n)
	created := make([]bool, n)
	errs := parallel(n, func(i int) error {
		var err error
		accts[i], created[i], err = s.GetOrCreateAccount(ctx, storage.Account{
			Email: []string{"race@example.com", "RACE@Example.com"}[i%2], FullName: fmt.Sprint(i)})
		return err
	})
	wins := 0
	for i, err := range errs {
		must(t, err, "parallel get or create")
		if created[i] {
			wins++
		}
		if accts[i].ID != accts[0].ID {
			t.Fatalf("parallel get or create returned two accounts: %s and %s", accts[i].ID, accts[0].ID)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d parallel GetOrCreateAccount created the account, want exactly 1", wins, n)
	}
	otherSeesNothing(t, s, wsB, nil, nil, []string{"race@example.com"})
}

// oneWinner checks the outcome of a race of creates: exactly one error is
// nil and every other is a ConflictError on field (R14).
func oneWinner(t *testing.T, errs []error, field, what string) {
	t.Helper()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantConflict(t, err, field, what)
	}
	if ok != 1 {
		t.Fatalf("%s: %d of %d succeeded, want exactly 1", what, ok, len(errs))
	}
}

// testMetadataRefreshRoundTrip: the metadata URL and its refresh state
// (times to the microsecond) survive a write, and clearing them leaves the
// zero state; another workspace sees none of it.
func testMetadataRefreshRoundTrip(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	want := storage.MetadataRefresh{FetchedAt: at, CheckedAt: at.Add(time.Minute), LastError: "HTTP status 503",
		NextDue: at.Add(12 * time.Hour)}
	_, err := s.UpdateWorkspace(ctx, "conf-c", func(w *storage.Workspace) error {
		w.Settings.IdP.MetadataURL = "https://idp.example/metadata"
		w.Settings.IdP.MetadataRefresh = want
		return nil
	})
	must(t, err, "update metadata refresh")
	got, err := s.GetWorkspace(ctx, "conf-c")
	must(t, err, "get after metadata refresh")
	r := got.Settings.IdP.MetadataRefresh
	if got.Settings.IdP.MetadataURL != "https://idp.example/metadata" || !r.FetchedAt.Equal(want.FetchedAt) ||
		!r.CheckedAt.Equal(want.CheckedAt) || r.LastError != want.LastError || !r.NextDue.Equal(want.NextDue) {
		t.Fatalf("metadata refresh after update = %q %+v, want %+v", got.Settings.IdP.MetadataURL, r, want)
	}
	other, err := s.GetWorkspace(ctx, "conf-a")
	must(t, err, "get other workspace")
	if other.Settings.IdP.MetadataURL != "" || other.Settings.IdP.MetadataRefresh != (storage.MetadataRefresh{}) {
		t.Fatalf("another workspace sees the metadata refresh: %+v", other.Settings.IdP)
	}
	got, err = s.UpdateWorkspace(ctx, "conf-c", func(w *storage.Workspace) error {
		w.Settings.IdP.MetadataURL = ""
		w.Settings.IdP.MetadataRefresh = storage.MetadataRefresh{}
		return nil
	})
	must(t, err, "clear metadata refresh")
	got, err = s.GetWorkspace(ctx, "conf-c")
	must(t, err, "get after clear")
	if got.Settings.IdP.MetadataURL != "" || got.Settings.IdP.MetadataRefresh != (storage.MetadataRefresh{}) {
		t.Fatalf("metadata refresh after clear = %+v", got.Settings.IdP)
	}
}
