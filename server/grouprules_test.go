package server_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

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
