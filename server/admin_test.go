package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// apiErr is the admin API's error body.
type apiErr struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, data, err)
	}
	return v
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

func TestAdminAPIRejectsMissingAndWrongTokens(t *testing.T) {
	// More failures than the default allows come from this one address.
	env := servertest.New(t, func(c *server.Config) { c.AdminAuthLimit = 100 })
	cases := []struct {
		name, auth string
	}{
		{"missing", ""},
		{"wrong", "Bearer " + env.AdminToken + "x"},
		{"prefix of the right one", "Bearer " + env.AdminToken[:len(env.AdminToken)-1]},
		{"basic scheme", "Basic " + env.AdminToken},
		{"empty bearer", "Bearer "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/admin/v1/workspaces", "/admin/v1/outbox", "/admin/v1/workspaces/x/scim-tokens"} {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, env.URL+path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var body apiErr
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || body.Error != "unauthorized" || body.Message == "" {
					t.Errorf("GET %s: %d %+v, want 401 unauthorized", path, resp.StatusCode, body)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("content type %q", ct)
				}
			}
		})
	}
}

// TestAdminAPIWrongMethodIs405WithAllow: a method a route does not have
// gets 405 with the route's methods in Allow and the admin error body, not
// 404; an unknown path still gets 404.
func TestAdminAPIWrongMethodIs405WithAllow(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "acme", nil)
	cases := []struct {
		method, path string
		allow        []string
	}{
		{http.MethodPut, "/admin/v1/workspaces", []string{"GET", "POST"}},
		{http.MethodDelete, "/admin/v1/workspaces", []string{"GET", "POST"}},
		{http.MethodPost, "/admin/v1/workspaces/acme", []string{"GET", "PATCH", "DELETE"}},
		{http.MethodPut, "/admin/v1/workspaces/acme", []string{"GET", "PATCH", "DELETE"}},
		{http.MethodPatch, "/admin/v1/workspaces/acme/scim-tokens", []string{"GET", "POST"}},
		{http.MethodGet, "/admin/v1/workspaces/acme/scim-tokens/some-id", []string{"DELETE"}},
		{http.MethodPost, "/admin/v1/workspaces/acme/events", []string{"GET"}},
		{http.MethodDelete, "/admin/v1/outbox", []string{"GET"}},
	}
	for _, tc := range cases {
		for _, bearer := range []string{env.AdminToken, ""} {
			resp, body := env.Do(t, tc.method, tc.path, bearer, nil)
			wantStatus(t, resp, body, http.StatusMethodNotAllowed)
			got := map[string]bool{}
			for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
				got[strings.TrimSpace(m)] = true
			}
			want := map[string]bool{"OPTIONS": true} // Echo answers OPTIONS on every route
			for _, m := range tc.allow {
				want[m] = true
			}
			if len(got) != len(want) {
				t.Errorf("%s %s: Allow %q, want %v", tc.method, tc.path, resp.Header.Get("Allow"), tc.allow)
			}
			for m := range want {
				if !got[m] {
					t.Errorf("%s %s: Allow %q lacks %s", tc.method, tc.path, resp.Header.Get("Allow"), m)
				}
			}
			if e := decode[apiErr](t, body); e.Error != "method_not_allowed" || e.Message == "" {
				t.Errorf("%s %s: body %s", tc.method, tc.path, body)
			}
		}
	}
	resp, body := env.Admin(t, http.MethodGet, "/admin/v1/no-such-route", nil)
	wantStatus(t, resp, body, http.StatusNotFound)
	if e := decode[apiErr](t, body); e.Error != "not_found" {
		t.Errorf("unknown admin route: body %s", body)
	}
}

func TestAdminAPIIsDisabledWithoutToken(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.AdminToken = "" })
	resp, body := env.Do(t, http.MethodGet, "/admin/v1/workspaces", "", nil)
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = env.Do(t, http.MethodGet, "/admin/v1/workspaces", "Bearer", nil)
	wantStatus(t, resp, body, http.StatusUnauthorized)
}

func TestWorkspaceLifecycle(t *testing.T) {
	env := servertest.New(t, nil)

	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{
		"id": "finance", "name": "Finance",
		"settings": map[string]any{"jit": map[string]any{"enabled": true, "roleSync": "everyLogin"}, "customRoles": []string{"Auditor"}},
	})
	wantStatus(t, resp, body, http.StatusCreated)
	if loc := resp.Header.Get("Location"); loc != env.URL+"/admin/v1/workspaces/finance" {
		t.Errorf("Location %q", loc)
	}
	ws := decode[server.WorkspaceJSON](t, body)
	if ws.ID != "finance" || ws.Name != "Finance" || !ws.Settings.JIT.Enabled || ws.Settings.JIT.RoleSync != "everyLogin" ||
		ws.Settings.JIT.ExistingAccount != "verify" || ws.Settings.JIT.DefaultRole != "Operator" || ws.Settings.JIT.UnknownRole != "reject" ||
		len(ws.Settings.CustomRoles) != 1 || ws.Version != 1 {
		t.Fatalf("created workspace %+v", ws)
	}

	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/finance", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if got := decode[server.WorkspaceJSON](t, body); got.Name != "Finance" {
		t.Fatalf("get: %+v", got)
	}

	env.CreateWorkspace(t, "legal", nil)
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces", nil)
	wantStatus(t, resp, body, http.StatusOK)
	list := decode[struct{ Workspaces []server.WorkspaceJSON }](t, body)
	if len(list.Workspaces) != 2 || list.Workspaces[0].ID != "finance" || list.Workspaces[1].ID != "legal" {
		t.Fatalf("list: %+v", list)
	}

	// PATCH changes only what it names.
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/finance", map[string]any{
		"name":     "Finance EU",
		"settings": map[string]any{"jit": map[string]any{"defaultRole": "Auditor", "existingAccount": "auto", "unknownRole": "default"}},
	})
	wantStatus(t, resp, body, http.StatusOK)
	ws = decode[server.WorkspaceJSON](t, body)
	if ws.Name != "Finance EU" || ws.Settings.JIT.DefaultRole != "Auditor" || ws.Settings.JIT.ExistingAccount != "auto" ||
		ws.Settings.JIT.UnknownRole != "default" || !ws.Settings.JIT.Enabled || ws.Settings.JIT.RoleSync != "everyLogin" || ws.Version != 2 {
		t.Fatalf("patched workspace %+v", ws)
	}
	stored, err := env.Store.GetWorkspace(t.Context(), "finance")
	if err != nil || stored.Settings.JIT.DefaultRole != "Auditor" || stored.Name != "Finance EU" {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	resp, body = env.Admin(t, http.MethodDelete, "/admin/v1/workspaces/finance", nil)
	wantStatus(t, resp, body, http.StatusNoContent)
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/finance", nil)
	wantStatus(t, resp, body, http.StatusNotFound)
	if e := decode[apiErr](t, body); e.Error != "not_found" {
		t.Fatalf("error body %+v", e)
	}
	// The other workspace is untouched.
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/legal", nil)
	wantStatus(t, resp, body, http.StatusOK)
}

func TestWorkspaceBadInput(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "taken", nil)
	spMetadata := spMetadataXML(t)

	cases := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
		wantInMsg  []string
	}{
		{"invalid slug", "POST", "/admin/v1/workspaces", map[string]any{"id": "Bad_Slug", "name": "x"}, 400, []string{"id"}},
		{"slug too long", "POST", "/admin/v1/workspaces", map[string]any{"id": strings.Repeat("a", 64), "name": "x"}, 400, []string{"id"}},
		{"slug starting with dash", "POST", "/admin/v1/workspaces", map[string]any{"id": "-x", "name": "x"}, 400, []string{"id"}},
		{"missing name", "POST", "/admin/v1/workspaces", map[string]any{"id": "ok"}, 400, []string{"name"}},
		{"several problems at once", "POST", "/admin/v1/workspaces", map[string]any{"id": "NO", "settings": map[string]any{"jit": map[string]any{"roleSync": "sometimes"}}}, 400,
			[]string{"id", "name", "settings.jit.roleSync"}},
		{"existingAccount", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"jit": map[string]any{"existingAccount": "maybe"}}}, 400, []string{"settings.jit.existingAccount"}},
		{"unknownRole", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"jit": map[string]any{"unknownRole": "ignore"}}}, 400, []string{"settings.jit.unknownRole"}},
		{"defaultRole not a role", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"jit": map[string]any{"defaultRole": "Boss"}}}, 400, []string{"settings.jit.defaultRole"}},
		{"defaultRole case-sensitive", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"jit": map[string]any{"defaultRole": "operator"}}}, 400, []string{"settings.jit.defaultRole"}},
		{"custom role collides with system role", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"customRoles": []string{"admin"}}}, 400, []string{"settings.customRoles"}},
		{"custom role charset", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"customRoles": []string{"<script>"}}}, 400, []string{"settings.customRoles"}},
		{"custom role twice", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"customRoles": []string{"X", "X"}}}, 400, []string{"settings.customRoles"}},
		{"metadata not xml", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"idp": map[string]any{"metadataXML": "hello"}}}, 400, []string{"settings.idp.metadataXML"}},
		{"metadata of an SP", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"idp": map[string]any{"metadataXML": spMetadata}}}, 400, []string{"settings.idp.metadataXML", "IDPSSODescriptor"}},
		{"email domain wildcard", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"login": map[string]any{"emailDomains": []string{"*.example.com"}}}}, 400, []string{"settings.login.emailDomains", "*.example.com", "wildcard"}},
		{"email domain single label", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"login": map[string]any{"emailDomains": []string{"localhost"}}}}, 400, []string{"settings.login.emailDomains", "localhost"}},
		{"email domain is an address", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"login": map[string]any{"emailDomains": []string{"a@b.example"}}}}, 400, []string{"settings.login.emailDomains", "a@b.example"}},
		{"email domain trailing dot", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"login": map[string]any{"emailDomains": []string{"b.example."}}}}, 400, []string{"settings.login.emailDomains", "b.example."}},
		{"email domain label too long", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"login": map[string]any{"emailDomains": []string{strings.Repeat("x", 64) + ".example"}}}}, 400, []string{"settings.login.emailDomains"}},
		{"email domain twice in another case", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"login": map[string]any{"emailDomains": []string{"b.example", "B.Example"}}}}, 400, []string{"settings.login.emailDomains", "listed twice"}},
		{"too many email domains", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"login": map[string]any{"emailDomains": manyDomains(51)}}}, 400, []string{"settings.login.emailDomains", "at most 50"}},
		{"patch invalid email domain", "PATCH", "/admin/v1/workspaces/taken", map[string]any{"settings": map[string]any{"login": map[string]any{"emailDomains": []string{"a b.example"}}}}, 400, []string{"settings.login.emailDomains"}},
		{"unknown field", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "colour": "red"}, 400, []string{"colour"}},
		{"unknown settings field", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"jit": map[string]any{"enable": true}}}, 400, []string{"enable"}},
		{"wrong type", "POST", "/admin/v1/workspaces", map[string]any{"id": "a", "name": "a", "settings": map[string]any{"jit": map[string]any{"enabled": "yes"}}}, 400, []string{"enabled"}},
		{"bad json", "POST", "/admin/v1/workspaces", `{"id": "a",`, 400, []string{"JSON"}},
		{"trailing data", "POST", "/admin/v1/workspaces", `{"id": "a", "name": "a"} {}`, 400, []string{"JSON"}},
		{"empty body", "POST", "/admin/v1/workspaces", ``, 400, []string{"JSON"}},
		{"duplicate", "POST", "/admin/v1/workspaces", map[string]any{"id": "taken", "name": "again"}, 409, []string{"taken"}},
		{"unknown workspace get", "GET", "/admin/v1/workspaces/nope", nil, 404, []string{"workspace"}},
		{"malformed workspace id", "GET", "/admin/v1/workspaces/NOPE..", nil, 404, []string{"workspace"}},
		{"unknown workspace patch", "PATCH", "/admin/v1/workspaces/nope", map[string]any{"name": "x"}, 404, []string{"workspace"}},
		{"unknown workspace delete", "DELETE", "/admin/v1/workspaces/nope", nil, 404, []string{"workspace"}},
		{"patch invalid setting", "PATCH", "/admin/v1/workspaces/taken", map[string]any{"settings": map[string]any{"jit": map[string]any{"defaultRole": "Nobody"}}}, 400, []string{"settings.jit.defaultRole"}},
		{"patch removes the default role", "PATCH", "/admin/v1/workspaces/taken", map[string]any{"settings": map[string]any{"jit": map[string]any{"defaultRole": "Gone"}, "customRoles": []string{}}}, 400, []string{"settings.jit.defaultRole"}},
		{"patch empty name", "PATCH", "/admin/v1/workspaces/taken", map[string]any{"name": " "}, 400, []string{"name"}},
		{"tokens of unknown workspace", "GET", "/admin/v1/workspaces/nope/scim-tokens", nil, 404, []string{"workspace"}},
		{"token for unknown workspace", "POST", "/admin/v1/workspaces/nope/scim-tokens", map[string]any{"name": "x"}, 404, []string{"workspace"}},
		{"revoke unknown token", "DELETE", "/admin/v1/workspaces/taken/scim-tokens/nope", nil, 404, []string{"token"}},
		{"events of unknown workspace", "GET", "/admin/v1/workspaces/nope/events", nil, 404, []string{"workspace"}},
		{"events bad after", "GET", "/admin/v1/workspaces/taken/events?after=zzz", nil, 400, []string{"after"}},
		{"events bad limit", "GET", "/admin/v1/workspaces/taken/events?limit=0", nil, 400, []string{"limit"}},
		{"outbox bad limit", "GET", "/admin/v1/outbox?limit=x", nil, 400, []string{"limit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.Admin(t, tc.method, tc.path, tc.body)
			wantStatus(t, resp, body, tc.wantStatus)
			e := decode[apiErr](t, body)
			if e.Error == "" {
				t.Errorf("no error code in %s", body)
			}
			for _, s := range tc.wantInMsg {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q does not mention %q", e.Message, s)
				}
			}
		})
	}
	// Nothing was created or changed by the failed requests.
	list, err := env.Store.ListWorkspaces(t.Context())
	if err != nil || len(list) != 1 {
		t.Fatalf("workspaces after bad input: %+v, %v", list, err)
	}
	if list[0].Version != 1 || list[0].Name != "taken" {
		t.Fatalf("workspace changed by failed requests: %+v", list[0])
	}
}

func TestWorkspaceIdPMetadata(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "acme", nil)
	md := idpMetadataXML(t, "https://idp.example.test/metadata")

	resp, body := env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{
		"settings": map[string]any{"idp": map[string]any{"metadataXML": md, "allowIdPInitiated": true}},
	})
	wantStatus(t, resp, body, http.StatusOK)
	ws := decode[server.WorkspaceJSON](t, body)
	if ws.Settings.IdP.EntityID != "https://idp.example.test/metadata" || !ws.Settings.IdP.AllowIdPInitiated || ws.Settings.IdP.MetadataXML != md {
		t.Fatalf("idp settings %+v", ws.Settings.IdP)
	}

	// A contradicting entity ID is refused.
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{
		"settings": map[string]any{"idp": map[string]any{"entityID": "https://other.test/"}},
	})
	wantStatus(t, resp, body, http.StatusBadRequest)
	if e := decode[apiErr](t, body); !strings.Contains(e.Message, "settings.idp.entityID") {
		t.Fatalf("message %q", e.Message)
	}

	// Clearing the metadata clears the derived entity ID.
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{
		"settings": map[string]any{"idp": map[string]any{"metadataXML": ""}},
	})
	wantStatus(t, resp, body, http.StatusOK)
	if ws := decode[server.WorkspaceJSON](t, body); ws.Settings.IdP.EntityID != "" || ws.Settings.IdP.MetadataXML != "" {
		t.Fatalf("idp settings after clearing %+v", ws.Settings.IdP)
	}
}

func TestSCIMTokensShownOnceListedWithoutSecretsRevocable(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme"})
	wantStatus(t, resp, body, http.StatusCreated)

	var created []server.SCIMTokenJSON
	for _, name := range []string{"okta", "okta-rotated"} {
		resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/scim-tokens", map[string]any{"name": name})
		wantStatus(t, resp, body, http.StatusCreated)
		tok := decode[server.SCIMTokenJSON](t, body)
		if !strings.HasPrefix(tok.Token, server.SCIMTokenPrefix) || len(tok.Token) < len(server.SCIMTokenPrefix)+43 || tok.ID == "" || tok.Name != name {
			t.Fatalf("created token %+v", tok)
		}
		created = append(created, tok)
	}
	if created[0].Token == created[1].Token {
		t.Fatal("two tokens with the same secret")
	}

	// The store keeps only SHA-256 hashes; both are live.
	stored, err := env.Store.ListSCIMTokens(t.Context(), "acme")
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored tokens %+v, %v", stored, err)
	}
	for _, c := range created {
		sum := sha256.Sum256([]byte(c.Token))
		found := false
		for _, s := range stored {
			if s.ID == c.ID {
				found = string(s.Hash) == string(sum[:])
			}
		}
		if !found {
			t.Errorf("token %s not stored as its sha256", c.ID)
		}
	}

	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/scim-tokens", nil)
	wantStatus(t, resp, body, http.StatusOK)
	for _, c := range created {
		if strings.Contains(string(body), c.Token) || strings.Contains(string(body), strings.TrimPrefix(c.Token, server.SCIMTokenPrefix)) {
			t.Fatal("token list contains a secret")
		}
	}
	var raw struct{ Tokens []map[string]any }
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Tokens) != 2 {
		t.Fatalf("list %s: %v", body, err)
	}
	for _, tok := range raw.Tokens {
		for k := range tok {
			if k != "id" && k != "name" && k != "createdAt" {
				t.Errorf("token list has field %q (lastUsedAt only once used)", k)
			}
		}
	}

	// A SCIM request with the second token records its last use.
	before := time.Now().Add(-time.Second)
	resp, body = env.Do(t, http.MethodGet, "/scim/v2/acme/Users", created[1].Token, nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/scim-tokens", nil)
	wantStatus(t, resp, body, http.StatusOK)
	for _, tok := range decode[struct{ Tokens []server.SCIMTokenJSON }](t, body).Tokens {
		used := !tok.LastUsedAt.IsZero()
		if want := tok.ID == created[1].ID; used != want || used && (tok.LastUsedAt.Before(before) || tok.LastUsedAt.After(time.Now())) {
			t.Errorf("token %s: lastUsedAt %v, want used=%v", tok.Name, tok.LastUsedAt, want)
		}
	}

	resp, body = env.Admin(t, http.MethodDelete, "/admin/v1/workspaces/acme/scim-tokens/"+created[0].ID, nil)
	wantStatus(t, resp, body, http.StatusNoContent)
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/scim-tokens", nil)
	wantStatus(t, resp, body, http.StatusOK)
	left := decode[struct{ Tokens []server.SCIMTokenJSON }](t, body)
	if len(left.Tokens) != 1 || left.Tokens[0].ID != created[1].ID {
		t.Fatalf("after revoke: %+v", left)
	}
	resp, body = env.Admin(t, http.MethodDelete, "/admin/v1/workspaces/acme/scim-tokens/"+created[0].ID, nil)
	wantStatus(t, resp, body, http.StatusNotFound)

	// A token id of one workspace does not revoke in another.
	env.CreateWorkspace(t, "other", nil)
	resp, body = env.Admin(t, http.MethodDelete, "/admin/v1/workspaces/other/scim-tokens/"+created[1].ID, nil)
	wantStatus(t, resp, body, http.StatusNotFound)

	// Secrets never reach the log.
	for _, c := range created {
		if env.Logs.Contains(c.Token) {
			t.Fatal("a SCIM token secret was logged")
		}
	}
}

func TestAdminChangesAppendEvents(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme"})
	wantStatus(t, resp, body, http.StatusCreated)
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{"settings": map[string]any{"jit": map[string]any{"enabled": true}}})
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces/acme/scim-tokens", map[string]any{"name": "okta"})
	wantStatus(t, resp, body, http.StatusCreated)
	tok := decode[server.SCIMTokenJSON](t, body)
	resp, body = env.Admin(t, http.MethodDelete, "/admin/v1/workspaces/acme/scim-tokens/"+tok.ID, nil)
	wantStatus(t, resp, body, http.StatusNoContent)

	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/events", nil)
	wantStatus(t, resp, body, http.StatusOK)
	ev := decode[struct {
		Events []server.EventJSON
		Next   string
	}](t, body)
	wantTypes := []string{"admin.workspace.created", "admin.workspace.updated", "admin.scim_token.created", "admin.scim_token.revoked"}
	if len(ev.Events) != len(wantTypes) {
		t.Fatalf("events %+v", ev.Events)
	}
	for i, e := range ev.Events {
		if e.Type != wantTypes[i] || e.Actor != "admin:"+server.DefaultAdminTokenName || e.ID == "" {
			t.Errorf("event %d: %+v, want type %s by admin:default", i, e, wantTypes[i])
		}
	}
	if ev.Events[1].Detail["fields"] != "jit.enabled" || ev.Events[2].Detail["tokenId"] != tok.ID {
		t.Errorf("event details %+v %+v", ev.Events[1].Detail, ev.Events[2].Detail)
	}
	if strings.Contains(string(body), tok.Token) {
		t.Fatal("event stream contains a token secret")
	}

	// Paging with after/limit.
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/events?limit=2", nil)
	wantStatus(t, resp, body, http.StatusOK)
	page1 := decode[struct {
		Events []server.EventJSON
		Next   string
	}](t, body)
	if len(page1.Events) != 2 || page1.Next != ev.Events[1].ID {
		t.Fatalf("page 1 %+v", page1)
	}
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme/events?after="+url.QueryEscape(page1.Next), nil)
	wantStatus(t, resp, body, http.StatusOK)
	page2 := decode[struct{ Events []server.EventJSON }](t, body)
	if len(page2.Events) != 2 || page2.Events[0].Type != wantTypes[2] {
		t.Fatalf("page 2 %+v", page2)
	}
}

func TestOutboxListsMail(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Admin(t, http.MethodGet, "/admin/v1/outbox", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if got := decode[struct{ Mail []server.MailJSON }](t, body); got.Mail == nil || len(got.Mail) != 0 {
		t.Fatalf("empty outbox: %s", body)
	}
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	for _, subj := range []string{"first", "second"} {
		m, err := env.Store.AppendMail(t.Context(), storage.Mail{To: "jane@example.test", Subject: subj, Text: "hello", Expires: expires})
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Store.AddMailAttempt(t.Context(), m.ID, storage.MailAttempt{Time: time.Now(), Outcome: "failed", Error: "smtp: 451"},
			"queued", ""); err != nil {
			t.Fatal(err)
		}
		if err := env.Store.AddMailAttempt(t.Context(), m.ID, storage.MailAttempt{Time: time.Now(), Outcome: "sent"}, "sent", ""); err != nil {
			t.Fatal(err)
		}
	}
	resp, body = env.Admin(t, http.MethodGet, "/admin/v1/outbox?limit=1", nil)
	wantStatus(t, resp, body, http.StatusOK)
	got := decode[struct{ Mail []server.MailJSON }](t, body)
	if len(got.Mail) != 1 || got.Mail[0].Subject != "second" || got.Mail[0].To != "jane@example.test" || got.Mail[0].ID == "" {
		t.Fatalf("outbox %+v", got)
	}
	m := got.Mail[0]
	if m.Status != "sent" || m.Expires == nil || !m.Expires.Equal(expires) || len(m.Attempts) != 2 ||
		m.Attempts[0].Outcome != "failed" || m.Attempts[0].Error != "smtp: 451" || m.Attempts[1].Outcome != "sent" ||
		m.Attempts[1].Error != "" {
		t.Fatalf("outbox message %+v, want sent after a failed attempt, with its expiry", m)
	}
}

// newCert makes a self-signed RSA certificate for metadata.
func newCert(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func mustURL(t *testing.T, s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return *u
}

// idpMetadataXML is real IdP metadata made by crewjam's IdP.
func idpMetadataXML(t *testing.T, entityID string) string {
	key, cert := newCert(t)
	idp := &crewsaml.IdentityProvider{Key: key, Certificate: cert,
		MetadataURL: mustURL(t, entityID), SSOURL: mustURL(t, "https://idp.example.test/sso")}
	data, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// spMetadataXML is a service provider's metadata: valid SAML, but not an IdP.
func spMetadataXML(t *testing.T) string {
	key, cert := newCert(t)
	sp := &crewsaml.ServiceProvider{Key: key, Certificate: cert,
		MetadataURL: mustURL(t, "https://sp.example.test/metadata"), AcsURL: mustURL(t, "https://sp.example.test/acs")}
	data, err := xml.Marshal(sp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestWorkspaceIdPMetadataFromURL(t *testing.T) {
	md := idpMetadataXML(t, "https://idp.example.test/metadata")
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metadata":
			w.Header().Set("Content-Type", "application/samlmetadata+xml")
			_, _ = w.Write([]byte(md))
		case "/moved":
			http.Redirect(w, r, "/metadata", http.StatusFound)
		case "/not-metadata":
			_, _ = w.Write([]byte("<html>login</html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer idp.Close()
	env := servertest.New(t, func(c *server.Config) {
		c.MetadataClient = idp.Client()
		c.MetadataAllowPrivateHosts = true // the test IdP is on loopback
	})

	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{
		"id": "acme", "name": "Acme", "settings": map[string]any{"idp": map[string]any{"metadataURL": idp.URL + "/moved"}},
	})
	wantStatus(t, resp, body, http.StatusCreated)
	ws := decode[server.WorkspaceJSON](t, body)
	if ws.Settings.IdP.MetadataXML != md || ws.Settings.IdP.EntityID != "https://idp.example.test/metadata" {
		t.Fatalf("idp settings %+v", ws.Settings.IdP)
	}

	for name, tc := range map[string]struct {
		idp  map[string]any
		want string
	}{
		"404":          {map[string]any{"metadataURL": idp.URL + "/gone"}, "status 404"},
		"not metadata": {map[string]any{"metadataURL": idp.URL + "/not-metadata"}, "settings.idp.metadataXML"},
		"plain http":   {map[string]any{"metadataURL": "http://idp.example.test/metadata"}, "https"},
		"both":         {map[string]any{"metadataURL": idp.URL + "/metadata", "metadataXML": md}, "not both"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{"settings": map[string]any{"idp": tc.idp}})
			wantStatus(t, resp, body, http.StatusBadRequest)
			if e := decode[apiErr](t, body); !strings.Contains(e.Message, tc.want) {
				t.Errorf("message %q does not mention %q", e.Message, tc.want)
			}
		})
	}
}

// TestAdminAuthAttemptsAreLimitedPerClient: beyond the limit of failed
// authentications a client address gets 429 with Retry-After and the admin
// error body, even with the right token (else a 200 would reveal a right
// guess); another address is not affected; successful requests never
// count; the count lives in the store, so a second server process on the
// same store refuses the client too; the warning names only the address.
func TestAdminAuthAttemptsAreLimitedPerClient(t *testing.T) {
	const limit = 5
	store := redistest.NewStore(t)
	mutate := func(c *server.Config) {
		c.Store = store
		c.AdminAuthLimit = limit
		c.AdminToken = "adm_" + strings.Repeat("0123456789abcdef", 2)
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	env := servertest.New(t, mutate)
	other := servertest.New(t, mutate) // a second process behind the same load balancer
	call := func(env *servertest.Env, client, token string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, env.URL+"/admin/v1/workspaces", nil)
		req.Header.Set("X-Forwarded-For", client)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	const attacker, admin = "198.51.100.7", "203.0.113.20"
	const guess = "adm_guess-0123456789abcdef0123456789"
	// The right token, however often, is never refused.
	for i := range 3 * limit {
		if resp, body := call(env, admin, env.AdminToken); resp.StatusCode != http.StatusOK {
			t.Fatalf("successful request %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	for i := range limit {
		resp, body := call(env, attacker, guess)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s, want 401", i+1, resp.StatusCode, body)
		}
	}
	for _, tok := range []string{guess, env.AdminToken} {
		for _, e := range []*servertest.Env{env, other} {
			resp, body := call(e, attacker, tok)
			wantStatus(t, resp, body, http.StatusTooManyRequests)
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("429 without a Retry-After in seconds: %q", resp.Header.Get("Retry-After"))
			}
			if b := decode[apiErr](t, body); b.Error != "too_many_requests" || b.Message == "" {
				t.Errorf("429 body %s", body)
			}
		}
	}
	// Another client address is served by both processes.
	resp, body := call(env, admin, env.AdminToken)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = call(other, admin, env.AdminToken)
	wantStatus(t, resp, body, http.StatusOK)

	recs := env.Logs.Find("admin api: too many failed authentications")
	if len(recs) == 0 || recs[0]["level"] != "WARN" || recs[0]["remote_ip"] != attacker {
		t.Fatalf("throttle log records: %v", recs)
	}
	if env.Logs.Contains(guess) || env.Logs.Contains(env.AdminToken) {
		t.Error("a token reached the log")
	}
}

// TestAdminAPIRefusesDuplicateKeys: a body that gives a key twice in one
// object (also in another letter case, which encoding/json would match to
// the same field) is refused with 400 naming it; before, the last one won
// silently.
func TestAdminAPIRefusesDuplicateKeys(t *testing.T) {
	env := servertest.New(t, nil)
	for _, body := range []string{
		`{"id":"dup","name":"One","name":"Two"}`,
		`{"id":"dup","name":"One","Name":"Two"}`,
		`{"id":"dup","name":"One","settings":{"jit":{"enabled":true,"enabled":false}}}`,
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, env.URL+"/admin/v1/workspaces", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+env.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantStatus(t, resp, raw, http.StatusBadRequest)
		if e := decode[apiErr](t, raw); !strings.Contains(e.Message, "twice") {
			t.Errorf("%s: message %q does not say a key is given twice", body, e.Message)
		}
	}
	if _, err := env.Store.GetWorkspace(t.Context(), "dup"); err == nil {
		t.Fatal("a workspace was created from a body with a duplicate key")
	}
}

// TestNamedAdminTokens: every token of the set works and is named, never
// shown, in the access log and in the actor of the events it causes; a
// token removed from the set stops working at once.
func TestNamedAdminTokens(t *testing.T) {
	const ci, ops = "adm_Y2ktdG9rZW4tZm9yLXRoZS1hZG1pbi1hcGk", "adm_b3BzLXRva2VuLWZvci10aGUtYWRtaW4tYXBp"
	tokens := &server.AdminTokens{}
	if err := tokens.Set([]server.AdminToken{{Name: "ci", Token: ci}, {Name: "ops", Token: ops}}); err != nil {
		t.Fatal(err)
	}
	env := servertest.New(t, func(c *server.Config) { c.AdminTokens = tokens })
	for name, tok := range map[string]string{"ci": ci, "ops": ops} {
		resp, body := env.Do(t, http.MethodPost, "/admin/v1/workspaces", tok, map[string]any{"id": "ws-" + name, "name": name})
		wantStatus(t, resp, body, http.StatusCreated)
		resp, body = env.Do(t, http.MethodGet, "/admin/v1/workspaces/ws-"+name+"/events", tok, nil)
		wantStatus(t, resp, body, http.StatusOK)
		ev := decode[struct{ Events []server.EventJSON }](t, body)
		if len(ev.Events) != 1 || ev.Events[0].Actor != "admin:"+name {
			t.Errorf("events caused by token %s: %+v, want actor admin:%s", name, ev.Events, name)
		}
	}
	named := map[any]bool{}
	for _, rec := range env.Logs.Find("request") {
		named[rec["admin_token"]] = true
	}
	if !named["ci"] || !named["ops"] {
		t.Errorf("access log names %v, want ci and ops", named)
	}
	if env.Logs.Contains(ci) || env.Logs.Contains(ops) {
		t.Error("a token value reached the log")
	}

	if err := tokens.Set([]server.AdminToken{{Name: "ops", Token: ops}}); err != nil {
		t.Fatal(err)
	}
	resp, body := env.Do(t, http.MethodGet, "/admin/v1/workspaces", ci, nil)
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = env.Do(t, http.MethodGet, "/admin/v1/workspaces", ops, nil)
	wantStatus(t, resp, body, http.StatusOK)
}

// TestWorkspaceAllowSHA1: idp.allowSHA1 is off by default, set through the
// admin API and kept by the store.
func TestWorkspaceAllowSHA1(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "legacy", "name": "Legacy"})
	wantStatus(t, resp, body, http.StatusCreated)
	if ws := decode[server.WorkspaceJSON](t, body); ws.Settings.IdP.AllowSHA1 {
		t.Fatalf("allowSHA1 on by default: %+v", ws.Settings.IdP)
	}
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/legacy", map[string]any{
		"settings": map[string]any{"idp": map[string]any{"allowSHA1": true}},
	})
	wantStatus(t, resp, body, http.StatusOK)
	if ws := decode[server.WorkspaceJSON](t, body); !ws.Settings.IdP.AllowSHA1 {
		t.Fatalf("allowSHA1 not set: %+v", ws.Settings.IdP)
	}
	stored, err := env.Store.GetWorkspace(t.Context(), "legacy")
	if err != nil || !stored.Settings.IdP.AllowSHA1 {
		t.Fatalf("stored %+v, %v", stored.Settings.IdP, err)
	}
}

// manyDomains returns n distinct email domains.
func manyDomains(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("d%d.example", i)
	}
	return out
}

// TestEmailDomainsNormalized: the admin API stores email domains
// lower-case in ASCII (IDNA) form, shows them, and a change replaces the
// list.
func TestEmailDomainsNormalized(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{
		"id": "finance", "name": "Finance",
		"settings": map[string]any{"login": map[string]any{"emailDomains": []string{"Finance.Example.COM", "Bücher.example"}}},
	})
	wantStatus(t, resp, body, http.StatusCreated)
	ws := decode[server.WorkspaceJSON](t, body)
	if got := strings.Join(ws.Settings.Login.EmailDomains, ","); got != "finance.example.com,xn--bcher-kva.example" {
		t.Errorf("emailDomains = %s", got)
	}
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/finance", map[string]any{
		"settings": map[string]any{"login": map[string]any{"emailDomains": []string{"other.example"}}},
	})
	wantStatus(t, resp, body, http.StatusOK)
	if got := decode[server.WorkspaceJSON](t, body).Settings.Login.EmailDomains; len(got) != 1 || got[0] != "other.example" {
		t.Errorf("after patch emailDomains = %v", got)
	}
	// Another workspace without the setting shows an empty list, not null.
	env.CreateWorkspace(t, "legal", nil)
	_, body = env.Admin(t, http.MethodGet, "/admin/v1/workspaces/legal", nil)
	if !strings.Contains(string(body), `"emailDomains":[]`) {
		t.Errorf("legal: %s", body)
	}
}
