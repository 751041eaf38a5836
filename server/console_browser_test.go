package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
)

// TestBrowserConsole walks the admin console in a real headless Chromium:
// an admin signs in through the demo IdP (a real signed assertion),
// switches JIT on, is shown a refused metadata paste next to its field,
// uploads the IdP metadata, adds a custom role and a group rule using it,
// creates and revokes a SCIM token, finds a JIT member by email and
// changes their role, and sees a SCIM member read-only; then an operator
// signs in with the admin token and creates a workspace. Every step
// checks what the page shows, and that the main pages fit 390 px. With
// SCIMJIT_CONSOLE_SHOTS=<dir> it saves them at 1280 and 390 px wide there
// (docs/console).
func TestBrowserConsole(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.Demo = true })
	md, err := env.Server.SAML().DemoIdPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	env.CreateWorkspace(t, "acme", func(ws *storage.Workspace) {
		ws.Name = "Acme Corp"
		ws.Settings.IdP.MetadataXML = string(md)
	})
	addMember(t, env, "acme", "maria.garcia@example.com", storage.SourceJIT, storage.Roles{Dev: "Admin", Test: "Admin", Prod: "Operator"})
	joe := addMember(t, env, "acme", "joe.bloggs@example.com", storage.SourceJIT, storage.Roles{Dev: "Operator", Test: "Operator", Prod: "NoAccess"})
	scimUser := addMember(t, env, "acme", "sam.scim@example.com", storage.SourceSCIM, storage.Roles{Dev: "Analyst", Test: "Analyst", Prod: "NoAccess"})
	for i := range 3 {
		addMember(t, env, "acme", fmt.Sprintf("person%d@example.com", i), storage.SourceJIT, storage.Roles{Dev: "Operator", Test: "Operator", Prod: "NoAccess"})
	}
	if _, err := env.Store.CreateGroup(t.Context(), "acme", storage.Group{WorkspaceID: "acme", DisplayName: "Engineering",
		ExternalID: "00g1eng", Members: []string{joe.ID, scimUser.ID}}); err != nil {
		t.Fatal(err)
	}
	mdFile := filepath.Join(t.TempDir(), "idp-metadata.xml")
	if err := os.WriteFile(mdFile, md, 0o644); err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("SCIMJIT_CONSOLE_SHOTS")

	ctx := servertest.Browser(t, 3*time.Minute)
	const stepTimeout = 20 * time.Second
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
		}
	}
	// load runs steps that load a new document (a click that submits a
	// form, a navigation) and waits for it.
	load := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		if _, err := chromedp.RunResponse(sctx, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	value := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Value(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("value of %s: %v", sel, err)
		}
		return s
	}
	js := func(expr string) bool {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	// shot checks that the page fits 390 px without sideways scrolling
	// (tables scroll inside their box) and, with SCIMJIT_CONSOLE_SHOTS,
	// saves it at 1280 and 390 px.
	shot := func(name string) {
		t.Helper()
		run("narrow viewport", chromedp.EmulateViewport(390, 900))
		if !js(`document.documentElement.scrollWidth <= 390`) {
			t.Errorf("%s: wider than 390 px", name)
		}
		for _, w := range []int64{1280, 390} {
			if shots == "" {
				break
			}
			run("viewport", chromedp.EmulateViewport(w, 900))
			sctx, cancel := context.WithTimeout(ctx, stepTimeout)
			png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
			cancel()
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(shots, fmt.Sprintf("%s-%d.png", name, w)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run("reset viewport", chromedp.EmulateViewport(1100, 900))
	}
	flash := func(want string) {
		t.Helper()
		if got := text("#flash"); got != want {
			t.Errorf("confirmation %q, want %q", got, want)
		}
	}

	// Not signed in: the console asks for a sign-in.
	load("console before sign-in", chromedp.Navigate(env.URL+"/console/w/acme"))
	if got := text("main h1"); got != "Sign in required" {
		t.Fatalf("console before sign-in: heading %q", got)
	}

	// 1. The admin signs in through the demo IdP (SSO) and opens the console.
	run("demo IdP form",
		chromedp.Navigate(env.URL+"/demo/idp?ws=acme"),
		chromedp.WaitVisible(chromedp.CSS("#demo-idp")),
		chromedp.SetValue(chromedp.CSS("#workspace"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#email"), "maria.garcia@example.com"),
		chromedp.SendKeys(chromedp.CSS("#workato_role"), "Admin"),
	)
	run("sign in", chromedp.Click(chromedp.CSS("#sign-in")), chromedp.WaitVisible(chromedp.CSS("#active-workspace")))
	load("open the console from the start page", chromedp.Click(chromedp.CSS("#console-link")))
	if got := text("main h1"); got != "Authentication & provisioning" {
		t.Fatalf("console heading %q", got)
	}
	if got := text("#signed-in-as"); got != "maria.garcia@example.com" {
		t.Errorf("signed in as %q", got)
	}
	if got := value("#sp-acs"); got != env.URL+"/saml/acme/acs" {
		t.Errorf("ACS URL shown %q", got)
	}
	if !strings.Contains(text("#attributes"), "appuser.workato_role_prod") {
		t.Errorf("attribute table without the Okta spelling:\n%s", text("#attributes"))
	}

	// 2. JIT on.
	if js(`document.querySelector("#jit-enabled").checked`) {
		t.Fatal("JIT already on")
	}
	run("tick JIT", chromedp.Click(chromedp.CSS("#jit-enabled")))
	load("save JIT", chromedp.Click(chromedp.CSS("#jit-form button[type=submit]")))
	flash("Provisioning settings saved.")
	if !js(`document.querySelector("#jit-enabled").checked`) {
		t.Error("JIT not shown on after saving")
	}

	// 3. Metadata: a broken paste is refused next to the field with the
	// text kept; the file upload is taken.
	run("paste broken metadata", chromedp.SetValue(chromedp.CSS("#metadataXML"), "<EntityDescriptor>broken"))
	load("save broken metadata", chromedp.Click(chromedp.CSS("#metadata-form button[type=submit]")))
	if got := text("#metadataXML-error"); !strings.Contains(got, "metadataXML") {
		t.Errorf("no problem next to the metadata field: %q", got)
	}
	if got := value("#metadataXML"); got != "<EntityDescriptor>broken" {
		t.Errorf("pasted metadata not kept: %q", got)
	}
	run("clear paste and choose file", chromedp.Clear(chromedp.CSS("#metadataXML")),
		chromedp.SetUploadFiles(chromedp.CSS("#metadataFile"), []string{mdFile}))
	load("upload metadata", chromedp.Click(chromedp.CSS("#metadata-form button[type=submit]")))
	flash("Identity provider metadata saved.")
	if got := text("#sso-status"); !strings.Contains(got, "SSO configured") || !strings.Contains(got, "/demo/idp/metadata") {
		t.Errorf("SSO status %q", got)
	}
	if got := text("#cert-expiry"); !strings.Contains(got, "UTC") {
		t.Errorf("certificate expiry %q", got)
	}

	// 4. A custom role, then a group rule that gives it.
	run("type a custom role", chromedp.SetValue(chromedp.CSS("#customRoles"), "Sales Ops"))
	load("save custom roles", chromedp.Click(chromedp.CSS("#roles-form button[type=submit]")))
	flash("Custom roles saved.")
	if got := value("#customRoles"); got != "Sales Ops" {
		t.Errorf("custom roles shown %q", got)
	}
	run("fill a rule", chromedp.SendKeys(chromedp.CSS("#rule-group"), "sales-team"),
		chromedp.SetValue(chromedp.CSS("#rule-dev"), "Sales Ops"), chromedp.SetValue(chromedp.CSS("#rule-prod"), "Analyst"))
	load("add the rule", chromedp.Click(chromedp.CSS("#rule-form button[type=submit]")))
	flash("Mapping rule added.")
	if got := text("#rules tbody tr"); !strings.Contains(got, "sales-team") || !strings.Contains(got, "Sales Ops") || !strings.Contains(got, "Analyst") {
		t.Errorf("rules table row %q", got)
	}
	shot("authentication")

	// 5. A SCIM token: created and shown once, then revoked.
	load("SCIM page", chromedp.Click(chromedp.CSS(`nav.side a[href="/console/w/acme/scim"]`)))
	if got := value("#scim-base"); got != env.URL+"/scim/v2/acme" {
		t.Errorf("SCIM base URL %q", got)
	}
	run("name a token", chromedp.SendKeys(chromedp.CSS("#token-name"), "Okta production"))
	load("create the token", chromedp.Click(chromedp.CSS("#token-form button[type=submit]")))
	secret := value("#new-secret")
	if !strings.HasPrefix(secret, server.SCIMTokenPrefix) {
		t.Fatalf("new token shown as %q", secret)
	}
	if resp, _ := env.Do(t, "GET", "/scim/v2/acme/Users", secret, nil); resp.StatusCode != 200 {
		t.Errorf("the new token does not work: %d", resp.StatusCode)
	}
	if got := text("#tokens"); !strings.Contains(got, "Okta production") {
		t.Errorf("tokens table %q", got)
	}
	shot("scim")
	load("revoke the token", chromedp.Click(chromedp.CSS(`#tokens button[aria-label="Revoke token Okta production"]`)))
	flash("SCIM token revoked.")
	if got := text("#tokens"); strings.Contains(got, "Okta production") {
		t.Errorf("revoked token still listed: %q", got)
	}
	// A process remembers a good token for up to a second (the SCIM
	// handler's token cache).
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, _ := env.Do(t, "GET", "/scim/v2/acme/Users", secret, nil)
		if resp.StatusCode == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked token still works: %d", resp.StatusCode)
		}
	}

	// 6. Members: the list, a search by email, a JIT member's role.
	load("members", chromedp.Click(chromedp.CSS(`nav.side a[href="/console/w/acme/members"]`)))
	if got := text("#member-count"); got != "6 members" {
		t.Errorf("member count %q", got)
	}
	shot("members")
	run("filter by source", chromedp.SetValue(chromedp.CSS("#filter-source"), "jit"))
	load("filter", chromedp.Click(chromedp.CSS("#member-filter button[type=submit]")))
	if got := text("#members tbody"); !strings.Contains(got, "JIT") || strings.Contains(got, "SCIM") {
		t.Errorf("members from JIT: %q", got)
	}
	if got := text("#member-count"); !strings.HasSuffix(got, "match") {
		t.Errorf("filtered member count %q", got)
	}
	load("clear the filters", chromedp.Click(chromedp.CSS("#clear-filters")))
	run("search", chromedp.SendKeys(chromedp.CSS("#search-q"), "JOE.bloggs@example.com"))
	load("find", chromedp.Click(chromedp.CSS("#member-search button[type=submit]")))
	if got := text("#members tbody"); !strings.Contains(got, "joe.bloggs@example.com") || strings.Contains(got, "maria") {
		t.Fatalf("search result %q", got)
	}
	load("open the member", chromedp.Click(chromedp.CSS(`#members a`)))
	if got := text("#member-name"); got != "joe.bloggs@example.com" {
		t.Fatalf("member page %q", got)
	}
	run("choose a role", chromedp.SetValue(chromedp.CSS("#role-dev"), "Sales Ops"))
	load("save the roles", chromedp.Click(chromedp.CSS("#roles-form button[type=submit]")))
	flash("Member roles saved.")
	if got := text(`#member-roles tr[data-env="dev"]`); !strings.Contains(got, "Sales Ops") || !strings.Contains(got, "set by an admin in this console") {
		t.Errorf("DEV role row %q", got)
	}
	if got := text("#member-events"); !strings.Contains(got, "admin.member.roles_changed") || !strings.Contains(got, "user:") {
		t.Errorf("member events %q", got)
	}
	if u, err := env.Store.GetUser(t.Context(), "acme", joe.ID); err != nil || u.Roles.Dev != "Sales Ops" {
		t.Errorf("stored roles %+v, %v", u.Roles, err)
	}
	shot("member")
	load("SCIM member", chromedp.Navigate(env.URL+"/console/w/acme/members/"+scimUser.ID))
	if got := text("#scim-managed"); !strings.Contains(got, "Managed by your identity provider") {
		t.Errorf("SCIM member page %q", got)
	}
	if js(`document.querySelector("#roles-form") !== null`) {
		t.Error("SCIM member has a role form")
	}
	load("groups", chromedp.Navigate(env.URL+"/console/w/acme/groups"))
	if got := text("#groups"); !strings.Contains(got, "Engineering") {
		t.Errorf("groups %q", got)
	}
	load("recent sign-ins", chromedp.Click(chromedp.CSS(`nav.side a[href="/console/w/acme/sign-ins"]`)))
	if got := text("#sign-ins tbody tr"); !strings.Contains(got, "maria.garcia@example.com") || !strings.Contains(got, "signed in") {
		t.Errorf("newest sign-in %q", got)
	}
	shot("sign-ins")
	load("events", chromedp.Navigate(env.URL+"/console/w/acme/events?type=admin."))
	if got := text("#events"); !strings.Contains(got, "admin.scim_token.revoked") || strings.Contains(got, "login.") {
		t.Errorf("events filtered by admin. %q", got)
	}
	shot("events")

	// 7. An operator signs in with the admin token and creates a workspace.
	load("operator page", chromedp.Navigate(env.URL+"/console/operator"))
	shot("operator-signin")
	run("wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"))
	load("sign in with a wrong token", chromedp.Click(chromedp.CSS("#operator-signin button")))
	if got := text("#token-error"); got != "This is not a valid admin token." {
		t.Errorf("wrong token: %q", got)
	}
	run("token", chromedp.SendKeys(chromedp.CSS("#token"), env.AdminToken))
	load("operator sign-in", chromedp.Click(chromedp.CSS("#operator-signin button")))
	if got := text("main h1"); got != "Workspaces" {
		t.Fatalf("after operator sign-in: %q", got)
	}
	if got := text("#signed-in-as"); got != "Operator · "+server.DefaultAdminTokenName {
		t.Errorf("operator shown as %q", got)
	}
	if js(`document.documentElement.outerHTML.includes(` + fmt.Sprintf("%q", env.AdminToken) + `)`) {
		t.Error("the admin token is in the page")
	}
	run("bad id", chromedp.SendKeys(chromedp.CSS("#ws-id"), "globex"), chromedp.SendKeys(chromedp.CSS("#ws-name"), "  "))
	load("create with an empty name", chromedp.Submit(chromedp.CSS("#create-workspace")))
	if got := text("#ws-name-error"); got != "name is required" {
		t.Errorf("empty name: %q", got)
	}
	if got := value("#ws-id"); got != "globex" {
		t.Errorf("id not kept: %q", got)
	}
	run("name", chromedp.SendKeys(chromedp.CSS("#ws-name"), "Globex"))
	load("create", chromedp.Click(chromedp.CSS("#create-workspace button")))
	flash("Workspace created.")
	if got := text("nav.side .ws"); !strings.Contains(got, "Globex") {
		t.Errorf("new workspace's console: %q", got)
	}
	load("workspaces", chromedp.Navigate(env.URL+"/console"))
	if got := text("#workspaces"); !strings.Contains(got, "Globex") || !strings.Contains(got, "Acme Corp") {
		t.Errorf("workspaces %q", got)
	}
	shot("workspaces")
	events, err := env.Store.ListEvents(t.Context(), "globex", "", 10)
	if err != nil || len(events) == 0 || events[0].Actor != "admin:"+server.DefaultAdminTokenName {
		t.Errorf("globex events %+v, %v", events, err)
	}

	// 8. Deleting a workspace asks for its id.
	load("delete globex", chromedp.Click(chromedp.CSS(`a[aria-label="Delete workspace globex"]`)))
	run("mistype the id", chromedp.SendKeys(chromedp.CSS("#confirm"), "globe"))
	load("confirm with a wrong id", chromedp.Click(chromedp.CSS("#delete-form button")))
	if got := text("#confirm-error"); !strings.Contains(got, "globex") {
		t.Errorf("wrong confirmation: %q", got)
	}
	if _, err := env.Store.GetWorkspace(t.Context(), "globex"); err != nil {
		t.Fatalf("globex after a wrong confirmation: %v", err)
	}
	run("type the id", chromedp.Clear(chromedp.CSS("#confirm")), chromedp.SendKeys(chromedp.CSS("#confirm"), "globex"))
	load("delete", chromedp.Click(chromedp.CSS("#delete-form button")))
	flash("Workspace deleted.")
	if got := text("#workspaces"); strings.Contains(got, "Globex") || !strings.Contains(got, "Acme Corp") {
		t.Errorf("workspaces after the deletion %q", got)
	}
}
