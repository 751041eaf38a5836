package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// adminClient talks to a running server's admin API.
type adminClient struct {
	server string
	token  string
	http   *http.Client
}

// clientFlags adds --server and --admin-token (with environment defaults)
// to fs.
func clientFlags(fs *flag.FlagSet, env environ) (server, token *string) {
	def := func(name, fallback string) string {
		if v, ok := env(name); ok && v != "" {
			return v
		}
		return fallback
	}
	server = fs.String("server", def("SCIMJIT_SERVER", "http://127.0.0.1:8080"), "base URL of the scimjit server (env SCIMJIT_SERVER)")
	token = fs.String("admin-token", def("SCIMJIT_ADMIN_TOKEN", ""), "admin API token (env SCIMJIT_ADMIN_TOKEN, or SCIMJIT_ADMIN_TOKEN_FILE)")
	return server, token
}

func newAdminClient(server, token string, env environ, readFile readFileFunc) (*adminClient, error) {
	if token == "" {
		if path, ok := env("SCIMJIT_ADMIN_TOKEN_FILE"); ok && path != "" {
			data, err := readFile(path)
			if err != nil {
				return nil, fmt.Errorf("admin token file: %w", err)
			}
			token = strings.TrimSpace(string(data))
		}
	}
	if token == "" {
		return nil, errors.New("no admin token: pass --admin-token or set SCIMJIT_ADMIN_TOKEN")
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http(s) URL", server)
	}
	return &adminClient{server: strings.TrimSuffix(server, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends a request and writes the (indented) JSON answer to out. A
// non-2xx answer becomes an error carrying the server's message.
func (c *adminClient) do(ctx context.Context, method, path string, body any, out io.Writer) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Message string }
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error, e.Message)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") != nil {
		buf.Reset()
		buf.Write(data)
	}
	buf.WriteByte('\n')
	_, err = out.Write(buf.Bytes())
	return err
}

// parseInterspersed parses flags that may come before or after positional
// arguments and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// settingsArg reads --settings (inline JSON) or --settings-file, and puts
// the content of --idp-metadata-file into settings.idp.metadataXML and
// --idp-metadata-url into settings.idp.metadataURL.
func settingsArg(inline, file, metadataFile, metadataURL string, readFile readFileFunc) (map[string]any, error) {
	switch {
	case inline != "" && file != "":
		return nil, errors.New("use --settings or --settings-file, not both")
	case file != "":
		data, err := readFile(file)
		if err != nil {
			return nil, err
		}
		inline = string(data)
	}
	settings := map[string]any{}
	if inline != "" {
		if err := json.Unmarshal([]byte(inline), &settings); err != nil {
			return nil, errors.New("settings must be a JSON object, e.g. '{\"jit\":{\"enabled\":true}}'")
		}
	}
	if metadataFile != "" {
		data, err := readFile(metadataFile)
		if err != nil {
			return nil, err
		}
		idp, _ := settings["idp"].(map[string]any)
		if idp == nil {
			idp = map[string]any{}
		}
		idp["metadataXML"] = string(data)
		settings["idp"] = idp
	}
	if metadataURL != "" {
		idp, _ := settings["idp"].(map[string]any)
		if idp == nil {
			idp = map[string]any{}
		}
		idp["metadataURL"] = metadataURL
		settings["idp"] = idp
	}
	if len(settings) == 0 {
		return nil, nil
	}
	return settings, nil
}

const workspaceUsage = `Usage:
  scimjit workspace create --id ID --name NAME [--settings JSON | --settings-file FILE] [--idp-metadata-file XML | --idp-metadata-url URL]
  scimjit workspace get ID
  scimjit workspace list
  scimjit workspace update ID [--name NAME] [--settings JSON | --settings-file FILE] [--idp-metadata-file XML | --idp-metadata-url URL]
  scimjit workspace delete ID
  scimjit workspace events ID [--after EVENT_ID] [--limit N]
Common flags: --server URL (SCIMJIT_SERVER), --admin-token TOKEN (SCIMJIT_ADMIN_TOKEN[_FILE]).
Settings JSON has the shape of the admin API (docs/admin-api.md), e.g.
  '{"jit":{"enabled":true,"existingAccount":"verify"},"customRoles":["Auditor"]}'
`

const tokenUsage = `Usage:
  scimjit token create WORKSPACE [--name NAME]   (prints the secret once)
  scimjit token list WORKSPACE
  scimjit token revoke WORKSPACE TOKEN_ID
Common flags: --server URL (SCIMJIT_SERVER), --admin-token TOKEN (SCIMJIT_ADMIN_TOKEN[_FILE]).
`

// workspaceCmd implements `scimjit workspace ...`.
func workspaceCmd(ctx context.Context, args []string, env environ, readFile readFileFunc, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, workspaceUsage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("scimjit workspace "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, workspaceUsage) }
	server, token := clientFlags(fs, env)
	id := fs.String("id", "", "workspace id (create)")
	name := fs.String("name", "", "workspace name")
	settings := fs.String("settings", "", "settings as JSON")
	settingsFile := fs.String("settings-file", "", "file with the settings JSON")
	metadataFile := fs.String("idp-metadata-file", "", "file with the IdP's SAML metadata XML (sets settings.idp.metadataXML)")
	metadataURL := fs.String("idp-metadata-url", "", "https URL the server downloads the IdP's metadata from (once)")
	after := fs.String("after", "", "list events after this id (events)")
	limit := fs.Int("limit", 0, "maximum number of events (events)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	need := func(n int) error {
		if len(pos) != n {
			fs.Usage()
			return errUsage
		}
		return nil
	}
	c, err := newAdminClient(*server, *token, env, readFile)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if err := need(0); err != nil {
			return err
		}
		s, err := settingsArg(*settings, *settingsFile, *metadataFile, *metadataURL, readFile)
		if err != nil {
			return err
		}
		body := map[string]any{"id": *id, "name": *name}
		if s != nil {
			body["settings"] = s
		}
		return c.do(ctx, http.MethodPost, "/admin/v1/workspaces", body, stdout)
	case "get":
		if err := need(1); err != nil {
			return err
		}
		return c.do(ctx, http.MethodGet, "/admin/v1/workspaces/"+url.PathEscape(pos[0]), nil, stdout)
	case "list":
		if err := need(0); err != nil {
			return err
		}
		return c.do(ctx, http.MethodGet, "/admin/v1/workspaces", nil, stdout)
	case "update":
		if err := need(1); err != nil {
			return err
		}
		s, err := settingsArg(*settings, *settingsFile, *metadataFile, *metadataURL, readFile)
		if err != nil {
			return err
		}
		body := map[string]any{}
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "name" {
				body["name"] = *name
			}
		})
		if s != nil {
			body["settings"] = s
		}
		return c.do(ctx, http.MethodPatch, "/admin/v1/workspaces/"+url.PathEscape(pos[0]), body, stdout)
	case "delete":
		if err := need(1); err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodDelete, "/admin/v1/workspaces/"+url.PathEscape(pos[0]), nil, stdout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "workspace %s deleted\n", pos[0])
		return nil
	case "events":
		if err := need(1); err != nil {
			return err
		}
		q := url.Values{}
		if *after != "" {
			q.Set("after", *after)
		}
		if *limit > 0 {
			q.Set("limit", fmt.Sprint(*limit))
		}
		path := "/admin/v1/workspaces/" + url.PathEscape(pos[0]) + "/events"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		return c.do(ctx, http.MethodGet, path, nil, stdout)
	}
	fs.Usage()
	return errUsage
}

// tokenCmd implements `scimjit token ...`.
func tokenCmd(ctx context.Context, args []string, env environ, readFile readFileFunc, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("scimjit token "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage) }
	server, token := clientFlags(fs, env)
	name := fs.String("name", "", "token name (create)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	c, err := newAdminClient(*server, *token, env, readFile)
	if err != nil {
		return err
	}
	switch {
	case sub == "create" && len(pos) == 1:
		return c.do(ctx, http.MethodPost, "/admin/v1/workspaces/"+url.PathEscape(pos[0])+"/scim-tokens",
			map[string]string{"name": *name}, stdout)
	case sub == "list" && len(pos) == 1:
		return c.do(ctx, http.MethodGet, "/admin/v1/workspaces/"+url.PathEscape(pos[0])+"/scim-tokens", nil, stdout)
	case sub == "revoke" && len(pos) == 2:
		if err := c.do(ctx, http.MethodDelete, "/admin/v1/workspaces/"+url.PathEscape(pos[0])+"/scim-tokens/"+url.PathEscape(pos[1]), nil, stdout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s revoked\n", pos[1])
		return nil
	}
	fs.Usage()
	return errUsage
}
