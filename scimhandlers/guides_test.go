package scimhandlers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
	"github.com/scimjit/scimjit/storage/redistest"
)

// The IdP guides whose SCIM half TestIdPGuidesMatchTheServer keeps true.
var scimGuides = []string{"../docs/idp-okta.md", "../docs/idp-entra.md", "../docs/idp-onelogin.md"}

// The IdP guides with a "Roles from groups" section (the SAML side of it is
// checked by saml's TestIdPGuidesGroupAttributesGiveRoles).
var groupGuides = []string{"../docs/idp-okta.md", "../docs/idp-entra.md", "../docs/idp-onelogin.md", "../docs/idp-google.md"}

// TestIdPGuidesMatchTheServer keeps the SCIM halves of the IdP guides true
// against the real server on a real Redis:
//   - every request of an ```http block is sent as written (with <ws>,
//     <token> and <base> filled in, the query encoded as the IdP encodes
//     it) and the answer must have the status, headers and JSON fields of
//     the ```http response block that follows it (<id>-style placeholders
//     match any value);
//   - every row of each troubleshooting table must name the status,
//     scimType and detail of an answer the server really gives in the
//     situation the test sets up, and each table covers the same statuses;
//   - every event type a guide names is one the code records;
//   - the group rules of each "Roles from groups" section are what the
//     server takes: its JSON as an admin API PATCH, its YAML as the same
//     roles and as settings.roles of a bootstrap file, and the 400 it
//     quotes for a role in the wrong case is the server's answer.
func TestIdPGuidesMatchTheServer(t *testing.T) {
	rs := redistest.Start(t)
	st := redistest.OpenStore(t, rs)
	env := servertest.New(t, func(c *server.Config) { c.Store = st })

	for _, path := range scimGuides {
		doc := readGuide(t, path)
		t.Run(filepath.Base(path)+"/examples", func(t *testing.T) { checkGuideExamples(t, env, path, doc) })
	}
	for _, path := range groupGuides {
		doc := readGuide(t, path)
		t.Run(filepath.Base(path)+"/events", func(t *testing.T) { checkGuideEventTypes(t, path, doc) })
		t.Run(filepath.Base(path)+"/group-rules", func(t *testing.T) { checkGroupRulesExamples(t, env, path, doc) })
	}
	observed := provokeSCIMErrors(t, env, rs)
	for _, path := range scimGuides {
		doc := readGuide(t, path)
		t.Run(filepath.Base(path)+"/troubleshooting", func(t *testing.T) { checkTroubleshooting(t, path, doc, observed) })
	}
}

func readGuide(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// httpMessage is the content of an ```http block: a start line, headers
// and an optional body after a blank line.
type httpMessage struct {
	line    int // line of the block in the guide
	start   string
	headers [][2]string
	body    string
}

var fence = regexp.MustCompile("(?ms)^```http\n(.*?)^```")

// httpBlocks returns the guide's ```http blocks in order.
func httpBlocks(doc string) []httpMessage {
	var out []httpMessage
	for _, m := range fence.FindAllStringSubmatchIndex(doc, -1) {
		text := doc[m[2]:m[3]]
		head, body, _ := strings.Cut(text, "\n\n")
		lines := strings.Split(strings.TrimSpace(head), "\n")
		msg := httpMessage{line: strings.Count(doc[:m[0]], "\n") + 1, start: lines[0], body: strings.TrimSpace(body)}
		for _, l := range lines[1:] {
			k, v, _ := strings.Cut(l, ":")
			msg.headers = append(msg.headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
		out = append(out, msg)
	}
	return out
}

// checkGuideExamples creates a workspace and a token the way the guide says
// (admin API), then replays the guide's request/response pairs in order.
func checkGuideExamples(t *testing.T, env *servertest.Env, path, doc string) {
	ws := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "idp-"), ".md")
	res, body := env.Admin(t, "POST", "/admin/v1/workspaces", map[string]any{"id": ws, "name": ws})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create workspace: %d %s", res.StatusCode, body)
	}
	res, body = env.Admin(t, "POST", "/admin/v1/workspaces/"+ws+"/scim-tokens", map[string]string{"name": ws})
	var created struct{ Token string }
	if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &created) != nil || !strings.HasPrefix(created.Token, "sjt_") {
		t.Fatalf("create token as the guide says: %d %s", res.StatusCode, body)
	}
	fill := strings.NewReplacer("<ws>", ws, "<token>", created.Token, "<base>", env.URL).Replace

	blocks := httpBlocks(doc)
	var pairs int
	for i := 0; i < len(blocks); i++ {
		req := blocks[i]
		if strings.HasPrefix(req.start, "HTTP/") {
			t.Errorf("%s:%d: response block without a request before it", path, req.line)
			continue
		}
		if i+1 == len(blocks) || !strings.HasPrefix(blocks[i+1].start, "HTTP/") {
			t.Errorf("%s:%d: request block without a response block after it", path, req.line)
			continue
		}
		want := blocks[i+1]
		i++
		pairs++
		got, gotBody := sendExample(t, env, req, fill)
		checkExampleAnswer(t, path, want, got, gotBody, fill)
	}
	if pairs < 2 {
		t.Errorf("%s: %d request/response examples; the guide shows at least the connection test and the first create", path, pairs)
	}

	// The guide says the setup shows these events in the workspace's stream.
	res, body = env.Admin(t, "GET", "/admin/v1/workspaces/"+ws+"/events", nil)
	var events struct{ Events []struct{ Type string } }
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &events) != nil {
		t.Fatalf("events: %d %s", res.StatusCode, body)
	}
	var types []string
	for _, e := range events.Events {
		types = append(types, e.Type)
	}
	for _, want := range []string{"admin.scim_token.created", "scim.user.created"} {
		if !slices.Contains(types, want) {
			t.Errorf("%s: events after the examples are %v, missing %s", path, types, want)
		}
	}
}

// sendExample sends a request block. The target is written decoded in the
// guide, as IdP logs show it; it is sent percent-encoded, as IdPs send it.
// No User-Agent is sent unless the block has one (Entra sends none).
func sendExample(t *testing.T, env *servertest.Env, req httpMessage, fill func(string) string) (*http.Response, []byte) {
	t.Helper()
	method, target, _ := strings.Cut(fill(req.start), " ")
	target = strings.TrimSuffix(target, " HTTP/1.1")
	p, rawQuery, _ := strings.Cut(target, "?")
	var query []string
	for _, kv := range strings.Split(rawQuery, "&") {
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		if hasValue {
			kv = k + "=" + strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
		}
		query = append(query, kv)
	}
	u := env.URL + p
	if len(query) > 0 {
		u += "?" + strings.Join(query, "&")
	}
	var rd io.Reader
	if req.body != "" {
		rd = strings.NewReader(fill(req.body))
	}
	r, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	if err != nil {
		t.Fatalf("line %d: %v", req.line, err)
	}
	r.Header.Set("User-Agent", "")
	for _, h := range req.headers {
		r.Header.Set(h[0], fill(h[1]))
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("line %d: %v", req.line, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// checkExampleAnswer compares an answer with a documented response block:
// the status, each documented header, and each documented JSON field.
func checkExampleAnswer(t *testing.T, path string, want httpMessage, got *http.Response, gotBody []byte, fill func(string) string) {
	t.Helper()
	fields := strings.Fields(want.start)
	if len(fields) < 2 || fields[1] != itoaStatus(got.StatusCode) {
		t.Errorf("%s:%d: documented %q, server answered %d %s", path, want.line, want.start, got.StatusCode, gotBody)
		return
	}
	for _, h := range want.headers {
		if v := got.Header.Get(h[0]); !placeholderPattern(fill(h[1])).MatchString(v) {
			t.Errorf("%s:%d: documented %s: %s, server sent %q", path, want.line, h[0], h[1], v)
		}
	}
	if want.body == "" {
		return
	}
	var wantJSON, gotJSON any
	if err := json.Unmarshal([]byte(want.body), &wantJSON); err != nil {
		t.Errorf("%s:%d: documented body is not JSON: %v", path, want.line, err)
		return
	}
	if err := json.Unmarshal(gotBody, &gotJSON); err != nil {
		t.Errorf("%s:%d: answer is not JSON: %s", path, want.line, gotBody)
		return
	}
	for _, diff := range jsonSubset("", wantJSON, gotJSON, fill) {
		t.Errorf("%s:%d: %s (answer %s)", path, want.line, diff, gotBody)
	}
}

func itoaStatus(n int) string { b, _ := json.Marshal(n); return string(b) }

// jsonSubset lists where got lacks or differs from a documented value. The
// guides shorten answers, so only what they show is compared; a string with
// <placeholders> matches any value in their place.
func jsonSubset(at string, want, got any, fill func(string) string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{at + ": not an object"}
		}
		var diffs []string
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, at+"."+k+": missing")
				continue
			}
			diffs = append(diffs, jsonSubset(at+"."+k, v, gv, fill)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{at + ": documented array of " + itoaStatus(len(w)) + " values, got " + stringOf(got)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, jsonSubset(at+"["+itoaStatus(i)+"]", w[i], g[i], fill)...)
		}
		return diffs
	case string:
		if s, ok := got.(string); ok && placeholderPattern(fill(w)).MatchString(s) {
			return nil
		}
	default:
		if stringOf(want) == stringOf(got) {
			return nil
		}
	}
	return []string{at + ": documented " + stringOf(want) + ", got " + stringOf(got)}
}

func stringOf(v any) string { b, _ := json.Marshal(v); return string(b) }

var placeholder = regexp.MustCompile(`<[a-z][A-Za-z ]*>`)

// placeholderPattern matches s exactly, with each <placeholder> standing for
// any non-empty text.
func placeholderPattern(s string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range placeholder.FindAllStringIndex(s, -1) {
		b.WriteString(regexp.QuoteMeta(s[last:m[0]]))
		b.WriteString(".+")
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(s[last:]) + "$")
	return regexp.MustCompile(b.String())
}

// scimAnswer is an error the server gave in a situation the test set up.
type scimAnswer struct {
	situation  string
	status     int
	scimType   string
	detail     string
	retryAfter string
}

// provokeSCIMErrors puts the server in each situation of the guides'
// troubleshooting tables and returns what it answered. It stops Redis at
// the end (the 503 case).
func provokeSCIMErrors(t *testing.T, env *servertest.Env, rs redistest.Server) []scimAnswer {
	tok := env.CreateWorkspace(t, "troubles", nil)
	var out []scimAnswer
	send := func(situation, method, path, bearer, body string, want int) {
		t.Helper()
		res, raw := env.Do(t, method, "/scim/v2/troubles"+path, bearer, body)
		if res.StatusCode != want {
			t.Fatalf("%s: %d %s, want %d", situation, res.StatusCode, raw, want)
		}
		if want/100 == 2 {
			return
		}
		var e struct {
			Schemas                  []string
			Status, ScimType, Detail string
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Status != itoaStatus(want) ||
			len(e.Schemas) != 1 || e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
			t.Fatalf("%s: not a SCIM error body: %s", situation, raw)
		}
		out = append(out, scimAnswer{situation, res.StatusCode, e.ScimType, e.Detail, res.Header.Get("Retry-After")})
	}
	user := func(userName, email, extra string) string {
		s := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"],"userName":"` + userName + `"`
		if email != "" {
			s += `,"emails":[{"value":"` + email + `","type":"work","primary":true}]`
		}
		return s + extra + "}"
	}
	send("first create", "POST", "/Users", tok, user("jane.doe@example.com", "jane.doe@example.com", `,"externalId":"00u1abcd2EFGH3ijk4l5"`), 201)
	// The same body again is the same request retried (201); another
	// source's differs, if only in externalId.
	send("second SCIM source, same userName", "POST", "/Users", tok,
		user("jane.doe@example.com", "jane.doe@example.com", `,"externalId":"6f1c2a3b-entra"`), 409)
	send("same email, other userName", "POST", "/Users", tok, user("jdoe", "jane.doe@example.com", ""), 409)
	send("role in the wrong case", "POST", "/Users", tok,
		user("al@example.com", "al@example.com", `,"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"admin"}`), 400)
	send("no email", "POST", "/Users", tok, user("jdoe2", "", ""), 400)
	send("group member not provisioned", "POST", "/Groups", tok,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Finance","members":[{"value":"00u1abcd2EFGH3ijk4l5"}]}`, 400)
	send("unique identifier field is not userName", "GET", "/Users?filter="+url.QueryEscape(`email eq "jane.doe@example.com"`), tok, "", 400)
	send("unreadable filter", "GET", "/Users?filter="+url.QueryEscape(`userName eq jane.doe@example.com`), tok, "", 400)
	send("wrong token", "GET", "/Users?startIndex=1&count=2", "sjt_wrong", "", 401)
	res, raw := env.Admin(t, "POST", "/admin/v1/workspaces/troubles/scim-tokens", map[string]string{"name": "old"})
	var old struct{ ID, Token string }
	if res.StatusCode != http.StatusCreated || json.Unmarshal(raw, &old) != nil {
		t.Fatalf("create token: %d %s", res.StatusCode, raw)
	}
	if res, raw := env.Admin(t, "DELETE", "/admin/v1/workspaces/troubles/scim-tokens/"+old.ID, nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke token: %d %s", res.StatusCode, raw)
	}
	send("revoked token", "GET", "/Users?startIndex=1&count=2", old.Token, "", 401)
	send("user deleted in scimjit", "GET", "/Users/4q2kx7c3hm5zd0rjw6tb", tok, "", 404)
	send("group deleted in scimjit", "GET", "/Groups/4q2kx7c3hm5zd0rjw6tb", tok, "", 404)
	// The default --scim-body-limit (1 MiB), as the guides say.
	send("body over the limit", "POST", "/Users", tok,
		user("big@example.com", "big@example.com", `,"displayName":"`+strings.Repeat("x", 1<<20)+`"`), 413)
	rs.Stop()
	send("Redis down", "POST", "/Users", tok, user("sam.lee@example.com", "sam.lee@example.com", ""), 503)
	return out
}

var (
	troubleRow = regexp.MustCompile("(?m)^\\| `(\\d{3})`( [a-zA-Z]+)? \\| ([^|]*) \\|")
	backticked = regexp.MustCompile("`([^`]+)`")
)

// checkTroubleshooting checks each row of the guide's troubleshooting table
// against the answers the server gave.
func checkTroubleshooting(t *testing.T, path, doc string, observed []scimAnswer) {
	i := strings.Index(doc, "Troubleshooting\n")
	if i < 0 {
		t.Fatalf("%s: no troubleshooting section", path)
	}
	section := doc[i:]
	if j := strings.Index(section, "\n#"); j >= 0 {
		section = section[:j]
	}
	// Every row of the table must be in the checked form.
	for _, l := range strings.Split(section, "\n") {
		if strings.HasPrefix(l, "|") && !strings.HasPrefix(l, "| Status") && !strings.HasPrefix(l, "|---") && !troubleRow.MatchString(l) {
			t.Errorf("%s: troubleshooting row not of the form | `status` scimType | `detail` | …: %s", path, l)
		}
	}
	statuses := map[string]bool{}
	for _, row := range troubleRow.FindAllStringSubmatch(section, -1) {
		status, scimType, cell := row[1], strings.TrimSpace(row[2]), strings.TrimSpace(row[3])
		statuses[strings.TrimSpace(status+" "+scimType)] = true
		details := backticked.FindAllStringSubmatch(cell, -1)
		if cell == "—" {
			// Only a status scimjit's SCIM endpoint never sends has no detail.
			for _, a := range observed {
				if itoaStatus(a.status) == status {
					t.Errorf("%s: the %s row says scimjit does not send it, but %q got it", path, status, a.situation)
				}
			}
			continue
		}
		if len(details) == 0 {
			t.Errorf("%s: the %s row quotes no detail", path, status)
		}
		for _, d := range details {
			re := placeholderPattern(d[1])
			found := slices.ContainsFunc(observed, func(a scimAnswer) bool {
				return itoaStatus(a.status) == status && a.scimType == scimType && re.MatchString(a.detail)
			})
			if !found {
				t.Errorf("%s: no answer of the server matches %s %s %q; the answers were:\n%s", path, status, scimType, d[1], answersText(observed))
			}
		}
	}
	for _, want := range []string{"409 uniqueness", "400 invalidValue", "400 invalidFilter", "401", "404", "413", "429", "503"} {
		if !statuses[want] {
			t.Errorf("%s: the troubleshooting table has no %s row", path, want)
		}
	}
	// The 503 row promises Retry-After: 1.
	for _, a := range observed {
		if a.status == http.StatusServiceUnavailable && a.retryAfter != "1" {
			t.Errorf("503 (%s) came with Retry-After %q; the guides say 1", a.situation, a.retryAfter)
		}
	}
	if !strings.Contains(section, "`Retry-After: 1`") {
		t.Errorf("%s: the troubleshooting section does not mention Retry-After: 1", path)
	}
}

var eventType = regexp.MustCompile("`((?:scim|admin|role|jit|login)\\.[a-z_]+(?:\\.[a-z_]+)?)`")

// checkGuideEventTypes fails for an event type the guide names that no
// code records (a literal "<type>" in a non-test Go file of scimhandlers,
// server or saml).
func checkGuideEventTypes(t *testing.T, path, doc string) {
	var src bytes.Buffer
	for _, dir := range []string{".", "../server", "../saml"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(data)
		}
	}
	names := eventType.FindAllStringSubmatch(doc, -1)
	if len(names) == 0 {
		t.Errorf("%s names no event types", path)
	}
	for _, m := range names {
		if !bytes.Contains(src.Bytes(), []byte(`"`+m[1]+`"`)) {
			t.Errorf("%s names event %s, which no code records", path, m[1])
		}
	}
}

func answersText(as []scimAnswer) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString("  " + a.situation + ": " + itoaStatus(a.status) + " " + a.scimType + " " + a.detail + "\n")
	}
	return b.String()
}

var (
	groupsSection = regexp.MustCompile(`(?ms)^## \d+\. Roles from groups\n.*?(?:\n## |\z)`)
	fencedBlock   = regexp.MustCompile("(?ms)^```(\\w*)\n(.*?)^```")
	ruleRoleError = regexp.MustCompile("`400 invalid_request`: `([^`]+)`")
)

// checkGroupRulesExamples sends the rules JSON of the guide's "Roles from
// groups" section as written to a new workspace, checks that its YAML is
// the same roles and is taken as settings.roles of a bootstrap file, and
// that a rule with a role in the wrong case gets the 400 the section quotes.
func checkGroupRulesExamples(t *testing.T, env *servertest.Env, path, doc string) {
	section := groupsSection.FindString(doc)
	if section == "" {
		t.Fatalf("%s: no \"## N. Roles from groups\" section", path)
	}
	var jsonText, yamlText string
	for _, b := range fencedBlock.FindAllStringSubmatch(section, -1) {
		switch {
		case b[1] == "json" && strings.Contains(b[2], `"groupRules"`):
			jsonText = b[2]
		case b[1] == "yaml":
			yamlText = b[2]
		}
	}
	var body struct {
		Settings struct {
			CustomRoles []string `json:"customRoles"`
			Roles       any      `json:"roles"`
		} `json:"settings"`
	}
	if err := json.Unmarshal([]byte(jsonText), &body); err != nil || body.Settings.Roles == nil || yamlText == "" {
		t.Fatalf("%s: the section needs a ```json PATCH body with settings.roles.groupRules (%v) and a ```yaml rules file", path, err)
	}
	ws := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "idp-"), ".md") + "-groups"
	if res, raw := env.Admin(t, "POST", "/admin/v1/workspaces", map[string]any{"id": ws, "name": ws}); res.StatusCode != http.StatusCreated {
		t.Fatalf("create workspace: %d %s", res.StatusCode, raw)
	}
	checkRoles := func(what string, res *http.Response, raw []byte) {
		t.Helper()
		var got struct{ Settings struct{ Roles any } }
		if res.StatusCode != http.StatusOK || json.Unmarshal(raw, &got) != nil {
			t.Fatalf("%s: %s: %d %s", path, what, res.StatusCode, raw)
		}
		for _, diff := range jsonSubset("settings.roles", body.Settings.Roles, got.Settings.Roles, func(s string) string { return s }) {
			t.Errorf("%s: %s: %s", path, what, diff)
		}
	}
	res, raw := env.Admin(t, "PATCH", "/admin/v1/workspaces/"+ws, json.RawMessage(jsonText))
	checkRoles("the rules JSON sent as a PATCH", res, raw)

	// The YAML file of "scimjit workspace rules set" holds the same roles.
	fromYAML, err := yaml.YAMLToJSON([]byte(yamlText))
	var yamlRoles any
	if err != nil || json.Unmarshal(fromYAML, &yamlRoles) != nil || !reflect.DeepEqual(yamlRoles, body.Settings.Roles) {
		t.Errorf("%s: the rules YAML (%v) is not the JSON's settings.roles:\n%s\nwant %s", path, err, fromYAML, stringOf(body.Settings.Roles))
	}
	// The same keys under settings.roles of a bootstrap file.
	bootText := fmt.Sprintf("workspaces:\n  - id: %s-boot\n    name: Boot\n    settings:\n      customRoles: %s\n      roles:\n        %s",
		ws, stringOf(body.Settings.CustomRoles), strings.ReplaceAll(strings.TrimSpace(yamlText), "\n", "\n        "))
	boot, err := server.ParseBootstrap([]byte(bootText))
	if err != nil {
		t.Fatalf("%s: the rules YAML in a bootstrap file: %v\n%s", path, err, bootText)
	}
	if err := server.ApplyBootstrap(t.Context(), env.Store, slog.New(slog.DiscardHandler), boot, server.SecretSource{}); err != nil {
		t.Fatalf("%s: apply the bootstrap file: %v", path, err)
	}
	res, raw = env.Admin(t, "GET", "/admin/v1/workspaces/"+ws+"-boot", nil)
	checkRoles("the rules YAML in a bootstrap file", res, raw)

	// A role in the wrong case: the 400 the section quotes.
	m := ruleRoleError.FindStringSubmatch(section)
	if m == nil {
		t.Fatalf("%s: the section quotes no `400 invalid_request`: `…` for a rule naming an unknown role", path)
	}
	var bad map[string]any
	_ = json.Unmarshal([]byte(jsonText), &bad)
	first := bad["settings"].(map[string]any)["roles"].(map[string]any)["groupRules"].([]any)[0].(map[string]any)["roles"].(map[string]any)
	for k, role := range first {
		first[k] = strings.ToLower(role.(string))
	}
	res, raw = env.Admin(t, "PATCH", "/admin/v1/workspaces/"+ws, bad)
	var e struct{ Error, Message string }
	if res.StatusCode != http.StatusBadRequest || json.Unmarshal(raw, &e) != nil || e.Error != "invalid_request" || !placeholderPattern(m[1]).MatchString(e.Message) {
		t.Errorf("%s: a rule with a role in lower case: the server answered %d %s; the guide says 400 invalid_request %q", path, res.StatusCode, raw, m[1])
	}
}
