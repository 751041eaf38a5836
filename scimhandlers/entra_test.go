package scimhandlers

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/scimjit/scimjit/storage"
)

const patchPrefix = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`

// TestEntraUserSequence replays Microsoft Entra ID's user provisioning and
// each of its PATCH forms (idp-clients.md E1–E11, E14) with the exact
// bodies it sends.
func TestEntraUserSequence(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("legal", nil)

	// E9: "Test Connection" queries a random userName (no User-Agent).
	r := c.do("GET", "/Users?filter="+q(`userName eq "`+uuid.NewString()+`"`), "").expect(t, 200)
	eq(t, "E8 totalResults", num(r.body, "totalResults"), 0)
	r = c.do("GET", "/Groups?filter="+q(`displayName eq "`+uuid.NewString()+`"`)+"&excludedAttributes=members", "").expect(t, 200)
	eq(t, "group totalResults", num(r.body, "totalResults"), 0)
	// E7: lookups by externalId and by the work email.
	c.do("GET", "/Users?filter="+q(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`), "").expect(t, 200)
	r = c.do("GET", "/Users?filter="+q(`emails[type eq "work"].value eq "x@contoso.com"`), "").expect(t, 200)
	eq(t, "work email lookup", num(r.body, "totalResults"), 0)

	// Create as Entra sends it.
	r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@testuser.com",
		"active":true,"emails":[{"primary":true,"type":"work","value":"Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
		"meta":{"resourceType":"User"},"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},
		"roles":[],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Legal","manager":"mgr-1"}}`).expect(t, 201)
	id := str(r.body, "id")
	ent := ext(r.body, enterpriseURN)
	eq(t, "department", ent["department"], "Legal")
	eq(t, "manager normalised on POST", str(ent, "manager.value"), "mgr-1")

	r = c.do("GET", "/Users?filter="+q(`emails[type eq "work" and value eq "test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"]`), "").expect(t, 200)
	eq(t, "emails value-path filter", num(r.body, "totalResults"), 1)
	r = c.do("GET", "/Users?filter="+q(`emails[type eq "work"].value eq "test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"`), "").expect(t, 200)
	eq(t, "Entra work-email filter", num(r.body, "totalResults"), 1)
	r = c.do("GET", "/Users?filter="+q(`emails.value eq "TEST_USER_FD0EA19B-0777-472C-9F96-4F70D2226F2E@testuser.com"`), "").expect(t, 200)
	eq(t, "emails.value filter", num(r.body, "totalResults"), 1)

	patch := func(ops string) resp {
		t.Helper()
		return c.do("PATCH", "/Users/"+id+"?aadOptscim062020", patchPrefix+ops+`}`).expect(t, 200)
	}

	// E1/E14: capitalised op, "False" string.
	r = patch(`[{"op":"Replace","path":"active","value":"False"}]`)
	eq(t, "active", get(r.body, "active"), false)
	r = c.do("GET", "/Users/"+id, "").expect(t, 200)
	eq(t, "GET deactivated", get(r.body, "active"), false)
	r = patch(`[{"op":"Replace","path":"active","value":"True"}]`)
	eq(t, "active True", get(r.body, "active"), true)

	// E3: path-less replace with dotted keys and a flat extension URN key.
	r = patch(`[{"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}]`)
	eq(t, "displayName", str(r.body, "displayName"), "Bjfe")
	eq(t, "name.givenName", str(r.body, "name.givenName"), "Kkom")
	eq(t, "name.familyName kept", str(r.body, "name.familyName"), "familyName")
	eq(t, "employeeNumber", ext(r.body, enterpriseURN)["employeeNumber"], "Aklq")
	eq(t, "department kept", ext(r.body, enterpriseURN)["department"], "Legal")

	// Nested extension object in a path-less replace.
	r = patch(`[{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"CC-9"},"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin"}}}]`)
	eq(t, "costCenter", ext(r.body, enterpriseURN)["costCenter"], "CC-9")
	eq(t, "employeeNumber kept", ext(r.body, enterpriseURN)["employeeNumber"], "Aklq")
	eq(t, "role via path-less", role(r.body, roleDev), "Admin")

	// E4: replace emails[type eq "work"].value.
	r = patch(`[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"}]`)
	eq(t, "emails count", len(list(r.body, "emails")), 1)
	eq(t, "work email", str(r.body, "emails.0.value"), "updatedEmail@microsoft.com")
	eq(t, "primary kept", get(r.body, "emails.0.primary"), true)
	r = c.do("GET", "/Users?filter="+q(`emails.value eq "updatedemail@microsoft.com"`), "").expect(t, 200)
	eq(t, "email index follows", num(r.body, "totalResults"), 1)

	// add on a missing element creates it with type home.
	r = patch(`[{"op":"Add","path":"emails[type eq \"home\"].value","value":"home@example.com"}]`)
	eq(t, "emails count after add", len(list(r.body, "emails")), 2)
	eq(t, "new element type", str(r.body, "emails.1.type"), "home")
	eq(t, "new element value", str(r.body, "emails.1.value"), "home@example.com")
	r = patch(`[{"op":"Add","path":"addresses[type eq \"work\"].formatted","value":"1 Main St"}]`)
	eq(t, "address created", str(r.body, "addresses.0.type"), "work")
	eq(t, "address formatted", str(r.body, "addresses.0.formatted"), "1 Main St")

	// E11: manager as a bare string, with a path and path-less.
	r = patch(`[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"2c2f6fb8-aaaa"}]`)
	eq(t, "manager", str(ext(r.body, enterpriseURN), "manager.value"), "2c2f6fb8-aaaa")
	r = patch(`[{"op":"Replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"3d3f"}}]`)
	eq(t, "manager path-less flat", str(ext(r.body, enterpriseURN), "manager.value"), "3d3f")
	r = patch(`[{"op":"Replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"4e4f"}}}]`)
	eq(t, "manager path-less nested", str(ext(r.body, enterpriseURN), "manager.value"), "4e4f")
	r = patch(`[{"op":"Remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]`)
	if _, ok := ext(r.body, enterpriseURN)["manager"]; ok {
		t.Error("manager not removed")
	}

	// Replace userName; remove an attribute; replace with null = remove.
	r = patch(`[{"op":"Replace","path":"userName","value":"renamed@contoso.com"},{"op":"Remove","path":"displayName"},{"op":"replace","path":"title","value":null}]`)
	eq(t, "userName", str(r.body, "userName"), "renamed@contoso.com")
	if _, ok := r.body["displayName"]; ok {
		t.Error("displayName not removed")
	}

	// E10: unassign sets active=false; re-assign POSTs again → re-activated (201, same id).
	patch(`[{"op":"Replace","path":"active","value":"False"}]`)
	r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
		"userName":"renamed@contoso.com","active":true,"emails":[{"primary":true,"type":"work","value":"renamed@contoso.com"}]}`).expect(t, 201)
	eq(t, "same id", str(r.body, "id"), id)
	eq(t, "active", get(r.body, "active"), true)

	// Role rules: unknown role → 400 naming it; case-sensitive.
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role_prod","value":"admin"}]}`).
		expectError(t, 400, "invalidValue")
	if d := str(r.body, "detail"); !strings.Contains(d, `"admin"`) || !strings.Contains(d, "workato_role_prod") {
		t.Errorf("detail %q does not name the role", d)
	}
}

// TestEntraGroupSequence replays Entra's group provisioning (E5–E7, E12).
func TestEntraGroupSequence(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("legal", nil)
	u1 := c.createUser(t, "u1@contoso.com")
	u2 := c.createUser(t, "u2@contoso.com")
	u3 := c.createUser(t, "u3@contoso.com")

	// E12: created with empty members and Entra's extra schema URN.
	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
		"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"Group1DisplayName","meta":{"resourceType":"Group"}}`).expect(t, 201)
	gid := str(r.body, "id")
	eq(t, "externalId", str(r.body, "externalId"), "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")

	// E7: lookup without members.
	r = c.do("GET", "/Groups?filter="+q(`displayName eq "Group1DisplayName"`)+"&excludedAttributes=members", "").expect(t, 200)
	eq(t, "found", num(r.body, "totalResults"), 1)
	res := list(r.body, "Resources")[0].(map[string]any)
	if _, ok := res["members"]; ok {
		t.Error("members not excluded")
	}
	eq(t, "id still there", str(res, "id"), gid)
	eq(t, "meta still there", str(res, "meta.resourceType"), "Group")
	r = c.do("GET", "/Groups/"+gid+"?excludedAttributes=members", "").expect(t, 200)
	if _, ok := r.body["members"]; ok {
		t.Error("members not excluded on GET by id")
	}

	gpatch := func(ops string) resp {
		t.Helper()
		return c.do("PATCH", "/Groups/"+gid, patchPrefix+ops+`}`).expect(t, 200)
	}
	// E6: add with "$ref": null.
	r = gpatch(`[{"op":"Add","path":"members","value":[{"$ref":null,"value":"` + u1 + `"},{"$ref":null,"value":"` + u2 + `"},{"$ref":null,"value":"` + u3 + `"}]}]`)
	eq(t, "members", memberSet(r.body), setOf(u1, u2, u3))
	// E5 without the flag: remove by value array removes ONLY those.
	r = gpatch(`[{"op":"Remove","path":"members","value":[{"value":"` + u1 + `"}]}]`)
	eq(t, "after value remove", memberSet(r.body), setOf(u2, u3))
	// E5 with the flag: remove by filter.
	r = gpatch(`[{"op":"remove","path":"members[value eq \"` + u2 + `\"]"}]`)
	eq(t, "after filter remove", memberSet(r.body), setOf(u3))
	// Rename + membership in one request.
	r = gpatch(`[{"op":"Replace","path":"displayName","value":"New Name"},{"op":"Add","path":"members","value":[{"value":"` + u1 + `"}]}]`)
	eq(t, "renamed", str(r.body, "displayName"), "New Name")
	eq(t, "members", memberSet(r.body), setOf(u1, u3))
	// Replace wholesale with [] and with null clears.
	r = gpatch(`[{"op":"replace","path":"members","value":[]}]`)
	eq(t, "cleared by []", len(list(r.body, "members")), 0)
	gpatch(`[{"op":"add","path":"members","value":[{"value":"` + u1 + `"}]}]`)
	r = gpatch(`[{"op":"replace","path":"members","value":null}]`)
	eq(t, "cleared by null", len(list(r.body, "members")), 0)
	// Add then remove of the same member in one request ends without it.
	r = gpatch(`[{"op":"add","path":"members","value":[{"value":"` + u2 + `"}]},{"op":"remove","path":"members[value eq \"` + u2 + `\"]"}]`)
	eq(t, "add+remove", len(list(r.body, "members")), 0)
	// remove members with a non-trivial filter.
	gpatch(`[{"op":"add","path":"members","value":[{"value":"` + u1 + `"},{"value":"` + u2 + `"},{"value":"` + u3 + `"}]}]`)
	r = gpatch(`[{"op":"remove","path":"members[value eq \"` + u1 + `\" or value eq \"` + u3 + `\"]"}]`)
	eq(t, "or filter remove", memberSet(r.body), setOf(u2))
	// externalId replace, and remove of all members.
	r = gpatch(`[{"op":"replace","path":"externalId","value":"ext-2"},{"op":"remove","path":"members"}]`)
	eq(t, "externalId", str(r.body, "externalId"), "ext-2")
	eq(t, "remove all members", len(list(r.body, "members")), 0)
	r = c.do("GET", "/Groups?filter="+q(`externalId eq "ext-2"`), "").expect(t, 200)
	eq(t, "by externalId", num(r.body, "totalResults"), 1)
}

// TestEntraRoleAttributesInCustomAttributeForm replays the bodies Entra
// sends for the role attributes mapped as custom attributes
// (urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role,
// _test, _prod): the extension object on create, PATCH paths of the full
// form, path-less values keyed by the URN or by URN:attribute, and
// filters. The stored roles are read back from the store; responses use
// the URN the user was created with.
func TestEntraRoleAttributesInCustomAttributeForm(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("legal", func(ws *storage.Workspace) { ws.Settings.CustomRoles = []string{"Auditor"} })
	const entra = "urn:ietf:params:scim:schemas:extension:workato:2.0:User"
	stored := func(id string) storage.Roles {
		t.Helper()
		u, err := e.store.GetUser(context.Background(), "legal", id)
		if err != nil {
			t.Fatalf("store: %v", err)
		}
		return u.Roles
	}
	entraRoles := func(what string, body map[string]any, want map[string]any) {
		t.Helper()
		if _, ok := body[RoleURN]; ok {
			t.Errorf("%s: response carries %s for an Entra-form user", what, RoleURN)
		}
		eq(t, what+" roles", stringify(ext(body, entra)), stringify(want))
		eq(t, what+" schemas", stringify(body["schemas"]), stringify([]any{userURN, enterpriseURN, entra}))
	}

	// The schema is advertised.
	r := c.do("GET", "/Schemas/"+entra, "").expect(t, 200)
	eq(t, "schema id", str(r.body, "id"), entra)
	eq(t, "first attribute", str(r.body, "attributes.0.name"), "workato_role")
	eq(t, "attribute type", str(r.body, "attributes.0.type"), "string")
	r = c.do("GET", "/Schemas", "").expect(t, 200)
	ids := map[string]bool{}
	for _, s := range list(r.body, "Resources") {
		ids[str(s, "id")] = true
	}
	if !ids[entra] || !ids[RoleURN] {
		t.Errorf("/Schemas lists %v", ids)
	}
	r = c.do("GET", "/ResourceTypes/User", "").expect(t, 200)
	if !strings.Contains(stringify(r.body["schemaExtensions"]), `"schema":"`+entra+`"`) {
		t.Errorf("schemaExtensions %s", stringify(r.body["schemaExtensions"]))
	}

	// Create as Entra sends it with the custom attributes mapped.
	r = c.do("POST", "/Users?aadOptscim062020", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","urn:ietf:params:scim:schemas:extension:workato:2.0:User"],
		"externalId":"5b2c1b7e-3f1e-4c47-9b8e-3a1a2b0c9d11","userName":"adele@contoso.com","active":true,
		"emails":[{"primary":true,"type":"work","value":"adele@contoso.com"}],"meta":{"resourceType":"User"},
		"name":{"formatted":"Adele Vance","familyName":"Vance","givenName":"Adele"},"roles":[],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Legal"},
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User":{"workato_role":"Admin","workato_role_test":"Analyst"}}`).expect(t, 201)
	id := str(r.body, "id")
	entraRoles("POST", r.body, map[string]any{"workato_role": "Admin", "workato_role_prod": "Operator", "workato_role_test": "Analyst"})
	eq(t, "stored after POST", stored(id), storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Operator"})
	r = c.do("GET", "/Users/"+id, "").expect(t, 200)
	entraRoles("GET", r.body, map[string]any{"workato_role": "Admin", "workato_role_prod": "Operator", "workato_role_test": "Analyst"})
	// The direct renderer (a typed-only filter) uses the same form.
	r = c.do("GET", "/Users?filter="+q(`userName eq "adele@contoso.com"`), "").expect(t, 200)
	entraRoles("userName filter", list(r.body, "Resources")[0].(map[string]any), map[string]any{"workato_role": "Admin", "workato_role_prod": "Operator", "workato_role_test": "Analyst"})

	// Filters on the role attributes in either form (case-sensitive values).
	for _, f := range []string{entra + `:workato_role eq "Admin"`, RoleURN + `:workato_role eq "Admin"`,
		`URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:WORKATO:2.0:USER:workato_role_test eq "Analyst"`,
		entra + `:workato_role eq "Admin" and userName eq "adele@contoso.com"`} {
		r = c.do("GET", "/Users?filter="+q(f), "").expect(t, 200)
		eq(t, f, num(r.body, "totalResults"), 1)
		entraRoles(f, list(r.body, "Resources")[0].(map[string]any), map[string]any{"workato_role": "Admin", "workato_role_prod": "Operator", "workato_role_test": "Analyst"})
	}
	r = c.do("GET", "/Users?filter="+q(entra+`:workato_role eq "admin"`), "").expect(t, 200)
	eq(t, "case-sensitive filter", num(r.body, "totalResults"), 0)
	r = c.do("GET", "/Users?filter="+q(entra+`:workato_role eq "Admin"`)+"&attributes="+entra+":workato_role", "").expect(t, 200)
	eq(t, "projected", stringify(list(r.body, "Resources")[0].(map[string]any)[entra]), `{"workato_role":"Admin"}`)

	patch := func(ops string) resp {
		t.Helper()
		return c.do("PATCH", "/Users/"+id+"?aadOptscim062020", patchPrefix+ops+`}`).expect(t, 200)
	}
	// PATCH with the full path, as Entra sends a changed mapping.
	r = patch(`[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role_prod","value":"NoAccess"}]`)
	entraRoles("PATCH add", r.body, map[string]any{"workato_role": "Admin", "workato_role_prod": "NoAccess", "workato_role_test": "Analyst"})
	r = patch(`[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role","value":"Auditor"}]`)
	eq(t, "stored after PATCH replace", stored(id), storage.Roles{Dev: "Auditor", Test: "Analyst", Prod: "NoAccess"})
	// Path-less, keyed by URN:attribute and by the URN.
	r = patch(`[{"op":"Replace","value":{"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role_test":"Admin","displayName":"Adele V."}}]`)
	eq(t, "displayName", str(r.body, "displayName"), "Adele V.")
	eq(t, "stored after path-less flat", stored(id), storage.Roles{Dev: "Auditor", Test: "Admin", Prod: "NoAccess"})
	r = patch(`[{"op":"Replace","value":{"urn:ietf:params:scim:schemas:extension:workato:2.0:User":{"workato_role":"Analyst"}}}]`)
	entraRoles("path-less object", r.body, map[string]any{"workato_role": "Analyst", "workato_role_prod": "NoAccess", "workato_role_test": "Admin"})
	// Remove falls back to the workspace default role.
	patch(`[{"op":"Remove","path":"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role_prod"}]`)
	eq(t, "stored after remove", stored(id), storage.Roles{Dev: "Analyst", Test: "Admin", Prod: "Operator"})
	// Unknown (or wrongly cased) roles are refused as in the other form.
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role","value":"admin"}]}`).
		expectError(t, 400, "invalidValue")
	if d := str(r.body, "detail"); !strings.Contains(d, `"admin"`) || !strings.Contains(d, "workato_role") {
		t.Errorf("detail %q does not name the role", d)
	}
	eq(t, "unchanged after 400", stored(id), storage.Roles{Dev: "Analyst", Test: "Admin", Prod: "Operator"})

	// PUT in Entra's form keeps the form and replaces the roles sent.
	r = c.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:workato:2.0:User"],
		"userName":"adele@contoso.com","active":true,"emails":[{"primary":true,"type":"work","value":"adele@contoso.com"}],
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User":{"workato_role_prod":"Admin"}}`).expect(t, 200)
	eq(t, "stored after PUT", stored(id), storage.Roles{Dev: "Analyst", Test: "Admin", Prod: "Admin"})
	eq(t, "PUT form", ext(r.body, entra)["workato_role_prod"], "Admin")

	// Create with the attributes as top-level URN:attribute keys.
	r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"flat@contoso.com",
		"emails":[{"primary":true,"type":"work","value":"flat@contoso.com"}],
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role":"Admin",
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role_prod":"NoAccess"}`).expect(t, 201)
	flat := str(r.body, "id")
	eq(t, "flat POST stored", stored(flat), storage.Roles{Dev: "Admin", Test: "Operator", Prod: "NoAccess"})
	eq(t, "flat POST rendered", ext(r.body, entra)["workato_role_prod"], "NoAccess")
	// The same attribute in both forms is ambiguous.
	c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"twice@contoso.com",
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User":{"workato_role":"Admin"},
		"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Analyst"}}`).expectError(t, 400, "invalidSyntax")
	c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bad@contoso.com",
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User":{"workato_role":"Owner"}}`).expectError(t, 400, "invalidValue")

	// A user created with the original URN keeps it in responses, also
	// after a change sent in Entra's form.
	r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"],
		"userName":"okta@contoso.com","urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin"}}`).expect(t, 201)
	classic := str(r.body, "id")
	r = c.do("PATCH", "/Users/"+classic, patchPrefix+`[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role_test","value":"Analyst"}]}`).expect(t, 200)
	eq(t, "classic role", role(r.body, roleTest), "Analyst")
	if _, ok := r.body[entra]; ok {
		t.Error("a user created with the original URN is rendered with Entra's")
	}
	eq(t, "classic schemas", stringify(r.body["schemas"]), stringify([]any{userURN, RoleURN}))
	eq(t, "classic stored", stored(classic), storage.Roles{Dev: "Admin", Test: "Analyst", Prod: "Operator"})
	r = c.do("GET", "/Users?filter="+q(entra+`:workato_role eq "Admin"`)+"&sortBy=userName", "").expect(t, 200)
	eq(t, "both forms found", num(r.body, "totalResults"), 2)
	eq(t, "flat user in Entra form", stringify(ext(list(r.body, "Resources")[0].(map[string]any), entra)["workato_role"]), `"Admin"`)
	eq(t, "classic user in its form", str(r.body, "Resources.1.userName"), "okta@contoso.com")
	eq(t, "classic user roles", stringify(ext(list(r.body, "Resources")[1].(map[string]any), RoleURN)["workato_role"]), `"Admin"`)
}
