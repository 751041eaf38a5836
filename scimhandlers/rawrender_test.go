package scimhandlers

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// decodedStore answers FindUsersRaw with fully decoded users, as the
// handlers saw them before the raw read existed.
type decodedStore struct {
	storage.Store
}

func (s decodedStore) FindUsersRaw(ctx context.Context, ws string, by storage.UserIndex, v string, withGroups bool) ([]storage.User, map[string][]storage.GroupRef, error) {
	if withGroups {
		return s.Store.FindUsersWithGroups(ctx, ws, by, v)
	}
	us, err := s.Store.FindUsers(ctx, ws, by, v)
	return us, map[string][]storage.GroupRef{}, err
}

// rawCounter counts FindUsersRaw calls.
type rawCounter struct {
	storage.Store
	n atomic.Int64
}

func (s *rawCounter) FindUsersRaw(ctx context.Context, ws string, by storage.UserIndex, v string, withGroups bool) ([]storage.User, map[string][]storage.GroupRef, error) {
	s.n.Add(1)
	return s.Store.FindUsersRaw(ctx, ws, by, v, withGroups)
}

// TestRawReadsRenderTheSameBytes checks that the GETs served from
// storage.Store.FindUsersRaw and rendered by appendUser (GET by id, and
// filters on typed attributes without projection or sorting) answer byte
// for byte what the same requests answer from fully decoded users, and
// through the general path of documents, for a user whose attributes
// hold what a raw copy could get wrong: numbers, characters json.Marshal
// escapes, non-ASCII text, empty objects and lists, extensions.
func TestRawReadsRenderTheSameBytes(t *testing.T) {
	st := &rawCounter{Store: newTestEnv(t).store}
	rawEnv := newTestEnvWithStore(t, st)
	decEnv := newTestEnvWithStore(t, decodedStore{st.Store})
	c := rawEnv.workspace("rawr", nil)
	d := &client{e: decEnv, ws: c.ws, token: c.token}

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

	for _, path := range []string{
		"/Users/" + id,
		"/Users/" + str(plain.body, "id"),
		"/Users?filter=" + q(`userName eq "zoe.raw@example.com"`),
		"/Users?filter=" + q(`userName eq "Zoe.Raw@example.com" and active eq true`) + "&startIndex=1&count=100",
		"/Users?filter=" + q(`externalId eq "00u-raw"`),
		"/Users?filter=" + q(`id eq "`+id+`" or userName eq "plain-raw@example.com"`),
		"/Users?filter=" + q(`userName eq "nobody@example.com"`),
	} {
		st.n.Store(0)
		got := c.do("GET", path, "").expect(t, 200)
		if st.n.Load() == 0 {
			t.Fatalf("GET %s did not read raw", path)
		}
		want := d.do("GET", path, "").expect(t, 200)
		gotRaw := strings.ReplaceAll(got.raw, rawEnv.srv.URL, "BASE")
		wantRaw := strings.ReplaceAll(want.raw, decEnv.srv.URL, "BASE")
		if gotRaw != wantRaw {
			t.Fatalf("GET %s from raw reads:\n%s\nfrom decoded users:\n%s", path, gotRaw, wantRaw)
		}
		if got.header.Get("ETag") != want.header.Get("ETag") {
			t.Fatalf("GET %s: ETag %q, decoded %q", path, got.header.Get("ETag"), want.header.Get("ETag"))
		}
	}

	// A single-result filter answers the same with sortBy, which takes the
	// general path: decoded users, documents built, sorted, projected.
	for _, filter := range []string{`userName eq "zoe.raw@example.com"`, `externalId eq "00u-raw" and active eq true`,
		`id eq "` + str(plain.body, "id") + `"`} {
		path := "/Users?filter=" + q(filter)
		st.n.Store(0)
		direct := c.do("GET", path, "").expect(t, 200)
		general := c.do("GET", path+"&sortBy=userName", "").expect(t, 200)
		if st.n.Load() != 1 {
			t.Fatalf("GET %s: %d raw reads, want 1 (only without sortBy)", path, st.n.Load())
		}
		if direct.raw != general.raw {
			t.Fatalf("GET %s rendered directly:\n%s\nthrough documents:\n%s", path, direct.raw, general.raw)
		}
	}

	// Reads that match, project or sort on other attributes decode them.
	for _, path := range []string{
		"/Users/" + id + "?attributes=name.givenName",
		"/Users?filter=" + q(`emails.value eq "zoe@home.example"`),
		"/Users?filter=" + q(`userName eq "zoe.raw@example.com" and name.givenName eq "Zoë"`),
		"/Users?filter=" + q(`userName eq "zoe.raw@example.com"`) + "&excludedAttributes=emails",
		"/Users?filter=" + q(`userName eq "zoe.raw@example.com"`) + "&sortBy=name.familyName",
	} {
		st.n.Store(0)
		got := c.do("GET", path, "").expect(t, 200)
		if st.n.Load() != 0 {
			t.Fatalf("GET %s read raw", path)
		}
		if path[len("/Users"):][0] == '?' && num(got.body, "totalResults") != 1 {
			t.Fatalf("GET %s: %s", path, got.raw)
		}
	}
}
