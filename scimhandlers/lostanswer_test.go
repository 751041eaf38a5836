package scimhandlers

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

// lossyStore passes every call on to the store, but can lose the answer of
// the next call of one method: the call runs, and the handler gets
// ErrUnavailable, as when the connection to Redis breaks after the request
// was written or the reply times out.
type lossyStore struct {
	storage.Store
	lose atomic.Value // the method name, or ""
}

func (l *lossyStore) lost(method string, err error) error {
	if err == nil && l.lose.CompareAndSwap(method, "") {
		return fmt.Errorf("%w: reply lost (test)", storage.ErrUnavailable)
	}
	return err
}

func (l *lossyStore) CreateUser(ctx context.Context, ws string, u storage.User, events ...storage.Event) (storage.User, error) {
	r, err := l.Store.CreateUser(ctx, ws, u, events...)
	return r, l.lost("CreateUser", err)
}

func (l *lossyStore) UpdateUser(ctx context.Context, ws, id string, v int64, fn func(*storage.User) error) (storage.User, error) {
	r, err := l.Store.UpdateUser(ctx, ws, id, v, fn)
	return r, l.lost("UpdateUser", err)
}

func (l *lossyStore) CreateGroup(ctx context.Context, ws string, g storage.Group, events ...storage.Event) (storage.Group, error) {
	r, err := l.Store.CreateGroup(ctx, ws, g, events...)
	return r, l.lost("CreateGroup", err)
}

func (l *lossyStore) ChangeGroup(ctx context.Context, ws, id string, ch storage.GroupChange) (storage.Group, error) {
	r, err := l.Store.ChangeGroup(ctx, ws, id, ch)
	return r, l.lost("ChangeGroup", err)
}

// TestWriteAnswerLost: a SCIM write whose store answer was lost (the write
// happened) is answered 503 with Retry-After; the client's retry, the same
// request sent again, then gets what the first would have had (201 or
// 200) instead of a 409 for its own user or a 412 for the version it
// bumped itself, and nothing is applied or recorded twice. Before, the
// retried create got 409 "userName is already in use" and the retried
// If-Match PATCH 412.
func TestWriteAnswerLost(t *testing.T) {
	ls := &lossyStore{Store: newTestEnv(t).store}
	ls.lose.Store("")
	e := newTestEnvWithStore(t, ls)
	c := e.workspace("lost", nil)
	again := func(what, method, path, body string, want int, hdr ...string) resp {
		t.Helper()
		r := c.do(method, path, body, hdr...).expectError(t, 503, "")
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("%s: 503 without Retry-After", what)
		}
		return c.do(method, path, body, hdr...).expect(t, want)
	}

	user := `{` + userSchemaJSON + `,"userName":"lost@acme.com","externalId":"x-1","emails":[{"value":"lost@acme.com","primary":true}]}`
	ls.lose.Store("CreateUser")
	r := again("create user", "POST", "/Users", user, 201)
	id := str(r.body, "id")
	eq(t, "users", num(c.do("GET", "/Users", "").expect(t, 200).body, "totalResults"), 1)
	// A different request for the same userName still conflicts, and
	// says who holds it.
	other := c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"LOST@acme.com","externalId":"x-2"}`)
	other.expectError(t, 409, "uniqueness")
	if d := str(other.body, "detail"); d == "" || !strings.Contains(d, id) {
		t.Fatalf("409 detail %q does not name user %s", d, id)
	}

	patch := patchPrefix + `[{"op":"replace","path":"title","value":"Boss"}]}`
	ls.lose.Store("UpdateUser")
	r = again("patch user", "PATCH", "/Users/"+id, patch, 200, "If-Match", `W/"1"`)
	eq(t, "version after one PATCH", str(r.body, "meta.version"), `W/"2"`)
	eq(t, "title", str(r.body, "title"), "Boss")

	ls.lose.Store("UpdateUser")
	put := `{` + userSchemaJSON + `,"userName":"lost@acme.com","title":"Chief"}`
	r = again("replace user", "PUT", "/Users/"+id, put, 200, "If-Match", `W/"2"`)
	eq(t, "version after one PUT", str(r.body, "meta.version"), `W/"3"`)

	group := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Lost ones"}`
	ls.lose.Store("CreateGroup")
	r = again("create group", "POST", "/Groups", group, 201)
	gid := str(r.body, "id")
	eq(t, "groups", num(c.do("GET", "/Groups", "").expect(t, 200).body, "totalResults"), 1)

	add := patchPrefix + `[{"op":"add","path":"members","value":[{"value":"` + id + `"}]}]}`
	ls.lose.Store("ChangeGroup")
	again("add member", "PATCH", "/Groups/"+gid, add, 200, "If-Match", `W/"1"`)
	r = c.do("GET", "/Groups/"+gid, "").expect(t, 200)
	eq(t, "group version after one change", str(r.body, "meta.version"), `W/"2"`)
	eq(t, "members", len(list(r.body, "members")), 1)

	evs, err := e.store.ListEvents(context.Background(), c.ws, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, ev := range evs {
		count[ev.Type]++
	}
	eq(t, "scim.user.created events", count["scim.user.created"], 1)
	eq(t, "scim.group.created events", count["scim.group.created"], 1)
	eq(t, "scim.group.member_added events", count["scim.group.member_added"], 1)
}
