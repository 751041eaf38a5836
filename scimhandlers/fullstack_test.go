package scimhandlers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
)

// TestFullStack drives SCIM through the real server (Echo routing, body
// limit, access log) rather than the bare handler.
func TestFullStack(t *testing.T) {
	env := servertest.New(t, func(c *server.Config) { c.SCIMBodyLimit = 64 << 10 })
	tok := env.CreateWorkspace(t, "acme", nil)
	other := env.CreateWorkspace(t, "other", nil)

	decode := func(raw []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("not JSON: %s", raw)
		}
		return m
	}
	res, body := env.Do(t, "POST", "/scim/v2/acme/Users", tok,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Full.Stack@acme.com","password":"secret-pw"}`)
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	u := decode(body)
	id, _ := u["id"].(string)
	if loc := res.Header.Get("Location"); loc != env.URL+"/scim/v2/acme/Users/"+id {
		t.Errorf("Location %q", loc)
	}
	if strings.Contains(env.Logs.String(), "secret-pw") || strings.Contains(env.Logs.String(), tok) {
		t.Error("secret in logs")
	}

	res, body = env.Do(t, "GET", "/scim/v2/acme/Users?filter=userName%20eq%20%22full.stack%40acme.com%22", tok, nil)
	if res.StatusCode != 200 || decode(body)["totalResults"] != float64(1) {
		t.Errorf("filter: %d %s", res.StatusCode, body)
	}
	// Another workspace's token: 401; its own token cannot see the user.
	res, _ = env.Do(t, "GET", "/scim/v2/acme/Users/"+id, other, nil)
	if res.StatusCode != 401 {
		t.Errorf("foreign token: %d", res.StatusCode)
	}
	res, _ = env.Do(t, "GET", "/scim/v2/other/Users/"+id, other, nil)
	if res.StatusCode != 404 {
		t.Errorf("foreign id: %d", res.StatusCode)
	}
	// Body over the limit: 413 SCIM error (declared length, and chunked).
	big := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"big@acme.com","displayName":"` + strings.Repeat("x", 70<<10) + `"}`
	res, body = env.Do(t, "POST", "/scim/v2/acme/Users", tok, big)
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(res.Header.Get("Content-Type"), "scim+json") {
		t.Errorf("oversize: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	req, _ := http.NewRequest("POST", env.URL+"/scim/v2/acme/Users", strings.NewReader(big))
	req.ContentLength = -1 // chunked: only the reader knows
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize: %d", resp.StatusCode)
	}
}
