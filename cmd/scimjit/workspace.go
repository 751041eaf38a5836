package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/scimjit/scimjit/server"
)

// newWorkspaceCmd is `scimjit workspace ...` over the admin API.
func newWorkspaceCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "workspace",
		Aliases: []string{"workspaces"},
		Short:   "Manage workspaces through the admin API",
		Long: `Manages workspaces through the admin API of a running server.

Settings JSON has the shape of the admin API (docs/admin-api.md), e.g.
  '{"jit":{"enabled":true,"existingAccount":"verify"},"customRoles":["Auditor"]}'`,
	}
	cf := addClientFlags(cmd, adminTokenOption, env, readFile)
	summary := decoded(printWorkspace)

	// settingsFlags are the flags of create and update that build settings.
	type settingsFlags struct{ inline, file, metadataFile, metadataURL string }
	addSettings := func(c *cobra.Command) *settingsFlags {
		s := &settingsFlags{}
		c.Flags().StringVar(&s.inline, "settings", "", "settings as JSON")
		c.Flags().StringVar(&s.file, "settings-file", "", "file with the settings JSON")
		c.Flags().StringVar(&s.metadataFile, "idp-metadata-file", "", "file with the IdP's SAML metadata XML (sets settings.idp.metadataXML)")
		c.Flags().StringVar(&s.metadataURL, "idp-metadata-url", "", "https URL the server downloads the IdP's metadata from, and again every 12 hours (or as the metadata asks)")
		c.MarkFlagsMutuallyExclusive("settings", "settings-file")
		c.MarkFlagsMutuallyExclusive("idp-metadata-file", "idp-metadata-url")
		return s
	}
	// withSettings adds the settings the flags give to body.
	withSettings := func(body map[string]any, f *settingsFlags) (map[string]any, error) {
		s, err := settingsArg(f.inline, f.file, f.metadataFile, f.metadataURL, readFile)
		if s != nil {
			body["settings"] = s
		}
		return body, err
	}

	create := &cobra.Command{
		Use:   "create --id ID --name NAME [--settings JSON | --settings-file FILE] [--idp-metadata-file XML | --idp-metadata-url URL]",
		Short: "Create a workspace",
		Args:  cobra.NoArgs,
	}
	id := create.Flags().String("id", "", "workspace id")
	name := create.Flags().String("name", "", "workspace name")
	createSettings := addSettings(create)
	create.RunE = func(c *cobra.Command, _ []string) error {
		body, err := withSettings(map[string]any{"id": *id, "name": *name}, createSettings)
		if err != nil {
			return err
		}
		return cf.call(c, http.MethodPost, "/admin/v1/workspaces", body, summary)
	}

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show a workspace (-o json: every setting, the IdP metadata XML included)",
		Args:  exactArgs("ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodGet, wsPath(args[0]), nil, summary)
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the workspaces (id, name, JIT on/off, SSO configured)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return cf.call(c, http.MethodGet, "/admin/v1/workspaces", nil, decoded(printWorkspaces))
		},
	}

	update := &cobra.Command{
		Use:   "update ID [--name NAME] [--settings JSON | --settings-file FILE] [--idp-metadata-file XML | --idp-metadata-url URL]",
		Short: "Change a workspace's name or settings (only what is given)",
		Args:  exactArgs("ID"),
	}
	newName := update.Flags().String("name", "", "workspace name")
	updateSettings := addSettings(update)
	update.RunE = func(c *cobra.Command, args []string) error {
		body := map[string]any{}
		if c.Flags().Changed("name") {
			body["name"] = *newName
		}
		body, err := withSettings(body, updateSettings)
		if err != nil {
			return err
		}
		return cf.call(c, http.MethodPatch, wsPath(args[0]), body, summary)
	}

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a workspace and everything it owns (users, groups, tokens, events)",
		Args:  exactArgs("ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodDelete, wsPath(args[0]), nil, func(c *cobra.Command, _ []byte) error {
				_, err := fmt.Fprintf(c.OutOrStdout(), "workspace %s deleted\n", args[0])
				return err
			})
		},
	}

	refresh := &cobra.Command{
		Use:   "refresh-metadata ID",
		Short: "Download the workspace's IdP metadata from its metadata URL now and show what changed",
		Args:  exactArgs("ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodPost, wsPath(args[0])+"/refresh-metadata", nil, decoded(printMetadataRefresh))
		},
	}

	// "workspace events" predates "scimjit events" and stays as its alias.
	events := newEventsCmd(env, readFile)
	events.Hidden = true
	cmd.AddCommand(create, get, list, update, del, refresh, newRulesCmd(cf, readFile), events)
	return cmd
}

// newRulesCmd is `scimjit workspace rules ID` and `... rules set ID --file F`:
// the group rules (settings.roles) through GET and PATCH of the workspace.
func newRulesCmd(cf *clientFlags, readFile readFileFunc) *cobra.Command {
	rulesTable := decoded(func(w io.Writer, ws server.WorkspaceJSON) error { return printRules(w, ws) })
	rules := &cobra.Command{
		Use:   "rules ID",
		Short: "Show the workspace's group rules (roles from IdP groups)",
		Long: `Shows the workspace's group rules in order: for each environment the first
rule whose group the person is in, and that names a role for it, gives the
role. A group is compared exactly (case-sensitive) with a value of the SAML
groups attribute, or the displayName or externalId of a SCIM group the member
belongs to. -o json prints the workspace as the admin API answers it; its
settings.roles is the form "rules set" reads.`,
		Args: exactArgs("ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodGet, wsPath(args[0]), nil, rulesTable)
		},
	}
	set := &cobra.Command{
		Use:   "set ID --file rules.yaml",
		Short: "Replace the workspace's group rules with those of a YAML or JSON file",
		Long: `Replaces the workspace's group rules with the list in the file (PATCH of
settings.roles). The file is YAML or JSON with the keys of the admin API's
roles block: groupRules (required; [] removes every rule), and optionally
explicitWins and appRoles:

  groupRules:
    - group: Engineering
      roles: {dev: Admin, test: Analyst}
    - group: Finance Auditors
      roles: {prod: Auditor}
  explicitWins: true

Every role must be a system role (Admin, Analyst, Operator, NoAccess) or a
custom role of the workspace, case-sensitive; the server refuses the whole
file otherwise and changes nothing.

With --if-version N (the workspace version "rules ID" shows), the server
refuses the change, and changes nothing, when anyone has changed the
workspace since that version: read the rules again and decide.`,
		Args: exactArgs("ID"),
	}
	file := set.Flags().String("file", "", "YAML or JSON file with groupRules (and optionally explicitWins, appRoles)")
	ifVersion := set.Flags().Int64("if-version", 0, "refuse the change if the workspace is no longer at this version (as \"rules ID\" shows it)")
	set.RunE = func(c *cobra.Command, args []string) error {
		if *file == "" {
			return exitError{code: 2, err: errors.New("--file is required: the YAML or JSON file with groupRules")}
		}
		roles, err := readRulesFile(*file, readFile)
		if err != nil {
			return err
		}
		changed := c.Flags().Changed("if-version")
		if changed && *ifVersion < 1 {
			return exitError{code: 2, err: errors.New("--if-version is a workspace version, 1 or more")}
		}
		var h http.Header
		if changed {
			h = http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(*ifVersion, 10))}}
		}
		return cf.callWith(c, http.MethodPatch, wsPath(args[0]), map[string]any{"settings": map[string]any{"roles": roles}}, h, rulesTable)
	}
	rules.AddCommand(set)
	return rules
}

// readRulesFile reads the roles block of "rules set": YAML or JSON, no
// unknown keys, groupRules present.
func readRulesFile(path string, readFile readFileFunc) (*server.RolesPatch, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var roles server.RolesPatch
	if err := yaml.UnmarshalStrict(data, &roles); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if roles.GroupRules == nil {
		return nil, fmt.Errorf("%s: no groupRules: the file lists the rules under groupRules ([] removes every rule)", path)
	}
	return &roles, nil
}

// printRules writes the role settings and the workspace's version, then
// the rules as a table.
func printRules(w io.Writer, ws server.WorkspaceJSON) error {
	r := ws.Settings.Roles
	t := newTable(w, "Explicit attributes win:", yesNo(r.ExplicitWins))
	t.row("App roles give roles:", onOff(r.AppRoles))
	t.row("Workspace version:", strconv.FormatInt(ws.Version, 10))
	if err := t.flush(); err != nil {
		return err
	}
	if len(r.GroupRules) == 0 {
		_, err := fmt.Fprintln(w, "\nNo group rules.")
		return err
	}
	fmt.Fprintln(w)
	t = newTable(w, "RULE", "GROUP", "DEV", "TEST", "PROD")
	for i, g := range r.GroupRules {
		t.row(strconv.Itoa(i+1), g.Group, g.Roles.Dev, g.Roles.Test, g.Roles.Prod)
	}
	return t.flush()
}

// printWorkspaces writes the workspace list as a table; the IdP metadata
// XML is left out (SSO says whether there is one).
func printWorkspaces(w io.Writer, resp struct{ Workspaces []server.WorkspaceJSON }) error {
	t := newTable(w, "ID", "NAME", "JIT", "SSO", "CREATED")
	for _, ws := range resp.Workspaces {
		t.row(ws.ID, ws.Name, onOff(ws.Settings.JIT.Enabled), yesNo(ws.Settings.IdP.EntityID != ""), ws.CreatedAt.Format(time.RFC3339))
	}
	return t.flush()
}

// printWorkspace writes a readable summary of a workspace; the IdP
// metadata XML is left out (-o json has it).
func printWorkspace(w io.Writer, ws server.WorkspaceJSON) error {
	t := newTable(w, "ID:", ws.ID)
	t.row("Name:", ws.Name)
	jit := ws.Settings.JIT
	t.row("JIT:", onOff(jit.Enabled))
	t.row("Existing account:", jit.ExistingAccount)
	t.row("Default role:", jit.DefaultRole)
	t.row("Role sync:", jit.RoleSync)
	t.row("Unknown role:", jit.UnknownRole)
	t.row("Custom roles:", strings.Join(ws.Settings.CustomRoles, ", "))
	t.row("App roles give roles:", onOff(ws.Settings.Roles.AppRoles))
	t.row("Group rules:", fmt.Sprintf("%d (scimjit workspace rules %s)", len(ws.Settings.Roles.GroupRules), ws.ID))
	sso := "not configured (no IdP metadata)"
	if ws.Settings.IdP.EntityID != "" {
		sso = "configured, IdP " + ws.Settings.IdP.EntityID
	}
	t.row("SSO:", sso)
	if idp := ws.Settings.IdP; idp.MetadataURL != "" && idp.MetadataRefresh != nil {
		r := idp.MetadataRefresh
		t.row("Metadata URL:", idp.MetadataURL)
		t.row("Metadata fetched:", timeOrNever(r.FetchedAt))
		if r.LastError != "" {
			t.row("Last attempt failed:", r.CheckedAt.Format(time.RFC3339)+": "+r.LastError)
		}
		t.row("Next refresh:", r.NextDue.Format(time.RFC3339))
	}
	t.row("IdP-initiated:", yesNo(ws.Settings.IdP.AllowIdPInitiated))
	t.row("Created:", ws.CreatedAt.Format(time.RFC3339))
	t.row("Updated:", fmt.Sprintf("%s (version %d)", ws.UpdatedAt.Format(time.RFC3339), ws.Version))
	return t.flush()
}

// printMetadataRefresh writes the outcome of refresh-metadata.
func printMetadataRefresh(w io.Writer, r server.MetadataRefreshReport) error {
	t := newTable(w, "Workspace:", r.Workspace)
	if r.OK {
		t.row("Download:", "ok")
	} else {
		t.row("Download:", "failed: "+r.Error+" (the last good copy stays in use)")
	}
	t.row("Metadata changed:", yesNo(r.MetadataChanged))
	t.row("Certificates changed:", yesNo(r.CertificatesChanged))
	t.row("Signing certificates (SHA-256):", strings.Join(r.SigningCertificates, ", "))
	if r.CertificatesChanged {
		t.row("Before:", strings.Join(r.PreviousSigningCertificates, ", "))
	}
	t.row("Last fetched:", timeOrNever(r.FetchedAt))
	t.row("Next refresh:", r.NextDue.Format(time.RFC3339))
	return t.flush()
}

func timeOrNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// newTokenCmd is `scimjit token ...` over the admin API.
func newTokenCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Aliases: []string{"tokens"},
		Short:   "Manage a workspace's SCIM tokens through the admin API",
	}
	cf := addClientFlags(cmd, adminTokenOption, env, readFile)
	create := &cobra.Command{
		Use:   "create WORKSPACE [--name NAME]",
		Short: "Create a SCIM token and print its secret (shown only this once)",
		Args:  exactArgs("WORKSPACE"),
	}
	name := create.Flags().String("name", "", "token name, e.g. the IdP that uses it")
	create.RunE = func(c *cobra.Command, args []string) error {
		return cf.call(c, http.MethodPost, wsPath(args[0])+"/scim-tokens", map[string]string{"name": *name},
			func(c *cobra.Command, data []byte) error {
				if err := decoded(printNewToken)(c, data); err != nil {
					return err
				}
				_, err := fmt.Fprintln(c.ErrOrStderr(), "The token is shown only now: give it to the IdP's SCIM settings.")
				return err
			})
	}
	list := &cobra.Command{
		Use:   "list WORKSPACE",
		Short: "List a workspace's SCIM tokens (never their secrets)",
		Args:  exactArgs("WORKSPACE"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodGet, wsPath(args[0])+"/scim-tokens", nil, decoded(printTokens))
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke WORKSPACE TOKEN_ID",
		Short: "Revoke a SCIM token",
		Args:  exactArgs("WORKSPACE", "TOKEN_ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodDelete, wsPath(args[0])+"/scim-tokens/"+url.PathEscape(args[1]), nil,
				func(c *cobra.Command, _ []byte) error {
					_, err := fmt.Fprintf(c.OutOrStdout(), "token %s revoked\n", args[1])
					return err
				})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// printNewToken writes a created token, its secret included.
func printNewToken(w io.Writer, tok server.SCIMTokenJSON) error {
	t := newTable(w, "ID:", tok.ID)
	t.row("Name:", tok.Name)
	t.row("Token:", tok.Token)
	return t.flush()
}

// printTokens writes a token list as a table (the API never returns the
// secrets).
func printTokens(w io.Writer, resp struct{ Tokens []server.SCIMTokenJSON }) error {
	t := newTable(w, "ID", "NAME", "CREATED", "LAST USED")
	for _, tok := range resp.Tokens {
		used := "never"
		if !tok.LastUsedAt.IsZero() {
			used = tok.LastUsedAt.Format(time.RFC3339)
		}
		t.row(tok.ID, tok.Name, tok.CreatedAt.Format(time.RFC3339), used)
	}
	return t.flush()
}

// settingsArg reads --settings (inline JSON) or --settings-file, and puts
// the content of --idp-metadata-file into settings.idp.metadataXML and
// --idp-metadata-url into settings.idp.metadataURL.
func settingsArg(inline, file, metadataFile, metadataURL string, readFile readFileFunc) (map[string]any, error) {
	switch { // --settings and --settings-file are mutually exclusive flags
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
