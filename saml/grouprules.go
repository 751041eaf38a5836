package saml

import (
	"github.com/scimjit/scimjit/storage"
)

// Why an environment got its role at a sign-in, as recorded in the
// sign-in's events ("<env>.source" detail keys) and read back by the
// admin API's roles explain call: storage.RoleSource*, or sourceKept.
const (
	sourceAttribute = storage.RoleSourceAttribute // the workato_role* value sent
	sourceRule      = storage.RoleSourceRule      // a group rule ("<env>.rule", "<env>.group")
	sourceDefault   = storage.RoleSourceDefault   // nothing sent: jit.defaultRole
	sourceKept      = "kept"                      // groups unknown (overage): the membership's role stays
)

// roleDecision is what rolesFor decided for a sign-in: the roles and, per
// environment, where each came from.
type roleDecision struct {
	storage.RolesDecision
	// GroupsUnknown: the workspace has group rules and the IdP sent an
	// overage claim instead of the groups.
	GroupsUnknown bool
}

// detail adds the decision's sources to an event's detail m.
func (d roleDecision) detail(m map[string]string) map[string]string {
	return d.groupsDetail(d.RolesDecision.Detail(m))
}

// groupsDetail adds "groups": "unknown" to m (allocated when nil) when the
// IdP sent an overage claim, so that every decision of such a sign-in says
// its groups were not known.
func (d roleDecision) groupsDetail(m map[string]string) map[string]string {
	if !d.GroupsUnknown {
		return m
	}
	if m == nil {
		m = map[string]string{}
	}
	m["groups"] = "unknown"
	return m
}

// groupRule decides environment env of a sign-in from the workspace's
// group rules, when they decide it (ok): storage.Settings.RuleRole with
// the groups sent; with the groups unknown (Entra's overage claim) an
// existing membership (current) keeps its role where a rule could have
// decided, so that a person in too many groups never loses a role because
// of it.
func groupRule(ws storage.Workspace, id identity, env int, current *storage.Roles) (role, source string, m storage.GroupRuleMatch, ok bool) {
	rs := ws.Settings.Roles
	if id.GroupsUnknown {
		if current == nil || len(rs.GroupRules) == 0 || (id.Roles[env] != "" && !rs.GroupRulesWin) {
			return "", "", m, false
		}
		return current.Env(env), sourceKept, m, true
	}
	m, ok = ws.Settings.RuleRole(env, id.Roles[env], id.Groups)
	if !ok {
		return "", "", m, false
	}
	return m.Role, sourceRule, m, true
}
