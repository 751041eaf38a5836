package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimjit/scimjit/server"
)

// newMembersCmd is `scimjit members ...` over the admin API.
func newMembersCmd(env environ, readFile readFileFunc) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"member"},
		Short:   "Look into a workspace's members through the admin API",
	}
	cf := addClientFlags(cmd, adminTokenOption, env, readFile)
	explain := &cobra.Command{
		Use:   "explain WORKSPACE USER_ID",
		Short: "Say why a member has its role in each environment (attribute, group rule, default, SCIM, ...)",
		Long: `Says, per environment (dev, test, prod), which role the member has and what
gave it: the workato_role* attribute a sign-in sent, a group rule (its number
and the group that matched), the default role, a role kept because the IdP
could not send the groups (Entra's overage claim), SCIM, or unknown. It reads
GET /admin/v1/workspaces/WORKSPACE/members/USER_ID/roles/explain.

USER_ID is the member's SCIM User id: the USER column of "scimjit events
WORKSPACE" (sign-in and SCIM events name it), or the ID column of
"scimjit users WORKSPACE".

Example:
  scimjit members explain finance 2f6c0e4a9b1d4c7e8a5f3b2d1c0e9f8a`,
		Args: exactArgs("WORKSPACE", "USER_ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return cf.call(c, http.MethodGet, wsPath(args[0])+"/members/"+url.PathEscape(args[1])+"/roles/explain", nil,
				decoded(printRoleExplanation))
		},
	}
	cmd.AddCommand(explain)
	return cmd
}

// printRoleExplanation writes one line per environment: the role, its
// source and what in the source gave it.
func printRoleExplanation(w io.Writer, x server.RoleExplanationJSON) error {
	t := newTable(w, "ENVIRONMENT", "ROLE", "SOURCE", "BECAUSE", "EVENT", "TIME")
	for _, e := range x.Environments {
		when := ""
		if e.Time != nil {
			when = e.Time.Format(time.RFC3339)
		}
		t.row(e.Environment, e.Role, e.Source, because(e), e.EventType, when)
	}
	return t.flush()
}

// because says what in an environment's source gave its role: the rule
// and group, the attribute, the default role setting.
func because(e server.EnvExplanationJSON) string {
	var parts []string
	switch {
	case e.Rule > 0:
		parts = append(parts, fmt.Sprintf("rule %d, group %q", e.Rule, e.Group))
	case e.Group != "":
		parts = append(parts, fmt.Sprintf("group %q", e.Group))
	}
	switch e.Source {
	case "attribute":
		attr := "workato_role"
		if e.Environment != "dev" {
			attr += "_" + e.Environment
		}
		parts = append(parts, attr+" (or app role) sent")
	case "default":
		parts = append(parts, "nothing sent: jit.defaultRole")
	case "kept":
		parts = append(parts, "role kept")
	}
	if e.GroupsKnown != nil && !*e.GroupsKnown {
		parts = append(parts, "groups unknown (overage claim)")
	}
	return strings.Join(parts, "; ")
}
