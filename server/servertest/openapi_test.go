package servertest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/scimjit/scimjit/server/servertest"
)

// workspace is a workspace body as the server sends it; tests change it.
func workspace() map[string]any {
	return map[string]any{
		"id":   "acme",
		"name": "Acme",
		"settings": map[string]any{
			"jit": map[string]any{"enabled": true, "existingAccount": "verify", "defaultRole": "Operator",
				"roleSync": "onCreate", "unknownRole": "reject"},
			"customRoles": []any{},
			"idp":         map[string]any{"metadataXML": "", "entityID": "", "allowIdPInitiated": false, "allowSHA1": false},
			"roles":       map[string]any{"appRoles": false, "groupRules": []any{}, "explicitWins": true},
			"login":       map[string]any{"emailDomains": []any{}},
		},
		"createdAt": "2026-11-28T15:37:51.512995Z",
		"updatedAt": "2026-11-28T15:37:51.512995Z",
		"version":   1,
	}
}

// exchange is one admin API request and the answer to it, made up by the
// test (no server).
type exchange struct {
	method, path, auth string
	reqBody            string
	status             int
	header             map[string]string
	body               any // marshalled as JSON unless a string
}

func (x exchange) check(t *testing.T) error {
	t.Helper()
	ct, err := servertest.LoadContract()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(x.method, x.path, strings.NewReader(x.reqBody))
	if x.reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if x.auth != "" {
		req.Header.Set("Authorization", x.auth)
	}
	h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req-1"}}
	for k, v := range x.header {
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
	}
	var body []byte
	switch b := x.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	default:
		body, _ = json.Marshal(b)
	}
	return ct.Check(req, []byte(x.reqBody), x.status, h, body)
}

func errBody(code string) map[string]string {
	return map[string]string{"error": code, "message": "something"}
}

const bearer = "Bearer adm_0123"

// TestContractCatchesResponsesThatDoNotMatch: made-up answers that break
// the document are reported, and the ones that keep it are not, so the
// check that runs on every admin API exchange of the test suite is live.
func TestContractCatchesResponsesThatDoNotMatch(t *testing.T) {
	noVersion := workspace()
	delete(noVersion, "version")
	extra := workspace()
	extra["secretHash"] = "abc"
	badEnum := workspace()
	badEnum["settings"].(map[string]any)["jit"].(map[string]any)["roleSync"] = "sometimes"
	unauthorized := map[string]string{"WWW-Authenticate": `Bearer realm="scimjit-admin"`}

	for _, tc := range []struct {
		name    string
		x       exchange
		wantErr string // "" when the exchange matches the document
	}{
		{"a workspace", exchange{method: "GET", path: "/admin/v1/workspaces/acme", auth: bearer, status: 200, body: workspace()}, ""},
		{"a workspace without version", exchange{method: "GET", path: "/admin/v1/workspaces/acme", auth: bearer, status: 200, body: noVersion}, "version"},
		{"a field the document does not have", exchange{method: "GET", path: "/admin/v1/workspaces/acme", auth: bearer, status: 200, body: extra}, "secretHash"},
		{"a setting value outside its enum", exchange{method: "GET", path: "/admin/v1/workspaces/acme", auth: bearer, status: 200, body: badEnum}, "roleSync"},
		{"a list that is a bare array", exchange{method: "GET", path: "/admin/v1/workspaces", auth: bearer, status: 200, body: []any{workspace()}}, "doesn't match"},
		{"an HTML answer", exchange{method: "GET", path: "/admin/v1/workspaces", auth: bearer, status: 200,
			header: map[string]string{"Content-Type": "text/html"}, body: "<p>hi</p>"}, "Content-Type"},
		{"no X-Request-ID", exchange{method: "GET", path: "/admin/v1/workspaces/acme", auth: bearer, status: 200,
			header: map[string]string{"X-Request-Id": ""}, body: workspace()}, "X-Request-ID"},
		{"an undocumented status", exchange{method: "GET", path: "/admin/v1/workspaces/acme", auth: bearer, status: http.StatusTeapot, body: errBody("internal")}, "status is not supported"},
		{"a status the operation does not have", exchange{method: "GET", path: "/admin/v1/workspaces", auth: bearer, status: 404, body: errBody("not_found")}, "status is not supported"},
		{"401", exchange{method: "GET", path: "/admin/v1/outbox", status: 401, header: unauthorized, body: errBody("unauthorized")}, ""},
		{"401 without WWW-Authenticate", exchange{method: "GET", path: "/admin/v1/outbox", status: 401, body: errBody("unauthorized")}, "WWW-Authenticate"},
		{"401 with another error code", exchange{method: "GET", path: "/admin/v1/outbox", status: 401, header: unauthorized, body: errBody("not_found")}, "unauthorized"},
		{"429", exchange{method: "GET", path: "/admin/v1/outbox", status: 429, header: map[string]string{"Retry-After": "6"}, body: errBody("too_many_requests")}, ""},
		{"429 without Retry-After", exchange{method: "GET", path: "/admin/v1/outbox", status: 429, body: errBody("too_many_requests")}, "Retry-After"},
		{"503 without Retry-After", exchange{method: "GET", path: "/admin/v1/outbox", auth: bearer, status: 503, body: errBody("unavailable")}, "Retry-After"},
		{"an error body with internal text", exchange{method: "GET", path: "/admin/v1/workspaces/acme", auth: bearer, status: 404,
			body: map[string]string{"error": "not_found", "message": "x", "cause": "redis: nil"}}, "cause"},
		{"an unknown path", exchange{method: "GET", path: "/admin/v1/nope", auth: bearer, status: 404, body: errBody("not_found")}, ""},
		{"an unknown path answered 200", exchange{method: "GET", path: "/admin/v1/nope", auth: bearer, status: 200, body: map[string]any{}}, "no operation"},
		{"a wrong method", exchange{method: "PUT", path: "/admin/v1/workspaces/acme", status: 405,
			header: map[string]string{"Allow": "OPTIONS, GET, PATCH, DELETE"}, body: errBody("method_not_allowed")}, ""},
		{"a wrong method whose Allow differs from the document", exchange{method: "PUT", path: "/admin/v1/workspaces/acme", status: 405,
			header: map[string]string{"Allow": "OPTIONS, GET, DELETE"}, body: errBody("method_not_allowed")}, "Allow"},
		{"a wrong method answered with a page", exchange{method: "PUT", path: "/admin/v1/workspaces/acme", status: 405,
			header: map[string]string{"Allow": "GET, PATCH, DELETE", "Content-Type": "text/html"}, body: "<p>no</p>"}, "Content-Type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.x.check(t)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("a matching exchange was reported: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("not caught")
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q does not name %q", err, tc.wantErr)
			}
		})
	}
}

// TestContractChecksRequestsTheServerAccepted: a request that the server
// answered with 2xx must be one the document allows (body, query,
// parameters, token); a request the server refused is not held against
// the document.
func TestContractChecksRequestsTheServerAccepted(t *testing.T) {
	created := workspace()
	for _, tc := range []struct {
		name    string
		x       exchange
		wantErr string
	}{
		{"a valid create", exchange{method: "POST", path: "/admin/v1/workspaces", auth: bearer,
			reqBody: `{"id":"acme","name":"Acme","settings":{"jit":{"enabled":true}}}`, status: 201,
			header: map[string]string{"Location": "http://127.0.0.1/admin/v1/workspaces/acme"}, body: created}, ""},
		{"201 without Location", exchange{method: "POST", path: "/admin/v1/workspaces", auth: bearer,
			reqBody: `{"id":"acme","name":"Acme"}`, status: 201, body: created}, "Location"},
		{"an unknown field accepted", exchange{method: "POST", path: "/admin/v1/workspaces", auth: bearer,
			reqBody: `{"id":"acme","name":"Acme","colour":"red"}`, status: 201,
			header: map[string]string{"Location": "http://127.0.0.1/admin/v1/workspaces/acme"}, body: created}, "accepted"},
		{"an unknown field refused", exchange{method: "POST", path: "/admin/v1/workspaces", auth: bearer,
			reqBody: `{"id":"acme","name":"Acme","colour":"red"}`, status: 400, body: errBody("invalid_request")}, ""},
		{"a setting outside its enum accepted", exchange{method: "PATCH", path: "/admin/v1/workspaces/acme", auth: bearer,
			reqBody: `{"settings":{"jit":{"roleSync":"sometimes"}}}`, status: 200, body: workspace()}, "accepted"},
		{"metadataXML and metadataURL together accepted", exchange{method: "PATCH", path: "/admin/v1/workspaces/acme", auth: bearer,
			reqBody: `{"settings":{"idp":{"metadataXML":"<x/>","metadataURL":"https://idp.example/md"}}}`, status: 200, body: workspace()}, "accepted"},
		{"a limit out of range accepted", exchange{method: "GET", path: "/admin/v1/outbox?limit=501", auth: bearer, status: 200,
			body: map[string]any{"mail": []any{}}}, "accepted"},
		{"a malformed workspace id accepted", exchange{method: "GET", path: "/admin/v1/workspaces/Acme", auth: bearer, status: 200,
			body: func() map[string]any { w := workspace(); w["id"] = "acme"; return w }()}, "accepted"},
		{"a protected operation answered without a token", exchange{method: "GET", path: "/admin/v1/workspaces", status: 200,
			body: map[string]any{"workspaces": []any{}}}, "accepted"},
		{"the document, without a token", exchange{method: "GET", path: "/admin/v1/openapi.json", status: 200,
			body: map[string]any{"openapi": "3.1.0", "info": map[string]any{}, "paths": map[string]any{}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.x.check(t)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("a matching exchange was reported: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("not caught")
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q does not name %q", err, tc.wantErr)
			}
		})
	}
}

// reports collects what the validators report instead of failing the test.
type reports struct {
	mu   sync.Mutex
	msgs []string
}

func (r *reports) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *reports) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// fakeAdmin answers /admin/v1/workspaces with a list whose workspace lacks
// most fields, and /other with anything: a handler that breaks the
// document, with no server behind it.
func fakeAdmin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", "req-1")
		if r.URL.Path == "/admin/v1/workspaces" {
			_, _ = io.WriteString(w, `{"workspaces":[{"id":"acme"}]}`)
			return
		}
		_, _ = io.WriteString(w, `"not an admin API answer"`)
	})
}

// TestValidateHandlerReportsAMismatch: the handler wrapper that New
// installs reports a response that does not match the document, and
// leaves paths outside the admin API alone.
func TestValidateHandlerReportsAMismatch(t *testing.T) {
	rep := &reports{}
	h := servertest.ValidateHandler(rep, fakeAdmin())
	req := httptest.NewRequest(http.MethodGet, "/admin/v1/workspaces", nil)
	req.Header.Set("Authorization", bearer)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Body.String() != `{"workspaces":[{"id":"acme"}]}` {
		t.Errorf("the wrapper changed the answer: %q", rec.Body.String())
	}
	got := rep.list()
	if len(got) != 1 || !strings.Contains(got[0], "GET /admin/v1/workspaces") || !strings.Contains(got[0], "doesn't match") {
		t.Fatalf("reports %q, want one for GET /admin/v1/workspaces", got)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/other", nil))
	if n := len(rep.list()); n != 1 {
		t.Errorf("a path outside the admin API was checked (%d reports)", n)
	}
}

// TestValidatingTransportReportsAMismatch: the client-side check (for
// servers New does not start) reports the same mismatch and hands the
// caller the whole answer.
func TestValidatingTransportReportsAMismatch(t *testing.T) {
	srv := httptest.NewServer(fakeAdmin())
	defer srv.Close()
	rep := &reports{}
	client := &http.Client{Transport: servertest.ValidatingTransport(rep, nil)}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/admin/v1/workspaces", nil)
	req.Header.Set("Authorization", bearer)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"workspaces":[{"id":"acme"}]}` {
		t.Errorf("the caller got %q", body)
	}
	if got := rep.list(); len(got) != 1 || !strings.Contains(got[0], "doesn't match") {
		t.Fatalf("reports %q, want one mismatch", got)
	}
}
