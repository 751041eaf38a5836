package scimhandlers

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendJSONMatchesMarshal checks that the response encoder produces
// exactly json.Marshal's bytes, for the shapes the handlers build and for
// values that take the fallback (escapes, floats, other types).
func TestAppendJSONMatchesMarshal(t *testing.T) {
	cases := []any{
		nil, "", "plain", true, false, 0, -17, int64(1) << 60, 1.5, 1e21, 3.0,
		"quote\" back\\slash", "<script>&amp;</script>", "tab\tnew\nline\x01", "é ü 日本", "\u2028\u2029",
		"bad utf8 \xff\xfe", map[string]any(nil), []any(nil), map[string]any{}, []any{},
		map[string]string{"b": "<", "a": "x"}, []string{"a", "b"}, time.Unix(0, 0).UTC(),
		json.RawMessage(`{"z": 1, "a": [1, 2]}`),

		map[string]any{
			"schemas": []any{userURN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"id":      "2819c223-7f76-453a-919d-413861904646", "userName": "bjensen@example.com",
			"active": true, "name": map[string]any{"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen, III"},
			"emails": []any{map[string]any{"value": "bjensen@example.com", "type": "work", "primary": true}},
			"meta":   map[string]any{"resourceType": "User", "version": `W/"3"`, "location": "https://h/scim/v2/w/Users/x"},
			"groups": []any{map[string]any{"value": "g", "$ref": "https://h/Groups/g", "display": "R&D <core>", "type": "direct"}},
			"Z":      nil, "a b": 2.25, "\u00e9": "key needs escaping", "<k>": 1, "n": []any{nil, 1, "x", []any{}},
			"totalResults": 1, "itemsPerPage": 1, "startIndex": 1,
		},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		cases = append(cases, randomValue(r, 0))
	}
	for i, v := range cases {
		want, werr := json.Marshal(v)
		got, gerr := appendJSON([]byte("prefix"), v)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("case %d (%#v): json.Marshal err %v, appendJSON err %v", i, v, werr, gerr)
		}
		if werr != nil {
			continue
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("case %d: appendJSON\n%s\njson.Marshal\n%s", i, got, want)
		}
	}
}

// TestAppendJSONCycle checks that a map containing itself is an error, as
// with json.Marshal, not a stack overflow.
func TestAppendJSONCycle(t *testing.T) {
	m := map[string]any{}
	m["self"] = m
	if _, err := appendJSON(nil, m); err == nil {
		t.Fatal("appendJSON of a cyclic map: no error")
	}
}

func randomValue(r *rand.Rand, depth int) any {
	strs := []string{"", "a", "Z9", "x<y", "a&b", "q\"", "\\", "é", "\n", "\x7f", "\xc3", "ok value", "urn:x:y"}
	n := 8
	if depth > 4 {
		n = 5
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return strs[r.IntN(len(strs))]
	case 2:
		return r.IntN(2) == 0
	case 3:
		return r.IntN(2000) - 1000
	case 4:
		return r.Float64() * 1e6
	case 5:
		m := map[string]any{}
		for j := r.IntN(5); j > 0; j-- {
			m[strs[r.IntN(len(strs))]] = randomValue(r, depth+1)
		}
		return m
	case 6:
		l := []any{}
		for j := r.IntN(4); j > 0; j-- {
			l = append(l, randomValue(r, depth+1))
		}
		return l
	default:
		return map[string]any{"value": strs[r.IntN(len(strs))], "nested": randomValue(r, depth+1)}
	}
}
