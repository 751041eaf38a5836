package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// serverOption is the server the client commands talk to.
var serverOption = option{Flag: "server", Default: "http://127.0.0.1:8080", Usage: "base URL of the scimjit server"}

// adminTokenOption is the token of the commands that use the admin API.
var adminTokenOption = option{Flag: "admin-token", Usage: "admin API token", Secret: true}

// scimTokenOption is the token of the commands that use the SCIM API,
// which takes the workspace's SCIM token, not the admin token.
var scimTokenOption = option{Flag: "scim-token", Usage: "the workspace's SCIM bearer token (scimjit token create prints one); the admin token does not open SCIM", Secret: true}

// clientFlags are the connection and output flags of a client command.
type clientFlags struct {
	token    option
	opts     *optionSet
	output   string
	env      environ
	readFile readFileFunc
}

// addClientFlags registers --server, the token flag and -o/--output as
// persistent flags of cmd (they apply to its subcommands too).
func addClientFlags(cmd *cobra.Command, token option, env environ, readFile readFileFunc) *clientFlags {
	f := &clientFlags{token: token, env: env, readFile: readFile}
	fs := cmd.PersistentFlags()
	fs.SortFlags = false
	f.opts = addOptions(fs, []option{serverOption, token})
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table (for people) or json (the API's JSON, for scripts)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return f
}

// json reports whether -o json was asked for; another value than table or
// json is a command-line mistake.
func (f *clientFlags) json() (bool, error) {
	switch f.output {
	case "table":
		return false, nil
	case "json":
		return true, nil
	}
	return false, exitError{code: 2, err: fmt.Errorf("--output %q: use table or json", f.output)}
}

// client resolves --server and the token flag (flag > env > _FILE) and
// returns a client for the server.
func (f *clientFlags) client() (*apiClient, error) {
	vals, problems := f.opts.resolve(f.env, f.readFile)
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	token := vals[f.token.Flag].Value
	if token == "" {
		return nil, fmt.Errorf("no %s: pass --%s or set %s (or %s_FILE)",
			strings.ReplaceAll(f.token.Flag, "-", " "), f.token.Flag, f.token.Env(), f.token.Env())
	}
	server := vals[serverOption.Flag].Value
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http(s) URL", server)
	}
	return &apiClient{server: strings.TrimSuffix(server, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// call sends one request and prints the answer: with -o json the API's
// JSON, else what human makes of it.
func (f *clientFlags) call(c *cobra.Command, method, path string, body any, human func(c *cobra.Command, data []byte) error) error {
	return f.callWith(c, method, path, body, nil, human)
}

// callWith is call with extra request headers (If-Match).
func (f *clientFlags) callWith(c *cobra.Command, method, path string, body any, header http.Header, human func(c *cobra.Command, data []byte) error) error {
	asJSON, err := f.json()
	if err != nil {
		return err
	}
	api, err := f.client()
	if err != nil {
		return err
	}
	data, err := api.doWith(c.Context(), method, path, body, header)
	if err != nil {
		return err
	}
	if asJSON {
		if len(bytes.TrimSpace(data)) == 0 { // 204: nothing to print
			return nil
		}
		return writeJSON(c.OutOrStdout(), data)
	}
	return human(c, data)
}

// decoded adapts a printer of an API answer type for call.
func decoded[T any](print func(w io.Writer, v T) error) func(c *cobra.Command, data []byte) error {
	return func(c *cobra.Command, data []byte) error {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
		return print(c.OutOrStdout(), v)
	}
}

// apiClient talks to a running server's admin or SCIM API.
type apiClient struct {
	server string
	token  string
	http   *http.Client
}

// do sends a request and returns the answer's body. A non-2xx answer
// becomes an error carrying the server's message (admin API or SCIM error).
func (c *apiClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	return c.doWith(ctx, method, path, body, nil)
}

// doWith is do with extra request headers.
func (c *apiClient) doWith(ctx context.Context, method, path string, body any, header http.Header) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Message, Detail string }
		if json.Unmarshal(data, &e) == nil && e.Message+e.Detail != "" {
			return nil, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error, e.Message+e.Detail)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return data, nil
}

// getJSON GETs path and decodes the answer into out; it returns the raw
// answer too, for -o json.
func (c *apiClient) getJSON(ctx context.Context, path string, out any) ([]byte, error) {
	data, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return data, nil
}

// writeJSON writes an API answer indented, for -o json.
func writeJSON(w io.Writer, data []byte) error {
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") != nil {
		buf.Reset()
		buf.Write(data)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// exactArgs is cobra.ExactArgs with the names of the arguments in the
// message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("want %s, got %d arguments", strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// wsPath is the admin API path of a workspace.
func wsPath(id string) string { return "/admin/v1/workspaces/" + url.PathEscape(id) }

// table writes aligned columns (text/tabwriter); call flush at the end.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

// row adds a line; tabs and line breaks in values become spaces so that
// they cannot break the columns.
func (t *table) row(cols ...string) {
	for i, c := range cols {
		if c == "" {
			c = "-"
		}
		cols[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }
