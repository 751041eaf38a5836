package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// newUsersCmd is `scimjit users WORKSPACE`: a SCIM query with the
// workspace's SCIM token. It uses the SCIM API as an IdP would, so that the
// admin API needs no second query language.
func newUsersCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users WORKSPACE [--filter F] [--attributes a,b] [--count N] [--sort-by X]",
		Short: "List a workspace's users with a SCIM query (needs its SCIM token)",
		Long: `Lists a workspace's users through its SCIM API (GET /scim/v2/WORKSPACE/Users),
as the IdP sees them. SCIM takes the workspace's SCIM token, not the admin
token: pass --scim-token or set SCIMJIT_SCIM_TOKEN (or SCIMJIT_SCIM_TOKEN_FILE);
"scimjit token create WORKSPACE" makes one.

Examples:
  scimjit users finance --filter 'userName eq "jane.doe@example.com"'
  scimjit users finance --filter 'active eq false' --sort-by userName
  scimjit users finance -o json --attributes userName,emails

The table shows id, userName, the primary (else first) email, active and the
DEV role; -o json prints the SCIM ListResponse.`,
		Args: exactArgs("WORKSPACE"),
	}
	cf := addClientFlags(cmd, scimTokenOption, env, readFile)
	filter := cmd.Flags().String("filter", "", `SCIM filter (RFC 7644 §3.4.2.2), e.g. 'emails.value co "@example.com"'`)
	attributes := cmd.Flags().StringSlice("attributes", nil, "return only these attributes (id is always returned)")
	count := cmd.Flags().Int("count", 0, "at most this many users (0: the server's page size)")
	startIndex := cmd.Flags().Int("start-index", 0, "1-based index of the first user (paging)")
	sortBy := cmd.Flags().String("sort-by", "", "attribute to sort by, e.g. userName or meta.created")
	descending := cmd.Flags().Bool("descending", false, "sort in descending order (with --sort-by)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		q := url.Values{}
		set := func(k, v string) {
			if v != "" {
				q.Set(k, v)
			}
		}
		set("filter", *filter)
		set("attributes", strings.Join(*attributes, ","))
		if c.Flags().Changed("count") {
			q.Set("count", strconv.Itoa(*count))
		}
		if *startIndex > 0 {
			q.Set("startIndex", strconv.Itoa(*startIndex))
		}
		set("sortBy", *sortBy)
		if *descending {
			q.Set("sortOrder", "descending")
		}
		path := "/scim/v2/" + url.PathEscape(args[0]) + "/Users"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		return cf.call(c, http.MethodGet, path, nil, printUsers)
	}
	return cmd
}

// printUsers writes a SCIM ListResponse of users as a table, and a note on
// stderr when the page does not hold every match.
func printUsers(c *cobra.Command, data []byte) error {
	var list scimUserList
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	t := newTable(c.OutOrStdout(), "ID", "USERNAME", "EMAIL", "ACTIVE", "DEV ROLE")
	for _, u := range list.Resources {
		t.row(u.ID, u.UserName, u.email(), u.active(), u.Roles.Dev)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(list.Resources) < list.TotalResults {
		fmt.Fprintf(c.ErrOrStderr(), "%d of %d users shown; use --start-index and --count for the others\n",
			len(list.Resources), list.TotalResults)
	}
	return nil
}

// scimUserList is the part of a SCIM ListResponse of Users the table shows.
type scimUserList struct {
	TotalResults int        `json:"totalResults"`
	Resources    []scimUser `json:"Resources"`
}

type scimUser struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Active   *bool  `json:"active"` // absent when --attributes leaves it out
	Emails   []struct {
		Value   string `json:"value"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
	Roles struct {
		Dev string `json:"workato_role"`
	} `json:"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"`
}

// email is the primary email, else the first one.
func (u scimUser) email() string {
	for _, e := range u.Emails {
		if e.Primary {
			return e.Value
		}
	}
	if len(u.Emails) > 0 {
		return u.Emails[0].Value
	}
	return ""
}

func (u scimUser) active() string {
	if u.Active == nil {
		return ""
	}
	return strconv.FormatBool(*u.Active)
}
