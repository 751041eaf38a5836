package scimhandlers

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

const userSchemaJSON = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]`

func q(s string) string { return url.QueryEscape(s) }

// TestOktaUserLifecycle replays what Okta sends for a user (idp-clients.md
// O1–O7, O11, O12).
func TestOktaUserLifecycle(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("finance", nil)

	// O2: "Test Connector Configuration" lists without a filter.
	r := c.do("GET", "/Users?startIndex=1&count=2", "").expect(t, 200)
	eq(t, "totalResults", num(r.body, "totalResults"), 0)
	eq(t, "itemsPerPage", num(r.body, "itemsPerPage"), 0)
	eq(t, "startIndex", num(r.body, "startIndex"), 1)
	if l := list(r.body, "Resources"); l == nil || len(l) != 0 {
		t.Errorf("Resources = %v, want []", r.body["Resources"])
	}

	// O1: lookup before create finds nothing.
	r = c.do("GET", "/Users?filter="+q(`userName eq "test.user@okta.local"`)+"&startIndex=1&count=100", "").expect(t, 200)
	eq(t, "totalResults", num(r.body, "totalResults"), 0)

	// O3: create with password, groups:[] and externalId.
	r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Test.User@okta.local",
		"name":{"givenName":"Test","familyName":"User"},"emails":[{"primary":true,"value":"Test.User@okta.local","type":"work"}],
		"displayName":"Test User","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7","password":"1mz050nq","active":true,"groups":[]}`).expect(t, 201)
	id := str(r.body, "id")
	if id == "" {
		t.Fatal("no id")
	}
	eq(t, "Location", r.header.Get("Location"), c.base()+"/Users/"+id)
	eq(t, "ETag", r.header.Get("ETag"), `W/"1"`)
	eq(t, "userName (case kept, O12)", str(r.body, "userName"), "Test.User@okta.local")
	eq(t, "externalId", str(r.body, "externalId"), "00ujl29u0le5T6Aj10h7")
	eq(t, "active", get(r.body, "active"), true)
	eq(t, "name.givenName", str(r.body, "name.givenName"), "Test")
	eq(t, "emails.0.value", str(r.body, "emails.0.value"), "Test.User@okta.local")
	eq(t, "meta.resourceType", str(r.body, "meta.resourceType"), "User")
	eq(t, "meta.location", str(r.body, "meta.location"), c.base()+"/Users/"+id)
	eq(t, "meta.version", str(r.body, "meta.version"), `W/"1"`)
	eq(t, "default role", role(r.body, roleDev), "Operator")
	if _, ok := r.body["password"]; ok {
		t.Error("password returned")
	}
	if l := list(r.body, "groups"); l == nil || len(l) != 0 {
		t.Errorf("groups = %v, want []", r.body["groups"])
	}
	stored, err := e.store.GetUser(context.Background(), "finance", id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stored.Attributes["password"]; ok {
		t.Error("password stored")
	}
	if strings.Contains(strings.ToLower(stringify(stored)), "1mz050nq") {
		t.Error("password value stored somewhere")
	}
	eq(t, "stored source", stored.Source, storage.SourceSCIM)
	eq(t, "stored verified (new account)", stored.Verified, true)
	eq(t, "stored emails (as sent; the store folds its index keys)", strings.Join(stored.Emails, ","), "Test.User@okta.local")

	// Lookup now finds it, case-insensitively (O1, O12).
	r = c.do("GET", "/Users?filter="+q(`userName eq "test.user@okta.local"`)+"&startIndex=1&count=100", "").expect(t, 200)
	eq(t, "totalResults", num(r.body, "totalResults"), 1)
	eq(t, "found id", str(r.body, "Resources.0.id"), id)

	// O3: a duplicate create gets 409 uniqueness, also with other case.
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"TEST.USER@OKTA.LOCAL","externalId":"other"}`).
		expectError(t, 409, "uniqueness")

	// O5: OIN apps deactivate with a path-less replace.
	r = c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`).expect(t, 200)
	eq(t, "active after deactivate", get(r.body, "active"), false)
	eq(t, "version bumped", str(r.body, "meta.version"), `W/"2"`)
	eq(t, "ETag", r.header.Get("ETag"), `W/"2"`)
	eq(t, "name kept", str(r.body, "name.familyName"), "User")

	// O11: a deactivated user is still returned.
	r = c.do("GET", "/Users/"+id, "").expect(t, 200)
	eq(t, "active", get(r.body, "active"), false)

	// Re-assignment: POST again re-activates and updates (R13).
	r = c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"Test.User@okta.local","externalId":"00ujl29u0le5T6Aj10h7",
		"name":{"givenName":"Testy","familyName":"User"},"emails":[{"primary":true,"value":"Test.User@okta.local","type":"work"}],"active":true,"password":"again"}`).expect(t, 201)
	eq(t, "same id", str(r.body, "id"), id)
	eq(t, "reactivated", get(r.body, "active"), true)
	eq(t, "updated name", str(r.body, "name.givenName"), "Testy")
	eq(t, "version", str(r.body, "meta.version"), `W/"3"`)

	// O6: custom (AIW) apps send every change, deactivation included, as PUT.
	r = c.do("PUT", "/Users/"+id, `{`+userSchemaJSON+`,"id":"`+id+`","userName":"Test.User@okta.local","externalId":"00ujl29u0le5T6Aj10h7",
		"name":{"givenName":"Testy","familyName":"User"},"emails":[{"primary":true,"value":"Test.User@okta.local","type":"work"}],"active":false}`).expect(t, 200)
	eq(t, "PUT keeps active:false", get(r.body, "active"), false)
	r = c.do("GET", "/Users/"+id, "").expect(t, 200)
	eq(t, "GET after PUT active", get(r.body, "active"), false)
	eq(t, "roles kept over PUT", role(r.body, roleProd), "Operator")

	// O4: paging fields are integers and the order is stable across pages.
	for i := 0; i < 5; i++ {
		c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"p`+itoa(i)+`@okta.local"}`).expect(t, 201)
	}
	var seen []string
	for start := 1; start <= 6; start += 2 {
		r = c.do("GET", "/Users?startIndex="+itoa(start)+"&count=2", "").expect(t, 200)
		eq(t, "totalResults", num(r.body, "totalResults"), 6)
		eq(t, "startIndex", num(r.body, "startIndex"), start)
		eq(t, "itemsPerPage", num(r.body, "itemsPerPage"), 2)
		for _, res := range list(r.body, "Resources") {
			seen = append(seen, str(res, "userName"))
		}
	}
	want := "Test.User@okta.local,p0@okta.local,p1@okta.local,p2@okta.local,p3@okta.local,p4@okta.local"
	eq(t, "paged order", strings.Join(seen, ","), want)
	r = c.do("GET", "/Users?startIndex=6&count=100", "").expect(t, 200)
	eq(t, "last page itemsPerPage is what was returned", num(r.body, "itemsPerPage"), 1)
	r = c.do("GET", "/Users?count=0", "").expect(t, 200)
	eq(t, "count=0 totalResults", num(r.body, "totalResults"), 6)
	eq(t, "count=0 itemsPerPage", num(r.body, "itemsPerPage"), 0)
}

// TestOktaGroupPush replays Okta Group Push (idp-clients.md O8–O10).
func TestOktaGroupPush(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("finance", nil)
	u1 := c.createUser(t, "a@okta.local")
	u2 := c.createUser(t, "b@okta.local")
	u3 := c.createUser(t, "c@okta.local")

	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Test SCIMv2","members":[]}`).expect(t, 201)
	gid := str(r.body, "id")
	eq(t, "Location", r.header.Get("Location"), c.base()+"/Groups/"+gid)
	eq(t, "displayName", str(r.body, "displayName"), "Test SCIMv2")
	eq(t, "members", len(list(r.body, "members")), 0)
	eq(t, "meta.resourceType", str(r.body, "meta.resourceType"), "Group")

	// O8: rename with id + displayName, plus remove-by-filter and add, in one request.
	r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"replace","value":{"id":"`+gid+`","displayName":"Renamed"}},
		{"op":"add","path":"members","value":[{"value":"`+u1+`","display":"a@okta.local"},{"value":"`+u2+`","display":"b@okta.local"}]}]}`).expect(t, 200)
	eq(t, "renamed", str(r.body, "displayName"), "Renamed")
	eq(t, "members", memberSet(r.body), setOf(u1, u2))
	r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"remove","path":"members[value eq \"`+u1+`\"]"},
		{"op":"add","path":"members","value":[{"value":"`+u3+`","display":"c@okta.local"}]}]}`).expect(t, 200)
	eq(t, "members after remove+add", memberSet(r.body), setOf(u2, u3))
	eq(t, "member $ref", str(r.body, "members.0.$ref") != "", true)

	// The users' groups attribute follows.
	r = c.do("GET", "/Users/"+u3, "").expect(t, 200)
	eq(t, "user groups.0.value", str(r.body, "groups.0.value"), gid)
	eq(t, "user groups.0.display", str(r.body, "groups.0.display"), "Renamed")
	r = c.do("GET", "/Users/"+u1, "").expect(t, 200)
	eq(t, "removed user's groups", len(list(r.body, "groups")), 0)

	// O9: full membership push.
	r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"replace","path":"members","value":[{"value":"`+u1+`"},{"value":"`+u2+`"}]}]}`).expect(t, 200)
	eq(t, "members after replace", memberSet(r.body), setOf(u1, u2))

	// O10: membership in PUT.
	r = c.do("PUT", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Renamed","members":[{"value":"`+u3+`"}]}`).expect(t, 200)
	eq(t, "members after PUT", memberSet(r.body), setOf(u3))
	eq(t, "version", str(r.body, "meta.version"), `W/"5"`)

	// Unknown member id → 400 invalidValue.
	c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"add","path":"members","value":[{"value":"no-such-user"}]}]}`).expectError(t, 400, "invalidValue")
	c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"X","members":[{"value":"no-such-user"}]}`).
		expectError(t, 400, "invalidValue")
	// Duplicate displayName (case-insensitive) → 409.
	c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"renamed"}`).expectError(t, 409, "uniqueness")

	// Group lookup by displayName and by member.
	r = c.do("GET", "/Groups?filter="+q(`displayName eq "Renamed"`), "").expect(t, 200)
	eq(t, "by displayName", num(r.body, "totalResults"), 1)
	r = c.do("GET", "/Groups?filter="+q(`members[value eq "`+u3+`"]`), "").expect(t, 200)
	eq(t, "by member", num(r.body, "totalResults"), 1)
	r = c.do("GET", "/Groups?filter="+q(`members.value eq "`+u1+`"`), "").expect(t, 200)
	eq(t, "by non-member", num(r.body, "totalResults"), 0)

	// DELETE → 204, then 404.
	r = c.do("DELETE", "/Groups/"+gid, "")
	eq(t, "delete status", r.status, 204)
	c.do("GET", "/Groups/"+gid, "").expectError(t, 404, "")
}

func (c *client) createUser(t *testing.T, userName string) string {
	t.Helper()
	r := c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"`+userName+`"}`).expect(t, 201)
	return str(r.body, "id")
}

func memberSet(body map[string]any) string {
	var ids []string
	for _, m := range list(body, "members") {
		ids = append(ids, str(m, "value"))
	}
	return setOf(ids...)
}

func setOf(ids ...string) string {
	cp := append([]string{}, ids...)
	sortStrings(cp)
	return strings.Join(cp, ",")
}
