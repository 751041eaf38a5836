package saml_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// meRoles returns the roles /api/v1/me reports for the signed-in
// browser's membership in ws.
func meRoles(t *testing.T, b *ssoBrowser, ws string) storage.Roles {
	t.Helper()
	pg := b.get(t, "/api/v1/me")
	if pg.Status != http.StatusOK {
		t.Fatalf("/api/v1/me: %d %s", pg.Status, pg.Body)
	}
	var me struct {
		Memberships []struct {
			Workspace string
			Roles     storage.Roles
		}
	}
	if err := json.Unmarshal([]byte(pg.Body), &me); err != nil {
		t.Fatalf("/api/v1/me body %s: %v", pg.Body, err)
	}
	for _, m := range me.Memberships {
		if m.Workspace == ws {
			return m.Roles
		}
	}
	t.Fatalf("/api/v1/me has no membership in %s: %s", ws, pg.Body)
	return storage.Roles{}
}

// scimDo sends a SCIM request and fails unless it answers status.
func scimDo(t *testing.T, env *servertest.Env, tok, method, path string, body any, status int) map[string]any {
	t.Helper()
	resp, raw := env.Do(t, method, "/scim/v2/acme"+path, tok, body)
	if resp.StatusCode != status {
		t.Fatalf("SCIM %s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

func memberPatch(op, userID string) map[string]any {
	return map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": op, "path": "members", "value": []map[string]any{{"value": userID}}}},
	}
}

// TestSCIMGroupPushChangesRolesAsMeReportsThem: a member provisioned by
// SCIM signs in with a signed assertion; SCIM group pushes (Okta's Push
// Groups, Entra's group provisioning) then change the roles /api/v1/me
// reports, the way the workspace's group rules say, explicit
// workato_role* values winning; explain names the SCIM group and rule,
// and each change that changed roles recorded its event.
func TestSCIMGroupPushChangesRolesAsMeReportsThem(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	tok := addWorkspace(t, env, "acme", idp, withGroupRules(false, storage.RoleSyncOnCreate,
		storage.GroupRule{Group: "Engineering", Roles: storage.Roles{Dev: "Admin", Test: "Analyst"}},
		storage.GroupRule{Group: "00g-auditors", Roles: storage.Roles{Prod: "Auditor"}}))
	const email = "hal@acme.example"
	user := scimDo(t, env, tok, http.MethodPost, "/Users", map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"},
		"userName": email, "emails": []map[string]any{{"value": email, "primary": true}}, "active": true,
		"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole": map[string]any{"workato_role_prod": "NoAccess"},
	}, http.StatusCreated)
	id, _ := user["id"].(string)

	b := newSSOBrowser(env)
	if pg := b.signIn(t, idp, "acme", assertionOpts{NameID: email}); pg.Status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", pg.Status, pg.Body)
	}
	op := storage.RoleOperator
	mustHaveRoles(t, "signed in, no groups", meRoles(t, b, "acme"), storage.Roles{Dev: op, Test: op, Prod: "NoAccess"})

	// Pushing the Engineering group with the member gives rule 1's roles.
	eng := scimDo(t, env, tok, http.MethodPost, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering", "members": []map[string]any{{"value": id}},
	}, http.StatusCreated)
	engID, _ := eng["id"].(string)
	mustHaveRoles(t, "in Engineering", meRoles(t, b, "acme"), storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "NoAccess"})
	x := explain(t, env, "acme", id)
	if dev := x.Environments[0]; dev.Source != "scimGroup" || dev.Rule != 1 || dev.Group != "Engineering" ||
		dev.ScimGroupID != engID || dev.ScimGroup != "Engineering" || dev.EventType != storage.RolesChangedEvent {
		t.Errorf("explain dev = %+v", dev)
	}
	if prod := x.Environments[2]; prod.Source != "scim" || prod.Role != "NoAccess" {
		t.Errorf("explain prod = %+v, want the SCIM client's value", prod)
	}

	// A group matched by externalId: the explicit PROD value still wins,
	// so nothing changes and nothing is recorded.
	aud := scimDo(t, env, tok, http.MethodPost, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Auditors", "externalId": "00g-auditors", "members": []map[string]any{{"value": id}},
	}, http.StatusCreated)
	audID, _ := aud["id"].(string)
	mustHaveRoles(t, "in Auditors, explicit PROD", meRoles(t, b, "acme"), storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "NoAccess"})
	if n := len(events(t, env, "acme", storage.RolesChangedEvent)); n != 1 {
		t.Fatalf("%d roles events, want 1 (the Auditors push changed nothing)", n)
	}

	// The IdP stops sending workato_role_prod: the user is re-evaluated
	// with its groups, and the Auditors rule decides PROD.
	scimDo(t, env, tok, http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "remove", "path": "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role_prod"}},
	}, http.StatusOK)
	mustHaveRoles(t, "explicit PROD removed", meRoles(t, b, "acme"), storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Auditor"})
	// A PUT without the role extension (Okta's profile push) keeps the
	// sent values and the groups' roles; the roles a group gave do not
	// become sent values (the removal below takes them away).
	scimDo(t, env, tok, http.MethodPut, "/Users/"+id, map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": email, "emails": []map[string]any{{"value": email, "primary": true}}, "active": true,
		"displayName": "Hal",
	}, http.StatusOK)
	mustHaveRoles(t, "after a PUT", meRoles(t, b, "acme"), storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Auditor"})

	// Removed from Engineering: DEV and TEST fall back to the default.
	scimDo(t, env, tok, http.MethodPatch, "/Groups/"+engID, memberPatch("remove", id), http.StatusOK)
	mustHaveRoles(t, "out of Engineering", meRoles(t, b, "acme"), storage.Roles{Dev: op, Test: op, Prod: "Auditor"})
	// Deleting Auditors takes PROD back to the default too.
	scimDo(t, env, tok, http.MethodDelete, "/Groups/"+audID, nil, http.StatusNoContent)
	mustHaveRoles(t, "Auditors deleted", meRoles(t, b, "acme"), storage.Roles{Dev: op, Test: op, Prod: op})

	ev := events(t, env, "acme", storage.RolesChangedEvent)
	if len(ev) != 3 {
		t.Fatalf("%d roles events, want 3: %+v", len(ev), ev)
	}
	for i, want := range []struct{ cause, group, from, to string }{
		{"scim.group.created", engID, "dev=Operator,test=Operator,prod=NoAccess", "dev=Admin,test=Analyst,prod=NoAccess"},
		{"scim.group.member_removed", engID, "dev=Admin,test=Analyst,prod=Auditor", "dev=Operator,test=Operator,prod=Auditor"},
		{"scim.group.deleted", audID, "dev=Operator,test=Operator,prod=Auditor", "dev=Operator,test=Operator,prod=Operator"},
	} {
		d := ev[i].Detail
		if ev[i].UserID != id || d["cause"] != want.cause || d["groupId"] != want.group || d["from"] != want.from || d["to"] != want.to {
			t.Errorf("roles event %d = %+v, want %+v", i, ev[i], want)
		}
	}
	if len(events(t, env, "acme", "scim.group.deleted")) != 1 {
		t.Errorf("the group delete recorded no scim.group.deleted event")
	}
}

// TestEveryLoginSyncCountsSCIMGroups: with roleSync everyLogin a sign-in
// decides the roles again; the member's SCIM groups count like the
// groups the assertion sends, so the sign-in keeps a role a SCIM group
// gave, and adds one an assertion group gives.
func TestEveryLoginSyncCountsSCIMGroups(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	tok := addWorkspace(t, env, "acme", idp, withGroupRules(false, storage.RoleSyncEveryLogin, testRules...))
	const email = "ida@acme.example"
	user := scimDo(t, env, tok, http.MethodPost, "/Users", map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": email, "emails": []map[string]any{{"value": email, "primary": true}}, "active": true,
	}, http.StatusCreated)
	id, _ := user["id"].(string)
	scimDo(t, env, tok, http.MethodPost, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering", "members": []map[string]any{{"value": id}},
	}, http.StatusCreated)
	op := storage.RoleOperator
	u := signInOK(t, env, idp, "acme", email)
	mustHaveRoles(t, "sign-in without a groups attribute", u.Roles, storage.Roles{Dev: "Admin", Test: "Analyst", Prod: op})
	u = signInOK(t, env, idp, "acme", email, groupsAttr("groups", "8f1c7c1e-0000-4000-8000-0000000000aa"))
	mustHaveRoles(t, "with an assertion group", u.Roles, storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Auditor"})
}
