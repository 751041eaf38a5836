package scimhandlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redisstore"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestErrorResponses: every failure is an RFC 7644 §3.12 body with the
// right status and scimType (R17).
func TestErrorResponses(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("errs", nil)
	id := c.createUser(t, "err@acme.com")

	c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":`).expectError(t, 400, "invalidSyntax")
	c.do("POST", "/Users", `[1,2]`).expectError(t, 400, "invalidSyntax")
	r := c.do("POST", "/Users", `{"userName":"x@acme.com"}`).expectError(t, 400, "invalidSyntax")
	if !strings.Contains(str(r.body, "detail"), "schemas") {
		t.Errorf("missing-schemas detail %q", str(r.body, "detail"))
	}
	c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"x@acme.com"}`).expectError(t, 400, "invalidSyntax")
	c.do("POST", "/Users", `{`+userSchemaJSON+`}`).expectError(t, 400, "invalidValue")                                          // userName required
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"y@acme.com","active":"maybe"}`).expectError(t, 400, "invalidValue") // wrong type
	c.do("GET", "/Users?filter="+q(`userName eq`), "").expectError(t, 400, "invalidFilter")
	c.do("GET", "/Users?filter="+q(`bogus eq "x"`), "").expectError(t, 400, "invalidFilter")
	c.do("GET", "/Users?filter="+q(`active gt true`), "").expectError(t, 400, "invalidFilter")
	c.do("GET", "/Users?count=abc", "").expectError(t, 400, "invalidValue")
	c.do("GET", "/Users?sortOrder=sideways", "").expectError(t, 400, "invalidValue")
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"nosuch","value":"x"}]}`).expectError(t, 400, "invalidPath")
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"move","path":"userName","value":"x"}]}`).expectError(t, 400, "invalidValue")
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"remove"}]}`).expectError(t, 400, "noTarget")
	c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}`).expectError(t, 400, "invalidValue")
	c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"userName","value":"x"}]}`).expectError(t, 400, "invalidValue")
	c.do("PATCH", "/Users/"+id, `{not json`).expectError(t, 400, "invalidSyntax")
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"remove","path":"userName"}]}`).expectError(t, 400, "invalidValue")
	c.do("GET", "/Users/does-not-exist", "").expectError(t, 404, "")
	c.do("GET", "/Users/", "").expect(t, 200) // trailing slash = the collection
	c.do("PUT", "/Users/does-not-exist", `{`+userSchemaJSON+`,"userName":"z@acme.com"}`).expectError(t, 404, "")
	c.do("PATCH", "/Users/does-not-exist", patchPrefix+`[{"op":"replace","path":"displayName","value":"x"}]}`).expectError(t, 404, "")
	c.do("DELETE", "/Users/does-not-exist", "").expectError(t, 404, "")
	c.do("GET", "/Groups/does-not-exist", "").expectError(t, 404, "")
	c.do("GET", "/Nope", "").expectError(t, 404, "")
	c.do("PUT", "/Users", `{}`).expectError(t, 405, "")
	c.do("GET", "/Me", "").expectError(t, 501, "")
	c.do("POST", "/Users/.search", `{"schemas":["wrong"]}`).expectError(t, 400, "invalidValue")
	c.do("POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"count":"10"}`).expectError(t, 400, "invalidSyntax")

	// externalId is not unique (RFC 7643 §3.1: the client keeps it so):
	// a second user with it is created, and a filter finds both.
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"ext1@acme.com","externalId":"E1"}`).expect(t, 201)
	c.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"ext2@acme.com","externalId":"E1"}`).expect(t, 201)
	r = c.do("GET", "/Users?filter="+q(`externalId eq "E1"`), "").expect(t, 200)
	eq(t, "users with externalId E1", num(r.body, "totalResults"), 2)
	// Renaming onto a taken userName → 409.
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"userName","value":"EXT1@acme.com"}]}`).expectError(t, 409, "uniqueness")
}

// TestETags: meta.version / ETag on every write and If-Match → 412 (R15).
func TestETags(t *testing.T) {
	e := newTestEnv(t)
	c := e.workspace("etag", nil)
	id := c.createUser(t, "etag@acme.com")
	r := c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"displayName","value":"A"}]}`, "If-Match", `W/"1"`).expect(t, 200)
	eq(t, "ETag", r.header.Get("ETag"), `W/"2"`)
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"displayName","value":"B"}]}`, "If-Match", `W/"1"`).expectError(t, 412, "")
	c.do("PUT", "/Users/"+id, `{`+userSchemaJSON+`,"userName":"etag@acme.com"}`, "If-Match", `W/"1"`).expectError(t, 412, "")
	c.do("DELETE", "/Users/"+id, "", "If-Match", `W/"1"`).expectError(t, 412, "")
	c.do("PUT", "/Users/"+id, `{`+userSchemaJSON+`,"userName":"etag@acme.com"}`, "If-Match", `"2"`).expect(t, 200)
	c.do("PATCH", "/Users/"+id, patchPrefix+`[{"op":"replace","path":"displayName","value":"C"}]}`, "If-Match", `*`).expect(t, 200)
	r = c.do("GET", "/Users/"+id, "").expect(t, 200)
	eq(t, "version after 3 writes", str(r.body, "meta.version"), `W/"4"`)
	eq(t, "ETag header", r.header.Get("ETag"), `W/"4"`)

	r = c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G"}`).expect(t, 201)
	gid := str(r.body, "id")
	c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"add","path":"members","value":[{"value":"`+id+`"}]}]}`, "If-Match", `W/"1"`).expect(t, 200)
	c.do("PATCH", "/Groups/"+gid, patchPrefix+`[{"op":"remove","path":"members"}]}`, "If-Match", `W/"1"`).expectError(t, 412, "")
	c.do("PUT", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G"}`, "If-Match", `W/"1"`).expectError(t, 412, "")
	c.do("DELETE", "/Groups/"+gid, "", "If-Match", `W/"1"`).expectError(t, 412, "")
	c.do("DELETE", "/Groups/"+gid, "", "If-Match", `W/"2"`).expect(t, 204)
	c.do("DELETE", "/Users/"+id, "", "If-Match", `W/"4"`).expect(t, 204)
}

// TestAuthentication: missing, malformed and wrong tokens, unknown and
// invalid workspaces all get the same 401 (R17).
func TestAuthentication(t *testing.T) {
	e := newTestEnv(t)
	a := e.workspace("ws-a", nil)
	b := e.workspace("ws-b", nil)
	var bodies []string
	check := func(name, url, token string, hdr ...string) {
		t.Helper()
		r := e.send("GET", url, token, "", hdr...)
		r.expectError(t, 401, "")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", name, r.header.Get("WWW-Authenticate"))
		}
		bodies = append(bodies, r.raw)
	}
	check("no token", a.base()+"/Users", "")
	check("wrong token", a.base()+"/Users", "nope")
	check("basic auth", a.base()+"/Users", "", "Authorization", "Basic "+a.token)
	check("token of B on A", a.base()+"/Users", b.token)
	check("unknown workspace", e.srv.URL+"/scim/v2/ghost/Users", a.token)
	check("invalid workspace id", e.srv.URL+"/scim/v2/Bad_WS/Users", a.token)
	check("no token on SPC", a.base()+"/ServiceProviderConfig", "")
	// Encoded separators cannot smuggle another workspace's path (cf.
	// CVE-2026-32130 in another SCIM server).
	check("encoded slash", e.srv.URL+"/scim/v2/ws-b%2F..%2Fws-a/Users", a.token)
	check("encoded workspace", e.srv.URL+"/scim/v2/ws%2Da/Users", a.token)
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("401 bodies differ: %s vs %s", b, bodies[0])
		}
	}
	// The right token works; a second live token (rotation) works too.
	a.do("GET", "/Users", "").expect(t, 200)
	// Lower-case scheme is accepted (RFC 7235 §2.1: case-insensitive).
	e.send("GET", a.base()+"/Users", "", "", "Authorization", "bearer "+a.token).expect(t, 200)
}

// TestTenantIsolation: for every endpoint, workspace B never sees or
// changes workspace A's data, and A's ids look unknown in B (R14).
func TestTenantIsolation(t *testing.T) {
	e := newTestEnv(t)
	a := e.workspace("ws-a", nil)
	b := e.workspace("ws-b", nil)
	uid := a.createUser(t, "alice@acme.com")
	r := a.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Shared Name","members":[{"value":"`+uid+`"}]}`).expect(t, 201)
	gid := str(r.body, "id")

	// A's ids through B: 404, like an unknown id.
	for _, path := range []string{"/Users/" + uid, "/Groups/" + gid} {
		unknown := b.do("GET", path[:strings.LastIndex(path, "/")]+"/00000000-0000-0000-0000-000000000000", "")
		r := b.do("GET", path, "").expectError(t, 404, "")
		if r.raw != unknown.raw {
			t.Errorf("%s: B's 404 differs from an unknown id's: %s vs %s", path, r.raw, unknown.raw)
		}
		b.do("PUT", path, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"mallory@evil.com","displayName":"X"}`).expectError(t, 404, "")
		b.do("PATCH", path, patchPrefix+`[{"op":"replace","path":"displayName","value":"pwned"}]}`).expectError(t, 404, "")
		b.do("DELETE", path, "").expectError(t, 404, "")
	}
	// Group membership in B cannot reference A's user.
	b.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"B1","members":[{"value":"`+uid+`"}]}`).expectError(t, 400, "invalidValue")

	// Lists, filters, searches and root queries in B see nothing of A.
	for _, path := range []string{
		"/Users", "/Groups", "/",
		"/Users?filter=" + q(`userName eq "alice@acme.com"`),
		"/Users?filter=" + q(`id eq "`+uid+`"`),
		"/Users?filter=" + q(`userName co "alice"`),
		"/Groups?filter=" + q(`displayName eq "Shared Name"`),
		"/Groups?filter=" + q(`members[value eq "`+uid+`"]`),
	} {
		r := b.do("GET", path, "").expect(t, 200)
		eq(t, "B sees "+path, num(r.body, "totalResults"), 0)
	}
	for _, path := range []string{"/Users/.search", "/Groups/.search", "/.search"} {
		r := b.do("POST", path, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"id pr"}`).expect(t, 200)
		eq(t, "B search "+path, num(r.body, "totalResults"), 0)
	}
	// Same userName and displayName are free in B.
	r = b.do("POST", "/Users", `{`+userSchemaJSON+`,"userName":"alice@acme.com"}`).expect(t, 201)
	if str(r.body, "id") == uid {
		t.Error("B got A's user id")
	}
	b.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Shared Name"}`).expect(t, 201)
	// Discovery endpoints carry B's own base URL.
	r = b.do("GET", "/ServiceProviderConfig", "").expect(t, 200)
	eq(t, "SPC location", str(r.body, "meta.location"), b.base()+"/ServiceProviderConfig")

	// A is untouched.
	r = a.do("GET", "/Users/"+uid, "").expect(t, 200)
	eq(t, "A's user", str(r.body, "userName"), "alice@acme.com")
	eq(t, "A's user groups", str(r.body, "groups.0.value"), gid)
	r = a.do("GET", "/Groups/"+gid, "").expect(t, 200)
	eq(t, "A's group name", str(r.body, "displayName"), "Shared Name")
	eq(t, "A's group members", memberSet(r.body), setOf(uid))
	r = a.do("GET", "/Users", "").expect(t, 200)
	eq(t, "A's users", num(r.body, "totalResults"), 1)
}

// TestRedisDown: a store that cannot reach Redis gives 503, never the
// internal error text.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	st, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := newTestEnvWithStore(t, st)
	c := e.workspace("down", nil)
	c.createUser(t, "ok@acme.com")
	srv.Stop()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/Users", ""},
		{"POST", "/Users", `{` + userSchemaJSON + `,"userName":"x@acme.com"}`},
		{"GET", "/Groups?filter=" + q(`displayName eq "x"`), ""},
	} {
		r := c.do(tc.method, tc.path, tc.body).expectError(t, 503, "")
		if strings.Contains(r.raw, srv.Addr) || strings.Contains(strings.ToLower(r.raw), "redis") {
			t.Errorf("%s %s leaks internals: %s", tc.method, tc.path, r.raw)
		}
	}
}

// TestErrorMapping pins the storage-error → SCIM-error table.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err      error
		status   int
		scimType string
	}{
		{storage.ErrNotFound, 404, ""},
		{fmt.Errorf("wrapped: %w", storage.ErrNotFound), 404, ""},
		{&storage.ConflictError{Field: "userName"}, 409, "uniqueness"},
		{&storage.ConflictError{Field: "account"}, 409, "uniqueness"},
		{storage.ErrAlreadyExists, 409, "uniqueness"},
		{storage.ErrPreconditionFailed, 412, ""},
		{storage.ErrInvalidReference, 400, "invalidValue"},
		{storage.ErrConflictRetries, 503, ""},
		{fmt.Errorf("dial tcp 10.0.0.1:6379: %w", storage.ErrUnavailable), 503, ""},
		{context.DeadlineExceeded, 503, ""},
		{errors.New("redis: something internal at 10.0.0.1"), 500, ""},
		{badRequest(typeInvalidPath, "x"), 400, "invalidPath"},
	} {
		got := mapStoreError(tc.err, "user")
		if got.Status != tc.status || got.ScimType != tc.scimType {
			t.Errorf("%v → %d %q, want %d %q", tc.err, got.Status, got.ScimType, tc.status, tc.scimType)
		}
		if tc.status >= 500 && strings.Contains(got.Detail, "10.0.0.1") {
			t.Errorf("%v leaks into detail %q", tc.err, got.Detail)
		}
	}
	_ = http.StatusOK
}
