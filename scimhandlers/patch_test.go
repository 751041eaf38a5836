package scimhandlers

import (
	"fmt"
	"strings"
	"testing"
)

// TestRemoveMembersByAnyFilter: a member removal path takes any valid
// filter. Three or more `or` terms used to answer 400 invalidPath (the
// library's grammar for value filters stops at two comparisons).
func TestRemoveMembersByAnyFilter(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("rmfilter", nil)
	var u []string
	for i := range 6 {
		u = append(u, c.createUser(t, fmt.Sprintf("m%d@acme.com", i)))
	}
	all := func() string {
		var vals []string
		for _, id := range u {
			vals = append(vals, `{"value":"`+id+`"}`)
		}
		return "[" + strings.Join(vals, ",") + "]"
	}
	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":`+all()+`}`).expect(t, 201)
	gid := str(r.body, "id")
	or := func(ids ...string) string {
		var terms []string
		for _, id := range ids {
			terms = append(terms, `value eq "`+id+`"`)
		}
		return strings.Join(terms, " or ")
	}
	for _, tc := range []struct {
		name, filter string
		keep         []string
	}{
		{"2 terms", or(u[0], u[1]), []string{u[2], u[3], u[4], u[5]}},
		{"3 terms", or(u[0], u[1], u[2]), []string{u[3], u[4], u[5]}},
		{"5 terms", or(u[0], u[1], u[2], u[3], u[4]), []string{u[5]}},
		{"5 terms with an unknown id", or(u[0], "nobody", u[2], u[3], u[4]), []string{u[1], u[5]}},
		{"and inside or", `value eq "` + u[0] + `" or (value eq "` + u[1] + `" and type eq "User") or value eq "` + u[2] + `"`, []string{u[3], u[4], u[5]}},
		{"and that matches nothing", `value eq "` + u[0] + `" and value eq "` + u[1] + `"`, u},
		{"not", `not (` + or(u[0], u[1], u[2]) + `)`, []string{u[0], u[1], u[2]}},
		{"not inside or", `value eq "` + u[0] + `" or not (type eq "User")`, []string{u[1], u[2], u[3], u[4], u[5]}},
		{"case of operators", strings.ReplaceAll(or(u[3], u[4], u[5]), " or ", " OR "), []string{u[0], u[1], u[2]}},
		{"string with brackets", `value eq "]" or value eq "[x]" or value eq "` + u[5] + `"`, []string{u[0], u[1], u[2], u[3], u[4]}},
	} {
		c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"replace","path":"members","value":`+all()+`}]}`).expect(t, 200)
		path := stringify("members[" + tc.filter + "]")
		r := c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"remove","path":`+path+`}]}`)
		if r.status != 200 {
			t.Errorf("%s: status %d %s", tc.name, r.status, r.raw)
			continue
		}
		eq(t, tc.name, memberSet(r.body), setOf(tc.keep...))
	}
	// Invalid filters there are still refused.
	for _, f := range []string{`value eq`, `nosuch eq "x"`, `value eq "a" or`, `(value eq "a"`} {
		c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"remove","path":`+stringify("members["+f+"]")+`}]}`).expectError(t, 400, typeInvalidPath)
	}
}

// TestUserValuePathsTakeAnyFilter: the same grammar on user attributes, for
// every op.
func TestUserValuePathsTakeAnyFilter(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("vpfilter", nil)
	r := c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"vp@acme.com","emails":[
		{"value":"w@acme.com","type":"work","primary":true},{"value":"h@acme.com","type":"home"},{"value":"o@acme.com","type":"other"}]}`).expect(t, 201)
	id := str(r.body, "id")
	patch := func(op string) resp {
		return c.do("PATCH", "/Users/"+id, patchPrefix+op+`}`).expect(t, 200)
	}
	r = patch(`[{"op":"replace","path":"emails[type eq \"work\" or type eq \"home\" or type eq \"x\"].display","value":"D"}]`)
	eq(t, "replace sub on 2 of 3", str(r.body, "emails.0.display")+","+str(r.body, "emails.1.display")+","+str(r.body, "emails.2.display"), "D,D,")
	r = patch(`[{"op":"remove","path":"emails[(type eq \"home\" or type eq \"other\") and not (primary eq true)]"}]`)
	eq(t, "left", len(list(r.body, "emails")), 1)
	eq(t, "kept work", str(r.body, "emails.0.value"), "w@acme.com")
}

// TestSplitValuePath pins how a PATCH path is cut at its outer brackets.
func TestSplitValuePath(t *testing.T) {
	for _, tc := range []struct {
		path, attr, filter, sub string
		ok                      bool
	}{
		{`members[value eq "a"]`, "members", `value eq "a"`, "", true},
		{`emails[type eq "work"].value`, "emails", `type eq "work"`, ".value", true},
		{`emails[value eq "]" or value eq "\"]"].display`, "emails", `value eq "]" or value eq "\"]"`, ".display", true},
		{`urn:x:y:attr[value pr]`, "urn:x:y:attr", "value pr", "", true},
		{`emails[value[x eq 1]]`, "emails", "value[x eq 1]", "", true},
		{`members`, "", "", "", false},
		{`[value pr]`, "", "", "", false},
		{`members[value pr`, "", "", "", false},
		{`members[value pr]x`, "", "", "", false},
		{`members[value pr].a[b pr]`, "", "", "", false},
		{`a"[b pr]`, "", "", "", false},
	} {
		attr, filter, sub, ok := splitValuePath(tc.path)
		if attr != tc.attr || filter != tc.filter || sub != tc.sub || ok != tc.ok {
			t.Errorf("splitValuePath(%q) = %q, %q, %q, %v", tc.path, attr, filter, sub, ok)
		}
	}
}

// TestDuplicateKeysAreRefused: docs/scim.md promises 400 invalidSyntax for
// a duplicate attribute; a JSON decoder keeps the last one silently. Every
// SCIM body is checked, at any depth, case-insensitively.
func TestDuplicateKeysAreRefused(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("dupkeys", nil)
	id := c.createUser(t, "dup@acme.com")
	r := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"D"}`).expect(t, 201)
	gid := str(r.body, "id")
	const group = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]`
	const search = `"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]`
	for _, tc := range []struct{ method, path, body, detail string }{
		{"POST", "/Users", `{` + userSchemaJSON + `,"userName":"a@acme.com","userName":"b@acme.com"}`,
			`the request body gives "userName" twice in one object`},
		{"POST", "/Users", `{` + userSchemaJSON + `,"userName":"a@acme.com","USERNAME":"b@acme.com"}`,
			`the request body gives "userName" and "USERNAME" in one object: attribute names are case-insensitive`},
		{"POST", "/Users", `{` + userSchemaJSON + `,"userName":"a@acme.com","name":{"givenName":"A","GivenName":"B"}}`,
			`the request body gives "givenName" and "GivenName" in one object: attribute names are case-insensitive`},
		{"POST", "/Users", `{` + userSchemaJSON + `,"userName":"a@acme.com","emails":[{"value":"a@acme.com"},{"value":"x@acme.com","value":"y@acme.com"}]}`,
			`the request body gives "value" twice in one object`},
		{"POST", "/Users", `{` + userSchemaJSON + `,"userName":"a@acme.com","user\u004eame":"b@acme.com"}`,
			`the request body gives "userName" twice in one object`},
		{"PUT", "/Users/" + id, `{` + userSchemaJSON + `,"userName":"dup@acme.com","` + enterpriseURN + `":{"department":"A","department":"B"}}`,
			`the request body gives "department" twice in one object`},
		{"PUT", "/Groups/" + gid, `{` + group + `,"displayName":"A","displayName":"B"}`,
			`the request body gives "displayName" twice in one object`},
		{"POST", "/Groups", `{` + group + `,"displayName":"A","members":[{"value":"` + id + `","Value":"x"}]}`,
			`the request body gives "value" and "Value" in one object: attribute names are case-insensitive`},
		{"PATCH", "/Users/" + id, patchPrefix + `[{"op":"replace","path":"displayName","value":"A","value":"B"}]}`,
			`the request body gives "value" twice in one object`},
		{"PATCH", "/Users/" + id, patchPrefix + `[{"op":"replace","value":{"displayName":"A","displayname":"B"}}]}`,
			`the request body gives "displayName" and "displayname" in one object: attribute names are case-insensitive`},
		{"PATCH", "/Groups/" + gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[],"operations":[{"op":"remove","path":"members"}]}`,
			`the request body gives "Operations" and "operations" in one object: attribute names are case-insensitive`},
		{"POST", "/Users/.search", `{` + search + `,"filter":"userName eq \"a\"","Filter":"userName pr"}`,
			`the request body gives "filter" and "Filter" in one object: attribute names are case-insensitive`},
		{"POST", "/.search", `{` + search + `,"count":1,"count":2}`,
			`the request body gives "count" twice in one object`},
	} {
		r := c.do(tc.method, tc.path, tc.body).expectError(t, 400, typeInvalidSyntax)
		eq(t, tc.method+" "+tc.path+" detail", str(r.body, "detail"), tc.detail)
	}
	// The same key in sibling objects, and a key equal to a string value, are fine.
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"ok@acme.com","displayName":"userName",
		"emails":[{"value":"ok@acme.com","type":"work"},{"value":"ok2@acme.com","type":"home"}],"name":{"givenName":"value"}}`).expect(t, 201)
	c.do("GET", "/Users/"+id, "").expect(t, 200)
}

// TestDuplicateKeyScan pins the scanner on shapes the HTTP test does not
// reach.
func TestDuplicateKeyScan(t *testing.T) {
	for _, tc := range []struct {
		json string
		dup  bool
	}{
		{`{}`, false},
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, false},
		{`{"a":{"x":1},"a":2}`, true},
		{`{"a":[1,{"b":2}],"b":3}`, false},
		{`{"a":"\"a\"","b":"a"}`, false},
		{`{"a\"":1,"a\u0022":2}`, true},
		{`[{"a":1},{"a":1}]`, false},
		{`{"a":1,"b":[{"c":1,"C":2}]}`, true},
		{`{"a":1,"a`, false},
		{`}}]]{"a":1,"a":2`, true},
		{`"a","a"`, false},
	} {
		if _, _, dup := DuplicateKey([]byte(tc.json)); dup != tc.dup {
			t.Errorf("DuplicateKey(%s) = %v", tc.json, dup)
		}
	}
}

// BenchmarkPatchAddEmails measures a user PATCH that adds n emails to a
// user that has n: library parse, apply, and the check that refuses more
// than maxMultiValues. It was quadratic (20,000 emails took 92 s over
// HTTP); each size should now cost about n times the same.
//
//	go test -run '^$' -bench 'PatchAddEmails|GroupMemberOps' -benchmem ./scimhandlers/
func BenchmarkPatchAddEmails(b *testing.B) {
	p := newPatchParser()
	emails := func(from, n int) string {
		return jsonList(n, func(i int) string { return fmt.Sprintf(`{"value":"user%d@acme.com","type":"work"}`, from+i) })
	}
	for _, n := range []int{maxMultiValues / 2, 1000, 5000, 20000} {
		base := `{"userName":"u@x","emails":` + emails(0, n) + `}`
		body := []byte(patchPrefix + `[{"op":"add","path":"emails","value":` + emails(n/2, n) + `},` +
			`{"op":"remove","path":"emails","value":` + emails(0, n/2) + `}]}`)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ops, aerr := p.parse(b.Context(), userKind, body)
				if aerr != nil {
					b.Fatal(aerr)
				}
				doc := jsonRoundTrip(jsonDoc(b, base))
				_ = applyOps(userKind, doc, ops) // refused beyond maxMultiValues, after the work
			}
		})
	}
}

// BenchmarkGroupMemberOps measures composing a group PATCH that adds n
// members and removes half of them by value (Entra) into one change.
func BenchmarkGroupMemberOps(b *testing.B) {
	p := newPatchParser()
	members := func(n int) string {
		return jsonList(n, func(i int) string { return fmt.Sprintf(`{"value":"m%06d"}`, i) })
	}
	for _, n := range []int{100, 1000, 5000, maxMembersPerRequest * 2 / 3} {
		body := []byte(patchPrefix + `[{"op":"add","path":"members","value":` + members(n) + `},` +
			`{"op":"remove","path":"members","value":` + members(n/2) + `}]}`)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ops, aerr := p.parse(b.Context(), groupKind, body)
				if aerr != nil {
					b.Fatal(aerr)
				}
				if _, aerr := groupChangeFromOps(b.Context(), ops, nil); aerr != nil {
					b.Fatal(aerr)
				}
			}
		})
	}
}
