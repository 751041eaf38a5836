package saml_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

func TestJITCreatesAccountAndMembershipFromEveryAttribute(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp-finance.test")
	scimToken := addWorkspace(t, env, "finance", idp, func(ws *storage.Workspace) { ws.Name = "Finance" })
	b := newSSOBrowser(env)

	req := b.startLogin(t, idp, "finance", "/after?x=1")
	pg := b.acs(t, "finance", idp.respond(t, req, assertionOpts{NameID: "opaque-id-1", NameIDFormat: string(crewjam.PersistentNameIDFormat),
		Attrs: []crewjam.Attribute{
			attr("workato_email", "Jane.Doe@Acme.example"),
			attr("workato_full_name", "Jane Q. Doe"),
			attr("workato_role", "Admin"),
			attr("workato_role_test", "Analyst"),
			attr("workato_role_prod", "NoAccess"),
		}}), req.RelayState)
	if pg.Status != http.StatusSeeOther || pg.Location != "/after?x=1" {
		t.Fatalf("acs: %d %q %s", pg.Status, pg.Location, pg.Body)
	}
	acct, u := membership(t, env, "finance", "jane.doe@acme.example")
	if acct.Email != "Jane.Doe@Acme.example" || acct.FullName != "Jane Q. Doe" || acct.Source != storage.SourceJIT || acct.OriginWorkspace != "finance" {
		t.Errorf("account = %+v", acct)
	}
	want := storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "NoAccess"}
	if u.Roles != want || !u.Verified || !u.Active || u.Source != storage.SourceJIT || u.ExternalID != "" ||
		u.UserName != "Jane.Doe@Acme.example" || len(u.Emails) != 1 || u.Emails[0] != "Jane.Doe@Acme.example" {
		t.Errorf("membership = %+v", u)
	}
	name, _ := u.Attributes["name"].(map[string]any)
	if u.Attributes["displayName"] != "Jane Q. Doe" || name["formatted"] != "Jane Q. Doe" || name["givenName"] != "Jane" || name["familyName"] != "Q. Doe" {
		t.Errorf("attributes = %#v", u.Attributes)
	}
	emails, _ := u.Attributes["emails"].([]any)
	if len(emails) != 1 {
		t.Fatalf("emails = %#v", u.Attributes["emails"])
	}
	if e, _ := emails[0].(map[string]any); e["value"] != "Jane.Doe@Acme.example" || e["type"] != "work" || e["primary"] != true {
		t.Errorf("emails[0] = %#v", emails[0])
	}
	// R7/R13: an IdP's SCIM pre-create lookup finds the JIT user.
	for _, by := range []storage.UserIndex{storage.UserByUserName, storage.UserByEmail} {
		found, err := env.Store.FindUsers(t.Context(), "finance", by, "JANE.DOE@acme.example", storage.FindOptions{})
		if err != nil || len(found.Users) != 1 || found.Users[0].ID != u.ID {
			t.Errorf("FindUsers(%s) = %v, %v", by, found, err)
		}
	}
	// ...and so does the SCIM API itself, as Okta and Entra query it.
	for _, filter := range []string{`userName eq "jane.doe@acme.example"`, `emails[type eq "work"].value eq "Jane.Doe@Acme.example"`} {
		resp, body := env.Do(t, http.MethodGet, "/scim/v2/finance/Users?filter="+url.QueryEscape(filter), scimToken, nil)
		var list struct {
			TotalResults int
			Resources    []struct {
				ID, UserName, ExternalID string
				Active                   bool
			}
		}
		if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("scim %s: %d %s", filter, resp.StatusCode, body)
		}
		if list.TotalResults != 1 || list.Resources[0].ID != u.ID || list.Resources[0].UserName != "Jane.Doe@Acme.example" ||
			list.Resources[0].ExternalID != "" || !list.Resources[0].Active {
			t.Errorf("scim %s: %s", filter, body)
		}
	}
	created, succeeded := events(t, env, "finance", "jit.user.created"), events(t, env, "finance", "login.succeeded")
	if len(created) != 1 || len(succeeded) != 1 {
		t.Fatal("missing jit.user.created / login.succeeded events")
	}
	// Both name the new membership and account (the store fills the ids
	// it generated into the events it writes with them).
	for _, e := range []storage.Event{created[0], succeeded[0]} {
		if e.UserID != u.ID || e.AccountID != u.AccountID || e.Actor != "saml" || e.Detail["email"] != "Jane.Doe@Acme.example" {
			t.Errorf("event %+v; want user %s, account %s", e, u.ID, u.AccountID)
		}
	}
	if created[0].Detail["roles"] == "" {
		t.Errorf("jit.user.created without roles: %+v", created[0])
	}

	// The session: /api/v1/me and the home ssoPage show it.
	me := b.get(t, "/api/v1/me")
	if me.Status != http.StatusOK {
		t.Fatalf("me: %d %s", me.Status, me.Body)
	}
	var got struct {
		Account struct {
			ID, Email, FullName string
		}
		ActiveWorkspace string
		Memberships     []struct {
			Workspace, Name  string
			Roles            storage.Roles
			Verified, Active bool
		}
	}
	if err := json.Unmarshal([]byte(me.Body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Account.ID != acct.ID || got.Account.Email != acct.Email || got.Account.FullName != "Jane Q. Doe" ||
		got.ActiveWorkspace != "finance" || len(got.Memberships) != 1 || got.Memberships[0].Workspace != "finance" ||
		got.Memberships[0].Name != "Finance" || got.Memberships[0].Roles != want || !got.Memberships[0].Verified || !got.Memberships[0].Active {
		t.Errorf("me = %s", me.Body)
	}
	home := b.get(t, "/")
	if home.Status != http.StatusOK || !strings.Contains(home.Body, "Jane Q. Doe") || !strings.Contains(home.Body, "NoAccess") {
		t.Errorf("home: %d %s", home.Status, home.Body)
	}
}

func TestJITDefaults(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "ops", idp, nil)
	addWorkspace(t, env, "hr", idp, func(ws *storage.Workspace) { ws.Settings.JIT.DefaultRole = "Analyst" })

	t.Run("email from NameID, name from local part, default roles", func(t *testing.T) {
		pg := newSSOBrowser(env).signIn(t, idp, "ops", assertionOpts{NameID: "jane.doe@acme.example"})
		if pg.Status != http.StatusSeeOther || pg.Location != "/" {
			t.Fatalf("acs: %d %q %s", pg.Status, pg.Location, pg.Body)
		}
		acct, u := membership(t, env, "ops", "jane.doe@acme.example")
		if acct.FullName != "Jane Doe" || u.Roles != (storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"}) {
			t.Errorf("account %+v roles %+v", acct, u.Roles)
		}
	})
	t.Run("NameID that looks like an email in unspecified format; given+surname; workspace default role", func(t *testing.T) {
		pg := newSSOBrowser(env).signIn(t, idp, "hr", assertionOpts{NameID: "bob@acme.example", NameIDFormat: string(crewjam.UnspecifiedNameIDFormat),
			Attrs: []crewjam.Attribute{attr("firstName", "Bob"), attr("lastName", "Builder"), attr("workato_role_prod", "Admin")}})
		if pg.Status != http.StatusSeeOther {
			t.Fatalf("acs: %d %s", pg.Status, pg.Body)
		}
		acct, u := membership(t, env, "hr", "bob@acme.example")
		if acct.FullName != "Bob Builder" || u.Roles != (storage.Roles{Dev: "Analyst", Test: "Analyst", Prod: "Admin"}) {
			t.Errorf("account %+v roles %+v", acct, u.Roles)
		}
	})
	t.Run("no email at all fails clearly", func(t *testing.T) {
		pg := newSSOBrowser(env).signIn(t, idp, "ops", assertionOpts{NameID: "00u1opaque", NameIDFormat: string(crewjam.PersistentNameIDFormat),
			Attrs: []crewjam.Attribute{attr("workato_role", "Admin")}})
		if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "did not send an email address") {
			t.Fatalf("acs: %d %s", pg.Status, pg.Body)
		}
		if r := lastRefusal(t, env, "ops"); r != "no_email" {
			t.Errorf("reason = %q", r)
		}
	})
}

// TestAttributeSpellings signs in once per IdP spelling (R5) and checks
// that the same roles and name arrive.
func TestAttributeSpellings(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, func(ws *storage.Workspace) { ws.Settings.CustomRoles = []string{"Integrator"} })
	const xmlsoap = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
	const ms2008 = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"
	cases := []struct {
		name  string
		attrs []crewjam.Attribute
	}{
		{"okta plain", []crewjam.Attribute{attr("workato_full_name", "Ann Lee"), attr("workato_role", "Admin"), attr("workato_role_test", "Integrator"), attr("workato_role_prod", "NoAccess")}},
		{"okta appuser prefix", []crewjam.Attribute{attr("appuser.workato_full_name", "Ann Lee"), attr("appuser.workato_role", "Admin"), attr("appuser.workato_role_test", "Integrator"), attr("appuser.workato_role_prod", "NoAccess")}},
		{"okta user prefix", []crewjam.Attribute{attr("firstName", "Ann"), attr("lastName", "Lee"), attr("user.workato_role", "Admin"), attr("user.workato_role_test", "Integrator"), attr("user.workato_role_prod", "NoAccess")}},
		{"entra xmlsoap namespace", []crewjam.Attribute{attr("http://schemas.microsoft.com/identity/claims/displayname", "Ann Lee"), attr(xmlsoap+"workato_role", "Admin"), attr(xmlsoap+"workato_role_test", "Integrator"), attr(xmlsoap+"workato_role_prod", "NoAccess")}},
		{"entra 2008 namespace", []crewjam.Attribute{attr(xmlsoap+"givenname", "Ann"), attr(xmlsoap+"surname", "Lee"), attr(ms2008+"workato_role", "Admin"), attr(ms2008+"workato_role_test", "Integrator"), attr(ms2008+"workato_role_prod", "NoAccess")}},
		{"entra tenant namespace", []crewjam.Attribute{attr("https://claims.acme.example/workato_full_name", "Ann Lee"), attr("https://claims.acme.example/workato_role", "Admin"), attr("https://claims.acme.example/workato_role_test", "Integrator"), attr("https://claims.acme.example/workato_role_prod", "NoAccess")}},
		{"google plain", []crewjam.Attribute{attr("first_name", "Ann"), attr("last_name", "Lee"), attr("workato_role", "Admin"), attr("workato_role_test", "Integrator"), attr("workato_role_prod", "NoAccess")}},
		{"onelogin User. names", []crewjam.Attribute{attr("User.FirstName", "Ann"), attr("User.LastName", "Lee"), attr("workato_role", "Admin"), attr("workato_role_test", "Integrator"), attr("workato_role_prod", "NoAccess")}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			email := "ann" + string(rune('a'+i)) + "@acme.example"
			pg := newSSOBrowser(env).signIn(t, idp, "acme", assertionOpts{NameID: email, Attrs: tc.attrs})
			if pg.Status != http.StatusSeeOther {
				t.Fatalf("acs: %d %s", pg.Status, pg.Body)
			}
			acct, u := membership(t, env, "acme", email)
			if acct.FullName != "Ann Lee" || u.Roles != (storage.Roles{Dev: "Admin", Test: "Integrator", Prod: "NoAccess"}) {
				t.Errorf("name %q roles %+v", acct.FullName, u.Roles)
			}
		})
	}
}

func TestUnknownRolePolicies(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "strict", idp, func(ws *storage.Workspace) { ws.Name = "Strict Co" })
	addWorkspace(t, env, "lenient", idp, func(ws *storage.Workspace) {
		ws.Settings.JIT.UnknownRole = storage.UnknownRoleDefault
		ws.Settings.JIT.DefaultRole = "Analyst"
		ws.Settings.CustomRoles = []string{"Integrator"}
	})
	attrs := []crewjam.Attribute{attr("workato_role", "Admin"), attr("workato_role_test", "admin"), attr("workato_role_prod", "integrator")}

	pg := newSSOBrowser(env).signIn(t, idp, "strict", assertionOpts{NameID: "kim@acme.example", Attrs: attrs})
	if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "&#34;admin&#34;") || !strings.Contains(pg.Body, "Strict Co") || !strings.Contains(pg.Body, "TEST") {
		t.Fatalf("reject: %d %s", pg.Status, pg.Body)
	}
	mustHaveNothing(t, env, "strict", "kim@acme.example")
	if r := lastRefusal(t, env, "strict"); r != "unknown_role" {
		t.Errorf("reason = %q", r)
	}
	if ev := events(t, env, "strict", "role.unknown"); len(ev) != 1 || ev[0].Detail["role"] != "admin" || ev[0].Detail["environment"] != "test" {
		t.Errorf("role.unknown events = %+v", ev)
	}

	pg = newSSOBrowser(env).signIn(t, idp, "lenient", assertionOpts{NameID: "kim@acme.example", Attrs: attrs})
	if pg.Status != http.StatusSeeOther {
		t.Fatalf("default policy: %d %s", pg.Status, pg.Body)
	}
	_, u := membership(t, env, "lenient", "kim@acme.example")
	if u.Roles != (storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Analyst"}) {
		t.Errorf("roles = %+v", u.Roles)
	}
	if ev := events(t, env, "lenient", "role.unknown"); len(ev) != 2 {
		t.Errorf("role.unknown events = %+v", ev)
	}
}

func TestRolesAppliedOnlyAtCreationUnlessEveryLogin(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "once", idp, nil)
	addWorkspace(t, env, "always", idp, func(ws *storage.Workspace) { ws.Settings.JIT.RoleSync = storage.RoleSyncEveryLogin })
	first := []crewjam.Attribute{attr("workato_role", "Admin")}
	second := []crewjam.Attribute{attr("workato_role", "Analyst"), attr("workato_role_prod", "NoAccess")}
	for _, ws := range []string{"once", "always"} {
		// One person per workspace: a second workspace would be a join (R8).
		if pg := newSSOBrowser(env).signIn(t, idp, ws, assertionOpts{NameID: "lee@" + ws + ".example", Attrs: first}); pg.Status != http.StatusSeeOther {
			t.Fatalf("%s first: %d %s", ws, pg.Status, pg.Body)
		}
		if pg := newSSOBrowser(env).signIn(t, idp, ws, assertionOpts{NameID: "lee@" + ws + ".example", Attrs: second}); pg.Status != http.StatusSeeOther {
			t.Fatalf("%s second: %d %s", ws, pg.Status, pg.Body)
		}
	}
	if _, u := membership(t, env, "once", "lee@once.example"); u.Roles != (storage.Roles{Dev: "Admin", Test: "Operator", Prod: "Operator"}) {
		t.Errorf("onCreate roles changed: %+v", u.Roles)
	}
	if _, u := membership(t, env, "always", "lee@always.example"); u.Roles != (storage.Roles{Dev: "Analyst", Test: "Operator", Prod: "NoAccess"}) {
		t.Errorf("everyLogin roles not synced: %+v", u.Roles)
	}
	if len(events(t, env, "always", "role.synced")) != 1 || len(events(t, env, "once", "role.synced")) != 0 {
		t.Error("role.synced events wrong")
	}
}

func TestJITDisabledRefusesWithNoAccessPage(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "closed", idp, func(ws *storage.Workspace) { ws.Settings.JIT.Enabled = false; ws.Name = "Closed Co" })
	pg := newSSOBrowser(env).signIn(t, idp, "closed", assertionOpts{NameID: "sam@acme.example", Attrs: []crewjam.Attribute{attr("workato_role", "Admin")}})
	if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "You have not been given access to this workspace") {
		t.Fatalf("acs: %d %s", pg.Status, pg.Body)
	}
	mustHaveNothing(t, env, "closed", "sam@acme.example")
	if r := lastRefusal(t, env, "closed"); r != "no_access" {
		t.Errorf("reason = %q", r)
	}
}

func TestDeactivatedMembershipIsRefusedAndNeverRevived(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, func(ws *storage.Workspace) { ws.Settings.JIT.RoleSync = storage.RoleSyncEveryLogin })
	if pg := newSSOBrowser(env).signIn(t, idp, "acme", assertionOpts{NameID: "dee@acme.example"}); pg.Status != http.StatusSeeOther {
		t.Fatalf("first: %d %s", pg.Status, pg.Body)
	}
	_, u := membership(t, env, "acme", "dee@acme.example")
	// SCIM deactivates the user (what the SCIM handler does on active=false).
	if _, err := env.Store.UpdateUser(t.Context(), "acme", u.ID, 0, func(x *storage.User) error { x.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}
	b := newSSOBrowser(env)
	pg := b.signIn(t, idp, "acme", assertionOpts{NameID: "dee@acme.example", Attrs: []crewjam.Attribute{attr("workato_role", "Admin")}})
	if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "Your access was deactivated") {
		t.Fatalf("deactivated: %d %s", pg.Status, pg.Body)
	}
	_, after := membership(t, env, "acme", "dee@acme.example")
	if after.Active || after.ID != u.ID || after.Roles != u.Roles {
		t.Errorf("membership changed: %+v", after)
	}
	if _, n, _ := env.Store.ListUsers(t.Context(), "acme", 0, 10); n != 1 {
		t.Errorf("users = %d, want 1", n)
	}
	if r := lastRefusal(t, env, "acme"); r != "deactivated" {
		t.Errorf("reason = %q", r)
	}
	if me := b.get(t, "/api/v1/me"); me.Status != http.StatusUnauthorized {
		t.Errorf("me after refusal: %d", me.Status)
	}
}

func TestExistingAccountAutoJoinsAtOnce(t *testing.T) {
	env := servertest.New(t, nil)
	idpA := newSSOIdP(t, "https://idp-a.test")
	idpB := newSSOIdP(t, "https://idp-b.test")
	addWorkspace(t, env, "finance", idpA, nil)
	addWorkspace(t, env, "legal", idpB, func(ws *storage.Workspace) { ws.Settings.JIT.ExistingAccount = storage.ExistingAccountAuto })
	if pg := newSSOBrowser(env).signIn(t, idpA, "finance", assertionOpts{NameID: "max@acme.example"}); pg.Status != http.StatusSeeOther {
		t.Fatalf("finance: %d %s", pg.Status, pg.Body)
	}
	pg := newSSOBrowser(env).signIn(t, idpB, "legal", assertionOpts{NameID: "MAX@acme.example", Attrs: []crewjam.Attribute{attr("workato_role", "Analyst")}})
	if pg.Status != http.StatusSeeOther {
		t.Fatalf("legal: %d %s", pg.Status, pg.Body)
	}
	acctA, _ := membership(t, env, "finance", "max@acme.example")
	acctB, u := membership(t, env, "legal", "max@acme.example")
	if acctA.ID != acctB.ID || !u.Verified || u.Roles.Dev != "Analyst" {
		t.Errorf("accounts %s/%s membership %+v", acctA.ID, acctB.ID, u)
	}
	if len(events(t, env, "legal", "jit.membership.created")) != 1 {
		t.Error("no jit.membership.created event")
	}
}

// TestConcurrentFirstLogins: two first sign-ins of one person race; both
// succeed and exactly one account and one membership exist.
func TestConcurrentFirstLogins(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	const n = 6
	type prepared struct {
		b     *ssoBrowser
		resp  string
		relay string
	}
	var ps []prepared
	for i := 0; i < n; i++ {
		b := newSSOBrowser(env)
		req := b.startLogin(t, idp, "acme", "")
		ps = append(ps, prepared{b, idp.respond(t, req, assertionOpts{NameID: "race@acme.example"}), req.RelayState})
	}
	results := make(chan ssoPage, n)
	for _, p := range ps {
		go func() { results <- p.b.acs(t, "acme", p.resp, p.relay) }()
	}
	for i := 0; i < n; i++ {
		if pg := <-results; pg.Status != http.StatusSeeOther {
			t.Errorf("login %d: %d %s", i, pg.Status, pg.Body)
		}
	}
	if _, total, _ := env.Store.ListUsers(t.Context(), "acme", 0, 10); total != 1 {
		t.Errorf("users = %d, want 1", total)
	}
	membership(t, env, "acme", "race@acme.example")
}

func TestJITDisabledRefusesAKnownAccountWithoutMembership(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "open", idp, nil)
	addWorkspace(t, env, "closed", idp, func(ws *storage.Workspace) {
		ws.Settings.JIT.Enabled = false
		ws.Settings.JIT.ExistingAccount = storage.ExistingAccountAuto
	})
	if pg := newSSOBrowser(env).signIn(t, idp, "open", assertionOpts{NameID: "known@acme.example"}); pg.Status != http.StatusSeeOther {
		t.Fatalf("open: %d", pg.Status)
	}
	pg := newSSOBrowser(env).signIn(t, idp, "closed", assertionOpts{NameID: "known@acme.example"})
	if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "You have not been given access to this workspace") {
		t.Fatalf("closed: %d %s", pg.Status, pg.Body)
	}
	mustHaveNothing(t, env, "closed", "")
}

// TestClockSkewIsTolerated: an IdP clock 60 s ahead is within the default
// skew (2m); 10 minutes ahead is not (see the attack tests for an hour).
func TestClockSkewIsTolerated(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, nil)
	for _, tc := range []struct {
		ahead time.Duration
		want  int
	}{{60 * time.Second, http.StatusSeeOther}, {-60 * time.Second, http.StatusSeeOther}, {10 * time.Minute, http.StatusForbidden}} {
		b := newSSOBrowser(env)
		req := b.startLogin(t, idp, "acme", "")
		shifted := idp.at(tc.ahead)
		req.IDP = shifted.idp
		req.Now = shifted.idp.Clock.Now()
		email := fmt.Sprintf("skew%d@acme.example", int(tc.ahead.Seconds()))
		if pg := b.acs(t, "acme", shifted.respond(t, req, assertionOpts{NameID: email}), req.RelayState); pg.Status != tc.want {
			t.Errorf("IdP clock %v off: %d, want %d", tc.ahead, pg.Status, tc.want)
		}
	}
}

// TestConfiguredIdPEntityIDMustMatchMetadata: a workspace whose idp.entityID
// names another entity than its metadata signs nobody in.
func TestConfiguredIdPEntityIDMustMatchMetadata(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, func(ws *storage.Workspace) { ws.Settings.IdP.EntityID = "https://other-idp.test/metadata" })
	if pg := newSSOBrowser(env).get(t, "/saml/acme/login"); pg.Status != http.StatusNotFound {
		t.Errorf("login: %d", pg.Status)
	}
	req := idp.idpInitiated(t, spEntityID(env, "acme"), "")
	if pg := newSSOBrowser(env).acs(t, "acme", idp.respond(t, req, assertionOpts{NameID: "x@acme.example"}), ""); pg.Status != http.StatusForbidden {
		t.Errorf("acs: %d", pg.Status)
	}
	if r := lastRefusal(t, env, "acme"); r != "idp_not_configured" {
		t.Errorf("reason %q", r)
	}
	mustHaveNothing(t, env, "acme", "x@acme.example")
}
