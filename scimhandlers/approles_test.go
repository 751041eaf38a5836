package scimhandlers

import (
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// entraUser is a POST body as Entra ID sends it, with rolesJSON as the
// value of the roles attribute its mapping produces.
func entraUser(userName, rolesJSON string) string {
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId":"` + userName + `","userName":"` + userName + `@contoso.com","active":true,
		"emails":[{"primary":true,"type":"work","value":"` + userName + `@contoso.com"}],
		"meta":{"resourceType":"User"},"name":{"formatted":"A B","familyName":"B","givenName":"A"},
		"roles":` + rolesJSON + `}`
}

func appRolesOn(ws *storage.Workspace) { ws.Settings.Roles.AppRoles = true }

func wantRoles(t *testing.T, what string, body map[string]any, dev, test, prod string) {
	t.Helper()
	got := [3]string{role(body, roleDev), role(body, roleTest), role(body, roleProd)}
	if got != [3]string{dev, test, prod} {
		t.Errorf("%s: roles (dev, test, prod) = %q, want %q", what, got, [3]string{dev, test, prod})
	}
}

func TestEntraAppRoleAssignmentsSingleMappingGivesRole(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("legal", appRolesOn)

	// SingleAppRoleAssignment → roles[primary eq "True"].value: one
	// element on create, as Microsoft's provisioning docs show it.
	r := c.do("POST", "/Users", entraUser("ann", `[{"primary":true,"type":"WindowsAzureActiveDirectoryRole","value":"prod:Admin"}]`)).expect(t, 201)
	wantRoles(t, "POST", r.body, "Operator", "Operator", "Admin")
	eq(t, "roles returned", str(r.body, "roles.0.value"), "prod:Admin")
	eq(t, "primary", get(r.body, "roles.0.primary"), true)
	id := str(r.body, "id")

	// A new assignment: Add on roles with the assignment as JSON text
	// (the documented PATCH form), the old one removed in the same PATCH.
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[
		{"op":"Remove","path":"roles","value":[{"value":"prod:Admin"}]},
		{"op":"Add","path":"roles","value":[{"value":"{\"id\":\"06b07648-ecfe-589f-9d2f-6325724a46ee\",\"value\":\"test:Analyst\",\"displayName\":\"Test analyst\"}"}]}]}`).expect(t, 200)
	wantRoles(t, "PATCH Add JSON text", r.body, "Operator", "Analyst", "Operator")
	eq(t, "JSON text unpacked", str(r.body, "roles.0.value"), "test:Analyst")
	eq(t, "display from displayName", str(r.body, "roles.0.display"), "Test analyst")

	// "True" as a string, and a replace at the mapping's own path.
	r = c.do("POST", "/Users", entraUser("dee", `[{"primary":"True","value":"prod:Admin"}]`)).expect(t, 201)
	wantRoles(t, "POST primary string", r.body, "Operator", "Operator", "Admin")
	eq(t, "primary as boolean", get(r.body, "roles.0.primary"), true)
	id = str(r.body, "id")

	// The assignment changes: Entra replaces the value at the same path.
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"Replace","path":"roles[primary eq \"True\"].value","value":"Analyst"}]}`).expect(t, 200)
	wantRoles(t, "PATCH replace", r.body, "Analyst", "Operator", "Operator")
	eq(t, "one element", len(list(r.body, "roles")), 1)

	// A user created without a role gets its first one by Add at that path.
	r = c.do("POST", "/Users", entraUser("bob", `[]`)).expect(t, 201)
	wantRoles(t, "POST without role", r.body, "Operator", "Operator", "Operator")
	r = c.do("PATCH", "/Users/"+str(r.body, "id"), patchPrefix+`[{"op":"Add","path":"roles[primary eq \"True\"].value","value":"test:Admin"}]}`).expect(t, 200)
	wantRoles(t, "PATCH add", r.body, "Operator", "Admin", "Operator")
	r = c.do("GET", "/Users/"+str(r.body, "id"), "").expect(t, 200)
	wantRoles(t, "GET", r.body, "Operator", "Admin", "Operator")
	eq(t, "GET roles", str(r.body, "roles.0.value"), "test:Admin")
}

func TestEntraAppRoleAssignmentsComplexMappingGivesRoles(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("legal", appRolesOn)

	r := c.do("POST", "/Users", entraUser("ann", `[
		{"primary":false,"type":"WindowsAzureActiveDirectoryRole","display":"Admin","value":"Admin"},
		{"primary":false,"type":"WindowsAzureActiveDirectoryRole","display":"Prod analyst","value":"PROD:Analyst"}]`)).expect(t, 201)
	wantRoles(t, "POST", r.body, "Admin", "Operator", "Analyst")
	eq(t, "roles kept as sent", len(list(r.body, "roles")), 2)
	eq(t, "type kept", str(r.body, "roles.0.type"), "WindowsAzureActiveDirectoryRole")
	id := str(r.body, "id")

	// A new assignment: Add on roles (without type, as Entra sends it).
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"Add","path":"roles","value":[
		{"primary":false,"display":"Test none","value":"test:NoAccess"}]}]}`).expect(t, 200)
	wantRoles(t, "PATCH add", r.body, "Admin", "NoAccess", "Analyst")
	eq(t, "three elements", len(list(r.body, "roles")), 3)

	// A removed assignment takes its environment back to the default role.
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"Remove","path":"roles","value":[{"value":"Admin"}]}]}`).expect(t, 200)
	wantRoles(t, "PATCH remove", r.body, "Operator", "NoAccess", "Analyst")

	// An unrelated change leaves roles set by the role extension alone.
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role_prod","value":"Admin"}]}`).expect(t, 200)
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"Replace","path":"displayName","value":"Ann"}]}`).expect(t, 200)
	wantRoles(t, "unrelated PATCH", r.body, "Operator", "NoAccess", "Admin")
}

func TestExplicitWorkatoRoleWinsOverAppRole(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("legal", appRolesOn)
	body := strings.Replace(entraUser("ann", `[{"value":"Admin"},{"value":"prod:Admin"}]`), `"roles":`,
		`"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Analyst"},"roles":`, 1)
	r := c.do("POST", "/Users", body).expect(t, 201)
	wantRoles(t, "POST", r.body, "Analyst", "Operator", "Admin")
	id := str(r.body, "id")

	// One PATCH changing both: the explicit value wins for DEV.
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[
		{"op":"Add","path":"roles","value":[{"value":"dev:NoAccess"}]},
		{"op":"Remove","path":"roles","value":[{"value":"Admin"}]},
		{"op":"replace","path":"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role","value":"Admin"}]}`).expect(t, 200)
	wantRoles(t, "PATCH", r.body, "Admin", "Operator", "Admin")
}

func TestAppRoleConflictAndUnknownRoleAre400(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("legal", appRolesOn)
	r := c.do("POST", "/Users", entraUser("ann", `[{"value":"Admin"},{"value":"Analyst"}]`)).expectError(t, 400, typeInvalidValue)
	if d := str(r.body, "detail"); !strings.Contains(d, `two different app roles for DEV: "Admin" and "Analyst"`) {
		t.Errorf("detail = %q", d)
	}
	r = c.do("POST", "/Users", entraUser("bob", `[{"value":"prod:admin"}]`)).expectError(t, 400, typeInvalidValue)
	if d := str(r.body, "detail"); !strings.Contains(d, `unknown role "admin" in roles (the app role for workato_role_prod)`) {
		t.Errorf("detail = %q", d)
	}
	r = c.do("POST", "/Users", entraUser("cy", `[]`)).expect(t, 201)
	r = c.do("PATCH", "/Users/"+str(r.body, "id"), patchPrefix+`[{"op":"Add","path":"roles","value":[{"value":"Admin"},{"value":"dev:Analyst"}]}]}`).expectError(t, 400, typeInvalidValue)
	if d := str(r.body, "detail"); !strings.Contains(d, "two different app roles for DEV") {
		t.Errorf("PATCH detail = %q", d)
	}
	if _, n, err := e.store.ListUsers(t.Context(), "legal", 0, 10); err != nil || n != 1 {
		t.Errorf("users = %d, %v; want only cy", n, err)
	}
}

func TestAppRolesOffStoresRolesWithoutEffect(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("legal", nil)
	r := c.do("POST", "/Users", entraUser("ann", `[{"primary":false,"type":"WindowsAzureActiveDirectoryRole","display":"Admin","value":"Admin"},{"value":"Analyst"}]`)).expect(t, 201)
	wantRoles(t, "POST", r.body, "Operator", "Operator", "Operator")
	eq(t, "roles stored", len(list(r.body, "roles")), 2)
	id := str(r.body, "id")
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"Add","path":"roles","value":[{"value":"prod:Admin"}]}]}`).expect(t, 200)
	wantRoles(t, "PATCH", r.body, "Operator", "Operator", "Operator")
	r = c.do("GET", "/Users/"+id, "").expect(t, 200)
	eq(t, "GET roles", len(list(r.body, "roles")), 3)
	eq(t, "GET display", str(r.body, "roles.0.display"), "Admin")
}
