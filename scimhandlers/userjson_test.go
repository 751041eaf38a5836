package scimhandlers

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// TestAppendUserMatchesRenderUser checks that the direct user renderer
// writes exactly what appendJSON writes for renderUser's document as
// presentUser names its role extension (and so json.Marshal), for users
// with every typed field set or empty, either role extension form, attributes
// that collide with typed keys, extensions, typed-only emails, groups or
// none, odd strings and random attribute values, and attributes already
// in JSON form (storage.RawJSON).
func TestAppendUserMatchesRenderUser(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	odd := []string{"", "plain", "q\"uote", "back\\slash", "<b>&", "é", "\u2028", "\x01", "\xff"}
	pick := func() string { return odd[r.IntN(len(odd))] }
	bases := []string{"https://h.example/scim/v2/ws", "http://127.0.0.1:1/scim/v2/a<b>"}
	for i := 0; i < 2000; i++ {
		u := storage.User{ID: "id-" + pick(), UserName: pick(), Active: r.IntN(2) == 0,
			Created:  time.Unix(r.Int64N(1<<33), r.Int64N(1e9)),
			Modified: time.Unix(r.Int64N(1<<33), 0).In(time.FixedZone("x", 3600)),
			Version:  r.Int64N(1 << 40)}
		if r.IntN(2) == 0 {
			u.ExternalID = pick()
		}
		if r.IntN(3) > 0 {
			u.Roles = storage.Roles{Dev: pick(), Test: pick(), Prod: pick()}
		}
		if r.IntN(3) == 0 {
			u.RoleSchema = EntraRoleURN
		}
		for j := r.IntN(3); j > 0; j-- {
			u.Emails = append(u.Emails, pick())
		}
		attrs := map[string]any{}
		for j := r.IntN(6); j > 0; j-- {
			key := []string{"name", "emails", "displayName", "phoneNumbers", pick(), enterpriseURN,
				"id", "meta", "schemas", "groups", "password", "userName", "externalId", "active", RoleURN}[r.IntN(15)]
			attrs[key] = randomValue(r, 1)
		}
		if r.IntN(5) > 0 {
			u.Attributes = attrs
		}
		var groups []storage.GroupRef
		switch r.IntN(3) {
		case 1:
			groups = []storage.GroupRef{}
		case 2:
			for j := r.IntN(3) + 1; j > 0; j-- {
				groups = append(groups, storage.GroupRef{ID: "g-" + pick(), DisplayName: pick()})
			}
		}
		base := bases[r.IntN(len(bases))]
		want, werr := appendJSON(nil, presentUser(renderUser(base, u, groups), &u))
		got, gerr := appendUser([]byte("prefix"), base, &u, groups)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("user %d: render error %v, appendUser error %v", i, werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("user %d:\nappendUser %s\nrenderUser %s", i, got, want)
		}
	}
}

// BenchmarkRenderUser compares the direct renderer with building the
// document and encoding it, for an Okta-shaped user with two groups.
func BenchmarkRenderUser(b *testing.B) {
	u := storage.User{ID: "b9a6355d53134678b7a0", UserName: "firstname.lastname01674@example.com",
		ExternalID: "00u00000000000001674", Emails: []string{"firstname.lastname01674@example.com"}, Active: true,
		Roles: storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"},
		Attributes: map[string]any{"displayName": "Firstname Lastname01674", "locale": "en-US",
			"name":   map[string]any{"familyName": "Lastname01674", "givenName": "Firstname"},
			"emails": []any{map[string]any{"primary": true, "type": "work", "value": "firstname.lastname01674@example.com"}}},
		Created: time.Unix(1700000000, 0), Modified: time.Unix(1700000000, 0), Version: 3}
	groups := []storage.GroupRef{{ID: "g1", DisplayName: "Engineering"}, {ID: "g2", DisplayName: "Everyone"}}
	const base = "https://scimjit.example.com/scim/v2/bench"
	buf := make([]byte, 0, 4096)
	b.Run("document", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := appendJSON(buf[:0], renderUser(base, u, groups)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := appendUser(buf[:0], base, &u, groups); err != nil {
				b.Fatal(err)
			}
		}
	})
}
