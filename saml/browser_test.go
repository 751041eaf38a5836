package saml_test

import (
	"context"
	"encoding/json"
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

// TestBrowserDemoJoinAndSwitch walks the demo path a newcomer takes, in a
// real headless Chromium: the demo IdP signs her in to "demo" by JIT, a
// sign-in to "demo-hr" asks her to check her email, the demo outbox holds
// the link, she confirms, lands in demo-hr and switches back to demo.
// Screenshots of each step are saved under the test's temp dir (or
// SCIMJIT_BROWSER_SHOTS when set, to keep them) and their paths logged.
func TestBrowserDemoJoinAndSwitch(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.Demo = true })
	md, err := env.Server.SAML().DemoIdPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	for id, name := range map[string]string{"demo": "Demo", "demo-hr": "Demo HR"} {
		env.CreateWorkspace(t, id, func(ws *storage.Workspace) {
			ws.Name = name
			ws.Settings.JIT.Enabled = true
			ws.Settings.IdP.MetadataXML = string(md)
		})
	}

	shots := t.TempDir()
	if d := os.Getenv("SCIMJIT_BROWSER_SHOTS"); d != "" {
		shots = d
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The whole walk, browser included, ends within two minutes.
	ctx := servertest.Browser(t, 2*time.Minute)
	const stepTimeout = 20 * time.Second

	step := 0
	shot := func(name string) {
		t.Helper()
		step++
		sctx, scancel := context.WithTimeout(ctx, stepTimeout)
		defer scancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, fmt.Sprintf("%02d-%s.png", step, strings.ReplaceAll(strings.ToLower(name), " ", "-")))
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, stepTimeout)
		defer scancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			shot("failed " + what)
			hint := ""
			if strings.Contains(body, "Request refused") {
				hint = "\nhint: a form POST was refused by checkCSRF. A page served with " +
					"Referrer-Policy: no-referrer makes Chromium send \"Origin: null\" on its form POSTs " +
					"(Fetch standard, serializing a request origin), which checkCSRF rejects as foreign; " +
					"pages need Referrer-Policy: same-origin (or checkCSRF must treat \"null\" like no Origin)."
			}
			t.Fatalf("%s: %v\npage text:\n%s%s", what, err, body, hint)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, stepTimeout)
		defer scancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	signIn := func(ws, role, roleTest, roleProd string) {
		t.Helper()
		do("demo IdP form for "+ws,
			chromedp.Navigate(env.URL+"/demo/idp?ws="+ws),
			chromedp.WaitVisible(chromedp.CSS("#demo-idp")),
			chromedp.SetValue(chromedp.CSS("#workspace"), ws),
			chromedp.SendKeys(chromedp.CSS("#email"), "maria.garcia@example.com"),
			chromedp.SendKeys(chromedp.CSS("#full_name"), "María García"),
			chromedp.SendKeys(chromedp.CSS("#workato_role"), role),
			chromedp.SendKeys(chromedp.CSS("#workato_role_test"), roleTest),
			chromedp.SendKeys(chromedp.CSS("#workato_role_prod"), roleProd),
		)
		shot("idp form " + ws)
		do("sign in to "+ws, chromedp.Click(chromedp.CSS("#sign-in")))
	}

	// 1. The demo IdP signs her in to "demo": JIT creates the account.
	signIn("demo", "Admin", "Analyst", "Operator")
	do("home after JIT", chromedp.WaitVisible(chromedp.CSS("#active-workspace")))
	if got := text("#active-workspace"); got != "demo" {
		t.Fatalf("active workspace after JIT = %q", got)
	}
	if got := text("main h1"); got != "Signed in as María García" {
		t.Errorf("home heading = %q", got)
	}
	shot("home demo")

	// 2. Sign-in to demo-hr: the account exists, so a link is mailed.
	signIn("demo-hr", "Analyst", "Operator", "NoAccess")
	do("check-your-email page", chromedp.WaitVisible(chromedp.CSS("#join-sent")))
	if got := text("#join-sent"); got != "Check your email" {
		t.Fatalf("join page heading = %q", got)
	}
	if got := text("main"); !strings.Contains(got, "Demo HR") || !strings.Contains(got, "ma***@example.com") {
		t.Errorf("check-your-email page does not name the workspace and the address:\n%s", got)
	}
	shot("check your email")

	// 3. The demo outbox holds the mail with the link.
	do("open the demo outbox",
		chromedp.Click(chromedp.CSS(`#demo-outbox a[href="/demo/outbox"]`)),
		chromedp.WaitVisible(chromedp.CSS("a.mail-link")),
	)
	if got := text("section.mail h2"); got != "Confirm joining Demo HR on scimjit" {
		t.Errorf("newest outbox mail subject = %q", got)
	}
	if got := text("section.mail p.muted"); !strings.Contains(got, "maria.garcia@example.com") {
		t.Errorf("outbox mail is not addressed to the account: %q", got)
	}
	shot("outbox")

	// 4. The link shows a confirmation page; confirming joins demo-hr.
	do("open the join link",
		chromedp.Click(chromedp.CSS("section.mail a.mail-link")),
		chromedp.WaitVisible(chromedp.CSS("#join-confirm")),
	)
	if got := text("#join-confirm"); got != "Join Demo HR?" {
		t.Errorf("confirmation heading = %q", got)
	}
	if got := text("#join-roles"); !strings.Contains(got, "Analyst") || !strings.Contains(got, "NoAccess") {
		t.Errorf("confirmation page roles = %q", got)
	}
	shot("confirm")
	do("confirm",
		chromedp.Click(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS(`#switcher li[data-workspace="demo-hr"] strong`)),
	)
	if got := text("#active-workspace"); got != "demo-hr" {
		t.Fatalf("active workspace after confirm = %q", got)
	}
	if got := text(`#memberships tr[data-workspace="demo-hr"]`); !strings.Contains(got, "Analyst") || !strings.Contains(got, "active") {
		t.Errorf("demo-hr membership row = %q", got)
	}
	shot("home demo-hr")

	// 5. Switch back to demo with the switcher.
	do("switch to demo",
		chromedp.Click(chromedp.CSS(`#switcher li[data-workspace="demo"] button.switch`)),
		chromedp.WaitVisible(chromedp.CSS(`#switcher li[data-workspace="demo"] strong`)),
	)
	if got := text("#active-workspace"); got != "demo" {
		t.Fatalf("active workspace after switching = %q", got)
	}
	shot("switched to demo")

	// /api/v1/me in the same browser agrees.
	do("open /api/v1/me", chromedp.Navigate(env.URL+"/api/v1/me"))
	var me struct {
		ActiveWorkspace string `json:"activeWorkspace"`
		Memberships     []struct {
			Workspace string `json:"workspace"`
			Verified  bool   `json:"verified"`
			Active    bool   `json:"active"`
		} `json:"memberships"`
	}
	if err := json.Unmarshal([]byte(text("body")), &me); err != nil {
		t.Fatalf("/api/v1/me: %v", err)
	}
	if me.ActiveWorkspace != "demo" || len(me.Memberships) != 2 {
		t.Fatalf("/api/v1/me = %+v", me)
	}
	for _, m := range me.Memberships {
		if !m.Verified || !m.Active {
			t.Errorf("membership %+v is not verified and active", m)
		}
	}
}
