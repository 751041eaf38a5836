package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/server/webhooks/webhookstest"
	"github.com/scimjit/scimjit/storage"
)

// TestBrowserConsole walks the admin console in a real headless Chromium:
// an admin signs in through the demo IdP (a real signed assertion),
// switches JIT on, is shown a refused metadata paste next to its field,
// uploads the IdP metadata, adds a custom role and a group rule using it,
// creates and revokes a SCIM token, finds a JIT member by email and
// changes their role, and sees a SCIM member read-only; adds a webhook
// endpoint (its secret shown once), rotates its secret, sees a delivery
// to a receiver and redelivers a failed one; filters the events by
// actor and watches the live tail show a SCIM write; then an operator
// signs in with the admin token and creates a workspace. Every step
// checks what the page shows, and that the main pages fit 390 px. With
// SCIMJIT_CONSOLE_SHOTS=<dir> it saves them at 1280 and 390 px wide there
// (docs/console).
func TestBrowserConsole(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) {
		c.Demo = true
		// The test's webhook receiver is on loopback.
		c.Webhooks = server.WebhooksConfig{AllowPrivate: true, PollInterval: 50 * time.Millisecond, Timeout: 2 * time.Second}
	})
	md, err := env.Server.SAML().DemoIdPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	scimToken := env.CreateWorkspace(t, "acme", func(ws *storage.Workspace) {
		ws.Name = "Acme Corp"
		ws.Settings.IdP.MetadataXML = string(md)
	})
	maria := addMember(t, env, "acme", "maria.garcia@example.com", storage.SourceJIT, storage.Roles{Dev: "Admin", Test: "Admin", Prod: "Operator"})
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
	run("search by name", chromedp.SetValue(chromedp.CSS("#search-by"), "name"), chromedp.SendKeys(chromedp.CSS("#search-q"), "joe b"))
	load("find by name", chromedp.Click(chromedp.CSS("#member-search button[type=submit]")))
	if got := text("#members tbody"); !strings.Contains(got, "Joe Bloggs") || !strings.Contains(got, "joe.bloggs@example.com") || strings.Contains(got, "maria") {
		t.Fatalf("search by name %q", got)
	}
	if got := text("#member-count"); got != "1 found" {
		t.Errorf("search by name count %q", got)
	}
	run("search by email", chromedp.SetValue(chromedp.CSS("#search-by"), "email"), chromedp.Clear(chromedp.CSS("#search-q")),
		chromedp.SendKeys(chromedp.CSS("#search-q"), "JOE.bloggs@example.com"))
	load("find", chromedp.Click(chromedp.CSS("#member-search button[type=submit]")))
	if got := text("#members tbody"); !strings.Contains(got, "joe.bloggs@example.com") || strings.Contains(got, "maria") {
		t.Fatalf("search result %q", got)
	}
	load("open the member", chromedp.Click(chromedp.CSS(`#members a`)))
	if got := text("#member-name"); got != "joe.bloggs@example.com" {
		t.Fatalf("member page %q", got)
	}
	if got := text("#member-full-name"); got != "Joe Bloggs" {
		t.Errorf("member page full name %q", got)
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
	// What the IdP sent, with the spelling each name was read by.
	run("open what the identity provider sent", chromedp.Click(chromedp.CSS("#received-0 summary")))
	if got := text("#received-0"); !strings.Contains(got, "workato_email") || !strings.Contains(got, "read from") {
		t.Errorf("received attributes %q", got)
	}
	shot("sign-ins")
	load("events", chromedp.Navigate(env.URL+"/console/w/acme/events?type=admin."))
	if got := text("#events"); !strings.Contains(got, "admin.scim_token.revoked") || strings.Contains(got, "login.") {
		t.Errorf("events filtered by admin. %q", got)
	}

	// 7. Webhooks: an endpoint for a receiver on loopback, its secret
	// shown once, then rotated.
	recv := webhookstest.NewReceiver(t)
	load("webhooks", chromedp.Click(chromedp.CSS(`nav.side a[href="/console/w/acme/webhooks"]`)))
	run("fill the endpoint", chromedp.SendKeys(chromedp.CSS("#wh-url"), "ftp://"+recv.Server.Listener.Addr().String()+"/hook"),
		chromedp.SendKeys(chromedp.CSS("#wh-description"), "Billing app"), chromedp.SendKeys(chromedp.CSS("#wh-types"), "user.*"))
	load("add a refused endpoint", chromedp.Click(chromedp.CSS("#webhook-form button[type=submit]")))
	if got := text("#wh-url-error"); !strings.Contains(got, "https") {
		t.Errorf("ftp URL refused with %q", got)
	}
	if got := value("#wh-description"); got != "Billing app" {
		t.Errorf("description not kept: %q", got)
	}
	run("fix the URL", chromedp.SetValue(chromedp.CSS("#wh-url"), recv.Server.URL+"/hook"))
	load("add the endpoint", chromedp.Click(chromedp.CSS("#webhook-form button[type=submit]")))
	first := value("#new-secret")
	if !strings.HasPrefix(first, "whsec_") {
		t.Fatalf("new endpoint's secret shown as %q", first)
	}
	if got := text("#endpoints"); !strings.Contains(got, recv.Server.URL+"/hook") || !strings.Contains(got, "Billing app") || !strings.Contains(got, "user.*") || !strings.Contains(got, "Enabled") {
		t.Errorf("endpoints table %q", got)
	}
	shot("webhooks")
	load("webhooks again", chromedp.Navigate(env.URL+"/console/w/acme/webhooks"))
	if js(`document.querySelector("#new-secret") !== null || document.documentElement.outerHTML.includes(` + fmt.Sprintf("%q", first) + `)`) {
		t.Error("the secret is shown a second time")
	}
	load("open the endpoint", chromedp.Click(chromedp.CSS("#endpoints a")))
	endpointPage := env.URL + chromedpLocation(t, ctx)
	run("choose an overlap", chromedp.SetValue(chromedp.CSS("#overlap"), "1h"))
	load("rotate", chromedp.Click(chromedp.CSS("#rotate-form button[type=submit]")))
	second := value("#new-secret")
	if !strings.HasPrefix(second, "whsec_") || second == first {
		t.Fatalf("rotated secret shown as %q (first %q)", second, first)
	}
	if got := text("#rotate-form"); !strings.Contains(got, "1 hour") {
		t.Errorf("rotate form %q", got)
	}
	recv.SetSecret(second)

	// A SCIM write reaches the receiver, signed with the new secret, and
	// the page lists the delivery.
	scimCreate := func(userName string) {
		t.Helper()
		resp, body := env.Do(t, "POST", "/scim/v2/acme/Users", scimToken, map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName})
		if resp.StatusCode != 201 {
			t.Fatalf("SCIM create %s: %d %s", userName, resp.StatusCode, body)
		}
	}
	scimCreate("lee.webhook@example.com")
	recv.WaitTypes([]string{"user.created"}, 15*time.Second)
	load("endpoint page after the delivery", chromedp.Navigate(endpointPage))
	if got := text("#deliveries tbody tr"); !strings.Contains(got, "user.created") || !strings.Contains(got, "204") || !strings.Contains(got, "delivered") {
		t.Errorf("newest delivery %q", got)
	}

	// The receiver fails: the delivery is archived after its retries,
	// listed as failed, and redelivered by hand once it is back.
	recv.SetFail(func(w http.ResponseWriter) bool { w.WriteHeader(http.StatusInternalServerError); return true })
	scimCreate("kim.failed@example.com")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) { // waiting for the queue's retries
		load("endpoint page, waiting for the failure", chromedp.Navigate(endpointPage))
		if js(`document.querySelector("#failed tr[data-event]") !== null`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery listed: %s", text("#failed"))
		}
	}
	if got := text("#failed tbody tr"); !strings.Contains(got, "user.created") || !strings.Contains(got, "500") {
		t.Errorf("failed delivery %q", got)
	}
	if got := text("#deliveries tbody tr"); !strings.Contains(got, "500") || !strings.Contains(got, "failed") {
		t.Errorf("newest attempt %q", got)
	}
	shot("webhook")
	recv.SetFail(nil)
	load("redeliver", chromedp.Click(chromedp.CSS(`#failed button[aria-label^="Redeliver event"]`)))
	flash("Delivery queued again.")
	recv.WaitTypes([]string{"user.created", "user.created"}, 15*time.Second)
	load("endpoint page after the redelivery", chromedp.Navigate(endpointPage))
	if js(`document.querySelector("#failed tr[data-event]") !== null`) {
		t.Errorf("still listed as failed: %s", text("#failed"))
	}
	// Redeliver since a time: both user.* events of this workspace.
	run("since when", chromedp.SetValue(chromedp.CSS("#since"), time.Now().UTC().Add(-10*time.Minute).Format("2006-01-02T15:04")))
	load("redeliver since", chromedp.Click(chromedp.CSS("#redeliver-since button[type=submit]")))
	flash("2 deliveries queued again.")

	// 8. Events: the admin's own, by actor; then the live tail shows a
	// SCIM write as it happens.
	load("events", chromedp.Click(chromedp.CSS(`nav.side a[href="/console/w/acme/events"]`)))
	run("filter by actor", chromedp.SetValue(chromedp.CSS("#event-actor"), "user:"+maria.ID))
	load("filter", chromedp.Click(chromedp.CSS("#event-filter button[type=submit]")))
	if !js(`(() => { const by = [...document.querySelectorAll("#event-rows tr[data-event] td:last-child")].map(td => td.textContent.trim());
		return by.length >= 4 && by.every(a => a === ` + fmt.Sprintf("%q", "user:"+maria.ID) + `); })()`) {
		t.Errorf("events by user:%s show other actors:\n%s", maria.ID, text("#events"))
	}
	if got := text("#events"); !strings.Contains(got, "admin.webhook.created") || !strings.Contains(got, "admin.webhook.secret_rotated") ||
		!strings.Contains(got, "admin.webhook.redelivered") || strings.Contains(got, "scim.user.created") {
		t.Errorf("events by the admin %q", got)
	}
	load("scim events", chromedp.Navigate(env.URL+"/console/w/acme/events?type=scim.user."))
	before := text("#event-rows")
	run("live tail on", chromedp.Click(chromedp.CSS("#live-tail")))
	scimCreate("tess.tail@example.com")
	run("the new event appears", chromedp.Poll[chromedp.Void](`(() => { const rows = document.querySelectorAll("#event-rows tr[data-event]");
		return rows.length === 3 && rows[2].textContent.includes("scim.user.created"); })()`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if strings.Count(before, "scim.user.created") != 2 {
		t.Errorf("scim events before the tail %q", before)
	}
	if got := text("#tail-status"); !strings.HasPrefix(got, "Live") {
		t.Errorf("tail status %q", got)
	}
	shot("events")

	// 9. An operator signs in with the admin token and creates a workspace.
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

	// 10. Deleting a workspace asks for its id.
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

// chromedpLocation is the path of the page the browser shows.
func chromedpLocation(t *testing.T, ctx context.Context) string {
	t.Helper()
	p, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
