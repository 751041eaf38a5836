package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

func TestAppRolesSettingThroughAdminAPI(t *testing.T) {
	env := servertest.New(t, nil)

	resp, body := env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{"id": "plain", "name": "Plain"})
	wantStatus(t, resp, body, http.StatusCreated)
	if ws := decode[server.WorkspaceJSON](t, body); ws.Settings.Roles.AppRoles {
		t.Errorf("roles.appRoles defaults to true: %+v", ws.Settings.Roles)
	}
	if !strings.Contains(string(body), `"appRoles":false`) {
		t.Errorf("the setting is not shown when off: %s", body)
	}

	resp, body = env.Admin(t, http.MethodPost, "/admin/v1/workspaces", map[string]any{
		"id": "finance", "name": "Finance", "settings": map[string]any{"roles": map[string]any{"appRoles": true}},
	})
	wantStatus(t, resp, body, http.StatusCreated)
	if ws := decode[server.WorkspaceJSON](t, body); !ws.Settings.Roles.AppRoles {
		t.Fatalf("created %+v", ws.Settings)
	}
	if ws, err := env.Store.GetWorkspace(t.Context(), "finance"); err != nil || !ws.Settings.Roles.AppRoles {
		t.Fatalf("stored %+v, %v", ws.Settings, err)
	}

	// A PATCH of another setting keeps it; naming it changes it.
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/finance", map[string]any{
		"settings": map[string]any{"jit": map[string]any{"enabled": true}}})
	wantStatus(t, resp, body, http.StatusOK)
	if ws := decode[server.WorkspaceJSON](t, body); !ws.Settings.Roles.AppRoles || !ws.Settings.JIT.Enabled {
		t.Fatalf("patched other setting: %+v", ws.Settings)
	}
	resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/finance", map[string]any{
		"settings": map[string]any{"roles": map[string]any{"appRoles": false}}})
	wantStatus(t, resp, body, http.StatusOK)
	if ws, err := env.Store.GetWorkspace(t.Context(), "finance"); err != nil || ws.Settings.Roles.AppRoles || ws.Version != 3 {
		t.Fatalf("after PATCH %+v, %v", ws, err)
	}

	// Not a boolean, or an unknown key: 400, nothing changes.
	for _, bad := range []map[string]any{
		{"roles": map[string]any{"appRoles": "yes"}},
		{"roles": map[string]any{"appRole": true}},
	} {
		resp, body = env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/finance", map[string]any{"settings": bad})
		wantStatus(t, resp, body, http.StatusBadRequest)
	}
	if ws, _ := env.Store.GetWorkspace(t.Context(), "finance"); ws.Settings.Roles.AppRoles || ws.Version != 3 {
		t.Errorf("a refused PATCH changed the workspace: %+v", ws)
	}
}

func TestBootstrapDeclaresAppRoles(t *testing.T) {
	store := redistest.NewStore(t)
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	b, err := server.ParseBootstrap([]byte(`
workspaces:
  - id: finance
    name: Finance
    settings:
      roles: {appRoles: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second apply changes nothing
		if err := server.ApplyBootstrap(ctx, store, log, b, secrets(nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := store.GetWorkspace(ctx, "finance")
	if err != nil || !ws.Settings.Roles.AppRoles || ws.Version != 1 {
		t.Fatalf("finance %+v, %v", ws, err)
	}
	// Declared, so an admin's change is put back at the next apply.
	if _, err := store.UpdateWorkspace(ctx, "finance", func(w *storage.Workspace) error {
		w.Settings.Roles.AppRoles = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := server.ApplyBootstrap(ctx, store, log, b, secrets(nil, nil)); err != nil {
		t.Fatal(err)
	}
	if ws, _ := store.GetWorkspace(ctx, "finance"); !ws.Settings.Roles.AppRoles {
		t.Errorf("declared roles.appRoles not put back: %+v", ws.Settings.Roles)
	}

	if _, err := server.ParseBootstrap([]byte("workspaces:\n  - id: a\n    name: A\n    settings: {roles: {appRoles: maybe}}\n")); err == nil {
		t.Error("roles.appRoles: maybe accepted")
	}
}
