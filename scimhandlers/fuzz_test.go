package scimhandlers

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// Fuzz targets. CI runs each for a bounded time:
//
//	go test -run '^$' -fuzz '^FuzzFilter$' -fuzztime 30s ./scimhandlers
//	go test -run '^$' -fuzz '^FuzzPatch$' -fuzztime 30s ./scimhandlers
//	go test -run '^$' -fuzz '^FuzzBody$' -fuzztime 30s ./scimhandlers
//
// Crashers found are kept as seeds under testdata/fuzz/<target>/.

// FuzzFilter: the guard, parsing, validation, index planning and
// evaluation of any filter against a user and a group never panic nor
// overflow the stack, and the fast path never disagrees with the library.
func FuzzFilter(f *testing.F) {
	for _, s := range idpFilters {
		f.Add(s)
	}
	for _, s := range adversarialFilters() {
		f.Add(s)
	}
	for _, s := range []string{
		`userName eq "bjensen@example.com" and active eq true`,
		`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
		`not (title pr) or (meta.lastModified gt "2011-05-13T04:42:34Z" and name.familyName sw "J")`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915"`,
		`urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role eq "Admin"`,
		`groups.value eq "e9e30dba" or groups[display sw "Tour"]`,
		`members[value eq "89bb"] and displayName ne null`,
		`userName eq "a\"b\\c\u00e9"`,
		`(userName eq "x"`, `userName eq`, `x eq 1.5e3`, strings.Repeat("(", 17) + "a pr" + strings.Repeat(")", 17),
		// The two filters that overflowed the parser's stack.
		strings.Repeat("(", 100000) + `userName eq "x"` + strings.Repeat(")", 100000),
		strings.Repeat("(", 300000) + `userName eq "x"`,
	} {
		f.Add(s)
	}
	user := sampleUser(f)
	group := map[string]any{"id": "e9e30dba", "displayName": "Tour Guides",
		"members": []any{map[string]any{"value": "2819c223", "type": "User"}}}
	f.Fuzz(func(t *testing.T, raw string) {
		if filterLimit.check(raw) == nil {
			checkSame(t, raw) // the library unguarded: only within the limits
		}
		for _, k := range []*resourceKind{userKind, groupKind} {
			expr, aerr := parseFilter(raw, k)
			if aerr != nil {
				if aerr.Status != 400 || aerr.ScimType != typeInvalidFilter {
					t.Fatalf("%q: %+v", raw, aerr)
				}
				continue
			}
			planLookups(k, expr)
			refersTo(expr, "groups")
			typedOnly(expr)
			doc := user
			if k == groupKind {
				doc = group
			}
			matches(scope{kind: k}, expr, doc)
		}
	})
}

// FuzzPatch: any PATCH operation (op, path, value) is parsed, applied to
// a user and composed into a group change without panicking, and a user
// that passes comes out valid and within the limits.
func FuzzPatch(f *testing.F) {
	for _, s := range []struct{ op, path, value string }{
		{"replace", "", `{"active":false}`},
		{"Replace", "active", `"False"`},
		{"replace", "", `{"displayName":"Bjfe","name.givenName":"Kkom","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}`},
		{"replace", "", `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"costCenter":"C"}}`},
		{"Replace", `emails[type eq "work"].value`, `"updatedEmail@microsoft.com"`},
		{"Add", `addresses[type eq "work"].formatted`, `"1 Main St"`},
		{"Add", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", `"2c2f6fb8-0000"`},
		{"replace", "name", `null`},
		{"add", "emails", `[{"value":"n@x","type":"other"},{"value":"N@x"}]`},
		{"remove", "emails", `[{"value":"bjensen@example.com"}]`},
		{"remove", `emails[type eq "home" or type eq "work" or value eq "x"]`, ``},
		{"remove", `emails[not (primary eq true)].display`, ``},
		{"remove", `members[value eq "89bb"]`, ``},
		{"remove", `members[value eq "a" or value eq "b" or value eq "c"]`, ``},
		{"remove", `members[not (value eq "a") and type eq "User"]`, ``},
		{"Add", "members", `[{"$ref":null,"value":"636823803314257913"}]`},
		{"Remove", "members", `[{"value":"u1091"}]`},
		{"replace", "members", `[]`},
		{"replace", "", `{"id":"g","displayName":"New"}`},
		{"replace", "externalId", `"ext-2"`},
		{"add", `emails[value eq "]"].display`, `"x"`},
		{"add", "x509Certificates", `[{"value":"Y2VydA=="}]`},
	} {
		f.Add(s.op, s.path, s.value)
	}
	p := newPatchParser()
	f.Fuzz(func(t *testing.T, op, path, value string) {
		opm := map[string]any{"op": op}
		if path != "" {
			opm["path"] = path
		}
		if value != "" {
			var v any
			d := json.NewDecoder(strings.NewReader(value))
			d.UseNumber()
			if d.Decode(&v) != nil {
				return
			}
			opm["value"] = v
		}
		body, err := json.Marshal(map[string]any{"schemas": []string{patchURN}, "Operations": []any{opm}})
		if err != nil {
			return
		}
		if attr, filter, sub, ok := splitValuePath(path); ok && attr+"["+filter+"]"+sub != path {
			t.Fatalf("splitValuePath(%q) = %q %q %q", path, attr, filter, sub)
		}
		if ops, aerr := p.parse(context.Background(), userKind, body); aerr == nil {
			doc := sampleUser(t)
			if aerr := applyOps(userKind, doc, ops); aerr == nil {
				if valid, aerr := validateResource(userKind, doc, false); aerr == nil {
					var u storage.User
					applyUserDoc(&u, valid)
					if _, err := appendUser(nil, "https://x/scim/v2/ws", &u, nil); err != nil {
						t.Fatalf("render: %v", err)
					}
				}
			}
		}
		if ops, aerr := p.parse(context.Background(), groupKind, body); aerr == nil {
			current := func() (storage.Group, error) {
				return storage.Group{ID: "g", DisplayName: "G", Members: []string{"a", "b", "89bb"}}, nil
			}
			_, _ = groupChangeFromOps(context.Background(), ops, current)
		}
	})
}

// FuzzBody: any request body is read, checked for duplicate keys (in
// agreement with a reference check on valid JSON), decoded and validated
// as a user and as a group without panicking.
func FuzzBody(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local","externalId":"00ujl29u0le5T6Aj10h7","password":"1mz050nq","active":true,"groups":[],
		 "name":{"givenName":"Test","familyName":"User"},"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],"displayName":"Test User","locale":"en-US"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"externalId":"0a21f0f2","userName":"Test_User_ab6490ee@testuser.com","active":true,
		 "emails":[{"primary":true,"type":"work","value":"Test_User_fd0ea19b@testuser.com"}],"meta":{"resourceType":"User"},"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},
		 "roles":[],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"1","department":"D","manager":"2c2f6fb8"}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],"externalId":"8aa1","displayName":"Group1DisplayName","meta":{"resourceType":"Group"}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"X","members":[{"value":"23a3"},{"value":"89bb"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"x\"","attributes":["userName"],"startIndex":1,"count":10}`,
		`{"userName":"a","userName":"b"}`, `{"a":{"B":1,"b":2}}`, `{"user\u004eame":1,"username":2}`, `[{"a":1},{"a":1}]`, `{"a":"\"}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		first, second, dup := DuplicateKey(raw)
		if dup && !strings.EqualFold(first, second) {
			t.Fatalf("duplicateKey: %q and %q", first, second)
		}
		if ref, valid := referenceDuplicate(raw); valid && ref != dup {
			t.Fatalf("DuplicateKey(%s) = %v, reference %v", raw, dup, ref)
		}
		m, aerr := decodeObject(raw)
		if aerr != nil {
			return
		}
		for _, k := range []*resourceKind{userKind, groupKind} {
			doc, aerr := validateResource(k, deepCopy(m), true)
			if aerr != nil {
				continue
			}
			if k == groupKind {
				splitGroupDoc(doc)
				continue
			}
			var u storage.User
			applyUserDoc(&u, doc)
			linkEmail(doc)
			storage.FullName(doc)
			if _, err := appendUser(nil, "https://x/scim/v2/ws", &u, nil); err != nil {
				t.Fatalf("render: %v", err)
			}
		}
	})
}

// referenceDuplicate finds a case-insensitive duplicate key with
// encoding/json's tokenizer; valid is false for input that is not one
// JSON value.
func referenceDuplicate(raw []byte) (dup, valid bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err != nil {
			return dup, err.Error() == "EOF" && len(stack) == 0 && d.InputOffset() > 0
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if top != nil && top.object {
					top.key = true
				}
				stack = append(stack, &frame{object: tok == '{', keys: map[string]bool{}, key: tok == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					if d.More() {
						return dup, false
					}
				}
				continue
			}
		case string:
			if top != nil && top.object && top.key {
				k := strings.ToLower(tok)
				dup = dup || top.keys[k]
				top.keys[k] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.object {
			top.key = true
		}
	}
}
