package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/server/servertest"
)

// TestAccessLogNamesTheAdminToken: when a handler records the name of the
// admin token that authenticated the request (reqctx.WithAdminToken), the
// access-log line carries it as admin_token; other lines have no such key.
// A 5xx line is a warning.
func TestAccessLogNamesTheAdminToken(t *testing.T) {
	env := servertest.New(t, nil)
	e := env.Server.Handler().(*echo.Echo)
	e.GET("/admin/test/token", func(c echo.Context) error {
		req := c.Request()
		c.SetRequest(req.WithContext(reqctx.WithAdminToken(req.Context(), "ci-deploy")))
		return c.NoContent(http.StatusNoContent)
	})
	e.GET("/admin/test/fail", func(echo.Context) error { return echo.NewHTTPError(http.StatusBadGateway) })
	env.Do(t, http.MethodGet, "/admin/test/token", "", nil)
	env.Do(t, http.MethodGet, "/healthz", "", nil)
	env.Do(t, http.MethodGet, "/admin/test/fail", "", nil)

	byRoute := map[string]map[string]any{}
	for _, r := range env.Logs.Find("request") {
		byRoute[r["route"].(string)] = r
	}
	if l := byRoute["/admin/test/token"]; l == nil || l["admin_token"] != "ci-deploy" || l["level"] != "INFO" {
		t.Errorf("access line of an admin-token request: %v", l)
	}
	if l := byRoute["/healthz"]; l == nil || l["admin_token"] != nil {
		t.Errorf("access line without an admin token: %v", l)
	}
	if l := byRoute["/admin/test/fail"]; l == nil || l["status"] != float64(http.StatusBadGateway) || l["level"] != "WARN" {
		t.Errorf("access line of a 502: %v", l)
	}
}

// TestSecurityHeadersOnEveryResponse: JSON answers, error pages and API
// errors all say nosniff and refuse framing.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	env := servertest.New(t, nil)
	for _, path := range []string{"/healthz", "/", "/no/such/page", "/admin/v1/workspaces", "/scim/v2/acme/Users"} {
		resp, _ := env.Do(t, http.MethodGet, path, "", nil)
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", path, got)
		}
		if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", path, got)
		}
	}
}

// TestChunkedAdminBodyOverTheLimitGets413: a body without Content-Length
// that grows past the admin limit while it is read is a 413 JSON error too,
// not a 400 "could not read the request body".
func TestChunkedAdminBodyOverTheLimitGets413(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.AdminBodyLimit = 1 << 10 })
	body := io.MultiReader(strings.NewReader(`{"id":"x","name":"`), strings.NewReader(strings.Repeat("x", 4<<10)+`"}`))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, env.URL+"/admin/v1/workspaces", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if req.ContentLength != 0 && req.ContentLength != -1 {
		t.Fatalf("request has a Content-Length (%d); the test needs a chunked body", req.ContentLength)
	}
	wantStatus(t, resp, data, http.StatusRequestEntityTooLarge)
	if e := decode[apiErr](t, data); e.Error != "request_too_large" {
		t.Errorf("body %s", data)
	}
}
