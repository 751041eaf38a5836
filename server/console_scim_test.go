package server_test

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server/servertest"
)

// TestConsoleSCIMPageShowsTokenUseAndProvisioningSummary: after an IdP
// provisions with a token, the SCIM page shows the token's creation and
// last-use times (never for the unused one), the requests of the last day
// counted by outcome, and the last errors with method, route template,
// status, scimType and the detail the client got.
func TestConsoleSCIMPageShowsTokenUseAndProvisioningSummary(t *testing.T) {
	env := servertest.New(t, nil)
	token := env.CreateWorkspace(t, "acme", nil)
	env.CreateSCIMToken(t, "acme")
	user := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "sam@acme.example"}
	resp, body := env.Do(t, http.MethodPost, "/scim/v2/acme/Users", token, user)
	wantStatus(t, resp, body, http.StatusCreated)
	user["displayName"] = "Sam"
	resp, body = env.Do(t, http.MethodPost, "/scim/v2/acme/Users", token, user)
	wantStatus(t, resp, body, http.StatusConflict)
	resp, body = env.Do(t, http.MethodGet, "/scim/v2/acme/Groups/4b1c0e3a-nope", token, nil)
	wantStatus(t, resp, body, http.StatusNotFound)

	op := newConsoleBrowser(t, env)
	op.operatorSignIn(env.AdminToken)
	st, page := op.do(http.MethodGet, "/console/w/acme/scim", nil)
	if st != http.StatusOK {
		t.Fatalf("SCIM page: %d", st)
	}
	page = html.UnescapeString(page)
	rows := regexp.MustCompile(`(?s)<tr data-token="[^"]+">(.*?)</tr>`).FindAllStringSubmatch(page, -1)
	if len(rows) != 2 {
		t.Fatalf("%d token rows, want 2", len(rows))
	}
	cell := regexp.MustCompile(`<td>(\d{4}-\d\d-\d\d \d\d:\d\d UTC|<span class="muted">never</span>)</td>`)
	var used, never int
	for _, r := range rows {
		cells := cell.FindAllStringSubmatch(r[1], -1)
		if len(cells) != 2 || strings.Contains(cells[0][1], "never") {
			t.Fatalf("token row without created and last-used times: %s", r[1])
		}
		if strings.Contains(cells[1][1], "never") {
			never++
		} else {
			used++
		}
	}
	if used != 1 || never != 1 {
		t.Errorf("%d tokens shown as used, %d as never used; want 1 and 1", used, never)
	}
	for _, want := range []string{
		"<td>Users created</td><td>1</td>",
		`<span class="badge off">Errors 404 Not Found</span></td><td>1</td>`,
		`<span class="badge off">Errors 409 Conflict</span></td><td>1</td>`,
		`<td class="mono">POST /Users</td><td>409 <span class="mono">uniqueness</span></td>`,
		`<td class="mono">GET /Groups/:id</td><td>404</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the SCIM page does not show %q", want)
		}
	}
	if strings.Contains(page, "4b1c0e3a-nope") {
		t.Error("the page shows a path the client sent, not its template")
	}
}
