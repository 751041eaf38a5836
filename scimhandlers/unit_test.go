package scimhandlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	fp "github.com/scim2/filter-parser/v2"

	"github.com/scimjit/scimjit/storage"
)

// TestPlanLookups pins which filters are served from indexes.
func TestPlanLookups(t *testing.T) {
	for _, tc := range []struct {
		kind   *resourceKind
		filter string
		want   string // "" = scan
	}{
		{userKind, `userName eq "a@x"`, "userName=a@x"},
		{userKind, `USERNAME EQ "a@x"`, "userName=a@x"},
		{userKind, `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a@x"`, "userName=a@x"},
		{userKind, `externalId eq "e1"`, "externalId=e1"},
		{userKind, `id eq "i1"`, "id=i1"},
		{userKind, `emails.value eq "a@x"`, "email=a@x"},
		{userKind, `emails eq "a@x"`, "email=a@x"},
		{userKind, `emails[value eq "a@x"]`, "email=a@x"},
		{userKind, `emails[type eq "work" and value eq "a@x"]`, "email=a@x"},
		{userKind, `emails[type eq "work"].value eq "a@x"`, "email=a@x"},
		{userKind, `userName eq "a@x" and active eq true`, "userName=a@x"},
		{userKind, `active eq true and externalId eq "e1"`, "externalId=e1"},
		{userKind, `userName eq "a" or externalId eq "b"`, "userName=a,externalId=b"},
		{userKind, `(userName eq "a" or externalId eq "b") and title pr`, "userName=a,externalId=b"},
		{userKind, `userName eq "a" or title eq "b"`, ""},
		{userKind, `userName ne "a"`, ""},
		{userKind, `userName co "a"`, ""},
		{userKind, `not (userName eq "a")`, ""},
		{userKind, `emails[type eq "work"]`, ""},
		{userKind, `emails.type eq "work"`, ""},
		{userKind, `displayName eq "a"`, ""},
		{userKind, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"`, ""},
		{groupKind, `displayName eq "Eng"`, "displayName=Eng"},
		{groupKind, `externalId eq "g1"`, "externalId=g1"},
		{groupKind, `members.value eq "u1"`, "member=u1"},
		{groupKind, `members[value eq "u1"]`, "member=u1"},
		{groupKind, `id eq "g1" and members[value eq "u1"]`, "id=g1"},
		{groupKind, `displayName sw "E"`, ""},
	} {
		expr, aerr := parseFilter(tc.filter, tc.kind)
		if aerr != nil {
			t.Errorf("%s: %v", tc.filter, aerr)
			continue
		}
		keys, ok := planLookups(tc.kind, expr)
		var got []string
		for _, k := range keys {
			got = append(got, k.by+"="+k.value)
		}
		if !ok {
			got = nil
		}
		if g := strings.Join(got, ","); g != tc.want {
			t.Errorf("%s: plan %q, want %q", tc.filter, g, tc.want)
		}
	}
}

func jsonDoc(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMatchesOddData: evaluation never panics on values of the wrong type
// (the library's PassesFilter does).
func TestMatchesOddData(t *testing.T) {
	odd := []string{
		`{"userName":null,"emails":"not-a-list","active":"yes","name":[1,2],"meta":{"created":5}}`,
		`{"userName":7,"emails":[null,3,{"value":null}],"title":{"x":1},"groups":{"value":"g"}}`,
		`{}`,
	}
	filters := []string{
		`userName eq "a"`, `userName gt "a"`, `emails.value co "x"`, `emails[type eq "work"]`, `active eq true`,
		`name.givenName pr`, `meta.created gt "2020-01-01T00:00:00Z"`, `title sw "x"`, `groups.value eq "g"`,
		`not (userName pr)`, `emails pr`,
	}
	for _, d := range odd {
		doc := jsonDoc(t, d)
		for _, f := range filters {
			expr, aerr := parseFilter(f, userKind)
			if aerr != nil {
				t.Fatalf("%s: %v", f, aerr)
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s on %s panicked: %v", f, d, r)
					}
				}()
				matches(scope{kind: userKind}, expr, doc)
			}()
		}
	}
	// pr on an empty string is false (RFC 7644 §3.4.2.2: "non-empty").
	expr, _ := parseFilter(`title pr`, userKind)
	eq(t, "pr on empty", matches(scope{kind: userKind}, expr, jsonDoc(t, `{"title":""}`)), false)
	// not over a missing attribute matches.
	expr, _ = parseFilter(`not (title eq "x")`, userKind)
	eq(t, "not missing", matches(scope{kind: userKind}, expr, jsonDoc(t, `{}`)), true)
	// Numbers and dates compare as such.
	expr, _ = parseFilter(`meta.lastModified ge "2024-05-01T10:00:00+02:00"`, userKind)
	eq(t, "date compare", matches(scope{kind: userKind}, expr, jsonDoc(t, `{"meta":{"lastModified":"2024-05-01T08:00:00Z"}}`)), true)
}

// TestApplyOps pins PATCH semantics on a document (RFC 7644 §3.5.2 plus
// the IdP forms of idp-clients.md).
func TestApplyOps(t *testing.T) {
	base := `{"userName":"u@x","name":{"givenName":"A","familyName":"B"},
		"emails":[{"value":"w@x","type":"work","primary":true},{"value":"h@x","type":"home"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D"}}`
	p := newPatchParser()
	for _, tc := range []struct {
		name, ops string
		check     map[string]any // path (with "|" between keys) → want (nil = absent)
	}{
		{"path-less dotted + URN", `[{"op":"replace","value":{"name.givenName":"Z","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter":"C"}}]`,
			map[string]any{"name|givenName": "Z", "name|familyName": "B", enterpriseURN + "|costCenter": "C", enterpriseURN + "|department": "D"}},
		{"replace complex merges", `[{"op":"replace","path":"name","value":{"givenName":"Q"}}]`,
			map[string]any{"name|givenName": "Q", "name|familyName": "B"}},
		{"replace filtered sub-attribute", `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"n@x"}]`,
			map[string]any{"emails|0|value": "n@x", "emails|1|value": "h@x"}},
		{"add creates missing element", `[{"op":"add","path":"emails[type eq \"other\"].value","value":"o@x"}]`,
			map[string]any{"emails|2|type": "other", "emails|2|value": "o@x"}},
		{"remove filtered element", `[{"op":"remove","path":"emails[type eq \"home\"]"}]`,
			map[string]any{"emails|0|value": "w@x", "emails|1": nil}},
		{"remove sub-attribute", `[{"op":"remove","path":"name.familyName"}]`,
			map[string]any{"name|givenName": "A", "name|familyName": nil}},
		{"add to multi-valued appends", `[{"op":"add","path":"emails","value":[{"value":"n@x","type":"other"}]}]`,
			map[string]any{"emails|2|value": "n@x"}},
		{"add existing value is idempotent", `[{"op":"add","path":"emails","value":[{"value":"W@x","type":"work"}]}]`,
			map[string]any{"emails|2": nil}},
		{"remove with value removes only those", `[{"op":"remove","path":"emails","value":[{"value":"h@x"}]}]`,
			map[string]any{"emails|0|value": "w@x", "emails|1": nil}},
		{"replace multi-valued wholesale", `[{"op":"replace","path":"emails","value":[{"value":"only@x"}]}]`,
			map[string]any{"emails|0|value": "only@x", "emails|1": nil}},
		{"replace null removes", `[{"op":"replace","path":"name","value":null}]`,
			map[string]any{"name": nil}},
		{"manager string", `[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m1"}]`,
			map[string]any{enterpriseURN + "|manager|value": "m1"}},
		{"case-insensitive op and attribute", `[{"op":"REPLACE","path":"NAME.GIVENNAME","value":"K"}]`,
			map[string]any{"name|givenName": "K"}},
		{"string boolean", `[{"op":"Replace","path":"active","value":"False"}]`,
			map[string]any{"active": false}},
		{"id in value ignored", `[{"op":"replace","value":{"id":"other","displayName":"N"}}]`,
			map[string]any{"displayName": "N"}},
	} {
		ops, aerr := p.parse(context.Background(), userKind, []byte(patchPrefix+tc.ops+`}`))
		if aerr != nil {
			t.Errorf("%s: parse: %v", tc.name, aerr)
			continue
		}
		doc := jsonRoundTrip(jsonDoc(t, base))
		if aerr := applyOps(userKind, doc, ops); aerr != nil {
			t.Errorf("%s: apply: %v", tc.name, aerr)
			continue
		}
		for path, want := range tc.check {
			var cur any = doc
			for _, k := range strings.Split(path, "|") {
				switch c := cur.(type) {
				case map[string]any:
					cur = c[k]
				case []any:
					var i int
					fmt.Sscan(k, &i)
					if i < len(c) {
						cur = c[i]
					} else {
						cur = nil
					}
				default:
					cur = nil
				}
			}
			if cur != want {
				t.Errorf("%s: %s = %#v, want %#v", tc.name, path, cur, want)
			}
		}
	}
}

// TestGroupChangeFromOps pins how member operations compose into one
// atomic delta.
func TestGroupChangeFromOps(t *testing.T) {
	p := newPatchParser()
	current := func() (storage.Group, error) {
		return storage.Group{Members: []string{"a", "b", "c"}}, nil
	}
	for _, tc := range []struct {
		name, ops             string
		replace, remove, add  string
		displayName, external string
	}{
		{"add", `[{"op":"add","path":"members","value":[{"value":"x"},{"value":"y"}]}]`, "-", "", "x,y", "", ""},
		{"remove by filter + add", `[{"op":"remove","path":"members[value eq \"a\"]"},{"op":"add","path":"members","value":[{"value":"x"}]}]`, "-", "a", "x", "", ""},
		{"Entra remove by value", `[{"op":"Remove","path":"members","value":[{"value":"a"},{"value":"b"}]}]`, "-", "a,b", "", "", ""},
		{"remove all", `[{"op":"remove","path":"members"}]`, "", "", "", "", ""},
		{"replace", `[{"op":"replace","path":"members","value":[{"value":"x"}]}]`, "x", "", "", "", ""},
		{"replace then add then remove", `[{"op":"replace","path":"members","value":[{"value":"x"}]},{"op":"add","path":"members","value":[{"value":"y"}]},{"op":"remove","path":"members[value eq \"x\"]"}]`, "y", "", "", "", ""},
		{"add then remove same", `[{"op":"add","path":"members","value":[{"value":"x"}]},{"op":"remove","path":"members[value eq \"x\"]"}]`, "-", "x", "", "", ""},
		{"or filter uses current members", `[{"op":"remove","path":"members[value eq \"a\" or value eq \"c\"]"}]`, "-", "a,c", "", "", ""},
		{"Okta rename", `[{"op":"replace","value":{"id":"g","displayName":"New"}}]`, "-", "", "", "New", ""},
		{"externalId", `[{"op":"replace","path":"externalId","value":"e"}]`, "-", "", "", "", "e"},
	} {
		ops, aerr := p.parse(context.Background(), groupKind, []byte(patchPrefix+tc.ops+`}`))
		if aerr != nil {
			t.Errorf("%s: parse: %v", tc.name, aerr)
			continue
		}
		ch, aerr := groupChangeFromOps(context.Background(), ops, current)
		if aerr != nil {
			t.Errorf("%s: %v", tc.name, aerr)
			continue
		}
		rep := "-"
		if ch.ReplaceMembers != nil {
			rep = strings.Join(*ch.ReplaceMembers, ",")
		}
		eq(t, tc.name+" replace", rep, tc.replace)
		eq(t, tc.name+" remove", strings.Join(ch.RemoveMembers, ","), tc.remove)
		eq(t, tc.name+" add", strings.Join(ch.AddMembers, ","), tc.add)
		if tc.displayName != "" {
			if ch.DisplayName == nil || *ch.DisplayName != tc.displayName {
				t.Errorf("%s: displayName %v", tc.name, ch.DisplayName)
			}
		}
		if tc.external != "" {
			if ch.ExternalID == nil || *ch.ExternalID != tc.external {
				t.Errorf("%s: externalId %v", tc.name, ch.ExternalID)
			}
		}
	}
}

// TestIfMatch pins If-Match parsing.
func TestIfMatch(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   int64
		fails  bool
	}{
		{"", 0, false}, {"*", 0, false}, {`W/"3"`, 3, false}, {`"3"`, 3, false}, {`W/"3", W/"4"`, 3, false},
		{`"abc"`, 0, true}, {`W/"0"`, 0, true},
	} {
		r, _ := newRequest(tc.header)
		got, aerr := ifMatch(r)
		if (aerr != nil) != tc.fails || got != tc.want {
			t.Errorf("If-Match %q: %d %v", tc.header, got, aerr)
		}
	}
	_ = fp.EQ
}
