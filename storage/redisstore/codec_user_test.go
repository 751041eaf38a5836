package redisstore

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// TestFastDecodeUserWire checks the reflection-free decoder against
// json.Unmarshal: on records written by encodeUser it must succeed and agree;
// on any other input (hand-written odd records, random mutations) it may
// give up, but when it does not, json.Unmarshal must succeed with the same
// result.
func TestFastDecodeUserWire(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var inputs [][]byte
	for i := 0; i < 300; i++ {
		u := benchUser()
		u.Created = time.UnixMicro(r.Int64N(1 << 52))
		u.Modified = u.Created.Add(time.Duration(r.IntN(1000)) * time.Second)
		u.Version = r.Int64N(1000) + 1
		u.Active, u.Verified = r.IntN(2) == 0, r.IntN(2) == 0
		if r.IntN(2) == 0 {
			u.Op = storage.NewID()
		}
		if r.IntN(3) == 0 {
			u.RoleSchema = "urn:ietf:params:scim:schemas:extension:workato:2.0:User"
		}
		switch i % 5 {
		case 0:
			u.Attributes = nil
			u.Emails = nil
			u.Roles = storage.Roles{}
			u.AccountID, u.ExternalID, u.Source = "", "", ""
		case 1:
			u.Attributes = map[string]any{"x": randomAttr(r, 0), "name": map[string]any{"givenName": "Zoë <&> \"q\" \\ \u2028 日本"}}
			u.UserName = "tab\there\x01"
		case 2:
			u.Attributes["n"] = []any{1.5, -0.0, 1e300, 12345678901234567890.0, nil, true, "", map[string]any{}, []any{}}
			u.Emails = []string{}
		case 3:
			u.Attributes["deep"] = randomAttr(r, 0)
		}
		var explicit *rolesWire
		if i%5 == 4 {
			explicit = &rolesWire{Dev: "Admin"}
		}
		b, err := json.Marshal(userWire{V: 1, ID: u.ID, Account: u.AccountID, UserName: u.UserName, Explicit: explicit,
			External: u.ExternalID, Emails: u.Emails, Active: u.Active, Verified: u.Verified, Source: u.Source,
			Roles: rolesWire{Dev: u.Roles.Dev, Test: u.Roles.Test, Prod: u.Roles.Prod}, RoleSchema: u.RoleSchema,
			Attrs: u.Attributes, Created: toMicro(u.Created), Modified: toMicro(u.Modified), Version: u.Version, Op: u.Op})
		if err != nil {
			t.Fatal(err)
		}
		if i%5 != 1 { // case 1 has escapes: the fast path may give up
			if _, ok := fastDecodeUserWire(b); !ok {
				t.Fatalf("fast decoder gave up on an encodeUser record: %s", b)
			}
		}
		inputs = append(inputs, b)
	}
	odd := []string{
		`{}`, ` { "v" : 1 , "id" : "x" } `, `{"v":1,"id":"x","ID":"y"}`, `{"v":1,"v":2}`, `{"v":1.0}`, `{"v":1e0}`,
		`{"v":-0}`, `{"v":01}`, `{"v":99999999999999999999}`, `{"id":null}`, `{"at":null}`, `{"em":null}`,
		`{"em":["a",1]}`, `{"r":{"d":"x","d":"y"}}`, `{"r":{"D":"x"}}`, `{"r":null}`, `{"r":{}}`, `{"e":null}`, `{"e":{}}`, `{"e":{"d":"x"},"e":{}}`, `{"at":{"a":1,"a":2}}`,
		`{"at":{"a":1e400}}`, `{"at":{"a":-}}`, `{"at":{"a":.5}}`, `{"at":{"a":1.}}`, `{"at":{"a":[1,]}}`,
		`{"at":{"a":tru}}`, `{"at":{"a":"\u00e9"}}`, "{\"at\":{\"a\":\"\xff\"}}", `{"c":1}x`, `{"c":1,}`, `{"ac":1}`,
		`{"at":{"a":[[[[[[[[[[[]]]]]]]]]]]}}`, `{"un":"a"` + "\n" + `}`, `[]`, `""`, ``, `{"at":{"a":"b"}`,
		`{"at":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`,
		`{"c":9223372036854775807}`, `{"c":9223372036854775808}`, `{"c":-9223372036854775808}`,
		`{"c":-9223372036854775809}`, `{"c":18446744073709551616}`, `{"c":-0}`, `{"c":1e3}`, `{"c":-}`, `{"c":0.0}`,
	}
	for _, s := range odd {
		inputs = append(inputs, []byte(s))
	}
	// Random single-byte mutations of real records.
	for i := 0; i < 3000; i++ {
		b := append([]byte(nil), inputs[r.IntN(300)]...)
		const alphabet = "{}[]\",:0123456789.eE-+tfnulx\\ \x80"
		b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		inputs = append(inputs, b)
	}
	for _, b := range inputs {
		fast, ok := fastDecodeUserWire(b)
		var slow userWire
		err := json.Unmarshal(b, &slow)
		if !ok {
			continue
		}
		if err != nil {
			t.Fatalf("fast decoder accepted what json.Unmarshal rejects (%v): %q", err, b)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast decoder disagrees on %q:\nfast %#v\nslow %#v", b, fast, slow)
		}
	}
	for _, c := range []struct {
		rec  string
		want int64
	}{{`{"c":9223372036854775807}`, 1<<63 - 1}, {`{"c":-9223372036854775808}`, -1 << 63}, {`{"c":-0}`, 0}} {
		if w, ok := fastDecodeUserWire([]byte(c.rec)); !ok || w.Created != c.want {
			t.Fatalf("%s: %d %v, want %d", c.rec, w.Created, ok, c.want)
		}
	}
}

func randomAttr(r *rand.Rand, depth int) any {
	if depth > 5 {
		return "leaf"
	}
	switch r.IntN(7) {
	case 0:
		return nil
	case 1:
		return []string{"s", "é", "x y", ""}[r.IntN(4)]
	case 2:
		return r.IntN(2) == 0
	case 3:
		return r.NormFloat64() * 1e6
	case 4:
		m := map[string]any{}
		for j := r.IntN(4); j > 0; j-- {
			m[[]string{"a", "b", "value", "é"}[r.IntN(4)]] = randomAttr(r, depth+1)
		}
		return m
	default:
		l := []any{}
		for j := r.IntN(3); j > 0; j-- {
			l = append(l, randomAttr(r, depth+1))
		}
		return l
	}
}
