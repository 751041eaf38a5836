package saml_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

func decodeJSON(s string, v any) error { return json.Unmarshal([]byte(s), v) }

var jane = person{Email: "Jane.Doe@Example.com", FullName: "Jane Doe", Role: "Admin", RoleTest: "Analyst", Prod: "Operator"}

// janeInHR is jane as HR's IdP asserts her: other roles.
var janeInHR = person{Email: jane.Email, FullName: jane.FullName, Role: "Analyst", RoleTest: "Operator", Prod: "NoAccess"}

// signInToA signs jane in to workspace "fin" by JIT and returns the browser.
func signInToA(t *testing.T, je *joinEnv) *browser {
	t.Helper()
	b := je.browser(t)
	pg := b.signIn("fin", jane)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "Signed in as Jane Doe") {
		t.Fatalf("JIT sign-in to fin: %d %s\n%s", pg.status, pg.url, pg.body)
	}
	return b
}

// pendingJoin signs b in to ws as p and checks the "check your email" page.
func pendingJoin(t *testing.T, b *browser, ws string, p person) page {
	t.Helper()
	pg := b.signIn(ws, p)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "Check your email") {
		t.Fatalf("sign-in to %s: %d %s, want the check-your-email page:\n%s", ws, pg.status, pg.url, pg.body)
	}
	return pg
}

// confirm opens link in b, checks the confirmation page and posts it.
func confirm(t *testing.T, b *browser, link string) page {
	t.Helper()
	pg := b.get(link)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `id="join-confirm"`) {
		t.Fatalf("GET %s: %d, want the confirmation page:\n%s", link, pg.status, pg.body)
	}
	return b.post("/join/confirm", pg.form(t, "/join/confirm"))
}

func account(t *testing.T, je *joinEnv, email string) storage.Account {
	t.Helper()
	a, err := je.Store.GetAccountByEmail(t.Context(), email)
	if err != nil {
		t.Fatalf("account %s: %v", email, err)
	}
	return a
}

func noMembership(t *testing.T, je *joinEnv, ws, accountID string) {
	t.Helper()
	u, err := je.Store.GetUserByAccount(t.Context(), ws, accountID)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("membership in %s = %+v, %v; want none", ws, u, err)
	}
}

func TestJoinSecondWorkspaceByEmailVerification(t *testing.T) {
	je := newJoinEnv(t, joinOptions{})
	je.workspace(t, "fin", nil)
	je.workspace(t, "hr", nil) // jit.existingAccount=verify (the default)

	b := signInToA(t, je)
	acct := account(t, je, jane.Email)
	if me := b.me(); me.ActiveWorkspace != "fin" {
		t.Fatalf("active workspace after JIT = %q", me.ActiveWorkspace)
	}

	// Sign-in to HR: nothing joins yet, a link goes to the account's email.
	sent := pendingJoin(t, b, "hr", janeInHR)
	if !strings.Contains(sent.body, "Ja***@Example.com") {
		t.Errorf("the page does not name the (masked) address the link went to:\n%s", sent.body)
	}
	noMembership(t, je, "hr", acct.ID)
	if n := countEvents(je.events(t, "hr"), "join.pending"); n != 1 {
		t.Errorf("%d join.pending events in hr, want 1", n)
	}
	m := je.nextMail(t)
	if len(m.To) != 1 || m.To[0] != acct.Email {
		t.Fatalf("mail went to %v, want the account's address %q", m.To, acct.Email)
	}
	if !strings.Contains(m.Subject, "Hr") {
		t.Errorf("subject %q does not name the workspace", m.Subject)
	}
	link := joinLink(t, m)
	if !strings.HasPrefix(link, je.URL+"/join/"+acct.ID+".hr.") {
		t.Errorf("link %q is not <base>/join/<account>.<workspace>.<secret>", link)
	}

	// A mail scanner (another client, no cookies) GETs the link twice:
	// it sees the confirmation page and changes nothing.
	scanner := je.browser(t)
	for range 2 {
		pg := scanner.get(link)
		if pg.status != http.StatusOK || !strings.Contains(pg.body, "Join Hr?") {
			t.Fatalf("GET link: %d\n%s", pg.status, pg.body)
		}
		for _, role := range []string{"Analyst", "Operator", "NoAccess"} {
			if !strings.Contains(pg.body, role) {
				t.Errorf("confirmation page does not show role %s", role)
			}
		}
	}
	noMembership(t, je, "hr", acct.ID)
	if _, err := je.Store.GetVerification(t.Context(), acct.ID, tokenHash(tokenOf(link))); err != nil {
		t.Fatalf("the link stopped working after GETs: %v", err)
	}
	if n := countEvents(je.events(t, "hr"), "join.verified"); n != 0 {
		t.Fatalf("GET recorded %d join.verified events", n)
	}

	// The person confirms: member of HR with the roles HR's IdP asserted,
	// signed in to HR.
	pg := confirm(t, b, link)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `id="active-workspace">hr<`) {
		t.Fatalf("confirm: %d %s\n%s", pg.status, pg.url, pg.body)
	}
	u, err := je.Store.GetUserByAccount(t.Context(), "hr", acct.ID)
	if err != nil {
		t.Fatalf("membership in hr: %v", err)
	}
	wantRoles := storage.Roles{Dev: "Analyst", Test: "Operator", Prod: "NoAccess"}
	if !u.Verified || !u.Active || u.Roles != wantRoles || u.UserName != acct.Email || u.Source != storage.SourceJIT || u.ExternalID != "" {
		t.Errorf("membership = %+v; want verified, active, roles %+v, userName %q, source jit", u, wantRoles, acct.Email)
	}
	if n := countEvents(je.events(t, "hr"), "join.verified"); n != 1 {
		t.Errorf("%d join.verified events, want 1", n)
	}
	me := b.me()
	if me.ActiveWorkspace != "hr" {
		t.Errorf("active workspace after confirm = %q, want hr", me.ActiveWorkspace)
	}
	if roles, verified, active, ok := me.membership("hr"); !ok || !verified || !active || roles != wantRoles {
		t.Errorf("/api/v1/me hr membership = %+v %v %v %v", roles, verified, active, ok)
	}
	if roles, _, _, _ := me.membership("fin"); roles != (storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Operator"}) {
		t.Errorf("fin roles changed: %+v", roles)
	}

	// The link is single use.
	if pg := scanner.get(link); pg.status != http.StatusGone || !strings.Contains(pg.body, `id="join-invalid"`) {
		t.Errorf("GET used link: %d, want 410 and the invalid-link page", pg.status)
	}

	// Switching: both workspaces are offered; /api/v1/me follows.
	home := b.get("/")
	if !strings.Contains(home.body, "Switch to Fin") || strings.Contains(home.body, "Switch to Hr") {
		t.Fatalf("home page switcher (active hr) wrong:\n%s", home.body)
	}
	pg = b.post("/switch", home.form(t, "/switch"))
	if pg.status != http.StatusOK || b.me().ActiveWorkspace != "fin" {
		t.Fatalf("switch to fin: %d, active %q", pg.status, b.me().ActiveWorkspace)
	}
	if !strings.Contains(pg.body, "Switch to Hr") {
		t.Errorf("after switching to fin, hr is not offered:\n%s", pg.body)
	}
	pg = b.post("/switch", pg.form(t, "/switch"))
	if pg.status != http.StatusOK || b.me().ActiveWorkspace != "hr" {
		t.Fatalf("switch back to hr: %d, active %q", pg.status, b.me().ActiveWorkspace)
	}
}

func TestJoinAutoPolicyJoinsAtOnce(t *testing.T) {
	je := newJoinEnv(t, joinOptions{})
	je.workspace(t, "fin", nil)
	je.workspace(t, "hr", func(ws *storage.Workspace) { ws.Settings.JIT.ExistingAccount = storage.ExistingAccountAuto })
	b := signInToA(t, je)
	pg := b.signIn("hr", janeInHR)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `id="active-workspace">hr<`) {
		t.Fatalf("auto join: %d %s\n%s", pg.status, pg.url, pg.body)
	}
	u, err := je.Store.GetUserByAccount(t.Context(), "hr", account(t, je, jane.Email).ID)
	if err != nil || !u.Verified || !u.Active || u.Roles != (storage.Roles{Dev: "Analyst", Test: "Operator", Prod: "NoAccess"}) {
		t.Fatalf("membership = %+v, %v", u, err)
	}
	je.flushMail(t)
	if n := je.smtp.Pending(); n != 0 {
		t.Errorf("%d mails sent under the auto policy", n)
	}
	if n := countEvents(je.events(t, "hr"), "join.pending"); n != 0 {
		t.Errorf("%d join.pending events under the auto policy", n)
	}
}

func TestJoinSCIMCreatedMembershipIsVerifiedAtFirstSignIn(t *testing.T) {
	je := newJoinEnv(t, joinOptions{})
	je.workspace(t, "fin", nil)
	scim := je.workspace(t, "hr", nil)
	b := signInToA(t, je)
	acct := account(t, je, jane.Email)

	// HR's IdP provisions jane over SCIM (R9): the account exists
	// elsewhere, so the membership starts unverified.
	resp, body := je.Do(t, http.MethodPost, "/scim/v2/hr/Users", scim, map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": jane.Email, "active": true,
		"emails": []map[string]any{{"value": jane.Email, "type": "work", "primary": true}},
		"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole": map[string]any{
			"workato_role": "Operator", "workato_role_test": "Operator", "workato_role_prod": "Analyst"},
	})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("SCIM create: %d %s", resp.StatusCode, body)
	}
	u, err := je.Store.GetUserByAccount(t.Context(), "hr", acct.ID)
	if err != nil || u.Verified {
		t.Fatalf("SCIM membership = %+v, %v; want an unverified one", u, err)
	}
	if me := b.me(); func() bool { _, v, _, ok := me.membership("hr"); return !ok || v }() {
		t.Fatalf("/api/v1/me should list hr as unverified: %+v", me)
	}
	if home := b.get("/"); strings.Contains(home.body, "Switch to Hr") {
		t.Fatal("an unverified membership is offered in the switcher")
	}
	if pg := b.post("/switch", url.Values{"csrf_token": {b.get("/").form(t, "/logout").Get("csrf_token")}, "workspace": {"hr"}}); pg.status != http.StatusForbidden {
		t.Fatalf("switch to an unverified membership: %d, want 403", pg.status)
	}

	// The first SAML sign-in to HR goes through verification.
	pendingJoin(t, b, "hr", janeInHR)
	link := joinLink(t, je.nextMail(t))
	if pg := confirm(t, b, link); pg.status != http.StatusOK || b.me().ActiveWorkspace != "hr" {
		t.Fatalf("confirm: %d", pg.status)
	}
	v, err := je.Store.GetUserByAccount(t.Context(), "hr", acct.ID)
	if err != nil || !v.Verified || !v.Active || v.ID != u.ID {
		t.Fatalf("membership after confirm = %+v, %v; want the SCIM one, verified", v, err)
	}
	if v.Roles != u.Roles {
		t.Errorf("roles changed from SCIM's %+v to %+v; SAML roles apply only at creation (R6)", u.Roles, v.Roles)
	}
	// Later sign-ins go straight in.
	if pg := b.signIn("hr", janeInHR); pg.status != http.StatusOK || !strings.Contains(pg.body, `id="active-workspace">hr<`) {
		t.Fatalf("second sign-in to hr: %d\n%s", pg.status, pg.body)
	}
}

func TestJoinDeactivationBlocksOnlyThatWorkspace(t *testing.T) {
	je := newJoinEnv(t, joinOptions{})
	je.workspace(t, "fin", nil)
	je.workspace(t, "hr", nil)
	b := signInToA(t, je)
	acct := account(t, je, jane.Email)
	pendingJoin(t, b, "hr", janeInHR)
	if pg := confirm(t, b, joinLink(t, je.nextMail(t))); pg.status != http.StatusOK {
		t.Fatalf("confirm: %d", pg.status)
	}
	u, err := je.Store.GetUserByAccount(t.Context(), "hr", acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	home := b.get("/") // active: hr; offers fin
	if _, err := je.Store.UpdateUser(t.Context(), "hr", u.ID, 0, func(x *storage.User) error { x.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}

	// HR is blocked, at sign-in and for switching; FIN is not.
	if pg := b.signIn("hr", janeInHR); pg.status != http.StatusForbidden {
		t.Fatalf("sign-in to hr after deactivation: %d, want 403\n%s", pg.status, pg.body)
	}
	if pg := b.signIn("fin", jane); pg.status != http.StatusOK || !strings.Contains(pg.body, `id="active-workspace">fin<`) {
		t.Fatalf("sign-in to fin: %d\n%s", pg.status, pg.body)
	}
	home = b.get("/")
	if strings.Contains(home.body, "Switch to Hr") {
		t.Error("a deactivated membership is offered in the switcher")
	}
	f := url.Values{"csrf_token": {home.form(t, "/logout").Get("csrf_token")}, "workspace": {"hr"}}
	if pg := b.post("/switch", f); pg.status != http.StatusForbidden {
		t.Errorf("switch to deactivated hr: %d, want 403", pg.status)
	}
	if me := b.me(); me.ActiveWorkspace != "fin" {
		t.Errorf("active workspace = %q, want fin", me.ActiveWorkspace)
	}
	// Joining never reactivates: no link is issued for it, and it stays off.
	je.flushMail(t)
	if n := je.smtp.Pending(); n != 0 {
		t.Errorf("%d mails sent for a deactivated membership", n)
	}
	if x, _ := je.Store.GetUser(t.Context(), "hr", u.ID); x.Active {
		t.Error("the membership was reactivated")
	}
}

func TestDemoOutboxExistsOnlyInDemoMode(t *testing.T) {
	je := newJoinEnv(t, joinOptions{})
	if pg := je.browser(t).get("/demo/outbox"); pg.status != http.StatusNotFound {
		t.Errorf("GET /demo/outbox outside demo mode: %d, want 404", pg.status)
	}
}
