package scimhandlers

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// countingStore counts the group look-ups the handler makes; everything
// else goes to the real store.
type countingStore struct {
	storage.Store
	userGroups atomic.Int64 // calls of UserGroups
	ids        atomic.Int64 // user ids asked for in total
	findGroups atomic.Int64 // calls of FindGroups
	withGroups atomic.Int64 // calls of FindUsers with groups
}

func (s *countingStore) FindUsers(ctx context.Context, ws string, by storage.UserIndex, v string, opts storage.FindOptions) (storage.UsersFound, error) {
	if opts.Groups {
		s.withGroups.Add(1)
	}
	return s.Store.FindUsers(ctx, ws, by, v, opts)
}

func (s *countingStore) UserGroups(ctx context.Context, ws string, ids []string) (map[string][]storage.GroupRef, error) {
	s.userGroups.Add(1)
	s.ids.Add(int64(len(ids)))
	return s.Store.UserGroups(ctx, ws, ids)
}

func (s *countingStore) FindGroups(ctx context.Context, ws string, by storage.GroupIndex, v string) ([]storage.Group, error) {
	s.findGroups.Add(1)
	return s.Store.FindGroups(ctx, ws, by, v)
}

func (s *countingStore) reset() {
	s.userGroups.Store(0)
	s.ids.Store(0)
	s.findGroups.Store(0)
	s.withGroups.Store(0)
}

// TestUserGroupsAttribute checks that a user's groups are rendered from
// group references (renamed groups show their new name), that a list page
// makes one group look-up for all its users, and that no look-up happens
// when the projection drops `groups`.
func TestUserGroupsAttribute(t *testing.T) {
	base := newTestEnv(t)
	cs := &countingStore{Store: base.store}
	env := newTestEnvWithStore(t, cs)
	c := env.workspace("ug", nil)
	var ids []string
	for i := 0; i < 5; i++ {
		r := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ug`+itoa(i)+`@example.com"}`).expect(t, 201)
		ids = append(ids, str(r.body, "id"))
	}
	g1 := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Alpha","members":[{"value":"`+ids[0]+`"},{"value":"`+ids[1]+`"}]}`).expect(t, 201)
	g2 := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Beta","members":[{"value":"`+ids[0]+`"}]}`).expect(t, 201)
	g1id, g2id := str(g1.body, "id"), str(g2.body, "id")
	c.do("PATCH", "/Groups/"+g2id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Beta renamed"}]}`).expect(t, 200)

	displays := func(v any) map[string]string {
		out := map[string]string{}
		for _, g := range list(v, "groups") {
			out[str(g, "value")] = str(g, "display")
		}
		return out
	}

	cs.reset()
	r := c.do("GET", "/Users/"+ids[0], "").expect(t, 200)
	deq(t, "groups of user 0", displays(r.body), map[string]string{g1id: "Alpha", g2id: "Beta renamed"})
	eq(t, "UserGroups calls for one user", cs.userGroups.Load(), int64(0))
	eq(t, "user and groups in one call", cs.withGroups.Load(), int64(1))
	eq(t, "FindGroups calls for one user", cs.findGroups.Load(), int64(0))

	cs.reset()
	r = c.do("GET", "/Users/"+ids[0]+"?excludedAttributes=groups", "").expect(t, 200)
	if _, ok := r.body["groups"]; ok {
		t.Fatalf("groups returned although excluded: %v", r.body["groups"])
	}
	eq(t, "look-ups with groups excluded", cs.userGroups.Load()+cs.withGroups.Load(), int64(0))

	cs.reset()
	r = c.do("GET", "/Users?startIndex=1&count=5", "").expect(t, 200)
	eq(t, "look-ups for a page", cs.userGroups.Load(), int64(1))
	eq(t, "ids asked for a page", cs.ids.Load(), int64(5))
	byID := map[string]map[string]string{}
	for _, u := range list(r.body, "Resources") {
		byID[str(u, "id")] = displays(u)
	}
	deq(t, "page: user 0", byID[ids[0]], map[string]string{g1id: "Alpha", g2id: "Beta renamed"})
	deq(t, "page: user 1", byID[ids[1]], map[string]string{g1id: "Alpha"})
	deq(t, "page: user 4", byID[ids[4]], map[string]string{})

	cs.reset()
	r = c.do("GET", "/Users?excludedAttributes=groups", "").expect(t, 200)
	eq(t, "look-ups for a page without groups", cs.userGroups.Load(), int64(0))
	eq(t, "page size", len(list(r.body, "Resources")), 5)

	cs.reset()
	r = c.do("GET", `/Users?filter=`+q(`groups.value eq "`+g1id+`"`), "").expect(t, 200)
	eq(t, "filter on groups: results", num(r.body, "totalResults"), 2)
	eq(t, "filter on groups: one look-up for the scan batch", cs.userGroups.Load(), int64(1))

	// The IdP lookup: user and groups in one call; without groups, none.
	cs.reset()
	r = c.do("GET", `/Users?filter=`+q(`userName eq "UG0@example.com" and active eq true`), "").expect(t, 200)
	eq(t, "filter userName: results", num(r.body, "totalResults"), 1)
	deq(t, "filter userName: groups", displays(list(r.body, "Resources")[0]), map[string]string{g1id: "Alpha", g2id: "Beta renamed"})
	eq(t, "filter userName: user and groups in one call", cs.withGroups.Load(), int64(1))
	eq(t, "filter userName: no separate group look-up", cs.userGroups.Load(), int64(0))
	cs.reset()
	r = c.do("GET", `/Users?excludedAttributes=groups&filter=`+q(`id eq "`+ids[1]+`"`), "").expect(t, 200)
	eq(t, "filter id: results", num(r.body, "totalResults"), 1)
	eq(t, "filter id without groups: no group look-up", cs.userGroups.Load()+cs.withGroups.Load(), int64(0))
	if _, ok := list(r.body, "Resources")[0].(map[string]any)["groups"]; ok {
		t.Fatal("groups returned although excluded")
	}
	r = c.do("GET", "/Users/no-such-id", "").expectError(t, 404, "")
}

func deq(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestGroupPatchWithoutMembers: a PATCH whose response excludes members
// answers without them and still applies the change.
func TestGroupPatchWithoutMembers(t *testing.T) {
	env := newTestEnv(t)
	c := env.workspace("gpatch", nil)
	u1 := str(c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"p1@example.com"}`).expect(t, 201).body, "id")
	u2 := str(c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"p2@example.com"}`).expect(t, 201).body, "id")
	g := c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"P","members":[{"value":"`+u1+`"}]}`).expect(t, 201)
	gid := str(g.body, "id")
	r := c.do("PATCH", "/Groups/"+gid+"?excludedAttributes=members",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+u2+`"}]}]}`).expect(t, 200)
	if _, ok := r.body["members"]; ok {
		t.Fatalf("members in the response although excluded: %s", r.raw)
	}
	eq(t, "displayName", str(r.body, "displayName"), "P")
	eq(t, "ETag", r.header.Get("ETag"), `W/"2"`)
	full := c.do("GET", "/Groups/"+gid, "").expect(t, 200)
	got := map[string]string{}
	for _, m := range list(full.body, "members") {
		got[str(m, "value")] = "member"
	}
	deq(t, "members after the PATCH", got, map[string]string{u1: "member", u2: "member"})
	r = c.do("PATCH", "/Groups/"+gid,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"`+u1+`\"]"}]}`).expect(t, 200)
	eq(t, "members in a full PATCH response", len(list(r.body, "members")), 1)
}
