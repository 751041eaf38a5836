package server_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

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
