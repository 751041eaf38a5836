package saml_test

import (
	"html"
	"net/http"
	"strings"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// entraRoleClaim is the app role claim as Entra ID sends it: one
// attribute, one value per assigned app role.
const entraRoleClaim = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"

func appRoleClaim(values ...string) crewjam.Attribute {
	a := crewjam.Attribute{Name: entraRoleClaim}
	for _, v := range values {
		a.Values = append(a.Values, crewjam.AttributeValue{Type: "xs:string", Value: v})
	}
	return a
}

func appRolesOn(mutate func(*storage.Workspace)) func(*storage.Workspace) {
	return func(ws *storage.Workspace) {
		ws.Settings.Roles.AppRoles = true
		if mutate != nil {
			mutate(ws)
		}
	}
}

// signInAs runs one SP-initiated sign-in of email with attrs in a fresh
// browser.
func signInAs(t *testing.T, env *servertest.Env, idp *ssoIdP, ws, email string, attrs ...crewjam.Attribute) ssoPage {
	t.Helper()
	return newSSOBrowser(env).signIn(t, idp, ws, assertionOpts{NameID: email, Attrs: attrs})
}

func TestEntraAppRoleClaimGivesRolesAtJITCreation(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://sts.windows.net/tenant/")
	addWorkspace(t, env, "finance", idp, appRolesOn(nil))

	for _, tc := range []struct {
		name, email string
		attrs       []crewjam.Attribute
		want        storage.Roles
	}{
		{"single value gives DEV", "ann@acme.example",
			[]crewjam.Attribute{appRoleClaim("Admin")},
			storage.Roles{Dev: "Admin", Test: "Operator", Prod: "Operator"}},
		{"environment prefixes, any case", "bob@acme.example",
			[]crewjam.Attribute{appRoleClaim("PROD:Admin", "test:Analyst", "NoAccess")},
			storage.Roles{Dev: "NoAccess", Test: "Analyst", Prod: "Admin"}},
		{"explicit workato_role wins per environment", "cy@acme.example",
			[]crewjam.Attribute{attr("workato_role", "Analyst"), appRoleClaim("Admin", "prod:Admin")},
			storage.Roles{Dev: "Analyst", Test: "Operator", Prod: "Admin"}},
		{"same role twice for one environment", "di@acme.example",
			[]crewjam.Attribute{appRoleClaim("Admin", "dev:Admin")},
			storage.Roles{Dev: "Admin", Test: "Operator", Prod: "Operator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if pg := signInAs(t, env, idp, "finance", tc.email, tc.attrs...); pg.Status != http.StatusSeeOther {
				t.Fatalf("acs: %d %s", pg.Status, pg.Body)
			}
			if _, u := membership(t, env, "finance", tc.email); u.Roles != tc.want {
				t.Errorf("roles = %+v, want %+v", u.Roles, tc.want)
			}
		})
	}
}

func TestEntraAppRoleClaimIgnoredWhenSettingOff(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://sts.windows.net/tenant/")
	addWorkspace(t, env, "finance", idp, nil)
	if pg := signInAs(t, env, idp, "finance", "ann@acme.example", appRoleClaim("Admin", "prod:Admin", "Analyst")); pg.Status != http.StatusSeeOther {
		t.Fatalf("acs: %d %s", pg.Status, pg.Body)
	}
	if _, u := membership(t, env, "finance", "ann@acme.example"); u.Roles != (storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"}) {
		t.Errorf("roles = %+v, want the default role everywhere", u.Roles)
	}
}

func TestEntraAppRoleConflictRefusesSignIn(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://sts.windows.net/tenant/")
	addWorkspace(t, env, "finance", idp, appRolesOn(func(ws *storage.Workspace) { ws.Name = "Finance" }))
	pg := signInAs(t, env, idp, "finance", "ann@acme.example", appRoleClaim("prod:Admin", "Analyst", "prod:Operator"))
	body := html.UnescapeString(pg.Body)
	if pg.Status != http.StatusForbidden || !strings.Contains(body, `two app roles for PROD ("Admin" and "Operator")`) {
		t.Fatalf("acs: %d %s", pg.Status, pg.Body)
	}
	mustHaveNothing(t, env, "finance", "ann@acme.example")
	ev := events(t, env, "finance", "login.refused")
	if len(ev) != 1 || ev[0].Detail["reason"] != "app_role_conflict" || ev[0].Detail["environment"] != "prod" ||
		ev[0].Detail["roles"] != "Admin,Operator" {
		t.Errorf("login.refused events = %+v", ev)
	}
}

func TestEntraAppRoleUnknownFollowsUnknownRolePolicy(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://sts.windows.net/tenant/")
	addWorkspace(t, env, "strict", idp, appRolesOn(nil))
	addWorkspace(t, env, "lenient", idp, appRolesOn(func(ws *storage.Workspace) {
		ws.Settings.JIT.UnknownRole = storage.UnknownRoleDefault
	}))

	// reject: refused with a page naming the role (roles are case-sensitive).
	pg := signInAs(t, env, idp, "strict", "ann@acme.example", appRoleClaim("test:admin"))
	if pg.Status != http.StatusForbidden || !strings.Contains(html.UnescapeString(pg.Body), `The role "admin" sent for TEST`) {
		t.Fatalf("strict: %d %s", pg.Status, pg.Body)
	}
	mustHaveNothing(t, env, "strict", "ann@acme.example")
	if r := lastRefusal(t, env, "strict"); r != "unknown_role" {
		t.Errorf("reason = %q", r)
	}

	// default: the default role and a role.unknown event; an unknown
	// environment prefix is part of the role name.
	if pg := signInAs(t, env, idp, "lenient", "bob@acme.example", appRoleClaim("staging:Admin", "prod:Analyst")); pg.Status != http.StatusSeeOther {
		t.Fatalf("lenient: %d %s", pg.Status, pg.Body)
	}
	if _, u := membership(t, env, "lenient", "bob@acme.example"); u.Roles != (storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Analyst"}) {
		t.Errorf("roles = %+v", u.Roles)
	}
	ev := events(t, env, "lenient", "role.unknown")
	if len(ev) != 1 || ev[0].Detail["role"] != "staging:Admin" || ev[0].Detail["environment"] != "dev" {
		t.Errorf("role.unknown events = %+v", ev)
	}
}

func TestEntraAppRoleClaimSyncedAtEveryLogin(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://sts.windows.net/tenant/")
	addWorkspace(t, env, "once", idp, appRolesOn(nil))
	addWorkspace(t, env, "always", idp, appRolesOn(func(ws *storage.Workspace) { ws.Settings.JIT.RoleSync = storage.RoleSyncEveryLogin }))
	for _, ws := range []string{"once", "always"} {
		email := "lee@" + ws + ".example"
		if pg := signInAs(t, env, idp, ws, email, appRoleClaim("Admin")); pg.Status != http.StatusSeeOther {
			t.Fatalf("%s first: %d %s", ws, pg.Status, pg.Body)
		}
		if pg := signInAs(t, env, idp, ws, email, appRoleClaim("Analyst", "prod:NoAccess")); pg.Status != http.StatusSeeOther {
			t.Fatalf("%s second: %d %s", ws, pg.Status, pg.Body)
		}
	}
	if _, u := membership(t, env, "once", "lee@once.example"); u.Roles != (storage.Roles{Dev: "Admin", Test: "Operator", Prod: "Operator"}) {
		t.Errorf("onCreate roles changed: %+v", u.Roles)
	}
	if _, u := membership(t, env, "always", "lee@always.example"); u.Roles != (storage.Roles{Dev: "Analyst", Test: "Operator", Prod: "NoAccess"}) {
		t.Errorf("everyLogin roles not synced: %+v", u.Roles)
	}
	if ev := events(t, env, "always", "role.synced"); len(ev) != 1 {
		t.Errorf("role.synced events = %+v", ev)
	}
}
