package servertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath finds Debian's chromium. Without it the test skips, unless
// SCIMJIT_REQUIRE_BROWSER is set (CI), where it fails.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SCIMJIT_REQUIRE_BROWSER") != "" {
		t.Fatal("chromium not found and SCIMJIT_REQUIRE_BROWSER is set (apt-get install chromium)")
	}
	t.Skip("chromium not found (apt-get install chromium); set SCIMJIT_REQUIRE_BROWSER=1 to fail instead")
	return ""
}

// Browser starts a headless Chromium (ChromiumPath) with an empty profile
// and nothing that talks to the network on its own, and returns the
// chromedp context of its first tab. The browser is stopped when the test
// ends or after timeout, whichever comes first. Steps should run with a
// deadline of their own derived from the context.
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	exe := ChromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	)
	parent, cancelParent := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		cancelParent()
	})
	// Start the browser (the first Run's context must have no timeout of its
	// own: it would stop the browser).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("servertest: start chromium: %v", err)
	}
	return ctx
}
