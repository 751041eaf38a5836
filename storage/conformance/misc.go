package conformance

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// ttlWait waits for real time to pass so that TTLs expire. Backends may
// expire keys up to about a second late (the embedded server's ticker).
func ttlWait(d time.Duration) { time.Sleep(d) }

func testAccountMemberships(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	acct := newAccount(t, s, "multi@example.com")
	ua, err := s.CreateUser(ctx, wsA, storage.User{AccountID: acct.ID, UserName: "multi@example.com"})
	must(t, err, "membership in A")
	ub, err := s.CreateUser(ctx, wsB, storage.User{AccountID: acct.ID, UserName: "multi@example.com"})
	must(t, err, "membership in B")
	ms, err := s.AccountMemberships(ctx, acct.ID)
	must(t, err, "memberships")
	if len(ms) != 2 || ms[0] != (storage.MembershipRef{WorkspaceID: wsA, UserID: ua.ID}) ||
		ms[1] != (storage.MembershipRef{WorkspaceID: wsB, UserID: ub.ID}) {
		t.Fatalf("memberships = %+v", ms)
	}
	must(t, s.DeleteUser(ctx, wsA, ua.ID, 0), "leave A")
	ms, err = s.AccountMemberships(ctx, acct.ID)
	must(t, err, "memberships after leaving A")
	if len(ms) != 1 || ms[0].WorkspaceID != wsB {
		t.Fatalf("memberships after leaving A = %+v", ms)
	}
	// B's membership is untouched by A's delete.
	got, err := s.GetUserByAccount(ctx, wsB, acct.ID)
	must(t, err, "B membership")
	if got.ID != ub.ID || got.Version != 1 {
		t.Fatalf("B membership changed: %+v", got)
	}
	must(t, s.DeleteUser(ctx, wsB, ub.ID, 0), "leave B")
	otherSeesNothing(t, s, wsB, []string{ua.ID, ub.ID}, nil, []string{"multi@example.com"})
}

func testDeleteWorkspace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	acct := newAccount(t, s, "gone@example.com")
	// The same account is a member of both workspaces; only A is deleted.
	ua, err := s.CreateUser(ctx, wsA, storage.User{AccountID: acct.ID, UserName: "gone@example.com", ExternalID: "e1",
		Emails: []string{"gone@example.com"}})
	must(t, err, "user in A")
	ub, err := s.CreateUser(ctx, wsB, storage.User{AccountID: acct.ID, UserName: "gone@example.com"})
	must(t, err, "user in B")
	gb, err := s.CreateGroup(ctx, wsB, storage.Group{DisplayName: "B group", Members: []string{ub.ID}})
	must(t, err, "group in B")
	ga, err := s.CreateGroup(ctx, wsA, storage.Group{DisplayName: "A group", ExternalID: "ge1", Members: []string{ua.ID}})
	must(t, err, "group in A")
	must(t, s.CreateSCIMToken(ctx, wsA, storage.SCIMToken{ID: "t1", Hash: []byte{1}}), "token")
	wh, err := s.CreateWebhook(ctx, wsA, storage.Webhook{URL: "https://a.example/hook", Enabled: true,
		Secrets: []storage.WebhookSecret{{Sealed: []byte("secret")}}})
	must(t, err, "webhook endpoint")
	_, err = s.AppendEvents(ctx, wsA, storage.Event{Type: "scim.user.created", UserID: ua.ID})
	must(t, err, "event")
	must(t, s.AppendWebhookAttempt(ctx, wsA, wh.ID, storage.WebhookAttempt{Time: time.Now(), Attempt: 1, Status: 500}), "attempt")
	must(t, s.RecordSCIMError(ctx, wsA, storage.SCIMRequestError{Time: time.Now(), Method: "POST", Route: "/Users",
		Status: 409, SCIMType: "uniqueness", Detail: "taken"}), "scim error")

	must(t, s.DeleteWorkspace(ctx, wsA), "delete workspace")
	_, err = s.GetWorkspace(ctx, wsA)
	wantErr(t, err, storage.ErrNotFound, "get deleted workspace")
	_, err = s.CreateUser(ctx, wsA, storage.User{UserName: "late@example.com"})
	wantErr(t, err, storage.ErrNotFound, "create user in deleted workspace")
	ms, err := s.AccountMemberships(ctx, acct.ID)
	must(t, err, "memberships")
	if len(ms) != 1 || ms[0].WorkspaceID != wsB {
		t.Fatalf("memberships after workspace delete = %+v", ms)
	}
	// The account itself survives (it may belong to other workspaces).
	_, err = s.GetAccount(ctx, acct.ID)
	must(t, err, "account survives")

	// Re-created with the same id, the workspace starts empty.
	_, err = s.CreateWorkspace(ctx, storage.Workspace{ID: wsA, Name: "again"})
	must(t, err, "re-create")
	otherSeesNothing(t, s, wsA, []string{ua.ID}, []string{ga.ID}, []string{"gone@example.com"})
	if us, err := findUsers(ctx, s, wsA, storage.UserByExternalID, "e1"); err != nil || len(us) != 0 {
		t.Fatalf("re-created workspace finds externalId: %d, %v", len(us), err)
	}
	if gs, err := s.FindGroups(ctx, wsA, storage.GroupByName, "a group"); err != nil || len(gs) != 0 {
		t.Fatalf("re-created workspace finds group name: %d, %v", len(gs), err)
	}
	// Its webhook endpoints, their secrets and attempts, and the outbox are
	// gone with it: a workspace re-created with the same id never sends its
	// events to the old one's receivers.
	if whs, err := s.ListWebhooks(ctx, wsA); err != nil || len(whs) != 0 {
		t.Fatalf("re-created workspace lists webhooks %+v, %v", whs, err)
	}
	_, err = s.GetWebhook(ctx, wsA, wh.ID)
	wantErr(t, err, storage.ErrNotFound, "the deleted workspace's endpoint")
	if as, err := s.ListWebhookAttempts(ctx, wsA, wh.ID, 10); err != nil || len(as) != 0 {
		t.Fatalf("re-created workspace lists attempts %+v, %v", as, err)
	}
	if out, err := s.ReadOutbox(ctx, wsA, "conformance", 10, 0); err != nil || len(out) != 0 {
		t.Fatalf("re-created workspace's outbox holds %+v, %v", out, err)
	}
	// Nor does it inherit the provisioning summary.
	if act, err := s.SCIMActivity(ctx, wsA, time.Now()); err != nil || len(act.Counts) != 0 || len(act.Errors) != 0 {
		t.Fatalf("re-created workspace's provisioning summary %+v, %v", act, err)
	}
	_, err = s.CreateUser(ctx, wsA, storage.User{AccountID: acct.ID, UserName: "gone@example.com", ExternalID: "e1"})
	must(t, err, "the freed names and account are usable again")

	t.Run("other workspace keeps its data", func(t *testing.T) {
		got, err := s.GetUser(ctx, wsB, ub.ID)
		must(t, err, "user in B")
		if got.Version != 1 {
			t.Fatalf("B user changed: %+v", got)
		}
		g, err := s.GetGroup(ctx, wsB, gb.ID)
		must(t, err, "group in B")
		if !sameSet(g.Members, []string{ub.ID}) {
			t.Fatalf("B group members = %v", g.Members)
		}
	})
}

func testEvents(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	var ids []string
	for i := 0; i < 5; i++ {
		es, err := s.AppendEvents(ctx, wsA, storage.Event{Type: "scim.user.created", Actor: "scim",
			UserID: fmt.Sprintf("u%d", i), AccountID: "a", Detail: map[string]string{"n": fmt.Sprint(i)}})
		must(t, err, "append")
		e := es[0]
		if e.ID == "" || e.Time.IsZero() {
			t.Fatalf("appended event %+v: want id and time", e)
		}
		ids = append(ids, e.ID)
	}
	_, err := s.AppendEvents(ctx, "conf-missing", storage.Event{Type: "x"})
	wantErr(t, err, storage.ErrNotFound, "append to unknown workspace")
	all, err := s.ListEvents(ctx, wsA, "", 100)
	must(t, err, "list")
	if len(all) != 5 {
		t.Fatalf("list = %d events, want 5", len(all))
	}
	for i, e := range all {
		if e.ID != ids[i] || e.UserID != fmt.Sprintf("u%d", i) || e.Detail["n"] != fmt.Sprint(i) ||
			e.Type != "scim.user.created" || e.Actor != "scim" || e.AccountID != "a" {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	after, err := s.ListEvents(ctx, wsA, ids[1], 2)
	must(t, err, "list after")
	if len(after) != 2 || after[0].ID != ids[2] || after[1].ID != ids[3] {
		t.Fatalf("after %s limit 2 = %+v", ids[1], after)
	}
	end, err := s.ListEvents(ctx, wsA, ids[4], 10)
	must(t, err, "list after last")
	if len(end) != 0 {
		t.Fatalf("after last = %+v", end)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
	if evs, err := s.ListEvents(ctx, wsB, ids[1], 10); err != nil || len(evs) != 0 {
		t.Fatalf("other workspace with A's cursor: %d, %v", len(evs), err)
	}
}

func testSessions(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	idp := storage.IdPSession{Workspace: wsA, NameID: "jane@example.com",
		NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", SessionIndex: "ix-1"}
	must(t, s.CreateSession(ctx, storage.Session{Key: "sess-hash-1", AccountID: "acct-1", ActiveWorkspace: wsA,
		ExpiresAt: exp, IdP: idp}), "create")
	got, err := s.GetSession(ctx, "sess-hash-1")
	must(t, err, "get")
	if got.AccountID != "acct-1" || got.ActiveWorkspace != wsA || !got.ExpiresAt.Equal(exp) || got.Key != "sess-hash-1" || got.IdP != idp {
		t.Fatalf("session = %+v", got)
	}
	up, err := s.UpdateSession(ctx, "sess-hash-1", func(x *storage.Session) error {
		x.ActiveWorkspace = wsB
		return nil
	})
	must(t, err, "update")
	if up.ActiveWorkspace != wsB || !up.ExpiresAt.Equal(exp) || up.IdP != idp {
		t.Fatalf("updated session = %+v", up)
	}
	got, err = s.GetSession(ctx, "sess-hash-1")
	must(t, err, "get after update")
	if got.ActiveWorkspace != wsB || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("session after update = %+v", got)
	}
	boom := errors.New("boom")
	_, err = s.UpdateSession(ctx, "sess-hash-1", func(*storage.Session) error { return boom })
	wantErr(t, err, boom, "update callback error")
	_, err = s.UpdateSession(ctx, "no-such-session", func(*storage.Session) error { return nil })
	wantErr(t, err, storage.ErrNotFound, "update unknown")
	_, err = s.GetSession(ctx, "no-such-session")
	wantErr(t, err, storage.ErrNotFound, "get unknown")
	must(t, s.DeleteSession(ctx, "sess-hash-1"), "delete")
	_, err = s.GetSession(ctx, "sess-hash-1")
	wantErr(t, err, storage.ErrNotFound, "get deleted")

	// An operator's console session keeps the admin token's name, and
	// creating it again under the same key moves its expiry (idle expiry).
	must(t, s.CreateSession(ctx, storage.Session{Key: "op-hash-1", Operator: "ops", ExpiresAt: exp}), "create operator session")
	got, err = s.GetSession(ctx, "op-hash-1")
	must(t, err, "get operator session")
	if got.Operator != "ops" || got.AccountID != "" || got.ActiveWorkspace != "" || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("operator session = %+v", got)
	}
	later := exp.Add(time.Hour)
	must(t, s.CreateSession(ctx, storage.Session{Key: "op-hash-1", Operator: "ops", CreatedAt: got.CreatedAt, ExpiresAt: later}), "extend operator session")
	if got, err = s.GetSession(ctx, "op-hash-1"); err != nil || got.Operator != "ops" || !got.ExpiresAt.Equal(later) {
		t.Fatalf("extended operator session = %+v, %v", got, err)
	}
	must(t, s.DeleteSession(ctx, "op-hash-1"), "delete operator session")
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

func testSessionExpiry(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	must(t, s.CreateSession(ctx, storage.Session{Key: "short", AccountID: "a", ExpiresAt: time.Now().Add(time.Second)}), "create short")
	must(t, s.CreateSession(ctx, storage.Session{Key: "long", AccountID: "a", ExpiresAt: time.Now().Add(time.Hour)}), "create long")
	// Updating keeps the expiry: the short session must still expire.
	_, err := s.UpdateSession(ctx, "short", func(x *storage.Session) error { x.ActiveWorkspace = wsA; return nil })
	must(t, err, "update short")
	ttlWait(2500 * time.Millisecond)
	_, err = s.GetSession(ctx, "short")
	wantErr(t, err, storage.ErrNotFound, "expired session")
	_, err = s.GetSession(ctx, "long")
	must(t, err, "long session still live")
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

func newVerification(acct, ws, hash string, ttl time.Duration) storage.Verification {
	return storage.Verification{TokenHash: hash, AccountID: acct, WorkspaceID: ws,
		Roles: storage.Roles{Dev: "Admin", Test: "Operator", Prod: "NoAccess"}, UserID: "user-x",
		RoleSources: map[string]string{"dev.source": "rule", "dev.rule": "2", "dev.group": "Finance Admins", "test.source": "default"},
		ExpiresAt:   time.Now().Add(ttl)}
}

func testVerifications(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	acct := newAccount(t, s, "verify@example.com")
	v1 := newVerification(acct.ID, wsA, "hash-1", time.Hour)
	must(t, s.CreateVerification(ctx, v1), "create")
	got, err := s.GetVerification(ctx, acct.ID, "hash-1")
	must(t, err, "get")
	if got.WorkspaceID != wsA || got.Roles != v1.Roles || got.UserID != "user-x" || got.AccountID != acct.ID ||
		got.TokenHash != "hash-1" || got.ExpiresAt.Sub(v1.ExpiresAt).Abs() > time.Millisecond ||
		!maps.Equal(got.RoleSources, v1.RoleSources) {
		t.Fatalf("verification = %+v, want %+v", got, v1)
	}
	_, err = s.GetVerification(ctx, "other-account", "hash-1")
	wantErr(t, err, storage.ErrNotFound, "get under another account")
	// Get does not consume.
	_, err = s.GetVerification(ctx, acct.ID, "hash-1")
	must(t, err, "get twice")

	// A new verification for the same account and workspace replaces it.
	must(t, s.CreateVerification(ctx, newVerification(acct.ID, wsA, "hash-2", time.Hour)), "replace")
	_, err = s.GetVerification(ctx, acct.ID, "hash-1")
	wantErr(t, err, storage.ErrNotFound, "replaced verification")
	_, err = s.ConsumeVerification(ctx, acct.ID, "hash-1", "op-1")
	wantErr(t, err, storage.ErrNotFound, "consume replaced verification")

	t.Run("other workspace has its own verification", func(t *testing.T) {
		must(t, s.CreateVerification(ctx, newVerification(acct.ID, wsB, "hash-b", time.Hour)), "create for B")
		_, err := s.GetVerification(ctx, acct.ID, "hash-2")
		must(t, err, "A's verification survives B's")
		vb, err := s.ConsumeVerification(ctx, acct.ID, "hash-b", "op-b")
		must(t, err, "consume B")
		if vb.WorkspaceID != wsB {
			t.Fatalf("consumed B verification for %s", vb.WorkspaceID)
		}
	})

	v, err := s.ConsumeVerification(ctx, acct.ID, "hash-2", "op-2")
	must(t, err, "consume")
	if v.WorkspaceID != wsA || v.TokenHash != "hash-2" {
		t.Fatalf("consumed = %+v", v)
	}
	_, err = s.ConsumeVerification(ctx, acct.ID, "hash-2", "op-other")
	wantErr(t, err, storage.ErrNotFound, "consume twice")
	_, err = s.GetVerification(ctx, acct.ID, "hash-2")
	wantErr(t, err, storage.ErrNotFound, "get consumed")
	// The same confirmation, re-sent because its answer was lost, gets
	// the verification again; nobody else does.
	again, err := s.ConsumeVerification(ctx, acct.ID, "hash-2", "op-2")
	must(t, err, "re-sent consume")
	if !reflect.DeepEqual(again, v) {
		t.Fatalf("re-sent consume = %+v, want %+v", again, v)
	}
	// After a consume, a new one for the same pair works.
	must(t, s.CreateVerification(ctx, newVerification(acct.ID, wsA, "hash-3", time.Hour)), "create after consume")
	_, err = s.GetVerification(ctx, acct.ID, "hash-3")
	must(t, err, "get new")
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

func testVerificationRace(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	acct := newAccount(t, s, "race-verify@example.com")
	must(t, s.CreateVerification(ctx, newVerification(acct.ID, wsA, "race-hash", time.Hour)), "create")
	const n = 20
	errs := parallel(n, func(i int) error {
		_, err := s.ConsumeVerification(ctx, acct.ID, "race-hash", fmt.Sprintf("op-%d", i))
		return err
	})
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantErr(t, err, storage.ErrNotFound, "losing consume")
	}
	if ok != 1 {
		t.Fatalf("%d of %d racing consumes succeeded, want exactly 1", ok, n)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

func testVerificationExpiry(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	acct := newAccount(t, s, "expire-verify@example.com")
	must(t, s.CreateVerification(ctx, newVerification(acct.ID, wsA, "short", time.Second)), "create short")
	must(t, s.CreateVerification(ctx, newVerification(acct.ID, wsB, "long", time.Hour)), "create long")
	ttlWait(2500 * time.Millisecond)
	_, err := s.GetVerification(ctx, acct.ID, "short")
	wantErr(t, err, storage.ErrNotFound, "get expired")
	_, err = s.ConsumeVerification(ctx, acct.ID, "short", "op-s")
	wantErr(t, err, storage.ErrNotFound, "consume expired")
	_, err = s.ConsumeVerification(ctx, acct.ID, "long", "op-l")
	must(t, err, "consume live one")
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

func testTempValues(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	must(t, s.PutTemp(ctx, wsA, "relay-1", []byte("request-id-1"), time.Minute), "put")
	_, err := s.TakeTemp(ctx, wsB, "relay-1")
	wantErr(t, err, storage.ErrNotFound, "take from the other workspace")
	v, err := s.TakeTemp(ctx, wsA, "relay-1")
	must(t, err, "take")
	if string(v) != "request-id-1" {
		t.Fatalf("take = %q", v)
	}
	_, err = s.TakeTemp(ctx, wsA, "relay-1")
	wantErr(t, err, storage.ErrNotFound, "take twice")

	must(t, s.PutTemp(ctx, wsA, "race", []byte("x"), time.Minute), "put race")
	errs := parallel(20, func(int) error { _, err := s.TakeTemp(ctx, wsA, "race"); return err })
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantErr(t, err, storage.ErrNotFound, "losing take")
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 20 racing takes succeeded, want 1", ok)
	}

	must(t, s.PutTemp(ctx, wsA, "short", []byte("x"), time.Second), "put short")
	must(t, s.PutTemp(ctx, wsA, "long", []byte("y"), time.Hour), "put long")
	ttlWait(2500 * time.Millisecond)
	_, err = s.TakeTemp(ctx, wsA, "short")
	wantErr(t, err, storage.ErrNotFound, "take expired")
	v, err = s.TakeTemp(ctx, wsA, "long")
	must(t, err, "take long")
	if string(v) != "y" {
		t.Fatalf("long = %q", v)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

func testConsumeOnce(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	exp := time.Now().Add(time.Hour)
	first, err := s.ConsumeOnce(ctx, wsA, "assertion-1", exp)
	must(t, err, "first")
	second, err := s.ConsumeOnce(ctx, wsA, "assertion-1", exp)
	must(t, err, "second")
	if !first || second {
		t.Fatalf("ConsumeOnce = %v then %v, want true then false", first, second)
	}
	t.Run("other workspace has its own replay cache", func(t *testing.T) {
		b, err := s.ConsumeOnce(ctx, wsB, "assertion-1", exp)
		must(t, err, "other workspace")
		if !b {
			t.Fatalf("the other workspace saw A's assertion id")
		}
	})
	const n = 20
	results := make([]bool, n)
	errs := parallel(n, func(i int) error {
		var err error
		results[i], err = s.ConsumeOnce(ctx, wsA, "assertion-race", exp)
		return err
	})
	wins := 0
	for i, err := range errs {
		must(t, err, "racing consume")
		if results[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d racing ConsumeOnce returned true, want 1", wins, n)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}

func testMail(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	var ids []string
	for i := 0; i < 3; i++ {
		m, err := s.AppendMail(ctx, storage.Mail{To: fmt.Sprintf("p%d@example.com", i), Subject: "Join",
			Text: "link", HTML: "<a>link</a>", Status: "queued"})
		must(t, err, "append")
		if m.ID == "" || m.Time.IsZero() {
			t.Fatalf("appended mail %+v: want id and time", m)
		}
		ids = append(ids, m.ID)
	}
	t1 := time.Now().UTC().Truncate(time.Millisecond)
	t2 := t1.Add(time.Second)
	must(t, s.AddMailAttempt(ctx, ids[1], storage.MailAttempt{Time: t1, Outcome: "failed", Error: "smtp: 451"}, "queued", ""),
		"first attempt")
	must(t, s.AddMailAttempt(ctx, ids[1], storage.MailAttempt{Time: t2, Outcome: "failed", Error: "smtp: 550"}, "failed",
		"smtp: 550"), "second attempt")
	wantErr(t, s.AddMailAttempt(ctx, "no-such-mail", storage.MailAttempt{Time: t1, Outcome: "sent"}, "sent", ""),
		storage.ErrNotFound, "attempt of unknown mail")
	ms, err := s.ListMail(ctx, 2)
	must(t, err, "list")
	if len(ms) != 2 || ms[0].ID != ids[2] || ms[1].ID != ids[1] {
		t.Fatalf("list 2 = %+v, want newest first", ms)
	}
	if ms[1].Status != "failed" || ms[1].Error != "smtp: 550" || ms[0].Status != "queued" || ms[0].To != "p2@example.com" ||
		ms[0].HTML != "<a>link</a>" || len(ms[0].Attempts) != 0 {
		t.Fatalf("mail = %+v", ms)
	}
	want := []storage.MailAttempt{{Time: t1, Outcome: "failed", Error: "smtp: 451"}, {Time: t2, Outcome: "failed", Error: "smtp: 550"}}
	if !reflect.DeepEqual(ms[1].Attempts, want) {
		t.Fatalf("attempts = %+v, want %+v", ms[1].Attempts, want)
	}
	got, err := s.GetMail(ctx, ids[1])
	must(t, err, "get")
	if !reflect.DeepEqual(got, ms[1]) {
		t.Fatalf("get = %+v, want what the list shows, %+v", got, ms[1])
	}
	_, err = s.GetMail(ctx, "no-such-mail")
	wantErr(t, err, storage.ErrNotFound, "get unknown mail")
	exp := t1.Add(30 * time.Minute)
	m, err := s.AppendMail(ctx, storage.Mail{To: "x@example.com", Subject: "Join", Expires: exp})
	must(t, err, "append with expiry")
	got, err = s.GetMail(ctx, m.ID)
	must(t, err, "get with expiry")
	if !got.Expires.Equal(exp) || got.Status != "queued" {
		t.Fatalf("get = %+v, want expiry %v and status queued", got, exp)
	}
	otherSeesNothing(t, s, wsB, nil, nil, nil)
}
