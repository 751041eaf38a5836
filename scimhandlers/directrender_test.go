package scimhandlers

import (
	"testing"
)

// TestDirectRenderingMatchesDocuments checks that the GETs rendered by
// appendUser (GET by id, and filters on typed attributes without
// projection or sorting) answer byte for byte what the general path of
// documents answers for the same users (the same filter with sortBy, which
// builds, sorts and projects documents), for a user whose attributes hold
// what a direct writer could get wrong: numbers, characters json.Marshal
// escapes, non-ASCII text, empty objects and lists, extensions.
func TestDirectRenderingMatchesDocuments(t *testing.T) {
	env := newTestEnv(t)
	c := env.workspace("rawr", nil)

	u := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"userName":"Zoe.Raw@example.com","externalId":"00u-raw","active":true,
		"name":{"givenName":"Zoë","familyName":"<O'Brien & Söhne>","formatted":"Zoë \u2028 O'Brien"},
		"displayName":"Zoë \"Z\" O'Brien","nickName":"<z>","locale":"de-DE",
		"emails":[{"value":"Zoe.Raw@example.com","type":"work","primary":true},{"value":"zoe@home.example","type":"home"}],
		"phoneNumbers":[{"value":"+49 30 1234","type":"work"}],
		"addresses":[{"type":"work","streetAddress":"Straße 1\nHof","postalCode":"10115","primary":true}],
		"x509Certificates":[],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","employeeNumber":"0042",
			"manager":{"value":"mgr-1"}},
		"password":"never stored"}`).expect(t, 201)
	id := str(u.body, "id")
	plain := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"plain-raw@example.com"}`).expect(t, 201)
	c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"R&D <core>",
		"members":[{"value":"`+id+`"}]}`).expect(t, 201)

	// GET by id renders directly; with a projection that removes nothing
	// (password is never returned) it goes through documents.
	for _, uid := range []string{id, str(plain.body, "id")} {
		direct := c.do("GET", "/Users/"+uid, "").expect(t, 200)
		general := c.do("GET", "/Users/"+uid+"?excludedAttributes=password", "").expect(t, 200)
		if direct.raw != general.raw {
			t.Fatalf("GET /Users/%s rendered directly:\n%s\nthrough documents:\n%s", uid, direct.raw, general.raw)
		}
	}

	// A single-result filter answers the same with sortBy, which takes the
	// general path: decoded users, documents built, sorted, projected.
	for _, filter := range []string{`userName eq "zoe.raw@example.com"`, `externalId eq "00u-raw" and active eq true`,
		`id eq "` + str(plain.body, "id") + `"`} {
		path := "/Users?filter=" + q(filter)
		direct := c.do("GET", path, "").expect(t, 200)
		general := c.do("GET", path+"&sortBy=userName", "").expect(t, 200)
		if direct.raw != general.raw {
			t.Fatalf("GET %s rendered directly:\n%s\nthrough documents:\n%s", path, direct.raw, general.raw)
		}
	}
}
