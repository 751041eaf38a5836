package saml_test

import (
	"encoding/json"
	"net/http"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

const (
	entraGroupsClaim  = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	entraOverageClaim = "http://schemas.microsoft.com/claims/groups.link"
)

// groupsAttr is a multi-valued groups attribute as Okta's group attribute
// statement or Entra's groups claim sends it.
func groupsAttr(name string, groups ...string) crewjam.Attribute {
	a := crewjam.Attribute{Name: name, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"}
	for _, g := range groups {
		a.Values = append(a.Values, crewjam.AttributeValue{Type: "xs:string", Value: g})
	}
	return a
}

// withGroupRules gives a workspace these rules (explicit attributes win
// unless rulesWin) and the custom role "Auditor".
func withGroupRules(rulesWin bool, sync string, rules ...storage.GroupRule) func(*storage.Workspace) {
	return func(ws *storage.Workspace) {
		ws.Settings.CustomRoles = []string{"Auditor"}
		ws.Settings.Roles = storage.RoleSettings{GroupRules: rules, GroupRulesWin: rulesWin}
		ws.Settings.JIT.RoleSync = sync
	}
}

var testRules = []storage.GroupRule{
	{Group: "Engineering", Roles: storage.Roles{Dev: "Admin", Test: "Analyst"}},
	{Group: "8f1c7c1e-0000-4000-8000-0000000000aa", Roles: storage.Roles{Dev: "Analyst", Prod: "Auditor"}},
	{Group: "Everyone", Roles: storage.Roles{Dev: "NoAccess", Test: "NoAccess", Prod: "NoAccess"}},
}

// wantRoles reports roles that differ from want.
func wantRoles(t *testing.T, what string, got, want storage.Roles) {
	t.Helper()
	if got != want {
		t.Errorf("%s: roles %+v, want %+v", what, got, want)
	}
}

// mustHaveRoles stops the test when roles differ from want.
func mustHaveRoles(t *testing.T, what string, got, want storage.Roles) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: roles %+v, want %+v", what, got, want)
	}
}

func signInOK(t *testing.T, env *servertest.Env, idp *ssoIdP, ws, email string, attrs ...crewjam.Attribute) storage.User {
	t.Helper()
	if pg := newSSOBrowser(env).signIn(t, idp, ws, assertionOpts{NameID: email, Attrs: attrs}); pg.Status != http.StatusSeeOther {
		t.Fatalf("sign-in to %s: %d %s", ws, pg.Status, pg.Body)
	}
	_, u := membership(t, env, ws, email)
	return u
}

func TestGroupRulesFirstMatchingRuleWinsPerEnvironmentAtJIT(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, withGroupRules(false, storage.RoleSyncOnCreate, testRules...))

	// Okta's groups statement: rule 1 gives DEV and TEST; PROD comes from
	// rule 3, the first rule naming PROD that matches.
	u := signInOK(t, env, idp, "acme", "ann@acme.example", groupsAttr("groups", "Everyone", "Engineering"))
	wantRoles(t, "okta groups", u.Roles, storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "NoAccess"})
	ev := events(t, env, "acme", "jit.user.created")
	if len(ev) != 1 {
		t.Fatalf("jit.user.created events: %+v", ev)
	}
	if d := ev[0].Detail; d["dev.source"] != "rule" || d["dev.rule"] != "1" || d["dev.group"] != "Engineering" ||
		d["prod.source"] != "rule" || d["prod.rule"] != "3" || d["prod.group"] != "Everyone" {
		t.Errorf("decision detail = %v", d)
	}

	// Entra's groups claim with object ids; TEST has no matching rule and
	// takes the default role.
	u = signInOK(t, env, idp, "acme", "bo@acme.example", groupsAttr(entraGroupsClaim, "8f1c7c1e-0000-4000-8000-0000000000aa"))
	wantRoles(t, "entra groups", u.Roles, storage.Roles{Dev: "Analyst", Test: "Operator", Prod: "Auditor"})

	// A group no rule names changes nothing: default roles.
	u = signInOK(t, env, idp, "acme", "cy@acme.example", groupsAttr("groups", "Marketing", "engineering"))
	wantRoles(t, "unknown groups", u.Roles, storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"})
}

func TestGroupRulesAgainstExplicitAttributesPerSetting(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "explicit", idp, withGroupRules(false, storage.RoleSyncOnCreate, testRules...))
	addWorkspace(t, env, "rules", idp, withGroupRules(true, storage.RoleSyncOnCreate, testRules...))
	attrs := []crewjam.Attribute{attr("workato_role", "Operator"), groupsAttr("groups", "Engineering")}

	if u := signInOK(t, env, idp, "explicit", "dee@explicit.example", attrs...); u.Roles != (storage.Roles{Dev: "Operator", Test: "Analyst", Prod: "Operator"}) {
		t.Errorf("explicitWins=true: roles %+v, want DEV from the attribute, TEST from rule 1", u.Roles)
	}
	if u := signInOK(t, env, idp, "rules", "dee@rules.example", attrs...); u.Roles != (storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Operator"}) {
		t.Errorf("explicitWins=false: roles %+v, want DEV from rule 1", u.Roles)
	}
}

func TestGroupsOverageKeepsRolesOnEveryLoginSync(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, withGroupRules(false, storage.RoleSyncEveryLogin, testRules...))
	const email = "eve@acme.example"

	first := signInOK(t, env, idp, "acme", email, groupsAttr(entraGroupsClaim, "Engineering"))
	mustHaveRoles(t, "first sign-in", first.Roles, storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Operator"})
	// Past 150 groups Entra sends the overage claim instead: the roles
	// stay, except where an explicit attribute decides.
	overage := attr(entraOverageClaim, "https://graph.windows.net/tenant/users/eve/getMemberObjects")
	u := signInOK(t, env, idp, "acme", email, overage, attr("workato_role_prod", "Analyst"))
	wantRoles(t, "overage sign-in", u.Roles, storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Analyst"})
	synced := events(t, env, "acme", "role.synced")
	if len(synced) != 1 {
		t.Fatalf("role.synced events: %+v", synced)
	}
	if d := synced[0].Detail; d["groups"] != "unknown" || d["dev.source"] != "kept" || d["prod.source"] != "attribute" {
		t.Errorf("role.synced detail = %v", d)
	}
	// An overage sign-in that changes nothing still says so in its
	// sign-in event.
	signInOK(t, env, idp, "acme", email, overage, attr("workato_role_prod", "Analyst"))
	logins := events(t, env, "acme", "login.succeeded")
	if last := logins[len(logins)-1]; last.Detail["groups"] != "unknown" {
		t.Errorf("login.succeeded detail = %v", last.Detail)
	}
	if _, u := membership(t, env, "acme", email); u.Roles != (storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Analyst"}) {
		t.Errorf("after a second overage sign-in: roles %+v", u.Roles)
	}

	// Groups known again and no longer in Engineering: the rules apply.
	u = signInOK(t, env, idp, "acme", email, groupsAttr(entraGroupsClaim, "Marketing"))
	wantRoles(t, "groups known again", u.Roles, storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"})
}

func TestGroupsOverageAtJITGivesDefaultsAndRecordsIt(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	addWorkspace(t, env, "acme", idp, withGroupRules(false, storage.RoleSyncOnCreate, testRules...))
	u := signInOK(t, env, idp, "acme", "fay@acme.example", attr(entraOverageClaim, "https://graph.windows.net/x"))
	if want := (storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"}); u.Roles != want {
		t.Errorf("roles %+v, want %+v", u.Roles, want)
	}
	ev := events(t, env, "acme", "jit.user.created")
	if len(ev) != 1 || ev[0].Detail["groups"] != "unknown" || ev[0].Detail["dev.source"] != "default" {
		t.Errorf("jit.user.created = %+v", ev)
	}
}

// explainJSON is the admin API's roles explain answer.
type explainJSON struct {
	UserID       string
	Roles        storage.Roles
	Environments []struct {
		Environment, Role, Source, Group, EventID, EventType string
		ScimGroupID, ScimGroup                               string
		Rule                                                 int
		GroupsKnown                                          *bool
	}
}

func explain(t *testing.T, env *servertest.Env, ws, userID string) explainJSON {
	t.Helper()
	resp, body := env.Admin(t, http.MethodGet, "/admin/v1/workspaces/"+ws+"/members/"+userID+"/roles/explain", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("explain: %d %s", resp.StatusCode, body)
	}
	var x explainJSON
	if err := json.Unmarshal(body, &x); err != nil || len(x.Environments) != 3 {
		t.Fatalf("explain body %s: %v", body, err)
	}
	return x
}

func TestRolesExplainSaysWhichRuleAttributeDefaultOrSCIMGaveEachRole(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	scim := addWorkspace(t, env, "acme", idp, withGroupRules(false, storage.RoleSyncEveryLogin, testRules...))
	const email = "gil@acme.example"

	// DEV from rule 1, TEST from the attribute (explicit wins), PROD the
	// default.
	u := signInOK(t, env, idp, "acme", email, attr("workato_role_test", "Operator"), groupsAttr("groups", "Engineering"))
	x := explain(t, env, "acme", u.ID)
	dev, test, prod := x.Environments[0], x.Environments[1], x.Environments[2]
	if x.UserID != u.ID || x.Roles != u.Roles {
		t.Errorf("explain = %+v, membership roles %+v", x, u.Roles)
	}
	if dev.Environment != "dev" || dev.Role != "Admin" || dev.Source != "rule" || dev.Rule != 1 || dev.Group != "Engineering" || dev.EventType != "jit.user.created" || dev.EventID == "" {
		t.Errorf("dev = %+v", dev)
	}
	if test.Role != "Operator" || test.Source != "attribute" || prod.Role != "Operator" || prod.Source != "default" {
		t.Errorf("test = %+v, prod = %+v", test, prod)
	}

	// An overage sign-in keeps DEV and TEST and says so.
	signInOK(t, env, idp, "acme", email, attr(entraOverageClaim, "https://graph.windows.net/x"), attr("workato_role_prod", "Analyst"))
	x = explain(t, env, "acme", u.ID)
	if dev := x.Environments[0]; dev.Role != "Admin" || dev.Source != "kept" || dev.EventType != "role.synced" || dev.GroupsKnown == nil || *dev.GroupsKnown {
		t.Errorf("after overage: dev = %+v", dev)
	}
	if prod := x.Environments[2]; prod.Role != "Analyst" || prod.Source != "attribute" {
		t.Errorf("after overage: prod = %+v", prod)
	}

	// SCIM changes PROD: explain names SCIM for it only.
	resp, body := env.Do(t, http.MethodPatch, "/scim/v2/acme/Users/"+u.ID, scim, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace",
			"path": "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role_prod", "value": "NoAccess"}},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SCIM patch: %d %s", resp.StatusCode, body)
	}
	x = explain(t, env, "acme", u.ID)
	if prod := x.Environments[2]; prod.Role != "NoAccess" || prod.Source != "scim" {
		t.Errorf("after SCIM: prod = %+v", prod)
	}
	if dev := x.Environments[0]; dev.Source != "kept" {
		t.Errorf("after SCIM: dev = %+v, want its sign-in reason still", dev)
	}

	if resp, body := env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/members/no-such-user/roles/explain", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown member: %d %s", resp.StatusCode, body)
	}
}
