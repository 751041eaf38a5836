package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

func TestAdminAPISetsGroupRulesAndExplicitWins(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme"})
	wantStatus(t, resp, body, http.StatusCreated)
	ws := decode[server.WorkspaceJSON](t, body)
	if !ws.Settings.Roles.ExplicitWins || ws.Settings.Roles.GroupRules == nil || len(ws.Settings.Roles.GroupRules) != 0 {
		t.Fatalf("defaults: %+v", ws.Settings.Roles)
	}

	rules := []map[string]any{
		{"group": "Engineering", "roles": map[string]string{"dev": "Admin", "prod": "Auditor"}},
		{"group": "8f1c7c1e-0000-4000-8000-0000000000aa", "roles": map[string]string{"test": "Analyst"}},
	}
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{"settings": map[string]any{
		"customRoles": []string{"Auditor"},
		"roles":       map[string]any{"groupRules": rules, "explicitWins": false},
	}})
	wantStatus(t, resp, body, http.StatusOK)
	got := decode[server.WorkspaceJSON](t, body).Settings.Roles
	want := []server.GroupRuleJSON{
		{Group: "Engineering", Roles: storage.Roles{Dev: "Admin", Prod: "Auditor"}},
		{Group: "8f1c7c1e-0000-4000-8000-0000000000aa", Roles: storage.Roles{Test: "Analyst"}},
	}
	if got.ExplicitWins || fmt.Sprint(got.GroupRules) != fmt.Sprint(want) {
		t.Errorf("roles = %+v", got)
	}
	stored, err := env.Store.GetWorkspace(t.Context(), "acme")
	if err != nil || !stored.Settings.Roles.GroupRulesWin || len(stored.Settings.Roles.GroupRules) != 2 || stored.Settings.Roles.GroupRules[0].Roles.Prod != "Auditor" {
		t.Fatalf("stored %+v, %v", stored.Settings.Roles, err)
	}

	// A custom role a rule names cannot be removed.
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{"settings": map[string]any{"customRoles": []string{}}})
	wantStatus(t, resp, body, http.StatusBadRequest)
	if msg := decode[apiErr](t, body).Message; !strings.Contains(msg, `settings.roles.groupRules[0].roles.prod "Auditor"`) {
		t.Errorf("removing a used custom role: %s", msg)
	}
}

func TestAdminAPIRefusesInvalidGroupRules(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "acme", "name": "Acme"})
	wantStatus(t, resp, body, http.StatusCreated)
	tooMany := make([]map[string]any, storage.MaxGroupRules+1)
	for i := range tooMany {
		tooMany[i] = map[string]any{"group": fmt.Sprint("g", i), "roles": map[string]string{"dev": "Admin"}}
	}
	for _, tc := range []struct {
		name  string
		rules []map[string]any
		want  []string
	}{
		{"role names are case-sensitive", []map[string]any{{"group": "eng", "roles": map[string]string{"dev": "admin"}}},
			[]string{`settings.roles.groupRules[0].roles.dev "admin" is not a system role`}},
		{"unknown role and empty group, every problem", []map[string]any{
			{"group": "eng", "roles": map[string]string{"prod": "Owner"}},
			{"group": " ", "roles": map[string]string{"test": "Admin"}}},
			[]string{`groupRules[0].roles.prod "Owner"`, "groupRules[1].group must be"}},
		{"a rule without roles", []map[string]any{{"group": "eng", "roles": map[string]string{}}},
			[]string{"groupRules[0].roles must name a role"}},
		{"bounded count", tooMany, []string{fmt.Sprintf("at most %d rules", storage.MaxGroupRules)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/acme", map[string]any{"settings": map[string]any{
				"roles": map[string]any{"groupRules": tc.rules}}})
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			msg := decode[apiErr](t, body).Message
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
	if ws, err := env.Store.GetWorkspace(t.Context(), "acme"); err != nil || len(ws.Settings.Roles.GroupRules) != 0 {
		t.Errorf("refused rules were stored: %+v, %v", ws.Settings.Roles, err)
	}
}

func TestBootstrapDeclaresGroupRules(t *testing.T) {
	store := redistest.NewStore(t)
	ctx := t.Context()
	b, err := server.ParseBootstrap([]byte(`
workspaces:
  - id: finance
    name: Finance
    settings:
      customRoles: [Auditor]
      roles:
        explicitWins: false
        groupRules:
          - {group: Engineering, roles: {dev: Admin, test: Admin}}
          - {group: Finance Auditors, roles: {prod: Auditor}}
`))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for range 2 { // the second run changes nothing
		if err := server.ApplyBootstrap(ctx, store, log, b, secrets(nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := store.GetWorkspace(ctx, "finance")
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.GroupRule{
		{Group: "Engineering", Roles: storage.Roles{Dev: "Admin", Test: "Admin"}},
		{Group: "Finance Auditors", Roles: storage.Roles{Prod: "Auditor"}},
	}
	if !ws.Settings.Roles.GroupRulesWin || fmt.Sprint(ws.Settings.Roles.GroupRules) != fmt.Sprint(want) || ws.Version != 1 {
		t.Errorf("workspace %+v version %d", ws.Settings.Roles, ws.Version)
	}
}

// TestGroupRuleEditsAreCompareAndSet: two admins who change the group
// rules from what they read (the whole list is replaced) never silently
// lose each other's change. The admin API refuses an update whose
// If-Match names an older version (412); the console refuses a form made
// from an older page with "changed by someone else" and keeps the rules
// as the first admin left them.
func TestGroupRuleEditsAreCompareAndSet(t *testing.T) {
	env := servertest.New(t, nil)
	env.CreateWorkspace(t, "acme", nil)

	// Admin API: GET gives the version as ETag; If-Match must name it.
	resp, body := env.Admin(t, http.MethodGet, "/admin/v1/workspaces/acme", nil)
	wantStatus(t, resp, body, http.StatusOK)
	etag := resp.Header.Get("ETag")
	if want := fmt.Sprintf("%q", fmt.Sprint(decode[server.WorkspaceJSON](t, body).Version)); etag != want {
		t.Fatalf("ETag %q, want %q", etag, want)
	}
	patch := func(ifMatch string, group string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, env.URL+"/admin/v1/workspaces/acme",
			strings.NewReader(`{"settings":{"roles":{"groupRules":[{"group":"`+group+`","roles":{"dev":"Admin"}}]}}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+env.AdminToken)
		req.Header.Set("If-Match", ifMatch)
		resp, err := env.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body = patch(etag, "Engineering")
	wantStatus(t, resp, body, http.StatusOK)
	if resp.Header.Get("ETag") == etag {
		t.Fatalf("ETag unchanged after an update: %q", etag)
	}
	resp, body = patch(etag, "Operations") // made from the first read: stale
	wantStatus(t, resp, body, http.StatusPreconditionFailed)
	if e := decode[apiErr](t, body); e.Error != "precondition_failed" || !strings.Contains(e.Message, "changed by someone else") {
		t.Errorf("stale update: %+v", e)
	}
	resp, body = patch(`W/"x"`, "Operations")
	wantStatus(t, resp, body, http.StatusBadRequest)
	if ws, err := env.Store.GetWorkspace(t.Context(), "acme"); err != nil || len(ws.Settings.Roles.GroupRules) != 1 ||
		ws.Settings.Roles.GroupRules[0].Group != "Engineering" {
		t.Fatalf("after the refused updates: %+v, %v", ws.Settings.Roles.GroupRules, err)
	}

	// Console: two admins open the page at the same version.
	admin := addMember(t, env, "acme", "ada@acme.example", storage.SourceJIT, storage.Roles{Dev: "Admin"})
	other := addMember(t, env, "acme", "oz@acme.example", storage.SourceJIT, storage.Roles{Dev: "Admin"})
	ada, oz := newConsoleBrowser(t, env), newConsoleBrowser(t, env)
	ada.signInAs(admin.AccountID, "acme", time.Hour)
	oz.signInAs(other.AccountID, "acme", time.Hour)
	versionOf := func(page string) string {
		m := versionInput.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no version field in the page")
		}
		return m[1]
	}
	_, page := ada.do(http.MethodGet, "/console/w/acme", nil)
	adaVersion := versionOf(page)
	_, page = oz.do(http.MethodGet, "/console/w/acme", nil)
	ozVersion := versionOf(page)
	if st, body := ada.post("/console/w/acme/rules", url.Values{"group": {"Sales"}, "test": {"Analyst"}, "version": {adaVersion}}); st != http.StatusSeeOther {
		t.Fatalf("ada adds a rule: %d\n%s", st, body)
	}
	st, page := oz.post("/console/w/acme/rules", url.Values{"group": {"Support"}, "dev": {"Operator"}, "version": {ozVersion}})
	if st != http.StatusBadRequest || !strings.Contains(page, "changed by someone else") || !strings.Contains(page, `value="Support"`) {
		t.Fatalf("oz's stale rule: %d, want 400 with the message and the typed group kept\n%s", st, page)
	}
	// A removal by position from the stale page is refused too: position
	// 1 is not the rule oz saw there any more.
	if st, page := oz.post("/console/w/acme/rules/delete", url.Values{"n": {"2"}, "version": {ozVersion}}); st != http.StatusBadRequest ||
		!strings.Contains(page, "changed by someone else") {
		t.Fatalf("oz's stale removal: %d\n%s", st, page)
	}
	ws, err := env.Store.GetWorkspace(t.Context(), "acme")
	if err != nil || fmt.Sprint(ws.Settings.Roles.GroupRules) != "[{Engineering {Admin  }} {Sales { Analyst }}]" {
		t.Fatalf("rules after the refused edits: %v, %v", ws.Settings.Roles.GroupRules, err)
	}
	// The refusal page shows the current rules and version: oz's retry
	// from it keeps ada's rule.
	if st, body := oz.post("/console/w/acme/rules", url.Values{"group": {"Support"}, "dev": {"Operator"}, "version": {versionOf(page)}}); st != http.StatusSeeOther {
		t.Fatalf("oz's retry: %d\n%s", st, body)
	}
	ws, err = env.Store.GetWorkspace(t.Context(), "acme")
	if err != nil || len(ws.Settings.Roles.GroupRules) != 3 || ws.Settings.Roles.GroupRules[2].Group != "Support" {
		t.Fatalf("rules after the retry: %v, %v", ws.Settings.Roles.GroupRules, err)
	}
}

var versionInput = regexp.MustCompile(`name="version" value="(\d+)"`)
