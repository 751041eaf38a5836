package saml_test

import (
	"context"
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

// TestBrowserFindWorkspace: in a real headless Chromium, the start page's
// email form takes a person of a domain one workspace claims straight to
// that workspace's IdP (the demo IdP), and one of a domain two workspaces
// claim to a choice, whose link goes on to the IdP of the one chosen.
// Screenshots go to the test's temp dir (or SCIMJIT_BROWSER_SHOTS).
func TestBrowserFindWorkspace(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.Demo = true })
	md, err := env.Server.SAML().DemoIdPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ id, name, domains string }{
		{"demo", "Demo", "example.com shared.example"},
		{"demo-hr", "Demo HR", "shared.example"},
	} {
		env.CreateWorkspace(t, w.id, func(ws *storage.Workspace) {
			ws.Name = w.name
			ws.Settings.IdP.MetadataXML = string(md)
			ws.Settings.Login.EmailDomains = strings.Fields(w.domains)
		})
	}
	shots := t.TempDir()
	if d := os.Getenv("SCIMJIT_BROWSER_SHOTS"); d != "" {
		shots = d
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := servertest.Browser(t, 2*time.Minute)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	find := func(email string) {
		t.Helper()
		do("start page",
			chromedp.Navigate(env.URL+"/"),
			chromedp.WaitVisible(chromedp.CSS("#find-workspace")),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
		)
		shot("start-" + strings.ReplaceAll(email, "@", "-at-"))
		do("submit "+email, chromedp.Submit(chromedp.CSS("#find-workspace")))
	}
	idpWorkspace := func() string {
		t.Helper()
		do("demo IdP form", chromedp.WaitVisible(chromedp.CSS("#demo-idp")))
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#workspace")))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// One workspace claims the domain: straight to its IdP.
	find("Maria.Garcia@Example.COM")
	if ws := idpWorkspace(); ws != "demo" {
		t.Errorf("IdP form for workspace %q, want demo", ws)
	}
	shot("idp-demo")

	// Two claim it: a choice, then the IdP of the one chosen.
	find("maria@shared.example")
	do("choice page", chromedp.WaitVisible(chromedp.CSS("#workspace-choice")))
	shot("choice")
	do("choose Demo HR", chromedp.Click(chromedp.CSS(`#workspace-choice li[data-workspace="demo-hr"] a`)))
	if ws := idpWorkspace(); ws != "demo-hr" {
		t.Errorf("IdP form for workspace %q, want demo-hr", ws)
	}
}
