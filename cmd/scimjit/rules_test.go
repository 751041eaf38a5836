package main

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/storage"
)

// writeTemp writes content to a file of the test's temporary directory.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rulesOf cuts the output of "workspace rules" into its settings lines and
// the rule table's rows.
func rulesOf(t *testing.T, out string) (settings string, rows []map[string]string) {
	t.Helper()
	settings, table, _ := strings.Cut(out, "\n\n")
	if strings.HasPrefix(table, "RULE") {
		rows = parseTable(t, table)
	}
	return settings, rows
}

// TestWorkspaceRulesCommand: "workspace rules" shows the rules in order,
// "rules set" replaces them from a YAML or a JSON file through the admin
// API's PATCH, and a file the server refuses (a role in the wrong case)
// changes nothing and prints the server's reason.
func TestWorkspaceRulesCommand(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("workspace", "create", "--id", "legal", "--name", "Legal", "--settings", `{"customRoles":["Auditor"]}`)

	out := e.ok("workspace", "rules", "legal")
	if settings, rows := rulesOf(t, out); !strings.Contains(settings, "Explicit attributes win:  yes") || !strings.HasSuffix(out, "\n\nNo group rules.\n") || rows != nil {
		t.Fatalf("rules of a new workspace:\n%s", out)
	}

	yamlFile := writeTemp(t, "rules.yaml", `# roles from IdP groups
groupRules:
  - group: Engineering
    roles: {dev: Admin, test: Analyst}
  - group: Finance Auditors
    roles:
      prod: Auditor
explicitWins: false
`)
	settings, rows := rulesOf(t, e.ok("workspace", "rules", "set", "legal", "--file", yamlFile))
	want := []map[string]string{
		{"RULE": "1", "GROUP": "Engineering", "DEV": "Admin", "TEST": "Analyst", "PROD": "-"},
		{"RULE": "2", "GROUP": "Finance Auditors", "DEV": "-", "TEST": "-", "PROD": "Auditor"},
	}
	if !strings.Contains(settings, "Explicit attributes win:  no") || len(rows) != len(want) {
		t.Fatalf("rules set from YAML printed:\n%s\n%v", settings, rows)
	}
	for i := range want {
		for k, v := range want[i] {
			if rows[i][k] != v {
				t.Errorf("row %d %s = %q, want %q", i+1, k, rows[i][k], v)
			}
		}
	}
	// What the command printed is what the server stored.
	stored, err := e.Store.GetWorkspace(t.Context(), "legal")
	if err != nil || len(stored.Settings.Roles.GroupRules) != 2 || !stored.Settings.Roles.GroupRulesWin ||
		stored.Settings.Roles.GroupRules[1] != (storage.GroupRule{Group: "Finance Auditors", Roles: storage.Roles{Prod: "Auditor"}}) {
		t.Fatalf("stored roles %+v, %v", stored.Settings.Roles, err)
	}
	if _, rows := rulesOf(t, e.ok("workspace", "rules", "legal")); len(rows) != 2 || rows[0]["GROUP"] != "Engineering" {
		t.Errorf("workspace rules after set: %v", rows)
	}

	// -o json is the workspace as the API answers it; its settings.roles
	// is a file "rules set" takes back.
	var ws server.WorkspaceJSON
	out = e.ok("workspace", "rules", "legal", "-o", "json")
	if err := json.Unmarshal([]byte(out), &ws); err != nil || len(ws.Settings.Roles.GroupRules) != 2 {
		t.Fatalf("rules -o json: %v\n%s", err, out)
	}
	ws.Settings.Roles.GroupRules = ws.Settings.Roles.GroupRules[1:]
	roles, _ := json.Marshal(ws.Settings.Roles)
	if _, rows := rulesOf(t, e.ok("workspace", "rules", "set", "legal", "--file", writeTemp(t, "rules.json", string(roles)))); len(rows) != 1 || rows[0]["GROUP"] != "Finance Auditors" {
		t.Errorf("rules set from JSON: %v", rows)
	}

	// Refused files change nothing.
	for _, tc := range []struct{ name, content, want string }{
		{"role in the wrong case", "groupRules:\n  - group: Engineering\n    roles: {dev: admin}\n",
			`400 invalid_request: settings.roles.groupRules[0].roles.dev "admin" is not a system role (Admin, Analyst, Operator, NoAccess) or a custom role of the workspace`},
		{"no groupRules", "explicitWins: true\n", "no groupRules"},
		{"unknown key", "groupRules: []\nrules: []\n", `unknown field "rules"`},
		{"a rule that is not an object", "groupRules: [Engineering]\n", "cannot unmarshal"},
	} {
		code, _, errOut := e.run(nil, "workspace", "rules", "set", "legal", "--file", writeTemp(t, "bad.yaml", tc.content))
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", tc.name, code, errOut, tc.want)
		}
	}
	if _, rows := rulesOf(t, e.ok("workspace", "rules", "legal")); len(rows) != 1 {
		t.Errorf("a refused file changed the rules: %v", rows)
	}
	// --if-version: refused, changing nothing, once the workspace has
	// moved on from the version read; applied at the current one.
	settings, _ = rulesOf(t, e.ok("workspace", "rules", "legal"))
	m := regexp.MustCompile(`Workspace version:\s+(\d+)`).FindStringSubmatch(settings)
	if m == nil {
		t.Fatalf("no workspace version in:\n%s", settings)
	}
	read := m[1]
	e.ok("workspace", "rules", "set", "legal", "--file", writeTemp(t, "other.yaml", "groupRules:\n  - group: Other\n    roles: {dev: Operator}\n"))
	stale := writeTemp(t, "stale.yaml", "groupRules:\n  - group: Stale\n    roles: {dev: Admin}\n")
	if code, _, errOut := e.run(nil, "workspace", "rules", "set", "legal", "--file", stale, "--if-version", read); code != 1 || !strings.Contains(errOut, "412") {
		t.Errorf("rules set at a stale version: exit %d, stderr %q; want 1 with 412", code, errOut)
	}
	settings, rows = rulesOf(t, e.ok("workspace", "rules", "legal"))
	if len(rows) != 1 || rows[0]["GROUP"] != "Other" {
		t.Errorf("a stale rules set changed the rules: %v", rows)
	}
	current := regexp.MustCompile(`Workspace version:\s+(\d+)`).FindStringSubmatch(settings)[1]
	if _, rows := rulesOf(t, e.ok("workspace", "rules", "set", "legal", "--file", stale, "--if-version", current)); len(rows) != 1 || rows[0]["GROUP"] != "Stale" {
		t.Errorf("rules set at the current version: %v", rows)
	}
	for _, v := range []string{"-1", "0"} {
		if code, _, _ := e.run(nil, "workspace", "rules", "set", "legal", "--file", stale, "--if-version", v); code != 2 {
			t.Errorf("--if-version %s: exit %d, want 2", v, code)
		}
	}

	if code, _, errOut := e.run(nil, "workspace", "rules", "set", "legal"); code != 2 || !strings.Contains(errOut, "--file is required") {
		t.Errorf("rules set without --file: %d %s", code, errOut)
	}
	if _, _, errOut := e.run(nil, "workspace", "rules", "nope"); !strings.Contains(errOut, "404") {
		t.Errorf("rules of an unknown workspace: %s", errOut)
	}
}

// TestMembersExplainCommand: after a JIT sign-in through the demo IdP
// (workato_role sent for DEV only) and a SCIM change of the PROD role,
// "members explain" says DEV came from the attribute, TEST from the
// default role and PROD from SCIM; -o json is the API's answer.
func TestMembersExplainCommand(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("workspace", "create", "--id", "legal", "--name", "Legal", "--settings", `{"jit":{"enabled":true}}`,
		"--idp-metadata-file", demoMetadataFile(t, e.Env))
	jar, _ := cookiejar.New(nil)
	demoSignIn(t, &http.Client{Jar: jar}, e.URL, "legal", "ann@example.com")
	events, err := e.Store.ListEvents(t.Context(), "legal", "", 100)
	var userID string
	for _, ev := range events {
		if ev.Type == "jit.user.created" {
			userID = ev.UserID
		}
	}
	if err != nil || userID == "" {
		t.Fatalf("no jit.user.created event: %v %+v", err, events)
	}
	var tok server.SCIMTokenJSON
	if err := json.Unmarshal([]byte(e.ok("token", "create", "legal", "-o", "json")), &tok); err != nil {
		t.Fatal(err)
	}
	code, body := httpDo(t, http.MethodPatch, e.URL+"/scim/v2/legal/Users/"+userID, tok.Token, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace",
			"path": "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role_prod", "value": "NoAccess"}},
	})
	if code != http.StatusOK {
		t.Fatalf("SCIM PATCH: %d %s", code, body)
	}

	rows := parseTable(t, e.ok("members", "explain", "legal", userID))
	want := []map[string]string{
		{"ENVIRONMENT": "dev", "ROLE": "Analyst", "SOURCE": "attribute", "BECAUSE": "workato_role (or app role) sent", "EVENT": "jit.user.created"},
		{"ENVIRONMENT": "test", "ROLE": "Operator", "SOURCE": "default", "BECAUSE": "nothing sent: jit.defaultRole", "EVENT": "jit.user.created"},
		{"ENVIRONMENT": "prod", "ROLE": "NoAccess", "SOURCE": "scim", "BECAUSE": "-", "EVENT": "-", "TIME": "-"},
	}
	if len(rows) != len(want) {
		t.Fatalf("members explain: %v", rows)
	}
	for i := range want {
		for k, v := range want[i] {
			if rows[i][k] != v {
				t.Errorf("%s %s = %q, want %q", want[i]["ENVIRONMENT"], k, rows[i][k], v)
			}
		}
	}
	if when, err := time.Parse(time.RFC3339, rows[0]["TIME"]); err != nil || time.Since(when) > time.Hour {
		t.Errorf("dev TIME %q", rows[0]["TIME"])
	}

	var x server.RoleExplanationJSON
	out := e.ok("members", "explain", "legal", userID, "-o", "json")
	if err := json.Unmarshal([]byte(out), &x); err != nil || x.UserID != userID || x.Roles != (storage.Roles{Dev: "Analyst", Test: "Operator", Prod: "NoAccess"}) ||
		len(x.Environments) != 3 || x.Environments[0].EventID == "" {
		t.Fatalf("members explain -o json: %v\n%s", err, out)
	}
	if code, _, errOut := e.run(nil, "members", "explain", "legal", "no-such-user"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("explain of an unknown member: %d %s", code, errOut)
	}
}

// TestBecauseNamesWhatGaveTheRole: the BECAUSE column of members explain
// for each source of the explain call.
func TestBecauseNamesWhatGaveTheRole(t *testing.T) {
	unknown := false
	for _, tc := range []struct {
		in   server.EnvExplanationJSON
		want string
	}{
		{server.EnvExplanationJSON{Environment: "test", Source: "rule", Rule: 2, Group: "Finance Auditors"}, `rule 2, group "Finance Auditors"`},
		{server.EnvExplanationJSON{Environment: "prod", Source: "attribute"}, "workato_role_prod (or app role) sent"},
		{server.EnvExplanationJSON{Environment: "dev", Source: "default", GroupsKnown: &unknown}, "nothing sent: jit.defaultRole; groups unknown (overage claim)"},
		{server.EnvExplanationJSON{Environment: "dev", Source: "kept", GroupsKnown: &unknown}, "role kept; groups unknown (overage claim)"},
		{server.EnvExplanationJSON{Environment: "dev", Source: "scim"}, ""},
	} {
		if got := because(tc.in); got != tc.want {
			t.Errorf("because(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
