package redisstore

import (
	"testing"

	"github.com/scimjit/scimjit/storage"
)

func benchUser() storage.User {
	return storage.User{ID: "b9a6355d-5313-4678-b7a0-91866357944e", AccountID: "f3e2e6d4-9cff-4014-824f-4965c2517127",
		UserName: "firstname.lastname01674@example.com", ExternalID: "00u00000000000001674",
		Emails: []string{"firstname.lastname01674@example.com"}, Active: true, Verified: true, Source: "scim",
		Roles: storage.Roles{Dev: "Operator", Test: "Operator", Prod: "Operator"},
		Attributes: map[string]any{"displayName": "Firstname Lastname01674", "locale": "en-US",
			"name":   map[string]any{"familyName": "Lastname01674", "givenName": "Firstname"},
			"emails": []any{map[string]any{"primary": true, "type": "work", "value": "firstname.lastname01674@example.com"}}},
		Version: 1}
}

// BenchmarkEncodeUser and BenchmarkDecodeUser measure the Go side of the
// compressed record format (JSON + deflate with the preset dictionary).
func BenchmarkEncodeUser(b *testing.B) {
	u := benchUser()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := encodeUser(u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeUser(b *testing.B) {
	rec, err := encodeUser(benchUser())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := decodeUser("ws", rec); err != nil {
			b.Fatal(err)
		}
	}
}
