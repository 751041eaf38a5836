package scimhandlers

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/elimity-com/scim/schema"
)

// TestDeepFilterIsRefused: a filter nested 100,000 levels deep (or with
// 300,000 unclosed parentheses) used to overflow the parser's stack and
// kill the process. It is refused with 400 invalidFilter before any parser
// sees it, over GET and POST .search, and the server keeps answering.
func TestDeepFilterIsRefused(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("deep", nil)
	c.createUser(t, "x@acme.com")
	nested := strings.Repeat("(", 100000) + `userName eq "x"` + strings.Repeat(")", 100000)
	unclosed := strings.Repeat("(", 300000) + `userName eq "x"`
	for _, tc := range []struct{ name, filter, detail string }{
		{"nested", nested, "filter nests 100000 levels deep; the limit is 16"},
		{"unclosed", unclosed, "filter nests 300000 levels deep; the limit is 16"},
	} {
		search := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":` + stringify(tc.filter) + `}`
		for _, r := range []resp{
			c.do("POST", "/Users/.search", search),
			c.do("POST", "/.search", search),
			c.do("GET", "/Users?filter="+url.QueryEscape(tc.filter), ""),
			c.do("GET", "/Groups?filter="+strings.ReplaceAll(tc.filter, " ", "%20"), ""),
		} {
			r.expectError(t, 400, typeInvalidFilter)
			if got := str(r.body, "detail"); got != tc.detail {
				t.Errorf("%s: detail %q, want %q", tc.name, got, tc.detail)
			}
		}
	}
	r := c.do("GET", "/Users?filter="+q(`userName eq "x@acme.com"`), "").expect(t, 200)
	eq(t, "still answering: totalResults", num(r.body, "totalResults"), 1)
}

// TestGuardLimits: every string a parser sees is refused beyond its limit
// with a detail naming the limit, and accepted at it.
func TestGuardLimits(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("limits", nil)
	id := c.createUser(t, "lim@acme.com")
	terms := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`id eq "%d"`, i)
		}
		return strings.Join(parts, " or ")
	}
	nest := func(n int) string { return strings.Repeat("(", n) + `userName eq "x"` + strings.Repeat(")", n) }
	long := func(n int) string { return `userName eq "` + strings.Repeat("a", n-len(`userName eq ""`)) + `"` }
	for _, tc := range []struct {
		filter, detail string
	}{
		{nest(maxFilterDepth), ""},
		{nest(maxFilterDepth + 1), "filter nests 17 levels deep; the limit is 16"},
		{strings.Repeat("not (", maxFilterDepth) + `userName eq "x"` + strings.Repeat(")", maxFilterDepth), ""},
		{strings.Repeat("not (", maxFilterDepth+1) + `userName eq "x"` + strings.Repeat(")", maxFilterDepth+1), "filter nests 17 levels deep; the limit is 16"},
		{terms(maxFilterTerms), ""},
		{terms(maxFilterTerms + 1), "filter has 33 comparisons; the limit is 32"},
		{long(maxFilterLen), ""},
		{long(maxFilterLen + 1), "filter is 1025 bytes long; the limit is 1024"},
		// Parentheses, brackets and operators inside string literals do not count.
		{`userName eq "` + strings.Repeat(`(\" eq [`, 100) + `"`, ""},
	} {
		r := c.do("GET", "/Users?filter="+q(tc.filter), "")
		if tc.detail == "" {
			r.expect(t, 200)
			continue
		}
		r.expectError(t, 400, typeInvalidFilter)
		eq(t, "detail", str(r.body, "detail"), tc.detail)
	}

	// PATCH paths: 400 invalidPath, also for the keys of a path-less value.
	deepPath := `emails[` + strings.Repeat("not (", 20) + `type eq \"work\"` + strings.Repeat(")", 20) + `].value`
	r := c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"`+deepPath+`","value":"x@acme.com"}]}`)
	r.expectError(t, 400, typeInvalidPath)
	eq(t, "deep path detail", str(r.body, "detail"), "PATCH path nests 21 levels deep; the limit is 16")
	longPath := strings.Repeat("a", 200000)
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"`+longPath+`","value":"x"}]}`)
	r.expectError(t, 400, typeInvalidPath)
	eq(t, "long path detail", str(r.body, "detail"), "PATCH path is 200000 bytes long; the limit is 1024")
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","value":{"`+longPath+`":"x"}}]}`)
	r.expectError(t, 400, typeInvalidPath)
	r = c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","value":{"`+enterpriseURN+`":{"`+longPath+`":"x"}}}]}`)
	r.expectError(t, 400, typeInvalidPath)
	r = c.do("PATCH", "/Groups/x", patchPrefix+`[{"op":"remove","path":`+stringify("members["+terms(40)+"]")+`}]}`)
	r.expectError(t, 400, typeInvalidPath)
	eq(t, "group path detail", str(r.body, "detail"), "PATCH path has 40 comparisons; the limit is 32")

	// attributes, excludedAttributes and sortBy: 400 invalidValue.
	longName := strings.Repeat("a", maxAttrNameLen+1)
	many := strings.TrimSuffix(strings.Repeat("userName,", maxAttrNames+1), ",")
	for _, tc := range []struct{ path, detail string }{
		{"/Users?attributes=" + longName, "attribute name is 257 bytes long; the limit is 256"},
		{"/Users/" + id + "?excludedAttributes=" + longName, "attribute name is 257 bytes long; the limit is 256"},
		{"/Users?attributes=" + many, "attributes lists 129 names; the limit is 128"},
		{"/Groups?excludedAttributes=" + many, "excludedAttributes lists 129 names; the limit is 128"},
		{"/Users?sortBy=" + longName, "sortBy is 257 bytes long; the limit is 256"},
	} {
		r := c.do("GET", tc.path, "").expectError(t, 400, typeInvalidValue)
		eq(t, tc.path[:20]+" detail", str(r.body, "detail"), tc.detail)
	}
	search := func(field string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],` + field + `}`
	}
	c.do("POST", "/Users/.search", search(`"attributes":["`+longName+`"]`)).expectError(t, 400, typeInvalidValue)
	// A write with a projection beyond the limits is refused before it is made.
	c.do("PATCH", "/Users/"+id+"?attributes="+longName, patchPrefix+`[{"op":"replace","path":"title","value":"changed"}]}`).
		expectError(t, 400, typeInvalidValue)
	c.do("POST", "/Users?excludedAttributes="+many, `{`+userSchemaJSON+`,"userName":"never@acme.com"}`).expectError(t, 400, typeInvalidValue)
	eq(t, "not patched", str(c.do("GET", "/Users/"+id, "").expect(t, 200).body, "title"), "")
	eq(t, "not created", num(c.do("GET", "/Users?filter="+q(`userName eq "never@acme.com"`), "").expect(t, 200).body, "totalResults"), 0)
	c.do("POST", "/Users/.search", search(`"sortBy":"`+longName+`"`)).expectError(t, 400, typeInvalidValue)
	r = c.do("GET", "/Users?attributes="+strings.TrimSuffix(strings.Repeat("userName,", maxAttrNames), ",")+"&sortBy=userName", "").expect(t, 200)
	eq(t, "at the limits", num(r.body, "totalResults"), 1)
}

// longEmail is an email address of the longest length RFC 5321 allows.
var longEmail = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 189)

// idpFilters are filters Okta and Entra ID send (idp-clients.md O1, E4,
// E7, E8, E9, okta_test.go, entra_test.go), with the longest values they
// can carry: a 254-byte email address, a 113-byte Entra UPN (Okta allows
// 100-byte user names), a 64-byte externalId.
var idpFilters = []string{
	`userName eq "test.user@okta.local"`,
	`userName eq "` + strings.Repeat("u", 64) + "@" + strings.Repeat("d", 48) + `"`,
	`userName eq "` + longEmail + `"`,
	`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
	`displayName eq "Group1DisplayName"`,
	`emails[type eq "work"].value eq "` + longEmail + `"`,
	`emails.value eq "` + longEmail + `"`,
	`emails[type eq "work" and value eq "test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"]`,
	`userName eq "` + strings.Repeat("u", 64) + "@" + strings.Repeat("d", 48) + `" and externalId eq "` + strings.Repeat("e", 64) + `"`,
	`userName eq "test.user@okta.local" and active eq true`,
	`members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]`,
}

// TestIdPFiltersPassWithMargin pins the margin between what IdPs send and
// each limit: at least three times on length, four times on nesting and
// comparisons.
func TestIdPFiltersPassWithMargin(t *testing.T) {
	for _, f := range idpFilters {
		sh := exprShape(f)
		if 3*len(f) > maxFilterLen || 4*sh.depth > maxFilterDepth || 4*sh.terms > maxFilterTerms {
			t.Errorf("%q: length %d, %+v: too close to the limits", f, len(f), sh)
		}
		_, uerr := parseFilter(f, userKind)
		_, gerr := parseFilter(f, groupKind)
		if uerr != nil && gerr != nil {
			t.Errorf("%q: %v / %v", f, uerr, gerr)
		}
	}
}

// TestExprShape pins the guard's scan.
func TestExprShape(t *testing.T) {
	for _, tc := range []struct {
		s            string
		depth, terms int
	}{
		{``, 0, 0},
		{`userName eq "x"`, 0, 1},
		{`title pr`, 0, 1},
		{`TITLE PR and userName EQ "x"`, 0, 2},
		{`((a eq 1) or (b eq 2))`, 2, 2},
		{`emails[type eq "work"].value eq "x"`, 1, 2},
		{`a eq "( [ eq \" pr ( "`, 0, 1},
		{`a eq "\\" or b eq "\""`, 0, 2},
		{`))) ((a eq 1`, 2, 1},
		{`a eq "unterminated (((`, 0, 1},
		{`a eq "x\`, 0, 1},
		{"a\teq\t1", 0, 1},
		{`eq eq eq`, 0, 3},
		{`emails[type eq "work"].value eq "x"`, 1, 2},
		{`not (not (a pr))`, 2, 1},
	} {
		sh := exprShape(tc.s)
		if sh.depth != tc.depth || sh.terms != tc.terms {
			t.Errorf("exprShape(%q) = %+v; want depth %d, terms %d", tc.s, sh, tc.depth, tc.terms)
		}
	}
}

// sampleUser is a user document for filter evaluation in benchmarks and
// fuzz targets.
func sampleUser(tb testing.TB) map[string]any {
	return jsonRoundTrip(renderUserDoc(tb))
}

func renderUserDoc(tb testing.TB) map[string]any {
	tb.Helper()
	m, aerr := decodeObject([]byte(`{"id":"2819c223","userName":"bjensen@example.com","externalId":"00ujl29u0le5T6Aj10h7",
		"active":true,"displayName":"Babs Jensen","title":"Tour Guide",
		"name":{"givenName":"Barbara","familyName":"Jensen","formatted":"Ms. Barbara J Jensen III"},
		"emails":[{"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
		"phoneNumbers":[{"value":"555-555-8377","type":"work"}],
		"addresses":[{"type":"work","streetAddress":"100 Universal City Plaza","locality":"Hollywood","postalCode":"91608","country":"USA"}],
		"groups":[{"value":"e9e30dba","display":"Tour Guides","type":"direct"}],
		"meta":{"created":"2010-01-23T04:56:22Z","lastModified":"2011-05-13T04:42:34Z"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"701984","department":"Tour Operations","manager":{"value":"26118915"}},
		"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin"}}`))
	if aerr != nil {
		tb.Fatal(aerr)
	}
	return m
}

// adversarialFilters are the most expensive filters within the limits
// (BenchmarkFilterAtLimits).
func adversarialFilters() map[string]string {
	termList := func(n int, join string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`title co "t%d"`, i)
		}
		return strings.Join(parts, join)
	}
	pad := func(s string) string { // fill to the length limit with a string value
		return s + ` or title eq "` + strings.Repeat("x", maxFilterLen-len(s)-len(` or title eq ""`)) + `"`
	}
	return map[string]string{
		"nest16":       pad(strings.Repeat("(", 16) + `title pr` + strings.Repeat(")", 16)),
		"not16":        pad(strings.Repeat("not (", 16) + `title pr` + strings.Repeat(")", 16)),
		"or31":         pad(termList(31, " or ")),
		"and31":        pad(termList(31, " and ")),
		"nested-terms": pad(strings.Repeat("(", 15) + termList(15, " or ") + strings.Repeat(")", 15)),
		// In parentheses, so that the library's parser sees them.
		"string":        `(title co "` + strings.Repeat("a", maxFilterLen-len(`(title co "")`)) + `")`,
		"escapes":       `(title co "` + strings.Repeat(`\"`, (maxFilterLen-len(`(title co "")`))/2) + `")`,
		"attrname":      "(" + strings.Repeat("a", maxFilterLen-len(`( eq "x")`)) + ` eq "x")`,
		"urn":           "(" + strings.Repeat("a:", (maxFilterLen-len(`(x eq "x")`))/2) + `x eq "x")`,
		"spaces":        `(title` + strings.Repeat(" ", maxFilterLen-len(`(title eq "x")`)) + `eq "x")`,
		"valuepaths":    pad(strings.Repeat(`emails[type eq "work" and value co "x"] or `, 15) + `emails[not (type eq "home")]`),
		"entra-rewrite": pad(strings.Repeat(`emails[type eq "work"].value co "x" or `, 15) + `title pr`),
		"unclosed":      strings.Repeat("(", 16) + `title eq "` + strings.Repeat("a", maxFilterLen-40),
	}
}

// BenchmarkFilterAtLimits measures parse, validation and one evaluation
// of the most expensive filters the guard lets through, and the guard on
// a 1 MiB filter it refuses:
//
//	go test -run '^$' -bench FilterAtLimits -benchmem ./scimhandlers/
func BenchmarkFilterAtLimits(b *testing.B) {
	doc := sampleUser(b)
	for name, f := range adversarialFilters() {
		if aerr := filterLimit.check(f); aerr != nil {
			b.Fatalf("%s: %v", name, aerr)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if expr, aerr := parseFilter(f, userKind); aerr == nil {
					safeMatch(userKind, expr, doc)
				}
			}
		})
	}
	huge := strings.Repeat("(", 1<<20)
	b.Run("guard-refuses-1MiB", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if filterLimit.check(huge) == nil {
				b.Fatal("accepted")
			}
		}
	})
}

// TestMultiValuedLimits: every multi-valued attribute, the members a
// request names and the operations of a PATCH are bounded; beyond, 400
// invalidValue names the attribute and the limit.
func TestMultiValuedLimits(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("mvlimits", nil)
	id := c.createUser(t, "mv@acme.com")
	values := jsonList
	elems := map[string]func(i int) string{
		"emails":       func(i int) string { return fmt.Sprintf(`{"value":"e%d@acme.com"}`, i) },
		"phoneNumbers": func(i int) string { return fmt.Sprintf(`{"value":"+1555%07d"}`, i) },
		"ims":          func(i int) string { return fmt.Sprintf(`{"value":"im%d"}`, i) },
		"photos":       func(i int) string { return fmt.Sprintf(`{"value":"https://x/%d.png"}`, i) },
		"addresses":    func(i int) string { return fmt.Sprintf(`{"formatted":"street %d"}`, i) },
		"entitlements": func(i int) string { return fmt.Sprintf(`{"value":"ent%d"}`, i) },
		"roles":        func(i int) string { return fmt.Sprintf(`{"value":"role%d"}`, i) },
		"x509Certificates": func(i int) string {
			return fmt.Sprintf(`{"value":"%s"}`, base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "cert%d", i)))
		},
	}
	for name, el := range elems {
		body := func(n int) string {
			return `{` + userSchemaJSON + `,"userName":"mv@acme.com","` + name + `":` + values(n, el) + `}`
		}
		r := c.do("PUT", "/Users/"+id, body(maxMultiValues+1)).expectError(t, 400, typeInvalidValue)
		eq(t, name+" detail", str(r.body, "detail"), fmt.Sprintf("%s has %d values; the limit is %d", name, maxMultiValues+1, maxMultiValues))
		c.do("PUT", "/Users/"+id, body(maxMultiValues)).expect(t, 200)
	}
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"mv2@acme.com","emails":`+values(maxMultiValues+1, elems["emails"])+`}`).
		expectError(t, 400, typeInvalidValue)
	// PATCH: the limit holds after every operation.
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"emails","value":`+values(maxMultiValues, elems["emails"])+`}]}`).expect(t, 200)
	r := c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"add","path":"emails","value":[{"value":"one.more@acme.com"}]},
		{"op":"remove","path":"emails[value eq \"e0@acme.com\"]"}]}`).expectError(t, 400, typeInvalidValue)
	eq(t, "patch detail", str(r.body, "detail"), "emails has 101 values; the limit is 100")
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"remove","path":"emails[value eq \"e0@acme.com\"]"},
		{"op":"add","path":"emails","value":[{"value":"one.more@acme.com"}]}]}`).expect(t, 200)
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"add","value":{"emails":`+values(maxMultiValues+1, elems["emails"])+`}}]}`).
		expectError(t, 400, typeInvalidValue)

	// Operations per PATCH.
	ops := func(n int) string {
		return values(n, func(i int) string { return fmt.Sprintf(`{"op":"replace","path":"title","value":"t%d"}`, i) })
	}
	c.do("PATCH", "/Users/"+id, patchPrefix+ops(maxPatchOps)+`}`).expect(t, 200)
	r = c.do("PATCH", "/Users/"+id, patchPrefix+ops(maxPatchOps+1)+`}`).expectError(t, 400, typeInvalidValue)
	eq(t, "ops detail", str(r.body, "detail"), "the PATCH has 1001 operations; the limit is 1000")

	// Members a request names.
	member := func(i int) string { return fmt.Sprintf(`{"value":"m%d"}`, i) }
	const group = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]`
	r = c.do("POST", "/Groups", `{`+group+`,"displayName":"Big","members":`+values(maxMembersPerRequest+1, member)+`}`).
		expectError(t, 400, typeInvalidValue)
	eq(t, "group detail", str(r.body, "detail"), "members has 10001 values; the limit is 10000")
	r = c.do("POST", "/Groups", `{`+group+`,"displayName":"G","members":[{"value":"`+id+`"}]}`).expect(t, 201)
	gid := str(r.body, "id")
	c.do("PUT", "/Groups/"+gid, `{`+group+`,"displayName":"G","members":`+values(maxMembersPerRequest+1, member)+`}`).
		expectError(t, 400, typeInvalidValue)
	r = c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"add","path":"members","value":`+values(maxMembersPerRequest/2, member)+`},
		{"op":"remove","path":"members","value":`+values(maxMembersPerRequest/2, member)+`},
		{"op":"remove","path":"members[value eq \"a\" or value eq \"b\"]"}]}`).expectError(t, 400, typeInvalidValue)
	eq(t, "group patch detail", str(r.body, "detail"), "the request names 10002 or more members; the limit is 10000")
	// At the limit the request goes through (its add and remove cancel out).
	c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"add","path":"members","value":`+values(maxMembersPerRequest/2, member)+`},
		{"op":"remove","path":"members","value":`+values(maxMembersPerRequest/2, member)+`}]}`).expect(t, 200)
}

// jsonList is a JSON array of n elements el(0) … el(n-1).
func jsonList(n int, el func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = el(i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestMultiValuedExtensionLimit: multi-valued attributes of extensions
// are bounded too (the built-in extensions have none).
func TestMultiValuedExtensionLimit(t *testing.T) {
	ext := schema.Schema{ID: "urn:example:ext", Attributes: schema.Attributes{
		schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{Name: "tags", MultiValued: true})),
	}}
	k := newKind("User", "Users", schema.CoreUserSchema(), ext)
	tags := make([]any, maxMultiValues+1)
	for i := range tags {
		tags[i] = fmt.Sprint(i)
	}
	aerr := checkMultiValued(k, map[string]any{"URN:EXAMPLE:EXT": map[string]any{"Tags": tags}})
	if aerr == nil || aerr.ScimType != typeInvalidValue || aerr.Detail != "tags has 101 values; the limit is 100" {
		t.Errorf("extension: %v", aerr)
	}
	if aerr := checkMultiValued(k, map[string]any{"urn:example:ext": map[string]any{"tags": tags[:maxMultiValues]}}); aerr != nil {
		t.Errorf("at the limit: %v", aerr)
	}
}
