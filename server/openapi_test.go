package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
)

// TestOpenAPIDocumentIsServedWithoutToken: the contract is public, served
// as JSON, and is the embedded document.
func TestOpenAPIDocumentIsServedWithoutToken(t *testing.T) {
	env := servertest.New(t, nil)
	resp, body := env.Do(t, http.MethodGet, "/admin/v1/openapi.json", "", nil)
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	if !bytes.Equal(body, server.OpenAPIDocument) {
		t.Error("the served document is not server.OpenAPIDocument")
	}
	var doc struct{ OpenAPI string }
	if err := json.Unmarshal(body, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q (%v), want 3.1.x", doc.OpenAPI, err)
	}
	// A wrong token changes nothing either: the route asks for none.
	resp, body = env.Do(t, http.MethodGet, "/admin/v1/openapi.json", "wrong-token", nil)
	wantStatus(t, resp, body, http.StatusOK)
}

// TestDocsOpenAPIIsTheServedDocument: docs/openapi.json, which readers of
// the repository see, is the document the server embeds and serves
// (server/openapi.json is the one to edit; `go generate ./server` copies it).
func TestDocsOpenAPIIsTheServedDocument(t *testing.T) {
	docs, err := os.ReadFile("../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, server.OpenAPIDocument) {
		t.Fatal("docs/openapi.json differs from server/openapi.json: edit server/openapi.json and run go generate ./server")
	}
}

// TestOpenAPIDocumentHasEveryAdminRoute: the document's operations are
// exactly the admin routes the server registers, so a new route cannot
// miss its description and a removed one cannot linger in it.
func TestOpenAPIDocumentHasEveryAdminRoute(t *testing.T) {
	var doc struct {
		Servers []struct{ URL string }
		Paths   map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(server.OpenAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != servertest.AdminPrefix {
		t.Fatalf("servers %+v, want the one %s", doc.Servers, servertest.AdminPrefix)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	var documented []string
	for path, item := range doc.Paths {
		for key := range item {
			if m := strings.ToUpper(key); slices.Contains([]string{"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"}, m) {
				documented = append(documented, m+" "+servertest.AdminPrefix+param.ReplaceAllString(path, "{}"))
			}
		}
	}

	env := servertest.New(t, nil)
	segParam := regexp.MustCompile(`/:[^/]+`)
	var routed []string
	for _, r := range env.Server.Handler().(*echo.Echo).Routes() {
		if !strings.HasPrefix(r.Path, servertest.AdminPrefix+"/") || strings.Contains(r.Path, "*") ||
			!slices.Contains([]string{"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD"}, r.Method) {
			continue // catch-alls and Echo's own handlers are not operations
		}
		routed = append(routed, r.Method+" "+segParam.ReplaceAllString(r.Path, "/{}"))
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if !slices.Equal(documented, routed) {
		t.Fatalf("the document's operations\n  %s\ndiffer from the server's admin routes\n  %s",
			strings.Join(documented, "\n  "), strings.Join(routed, "\n  "))
	}
}
