package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// scimErrorBody is the RFC 7644 §3.12 error body.
type scimErrorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType"`
	Detail   string   `json:"detail"`
}

// wantSCIMError checks that a response is the SCIM error body of status,
// sent as application/scim+json, and returns it.
func wantSCIMError(t *testing.T, resp *http.Response, body []byte, status int) scimErrorBody {
	t.Helper()
	wantStatus(t, resp, body, status)
	if ct := resp.Header.Get("Content-Type"); ct != "application/scim+json" {
		t.Errorf("%s %s: Content-Type %q, want application/scim+json", resp.Request.Method, resp.Request.URL, ct)
	}
	var e scimErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s %s: not a SCIM error body: %s", resp.Request.Method, resp.Request.URL, body)
	}
	if len(e.Schemas) != 1 || e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" ||
		e.Status != strconv.Itoa(status) {
		t.Errorf("%s %s: SCIM error body %s", resp.Request.Method, resp.Request.URL, body)
	}
	return e
}

// TestSCIMUnknownPathIsSCIM404: a path under /scim/v2/{ws} that is no SCIM
// endpoint gets 404 with the SCIM error body, with or without a token.
func TestSCIMUnknownPathIsSCIM404(t *testing.T) {
	env := servertest.New(t, nil)
	tok := env.CreateWorkspace(t, "acme", nil)
	for _, path := range []string{
		"/scim/v2/acme/Nope",
		"/scim/v2/acme/Users/some-id/extra",
		"/scim/v2/acme/ResourceTypes/User/extra",
		"/scim/v2/acme/users", // endpoint names are case-sensitive
		"/scim/v2",
		"/scim/other",
	} {
		for _, bearer := range []string{tok, ""} {
			resp, body := env.Do(t, http.MethodGet, path, bearer, nil)
			wantSCIMError(t, resp, body, http.StatusNotFound)
		}
	}
	// An unknown id on a real endpoint is the endpoint's own 404.
	resp, body := env.Do(t, http.MethodGet, "/scim/v2/acme/ResourceTypes/Nope", tok, nil)
	if e := wantSCIMError(t, resp, body, http.StatusNotFound); e.Detail != "resource type not found" {
		t.Errorf("detail %q", e.Detail)
	}
}

// TestSCIMWrongMethodIs405WithAllow: a method an endpoint does not have
// gets 405, the endpoint's methods in Allow, and the SCIM error body.
func TestSCIMWrongMethodIs405WithAllow(t *testing.T) {
	env := servertest.New(t, nil)
	tok := env.CreateWorkspace(t, "acme", nil)
	for _, tc := range []struct {
		method, path string
		allow        []string
	}{
		{http.MethodPut, "/scim/v2/acme/Users", []string{"GET", "POST"}},
		{http.MethodDelete, "/scim/v2/acme/Groups/", []string{"GET", "POST"}},
		{http.MethodPost, "/scim/v2/acme/Users/some-id", []string{"GET", "PUT", "PATCH", "DELETE"}},
		{http.MethodGet, "/scim/v2/acme/.search", []string{"POST"}},
		{http.MethodHead, "/scim/v2/acme/Users", []string{"GET", "POST"}},
		{http.MethodPost, "/scim/v2/acme", []string{"GET"}},
		{http.MethodDelete, "/scim/v2/acme/ServiceProviderConfig", []string{"GET"}},
		{http.MethodPost, "/scim/v2/acme/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", []string{"GET"}},
	} {
		resp, body := env.Do(t, tc.method, tc.path, tok, nil)
		if tc.method == http.MethodHead { // no body
			wantStatus(t, resp, body, http.StatusMethodNotAllowed)
		} else {
			wantSCIMError(t, resp, body, http.StatusMethodNotAllowed)
		}
		var got []string
		for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
			if m = strings.TrimSpace(m); m != "OPTIONS" { // Echo answers OPTIONS on every route
				got = append(got, m)
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.allow))
		if !slices.Equal(got, want) {
			t.Errorf("%s %s: Allow %q, want %v", tc.method, tc.path, resp.Header.Get("Allow"), want)
		}
	}
}

// TestSCIMOversizedBodyIsSCIM413: a body over the SCIM limit gets 413 with
// the SCIM error body, declared in Content-Length or not.
func TestSCIMOversizedBodyIsSCIM413(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.SCIMBodyLimit = 1 << 10 })
	tok := env.CreateWorkspace(t, "acme", nil)
	big := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + strings.Repeat("x", 2<<10) + `@acme.com"}`
	resp, body := env.Do(t, http.MethodPost, "/scim/v2/acme/Users", tok, big)
	wantSCIMError(t, resp, body, http.StatusRequestEntityTooLarge)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, env.URL+"/scim/v2/acme/Users", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked: only the reader knows
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw := make([]byte, 4096)
	n, _ := resp.Body.Read(raw)
	wantSCIMError(t, resp, raw[:n], http.StatusRequestEntityTooLarge)
}

// panicStore panics when a user is read.
type panicStore struct{ storage.Store }

func (panicStore) GetUser(context.Context, string, string) (storage.User, error) {
	panic("secret internal detail")
}

func (panicStore) FindUsers(context.Context, string, storage.UserIndex, string, storage.FindOptions) (storage.UsersFound, error) {
	panic("secret internal detail")
}

// TestSCIMPanicIsSCIM500: a panic in a SCIM handler gets 500 with the SCIM
// error body, without the panic's text; the panic is logged.
func TestSCIMPanicIsSCIM500(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.Store = panicStore{c.Store} })
	tok := env.CreateWorkspace(t, "acme", nil)
	resp, body := env.Do(t, http.MethodGet, "/scim/v2/acme/Users/some-id", tok, nil)
	if e := wantSCIMError(t, resp, body, http.StatusInternalServerError); e.Detail != "internal error" {
		t.Errorf("detail %q", e.Detail)
	}
	if strings.Contains(string(body), "secret internal detail") {
		t.Errorf("500 body leaks the panic: %s", body)
	}
	if !env.Logs.Contains("secret internal detail") {
		t.Error("the panic was not logged")
	}
	// The server keeps serving.
	resp, body = env.Do(t, http.MethodGet, "/scim/v2/acme/ServiceProviderConfig", tok, nil)
	wantStatus(t, resp, body, http.StatusOK)
}

// TestSCIMInvalidWorkspaceAnswersLikeWrongToken: an invalid workspace id,
// escaped or not, gets exactly the answer of a wrong token and of an
// unknown workspace (401, WWW-Authenticate, same body).
func TestSCIMInvalidWorkspaceAnswersLikeWrongToken(t *testing.T) {
	env := servertest.New(t, nil)
	tok := env.CreateWorkspace(t, "acme", nil)
	env.CreateWorkspace(t, "other", nil)
	type answer struct{ status, wwwAuth, body string }
	get := func(path, bearer string) answer {
		resp, body := env.Do(t, http.MethodGet, path, bearer, nil)
		wantSCIMError(t, resp, body, http.StatusUnauthorized)
		return answer{resp.Status, resp.Header.Get("WWW-Authenticate"), string(body)}
	}
	want := get("/scim/v2/acme/Users", "wrong-token")
	if !strings.HasPrefix(want.wwwAuth, "Bearer") {
		t.Errorf("WWW-Authenticate %q", want.wwwAuth)
	}
	for _, path := range []string{
		"/scim/v2/Bad_WS/Users",
		"/scim/v2/ghost/Users",
		"/scim/v2/acme%2F..%2Fother/Users",
		"/scim/v2/ac%6De/Users", // "acme" escaped is not the workspace acme
		"/scim/v2/Bad_WS",
		"/scim/v2/Bad_WS/Me",
	} {
		if got := get(path, tok); got != want {
			t.Errorf("%s: %+v, want %+v", path, got, want)
		}
	}
}

// TestSCIMEscapedIDs: a resource id is unescaped once, whether or not the
// escaped path differs from the decoded one.
func TestSCIMEscapedIDs(t *testing.T) {
	env := servertest.New(t, nil)
	tok := env.CreateWorkspace(t, "acme", nil)
	resp, body := env.Do(t, http.MethodPost, "/scim/v2/acme/Users", tok,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"esc@acme.com"}`)
	wantStatus(t, resp, body, http.StatusCreated)
	var u struct{ ID string }
	if err := json.Unmarshal(body, &u); err != nil || u.ID == "" {
		t.Fatalf("created user %s", body)
	}
	// The id's first character percent-encoded: Echo routes the escaped
	// path, and the handler gets the id unescaped.
	escaped := fmt.Sprintf("%%%02X", u.ID[0]) + u.ID[1:]
	resp, body = env.Do(t, http.MethodGet, "/scim/v2/acme/Users/"+escaped, tok, nil)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(string(body), `"id":"`+u.ID+`"`) {
		t.Errorf("GET by escaped id: %s", body)
	}
	// An escaped slash stays inside the id (no other endpoint is reached).
	for _, path := range []string{"/scim/v2/acme/Users/a%2Fb", "/scim/v2/acme/Users/a%252Fb", "/scim/v2/acme/Users/a%20b"} {
		resp, body = env.Do(t, http.MethodGet, path, tok, nil)
		if e := wantSCIMError(t, resp, body, http.StatusNotFound); e.Detail != "user not found" {
			t.Errorf("%s: detail %q, want the user's 404", path, e.Detail)
		}
	}
	// The schema URN, with its colons, is the :id of /Schemas/:id.
	resp, body = env.Do(t, http.MethodGet, "/scim/v2/acme/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", tok, nil)
	wantStatus(t, resp, body, http.StatusOK)
}
