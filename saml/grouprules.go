package saml

import (
	"strconv"

	"github.com/scimjit/scimjit/storage"
)

// Why an environment got its role at a sign-in, as recorded in the
// sign-in's events ("<env>.source" detail keys) and read back by the
// admin API's roles explain call.
const (
	sourceAttribute = "attribute" // the workato_role* value sent
	sourceRule      = "rule"      // a group rule ("<env>.rule", "<env>.group")
	sourceDefault   = "default"   // nothing sent: jit.defaultRole
	sourceKept      = "kept"      // groups unknown (overage): the membership's role stays
)

// roleDecision is what rolesFor decided for a sign-in: the roles and, per
// environment, where each came from.
type roleDecision struct {
	Roles   storage.Roles
	Sources [3]string
	// Matches[i] is the rule that gave environment i its role, when
	// Sources[i] is sourceRule.
	Matches [3]storage.GroupRuleMatch
	// GroupsUnknown: the workspace has group rules and the IdP sent an
	// overage claim instead of the groups.
	GroupsUnknown bool
}

// detail adds the decision's sources to an event's detail m.
func (d roleDecision) detail(m map[string]string) map[string]string {
	for i, env := range envNames {
		if d.Sources[i] == "" {
			continue
		}
		m[env+".source"] = d.Sources[i]
		if d.Sources[i] == sourceRule {
			m[env+".rule"] = strconv.Itoa(d.Matches[i].Rule)
			m[env+".group"] = d.Matches[i].Group
		}
	}
	return d.groupsDetail(m)
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
// group rules, when they decide it (ok): the first matching rule, unless
// an explicit workato_role* value was sent and explicit values win; with
// the groups unknown (Entra's overage claim) an existing membership
// (current) keeps its role where a rule could have decided, so that a
// person in too many groups never loses a role because of it.
func groupRule(ws storage.Workspace, id identity, env int, current *storage.Roles) (role, source string, m storage.GroupRuleMatch, ok bool) {
	rs := ws.Settings.Roles
	if len(rs.GroupRules) == 0 || (id.Roles[env] != "" && !rs.GroupRulesWin) {
		return "", "", m, false
	}
	if id.GroupsUnknown {
		if current == nil {
			return "", "", m, false
		}
		return current.Env(env), sourceKept, m, true
	}
	// Settings validation keeps rule roles valid; a rule whose role is no
	// longer one is passed over rather than trusted.
	m, ok = storage.MatchGroupRule(rs.GroupRules, env, id.Groups)
	if !ok || !ws.Settings.ValidRole(m.Role) {
		return "", "", storage.GroupRuleMatch{}, false
	}
	return m.Role, sourceRule, m, true
}
