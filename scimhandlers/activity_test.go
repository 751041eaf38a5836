package scimhandlers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestProvisioningSummaryCountsOutcomesAndKeepsErrors: the workspace's
// provisioning summary counts each change applied and each error
// answered, and keeps the last errors with the method, the route
// template (never the id or anything else of the path), and the status,
// scimType and detail the client got. A request body never reaches it.
func TestProvisioningSummaryCountsOutcomesAndKeepsErrors(t *testing.T) {
	env := newTestEnv(t)
	c := env.workspace("summary", nil)
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"sum@example.com","password":"s3cret-body"}`
	c.do("POST", "/Users", body).expect(t, 201)
	c.do("POST", "/Users", strings.Replace(body, `"password"`, `"displayName":"Other","password"`, 1)).expectError(t, 409, "uniqueness")
	c.do("GET", "/Users/no-such-user-id", "").expectError(t, 404, "")
	c.do("GET", "/Users?filter=bogus%20zz", "").expectError(t, 400, "invalidFilter")
	env.send("GET", env.srv.URL+"/scim/v2/summary/Users", "tok-wrong", "").expectError(t, 401, "")
	env.send("GET", env.srv.URL+"/scim/v2/nosuchws/Users", "tok-wrong", "").expectError(t, 401, "")

	got, err := env.store.SCIMActivity(context.Background(), "summary", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"scim.user.created": 1, "error.409": 1, "error.404": 1, "error.400": 1, "error.401": 1}
	if fmt.Sprint(got.Counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", got.Counts, want)
	}
	type rec struct {
		method, route string
		status        int
		scimType      string
	}
	wantErrs := []rec{{"GET", "/Users", 401, ""}, {"GET", "/Users", 400, "invalidFilter"}, {"GET", "/Users/:id", 404, ""},
		{"POST", "/Users", 409, "uniqueness"}}
	if len(got.Errors) != len(wantErrs) {
		t.Fatalf("errors %+v", got.Errors)
	}
	for i, e := range got.Errors {
		if r := (rec{e.Method, e.Route, e.Status, e.SCIMType}); r != wantErrs[i] || e.Detail == "" || e.Time.IsZero() {
			t.Errorf("error %d: %+v, want %+v with its detail", i, e, wantErrs[i])
		}
		if containsAny(e.Detail, "s3cret-body", "no-such-user-id", "tok-wrong") {
			t.Errorf("error %d keeps part of the request: %q", i, e.Detail)
		}
	}
	if other, err := env.store.SCIMActivity(context.Background(), "nosuchws", time.Now()); err != nil || len(other.Counts) != 0 {
		t.Errorf("an unknown workspace's summary: %+v, %v", other, err)
	}
}

func TestRouteTemplate(t *testing.T) {
	for path, want := range map[string]string{
		"/scim/v2/ws":                 "/",
		"/scim/v2/ws/Users":           "/Users",
		"/scim/v2/ws/Users/":          "/Users",
		"/scim/v2/ws/Users/abc":       "/Users/:id",
		"/scim/v2/ws/Groups/.search":  "/Groups/.search",
		"/scim/v2/ws/Schemas/urn:x:y": "/Schemas/:id",
		"/scim/v2/ws/Me/a/b":          "/Me/…",
		"/scim/v2/ws/secret-stuff":    "(other)",
	} {
		if got := routeTemplate(path, "ws"); got != want {
			t.Errorf("routeTemplate(%q) = %q, want %q", path, got, want)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
