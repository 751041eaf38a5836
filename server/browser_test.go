package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

// TestBrowserErrorPages: in a real headless Chromium, every error on a
// browser path (an unknown path, a form posted to a GET-only page, a form
// over the body limit, Redis down, an internal error and a panic) shows
// the product's error page with the status, a link home and, where the
// request named a workspace, a link to sign in again, and no internal
// text; and in the same browser the SCIM, admin and /api/ paths still
// answer their errors with JSON.
func TestBrowserErrorPages(t *testing.T) {
	redis := redistest.Start(t) // stopped below to take Redis down
	env := servertest.New(t, func(c *server.Config) { c.Store = redistest.OpenStore(t, redis) })
	env.CreateWorkspace(t, "acme", nil)
	// Test-only routes on browser paths: an internal error, a panic, and
	// a store failure handed to the server's error handler.
	e := env.Server.Handler().(*echo.Echo)
	e.GET("/test/error", func(echo.Context) error { return errors.New("secret internal detail") })
	e.GET("/test/panic", func(echo.Context) error { panic("secret panic detail") })
	e.GET("/test/:ws/store", func(echo.Context) error {
		return fmt.Errorf("load: %w", storage.ErrUnavailable)
	})

	ctx := servertest.Browser(t, 2*time.Minute)
	const stepTimeout = 20 * time.Second

	// load runs the steps that load a document and returns its response.
	load := func(what string, steps ...chromedp.Action[chromedp.Void]) *network.Response {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		resp, err := chromedp.RunResponse(sctx, steps...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return resp
	}
	eval := func(what, js string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	header := func(resp *network.Response, name string) string {
		for k, v := range resp.Headers {
			if strings.EqualFold(k, name) {
				return fmt.Sprint(v)
			}
		}
		return ""
	}
	// checkPage checks the loaded document: status, an HTML page with
	// the title and heading, the links, and no internal text or JSON.
	checkPage := func(what string, resp *network.Response, status int, title string, signInTo string) {
		t.Helper()
		if resp.Status != int64(status) || resp.MimeType != "text/html" {
			t.Errorf("%s: status %d, type %q; want %d, text/html", what, resp.Status, resp.MimeType, status)
		}
		if got := eval(what, `document.title`); got != title+" · scimjit" {
			t.Errorf("%s: title %q, want %q", what, got, title+" · scimjit")
		}
		if got := eval(what, `document.querySelector("main h1").textContent`); got != title {
			t.Errorf("%s: heading %q, want %q", what, got, title)
		}
		text := eval(what, `document.body.innerText`)
		for _, leak := range []string{"secret", "{", "internal error", "Internal Server Error"} {
			if strings.Contains(text, leak) {
				t.Errorf("%s: page shows %q:\n%s", what, leak, text)
			}
		}
		var links []string
		if err := json.Unmarshal([]byte(eval(what,
			`JSON.stringify([...document.querySelectorAll("main a")].map(a => a.textContent + " " + a.getAttribute("href")))`)), &links); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(links, "Go to the start page /") {
			t.Errorf("%s: no link to the start page in %q", what, links)
		}
		signIn := slices.Contains(links, "Sign in again /saml/"+signInTo+"/login")
		if want := signInTo != ""; signIn != want {
			t.Errorf("%s: links %q; a link to sign in to %q again: %v, want %v", what, links, signInTo, signIn, want)
		}
	}
	// postForm adds a form to the current page and submits it.
	postForm := func(what, action, value string) *network.Response {
		t.Helper()
		eval(what, fmt.Sprintf(`(() => {
			const f = document.createElement("form");
			f.method = "post"; f.action = %q; f.id = "test-form";
			const v = document.createElement("textarea");
			v.name = "value"; v.value = %q;
			f.append(v); document.body.append(f); return "";
		})()`, action, value))
		return load(what, chromedp.Submit(chromedp.CSS("#test-form")))
	}

	resp := load("unknown path", chromedp.Navigate(env.URL+"/no/such/page"))
	checkPage("unknown path", resp, http.StatusNotFound, "Page not found", "")

	// Echo sets no route parameters on a 405, so the workspace is not
	// known.
	resp = postForm("form post to a GET-only page", "/saml/acme/metadata", "x")
	checkPage("form post to a GET-only page", resp, http.StatusMethodNotAllowed, "Page not found", "")

	resp = postForm("oversized form post", "/join/confirm", strings.Repeat("x", 100<<10))
	checkPage("oversized form post", resp, http.StatusRequestEntityTooLarge, "Request too large", "")

	resp = load("internal error", chromedp.Navigate(env.URL+"/test/error"))
	checkPage("internal error", resp, http.StatusInternalServerError, "Something went wrong", "")
	if ref := eval("internal error", `document.querySelector("main p.muted").textContent`); ref != "Reference: "+header(resp, server.HeaderRequestID) {
		t.Errorf("internal error: %q does not quote the request id %q", ref, header(resp, server.HeaderRequestID))
	}

	resp = load("panic", chromedp.Navigate(env.URL+"/test/panic"))
	checkPage("panic", resp, http.StatusInternalServerError, "Something went wrong", "")

	// The API paths answer JSON in the same browser.
	apiErrors := []struct {
		path, contentType string
		status            int
		field, want       string // a top-level string field of the body and its value
	}{
		{"/scim/v2/acme/Users", "application/scim+json", http.StatusUnauthorized, "status", "401"},
		{"/scim/v2/acme/NoSuchResource", "application/scim+json", http.StatusNotFound, "status", "404"},
		{"/admin/v1/workspaces", "application/json", http.StatusUnauthorized, "error", "unauthorized"},
		{"/admin/v1/no/such/thing", "application/json", http.StatusNotFound, "error", "not_found"},
		{"/api/v1/me", "application/json", http.StatusUnauthorized, "error", "not signed in"},
		{"/api/no/such/thing", "application/json", http.StatusNotFound, "error", "not_found"},
	}
	for _, tc := range apiErrors {
		resp := load(tc.path, chromedp.Navigate(env.URL+tc.path))
		if resp.Status != int64(tc.status) || !strings.HasPrefix(header(resp, "Content-Type"), tc.contentType) {
			t.Errorf("%s: status %d, type %q; want %d, %s", tc.path, resp.Status, header(resp, "Content-Type"), tc.status, tc.contentType)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(eval(tc.path, `document.body.innerText`)), &body); err != nil {
			t.Errorf("%s: not JSON: %v", tc.path, err)
		} else if body[tc.field] != tc.want {
			t.Errorf("%s: body %v, want %s %q", tc.path, body, tc.field, tc.want)
		}
	}

	// Redis down: the sign-in page and a store failure that reaches the
	// server's error handler are 503 pages with Retry-After.
	redis.Stop()
	for _, tc := range []struct{ path, title string }{
		{"/saml/acme/login", "Try again in a moment"},
		{"/test/acme/store", "Try again in a moment"},
	} {
		resp := load(tc.path+" with Redis down", chromedp.Navigate(env.URL+tc.path))
		checkPage(tc.path+" with Redis down", resp, http.StatusServiceUnavailable, tc.title, "acme")
		if header(resp, "Retry-After") == "" {
			t.Errorf("%s with Redis down: no Retry-After", tc.path)
		}
	}
}
