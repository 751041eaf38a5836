package scimhandlers

import (
	"strings"
	"testing"
)

func userNames(body map[string]any) string {
	var out []string
	for _, r := range list(body, "Resources") {
		out = append(out, str(r, "userName"))
	}
	return strings.Join(out, ",")
}

// TestQueries covers the RFC 7644 §3.4.2 query surface over HTTP.
func TestQueries(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.workspace("query", nil)
	mk := func(body string) string {
		t.Helper()
		r := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],`+body+`}`).expect(t, 201)
		return str(r.body, "id")
	}
	ann := mk(`"userName":"ann@acme.com","title":"Engineer","externalId":"x-ann","name":{"givenName":"Ann","familyName":"Zed"},
		"emails":[{"value":"ann@acme.com","type":"work","primary":true},{"value":"ann@home.org","type":"home"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Eng","employeeNumber":"7"}`)
	bob := mk(`"userName":"bob@acme.com","title":"Manager","name":{"givenName":"Bob","familyName":"Young"},
		"emails":[{"value":"bob@acme.com","type":"work"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales"}`)
	cat := mk(`"userName":"cat@other.org","name":{"givenName":"Cat","familyName":"Xu"},"emails":[{"value":"cat@other.org","type":"work"}]`)
	c.do("PATCH", "/Users/"+cat, patchPrefix+`[{"op":"replace","path":"active","value":false}]}`).expect(t, 200)
	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Eng","members":[{"value":"`+ann+`"}]}`).expect(t, 201)
	gid := str(r.body, "id")

	for _, tc := range []struct{ filter, want string }{
		{`userName eq "ANN@acme.com"`, "ann@acme.com"},
		{`USERNAME EQ "bob@acme.com" AND active eq true`, "bob@acme.com"},
		{`userName eq "ann@acme.com" or userName eq "bob@acme.com"`, "ann@acme.com,bob@acme.com"},
		{`externalId eq "x-ann"`, "ann@acme.com"},
		{`externalId eq "X-ANN"`, ""}, // externalId is caseExact
		{`id eq "` + bob + `"`, "bob@acme.com"},
		{`emails[type eq "home" and value eq "ann@home.org"]`, "ann@acme.com"},
		{`emails[type eq "work"]`, "ann@acme.com,bob@acme.com,cat@other.org"},
		{`emails.type eq "home"`, "ann@acme.com"},
		{`userName sw "b"`, "bob@acme.com"},
		{`userName ew "other.org"`, "cat@other.org"},
		{`userName co "@acme"`, "ann@acme.com,bob@acme.com"},
		{`not (userName co "@acme")`, "cat@other.org"},
		{`active eq false`, "cat@other.org"},
		{`active eq "False"`, "cat@other.org"}, // Entra-style string booleans are accepted
		{`title pr`, "ann@acme.com,bob@acme.com"},
		{`not (title pr)`, "cat@other.org"},
		{`title ne "Engineer"`, "bob@acme.com,cat@other.org"},
		{`name.familyName gt "Y"`, "ann@acme.com,bob@acme.com"},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`, "bob@acme.com"},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7" and userName sw "a"`, "ann@acme.com"},
		{`meta.created gt "2000-01-01T00:00:00Z"`, "ann@acme.com,bob@acme.com,cat@other.org"},
		{`meta.lastModified lt "2000-01-01T00:00:00Z"`, ""},
		{`groups.value eq "` + gid + `"`, "ann@acme.com"},
		{`(userName eq "ann@acme.com" or title eq "Manager") and active eq true`, "ann@acme.com,bob@acme.com"},
		{`userName eq "a\"b"`, ""},
	} {
		r := c.do("GET", "/Users?filter="+q(tc.filter), "").expect(t, 200)
		if got := userNames(r.body); got != tc.want {
			t.Errorf("filter %s: got %q, want %q", tc.filter, got, tc.want)
		}
		eq(t, "totalResults of "+tc.filter, num(r.body, "totalResults"), len(strings.Split(tc.want, ","))-boolInt(tc.want == ""))
	}

	// sortBy / sortOrder.
	r = c.do("GET", "/Users?sortBy=name.familyName", "").expect(t, 200)
	eq(t, "sort asc", userNames(r.body), "cat@other.org,bob@acme.com,ann@acme.com")
	r = c.do("GET", "/Users?sortBy=title&sortOrder=descending", "").expect(t, 200)
	eq(t, "sort desc (missing last)", userNames(r.body), "bob@acme.com,ann@acme.com,cat@other.org")
	r = c.do("GET", "/Users?sortBy=userName&startIndex=2&count=1", "").expect(t, 200)
	eq(t, "sorted page", userNames(r.body), "bob@acme.com")
	eq(t, "sorted page total", num(r.body, "totalResults"), 3)
	c.do("GET", "/Users?sortBy=nosuch", "").expectError(t, 400, "invalidValue")
	c.do("GET", "/Groups?sortBy=nosuch", "").expectError(t, 400, "invalidValue") // also with no results
	r = c.do("GET", "/Groups?sortBy=displayName&sortOrder=descending", "").expect(t, 200)
	eq(t, "groups sorted", str(r.body, "Resources.0.displayName"), "Eng")

	// attributes / excludedAttributes.
	r = c.do("GET", "/Users/"+ann+"?attributes=userName,name.givenName,emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "").expect(t, 200)
	eq(t, "projected userName", str(r.body, "userName"), "ann@acme.com")
	eq(t, "projected givenName", str(r.body, "name.givenName"), "Ann")
	eq(t, "familyName dropped", get(r.body, "name.familyName"), nil)
	eq(t, "emails.value", str(r.body, "emails.1.value"), "ann@home.org")
	eq(t, "emails.type dropped", get(r.body, "emails.0.type"), nil)
	eq(t, "department", ext(r.body, enterpriseURN)["department"], "Eng")
	eq(t, "employeeNumber dropped", ext(r.body, enterpriseURN)["employeeNumber"], nil)
	eq(t, "title dropped", get(r.body, "title"), nil)
	eq(t, "id always", str(r.body, "id"), ann)
	eq(t, "meta always", str(r.body, "meta.resourceType"), "User")
	eq(t, "schemas follow", len(list(r.body, "schemas")), 2)
	r = c.do("GET", "/Users?filter="+q(`userName eq "ann@acme.com"`)+"&excludedAttributes=emails,groups,urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole,id", "").expect(t, 200)
	res := list(r.body, "Resources")[0].(map[string]any)
	eq(t, "emails excluded", res["emails"], nil)
	eq(t, "groups excluded", res["groups"], nil)
	eq(t, "role ext excluded", res[RoleURN], nil)
	eq(t, "id not excludable", str(res, "id"), ann)
	eq(t, "title kept", str(res, "title"), "Engineer")

	// POST .search on Users, Groups and the root (RFC 7644 §3.4.3).
	r = c.do("POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"id eq \"`+ann+`\" or userName eq \"bob@acme.com\"",
		"attributes":["userName"],"sortBy":"userName","sortOrder":"descending","startIndex":1,"count":10}`).expect(t, 200)
	eq(t, "search users", userNames(r.body), "bob@acme.com,ann@acme.com")
	eq(t, "search projection", get(r.body, "Resources.0.name"), nil)
	r = c.do("POST", "/Groups/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"displayName eq \"eng\"","excludedAttributes":["members"]}`).expect(t, 200)
	eq(t, "search groups", num(r.body, "totalResults"), 1)
	eq(t, "search groups no members", get(r.body, "Resources.0.members"), nil)
	r = c.do("POST", "/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"meta.created pr","count":2,"startIndex":3}`).expect(t, 200)
	eq(t, "root search total", num(r.body, "totalResults"), 4)
	eq(t, "root search page", num(r.body, "itemsPerPage"), 2)
	eq(t, "root search page[1] is the group", str(r.body, "Resources.1.meta.resourceType"), "Group")
	r = c.do("GET", "/?startIndex=3&count=5", "").expect(t, 200)
	eq(t, "root total", num(r.body, "totalResults"), 4)
	eq(t, "root page", num(r.body, "itemsPerPage"), 2)
	eq(t, "root page[0]", str(r.body, "Resources.0.userName"), "cat@other.org")
	eq(t, "root page[1]", str(r.body, "Resources.1.displayName"), "Eng")
	r = c.do("GET", "/?filter="+q(`displayName eq "Eng"`), "").expect(t, 200)
	eq(t, "root filter total", num(r.body, "totalResults"), 1)
	eq(t, "root filter type", str(r.body, "Resources.0.meta.resourceType"), "Group")
	c.do("GET", "/?filter="+q(`nosuch eq 1`), "").expectError(t, 400, "invalidFilter")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestDiscovery: ServiceProviderConfig, ResourceTypes and Schemas (RFC
// 7644 §4).
func TestDiscovery(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.workspace("disc", nil)
	r := c.do("GET", "/ServiceProviderConfig", "").expect(t, 200)
	for path, want := range map[string]any{
		"patch.supported": true, "filter.supported": true, "sort.supported": true, "etag.supported": true,
		"bulk.supported": false, "changePassword.supported": false,
	} {
		eq(t, path, get(r.body, path), want)
	}
	eq(t, "maxResults", num(r.body, "filter.maxResults"), 100)
	eq(t, "auth scheme", str(r.body, "authenticationSchemes.0.type"), "oauthbearertoken")

	r = c.do("GET", "/ResourceTypes", "").expect(t, 200)
	eq(t, "resource types", num(r.body, "totalResults"), 2)
	r = c.do("GET", "/ResourceTypes/User", "").expect(t, 200)
	eq(t, "User endpoint", str(r.body, "endpoint"), "/Users")
	var exts []string
	for _, x := range list(r.body, "schemaExtensions") {
		exts = append(exts, str(x, "schema"))
	}
	eq(t, "User extensions", strings.Join(exts, ","), enterpriseURN+","+RoleURN+","+EntraRoleURN)
	c.do("GET", "/ResourceTypes/Nope", "").expectError(t, 404, "")

	r = c.do("GET", "/Schemas", "").expect(t, 200)
	eq(t, "schemas", num(r.body, "totalResults"), 5)
	r = c.do("GET", "/Schemas/"+RoleURN, "").expect(t, 200)
	var names []string
	for _, a := range list(r.body, "attributes") {
		names = append(names, str(a, "name"))
	}
	eq(t, "role attributes", strings.Join(names, ","), "workato_role,workato_role_test,workato_role_prod")
	eq(t, "role caseExact", get(r.body, "attributes.0.caseExact"), true)
	c.do("GET", "/Schemas/urn:nope", "").expectError(t, 404, "")
}
