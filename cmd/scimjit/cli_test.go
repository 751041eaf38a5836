package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
)

// noFiles fails every file read: help must not need a token file.
func noFiles(string) ([]byte, error) { return nil, errors.New("no file reads expected") }

// TestHelpOfEveryCommandNeedsNoTokenOrServer runs --help on the root and on
// every command: each prints its usage to stdout and exits 0 with no token,
// no server and no file.
func TestHelpOfEveryCommandNeedsNoTokenOrServer(t *testing.T) {
	paths := [][]string{{}, {"help"}, {"completion"}, {"completion", "bash"}}
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			p := append(slices.Clone(path), sub.Name())
			paths = append(paths, p)
			walk(sub, p)
		}
	}
	walk(newRootCmd(mapEnv(nil), noFiles), nil)
	if len(paths) < 20 {
		t.Fatalf("only %d commands found", len(paths))
	}
	env := mapEnv(map[string]string{"SCIMJIT_SERVER": "http://127.0.0.1:1"})
	for _, p := range paths {
		t.Run(strings.Join(append([]string{"scimjit"}, p...), " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(t.Context(), append(slices.Clone(p), "--help"), env, noFiles, &out, &errOut)
			usage := strings.Join(append([]string{"scimjit"}, p...), " ")
			if code != 0 || errOut.Len() != 0 || !strings.Contains(out.String(), "Usage:\n  "+usage) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
			}
		})
	}
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, env, noFiles, &out, io.Discard); code != 0 {
		t.Fatal(code)
	}
	for _, cmd := range []string{"serve", "workspace", "token", "events", "users", "check", "healthcheck", "version", "completion"} {
		if !regexp.MustCompile(`(?m)^  ` + cmd + ` +\S`).MatchString(out.String()) {
			t.Errorf("scimjit --help does not list %s:\n%s", cmd, out.String())
		}
	}
	out.Reset()
	if code := run(t.Context(), []string{"serve", "--help"}, env, noFiles, &out, io.Discard); code != 0 ||
		!strings.Contains(out.String(), "--redis-url") || !strings.Contains(out.String(), "SCIMJIT_REDIS_PASSWORD_FILE") {
		t.Errorf("serve --help does not list the serve options:\n%s", out.String())
	}
}

// TestVersionFlagAndCommandAgree: "scimjit version", "--version" and "-v"
// print the same line.
func TestVersionFlagAndCommandAgree(t *testing.T) {
	var want string
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		var out bytes.Buffer
		if code := run(t.Context(), args, mapEnv(nil), noFiles, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "scimjit ") {
			t.Fatalf("%q: exit %d, %q", args, code, out.String())
		}
		if want == "" {
			want = out.String()
		}
		if out.String() != want {
			t.Errorf("%q prints %q, version prints %q", args, out.String(), want)
		}
	}
}

// TestShellCompletion: the completion scripts are produced, and the
// completion they call back (scimjit __complete) offers the commands, the
// subcommands and the values of -o.
func TestShellCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var out bytes.Buffer
		if code := run(t.Context(), []string{"completion", shell}, mapEnv(nil), noFiles, &out, io.Discard); code != 0 ||
			!strings.Contains(out.String(), "__complete") {
			t.Errorf("completion %s: exit %d\n%.300s", shell, code, out.String())
		}
	}
	complete := func(args ...string) []string {
		var out bytes.Buffer
		if code := run(t.Context(), append([]string{"__complete"}, args...), mapEnv(nil), noFiles, &out, io.Discard); code != 0 {
			t.Fatalf("__complete %q: exit %d", args, code)
		}
		var names []string
		for _, line := range strings.Split(out.String(), "\n") {
			if line != "" && !strings.HasPrefix(line, ":") {
				name, _, _ := strings.Cut(line, "\t")
				names = append(names, name)
			}
		}
		return names
	}
	got := complete("")
	for _, cmd := range []string{"serve", "workspace", "token", "events", "users", "check", "healthcheck", "version"} {
		if !slices.Contains(got, cmd) {
			t.Errorf("completion of scimjit offers %q, missing %s", got, cmd)
		}
	}
	if got := complete("workspace", ""); !slices.Contains(got, "list") || !slices.Contains(got, "create") {
		t.Errorf("completion of scimjit workspace: %q", got)
	}
	if got := complete("workspace", "list", "-o", ""); !slices.Equal(got, []string{"table", "json"}) {
		t.Errorf("completion of -o: %q", got)
	}
	if got := complete("serve", "--redis-"); !slices.Contains(got, "--redis-url") {
		t.Errorf("completion of serve --redis-: %q", got)
	}
}

// demoMetadataFile writes the demo IdP's metadata to a file for
// --idp-metadata-file.
func demoMetadataFile(t *testing.T, env *servertest.Env) string {
	t.Helper()
	md, err := env.Server.SAML().DemoIdPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(path, md, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cliEnv is a running server and a way to run the CLI against it.
type cliEnv struct {
	*servertest.Env
	t *testing.T
}

func newCLIEnv(t *testing.T) cliEnv {
	return cliEnv{servertest.New(t, func(c *server.Config) { c.Demo = true }), t}
}

// run runs the CLI with --server and the admin token in the environment,
// plus extra environment variables.
func (e cliEnv) run(extraEnv map[string]string, args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	env := map[string]string{"SCIMJIT_ADMIN_TOKEN": e.AdminToken, "SCIMJIT_SERVER": e.URL}
	for k, v := range extraEnv {
		env[k] = v
	}
	var out, errOut bytes.Buffer
	code = run(e.t.Context(), args, mapEnv(env), os.ReadFile, &out, &errOut)
	return code, out.String(), errOut.String()
}

// ok runs the CLI and fails the test unless it exits 0.
func (e cliEnv) ok(args ...string) string {
	e.t.Helper()
	code, out, errOut := e.run(nil, args...)
	if code != 0 {
		e.t.Fatalf("%q: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// parseTable cuts a table into rows of header → value using the columns'
// start offsets in the header line: a value that is not aligned under its
// header comes out wrong.
func parseTable(t *testing.T, out string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	header := lines[0]
	var starts []int
	for i := range header {
		if header[i] != ' ' && (i == 0 || strings.HasSuffix(header[:i], "  ")) {
			starts = append(starts, i)
		}
	}
	var rows []map[string]string
	for _, line := range lines[1:] {
		row := map[string]string{}
		for i, s := range starts {
			end, nameEnd := len(line), len(header)
			if i+1 < len(starts) {
				end, nameEnd = starts[i+1], starts[i+1]
				if end > len(line) || line[end-1] != ' ' {
					t.Fatalf("column %d not aligned:\n%s", i+1, out)
				}
			}
			row[strings.TrimSpace(header[s:nameEnd])] = strings.TrimSpace(line[s:end])
		}
		rows = append(rows, row)
	}
	return rows
}

// TestWorkspaceAndTokenTables: workspace list and token list print aligned
// columns by default (no IdP metadata XML), workspace get a summary, and
// -o json the API's JSON.
func TestWorkspaceAndTokenTables(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("workspace", "create", "--id", "legal", "--name", "Legal Team", "--settings", `{"jit":{"enabled":true}}`)
	e.ok("workspace", "create", "--id", "hr", "--name", "HR", "--idp-metadata-file", demoMetadataFile(t, e.Env))

	out := e.ok("workspace", "list")
	if strings.Contains(out, "<") || strings.Contains(out, "EntityDescriptor") {
		t.Errorf("workspace list shows metadata XML:\n%s", out)
	}
	byID := map[string]map[string]string{}
	for _, r := range parseTable(t, out) {
		byID[r["ID"]] = r
	}
	if r := byID["legal"]; r["NAME"] != "Legal Team" || r["JIT"] != "on" || r["SSO"] != "no" {
		t.Errorf("legal row %v\n%s", r, out)
	}
	if r := byID["hr"]; r["NAME"] != "HR" || r["JIT"] != "off" || r["SSO"] != "yes" {
		t.Errorf("hr row %v\n%s", r, out)
	}
	var list struct{ Workspaces []server.WorkspaceJSON }
	out = e.ok("workspace", "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Workspaces) != len(byID) {
		t.Fatalf("workspace list -o json: %v\n%s", err, out)
	}

	out = e.ok("workspace", "get", "hr")
	if !strings.Contains(out, "SSO:") || !strings.Contains(out, e.URL+"/demo/idp/metadata") || strings.Contains(out, "<") {
		t.Errorf("workspace get summary:\n%s", out)
	}
	var ws server.WorkspaceJSON
	if out = e.ok("workspace", "get", "hr", "--output", "json"); json.Unmarshal([]byte(out), &ws) != nil || ws.Settings.IdP.MetadataXML == "" {
		t.Errorf("workspace get -o json lacks the metadata:\n%.300s", out)
	}

	var toks []server.SCIMTokenJSON
	for _, name := range []string{"okta", "entra id"} {
		var tok server.SCIMTokenJSON
		out := e.ok("token", "create", "legal", "--name", name, "-o", "json")
		if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
			t.Fatalf("token create -o json: %v %s", err, out)
		}
		toks = append(toks, tok)
	}
	out = e.ok("token", "list", "legal")
	rows := parseTable(t, out)
	if len(rows) != 2 || strings.Contains(out, toks[0].Token) {
		t.Fatalf("token list:\n%s", out)
	}
	for _, tok := range toks {
		if !slices.ContainsFunc(rows, func(r map[string]string) bool { return r["ID"] == tok.ID && r["NAME"] == tok.Name }) {
			t.Errorf("token %s %q not in\n%s", tok.ID, tok.Name, out)
		}
	}
	var tl struct{ Tokens []server.SCIMTokenJSON }
	if out = e.ok("token", "list", "legal", "-o", "json"); json.Unmarshal([]byte(out), &tl) != nil || len(tl.Tokens) != 2 {
		t.Errorf("token list -o json:\n%s", out)
	}
	// The human form of token create shows the secret once, in a table.
	code, out, errOut := e.run(nil, "token", "create", "legal", "--name", "third")
	if code != 0 || !regexp.MustCompile(`(?m)^Token: +sjt_`).MatchString(out) || !strings.Contains(errOut, "shown only now") {
		t.Errorf("token create: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := e.run(nil, "token", "list", "legal", "-o", "yaml"); code != 2 || !strings.Contains(errOut, "--output") {
		t.Errorf("-o yaml: exit %d %s", code, errOut)
	}
}

// TestEventsCommand: events prints a table of the stream, --type filters
// by exact type and by prefix, --limit keeps the last events, -o json is
// the API's shape with a next cursor that --after continues from, and
// "workspace events" still works.
func TestEventsCommand(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("workspace", "create", "--id", "legal", "--name", "Legal")
	e.ok("workspace", "update", "legal", "--name", "Legal Team")
	e.ok("token", "create", "legal", "--name", "okta")

	out := e.ok("events", "legal")
	rows := parseTable(t, out)
	var types []string
	for _, r := range rows {
		types = append(types, r["TYPE"])
		if r["ACTOR"] != "admin:default" || !strings.HasPrefix(r["TIME"], "20") {
			t.Errorf("row %v", r)
		}
	}
	want := []string{"admin.workspace.created", "admin.workspace.updated", "admin.scim_token.created"}
	if !slices.Equal(types, want) {
		t.Fatalf("events types %q, want %q\n%s", types, want, out)
	}
	if rows[1]["DETAIL"] != "fields=name" {
		t.Errorf("detail %q", rows[1]["DETAIL"])
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--type", "admin.workspace.updated"}, want[1:2]},
		{[]string{"--type", "admin.workspace.*"}, want[:2]},
		{[]string{"--type", "admin.scim_token.", "--type", "admin.workspace.created"}, []string{want[0], want[2]}},
		{[]string{"--type", "admin.workspace.updated,admin.scim_token.created"}, want[1:]},
		{[]string{"--type", "admin.workspace"}, nil},
		{[]string{"--limit", "2"}, want[1:]},
	} {
		out := e.ok(append([]string{"events", "legal"}, tc.args...)...)
		var got []string
		for _, r := range parseTable(t, out) {
			got = append(got, r["TYPE"])
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("events %q: %q, want %q", tc.args, got, tc.want)
		}
	}
	var resp struct {
		Events []server.EventJSON
		Next   string
	}
	out = e.ok("events", "legal", "-o", "json", "--limit", "1", "--after", rows[0]["ID"])
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Events) != 1 ||
		resp.Events[0].Type != want[1] || resp.Next != resp.Events[0].ID {
		t.Fatalf("events -o json --after: %v\n%s", err, out)
	}
	out = e.ok("events", "legal", "-o", "json", "--after", resp.Next)
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Events) != 1 || resp.Events[0].Type != want[2] {
		t.Fatalf("events continuing from next: %v\n%s", err, out)
	}
	out = e.ok("workspace", "events", "legal")
	if len(parseTable(t, out)) != 3 {
		t.Errorf("workspace events:\n%s", out)
	}
	if code, _, errOut := e.run(nil, "events", "nope"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("events of an unknown workspace: %d %s", code, errOut)
	}
}

// TestEventsFollow: events --follow prints the existing events, then a new
// one of the given type when it happens (and not one of another type), and
// ends with exit 0 when its context is cancelled (Ctrl-C).
func TestEventsFollow(t *testing.T) {
	old := eventsPollInterval
	eventsPollInterval = 20 * time.Millisecond
	t.Cleanup(func() { eventsPollInterval = old })
	e := newCLIEnv(t)
	e.ok("workspace", "create", "--id", "legal", "--name", "Legal")
	e.ok("token", "create", "legal", "--name", "first")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		env := mapEnv(map[string]string{"SCIMJIT_ADMIN_TOKEN": e.AdminToken})
		done <- run(ctx, []string{"events", "legal", "--follow", "--type", "admin.scim_token.*", "-o", "json", "--server", e.URL}, env, os.ReadFile, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	next := func() server.EventJSON {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("events --follow ended early: exit %d", <-done)
		}
		var ev server.EventJSON
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
			t.Fatalf("not a JSON line: %q", lines.Text())
		}
		return ev
	}
	if ev := next(); ev.Type != "admin.scim_token.created" || ev.Detail["name"] != "first" {
		t.Fatalf("first event %+v", ev)
	}
	e.ok("workspace", "update", "legal", "--name", "Legal Team") // another type: filtered out
	e.ok("token", "create", "legal", "--name", "second")
	if ev := next(); ev.Type != "admin.scim_token.created" || ev.Detail["name"] != "second" {
		t.Fatalf("followed event %+v", ev)
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("events --follow ended with %d after cancel", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events --follow did not stop on cancel")
	}
}

// TestUsersCommand: users runs a SCIM query with the workspace's SCIM token
// (the admin token does not open SCIM) and prints the matching users.
func TestUsersCommand(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("workspace", "create", "--id", "legal", "--name", "Legal")
	var tok server.SCIMTokenJSON
	if err := json.Unmarshal([]byte(e.ok("token", "create", "legal", "-o", "json")), &tok); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, email, role string }{
		{"ann@example.com", "ann.work@example.com", "Admin"},
		{"bob@example.com", "bob.work@example.com", "Analyst"},
	} {
		code, body := httpDo(t, http.MethodPost, e.URL+"/scim/v2/legal/Users", tok.Token, map[string]any{
			"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": u.name, "active": true,
			"emails": []map[string]any{{"value": u.email, "primary": true}},
			"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole": map[string]string{"workato_role": u.role},
		})
		if code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", u.name, code, body)
		}
	}
	scim := map[string]string{"SCIMJIT_SCIM_TOKEN": tok.Token}
	code, out, errOut := e.run(scim, "users", "legal", "--filter", `userName eq "bob@example.com"`)
	if code != 0 {
		t.Fatalf("users: %d %s", code, errOut)
	}
	rows := parseTable(t, out)
	if len(rows) != 1 || rows[0]["USERNAME"] != "bob@example.com" || rows[0]["EMAIL"] != "bob.work@example.com" ||
		rows[0]["ACTIVE"] != "true" || rows[0]["DEV ROLE"] != "Analyst" || rows[0]["ID"] == "" {
		t.Fatalf("users --filter: %q\n%s", rows, out)
	}
	code, out, _ = e.run(scim, "users", "legal", "--sort-by", "userName", "--descending", "--attributes", "userName", "-o", "json")
	var list struct {
		TotalResults int
		Resources    []map[string]any
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || list.TotalResults != 2 || len(list.Resources) != 2 ||
		list.Resources[0]["userName"] != "bob@example.com" || list.Resources[0]["emails"] != nil {
		t.Fatalf("users -o json sorted with attributes: %d\n%s", code, out)
	}
	code, _, errOut = e.run(scim, "users", "legal", "--count", "1")
	if code != 0 || !strings.Contains(errOut, "1 of 2 users shown") {
		t.Errorf("users --count 1: %d %s", code, errOut)
	}
	// Only the admin token: the command says what it needs.
	if code, _, errOut := e.run(nil, "users", "legal"); code != 1 || !strings.Contains(errOut, "SCIMJIT_SCIM_TOKEN") {
		t.Errorf("users without a SCIM token: %d %s", code, errOut)
	}
	if code, _, errOut := e.run(map[string]string{"SCIMJIT_SCIM_TOKEN": e.AdminToken}, "users", "legal"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("users with the admin token: %d %s", code, errOut)
	}
	if code, _, errOut := e.run(scim, "users", "legal", "--filter", "userName eq"); code != 1 || !strings.Contains(errOut, "400") {
		t.Errorf("users with a bad filter: %d %s", code, errOut)
	}
}
