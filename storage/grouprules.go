package storage

import "strconv"

// RoleSettings say where a membership's roles come from besides the
// workato_role* attributes.
type RoleSettings struct {
	// GroupRules map IdP groups to roles, in order: for each environment
	// the first rule whose group the person is in and that names a role
	// for that environment gives it (MatchGroupRule).
	GroupRules []GroupRule
	// GroupRulesWin makes a matching group rule win over an explicit
	// workato_role* value. The zero value (false) is the default: explicit
	// attributes win. The admin API shows it inverted as explicitWins.
	GroupRulesWin bool
	// AppRoles makes IdP app roles give roles (default false): the values
	// of the SAML role claim and of the SCIM roles attribute, "Admin" for
	// DEV or "prod:Admin" for a named environment. Explicit workato_role*
	// values win over them.
	AppRoles bool
}

// MaxGroupRules bounds a workspace's group rules: every sign-in walks them
// once per environment.
const MaxGroupRules = 100

// GroupRule gives roles to the members of one IdP group.
type GroupRule struct {
	// Group is the group as the IdP names it: a SAML groups value (a name,
	// or an Entra object id) or a SCIM group's displayName or externalId.
	// Compared exactly (case-sensitive, as sent).
	Group string
	// Roles per environment; "" = the rule gives nothing for it.
	Roles Roles
}

// Environments in the order GroupRuleMatch and Roles.Env use.
var Environments = [3]string{"dev", "test", "prod"}

// Env returns the role of environment i (0 dev, 1 test, 2 prod).
func (r Roles) Env(i int) string {
	return [3]string{r.Dev, r.Test, r.Prod}[i]
}

// GroupRuleMatch is the rule that gives an environment its role.
type GroupRuleMatch struct {
	// Rule is the rule's 1-based position in the workspace's list.
	Rule  int
	Group string
	Role  string
}

// MatchGroupRule returns, for environment env (0 dev, 1 test, 2 prod), the
// first rule of rules that names a role for env and whose group is one of
// groups; ok is false when none does.
func MatchGroupRule(rules []GroupRule, env int, groups []string) (GroupRuleMatch, bool) {
	if len(groups) == 0 {
		return GroupRuleMatch{}, false
	}
	in := make(map[string]bool, len(groups))
	for _, g := range groups {
		in[g] = true
	}
	for i, r := range rules {
		if role := r.Roles.Env(env); role != "" && in[r.Group] {
			return GroupRuleMatch{Rule: i + 1, Group: r.Group, Role: role}, true
		}
	}
	return GroupRuleMatch{}, false
}

// RuleRole returns the group rule that decides environment env of a
// member whose explicit workato_role* value for env is explicit ("" when
// none was sent) and who is in groups (SAML groups values, or the
// displayName and externalId of each SCIM group the member is in): the
// first matching rule (MatchGroupRule), unless an explicit value was sent
// and explicit values win (GroupRulesWin false). ok is false when no rule
// decides. Settings validation keeps rule roles valid; a rule whose role is
// no longer one is passed over rather than trusted.
func (s Settings) RuleRole(env int, explicit string, groups []string) (GroupRuleMatch, bool) {
	rs := s.Roles
	if len(rs.GroupRules) == 0 || (explicit != "" && !rs.GroupRulesWin) {
		return GroupRuleMatch{}, false
	}
	m, ok := MatchGroupRule(rs.GroupRules, env, groups)
	if !ok || !s.ValidRole(m.Role) {
		return GroupRuleMatch{}, false
	}
	return m, true
}

// Where an environment's role came from (MemberRoles, and the "<env>.source"
// detail of the events that set roles).
const (
	RoleSourceAttribute = "attribute" // the explicit workato_role* value
	RoleSourceRule      = "rule"      // a group rule
	RoleSourceDefault   = "default"   // nothing sent: jit.defaultRole
)

// RolesDecision is a membership's roles and, per environment, where each
// came from.
type RolesDecision struct {
	Roles   Roles
	Sources [3]string // RoleSource*
	// Matches[i] is the rule that gave environment i its role, when
	// Sources[i] is RoleSourceRule.
	Matches [3]GroupRuleMatch
}

// Detail adds the decision's sources to an event's detail m:
// "<env>.source" and, for a rule, "<env>.rule" (its 1-based position) and
// "<env>.group" (the rule's group). An environment without a source is
// left out.
func (d RolesDecision) Detail(m map[string]string) map[string]string {
	for i, env := range Environments {
		if d.Sources[i] == "" {
			continue
		}
		m[env+".source"] = d.Sources[i]
		if d.Sources[i] == RoleSourceRule {
			m[env+".rule"] = strconv.Itoa(d.Matches[i].Rule)
			m[env+".group"] = d.Matches[i].Group
		}
	}
	return m
}

// Detail is r as events record roles: "dev=A,test=B,prod=C" (role names
// never contain ',' or '=').
func (r Roles) Detail() string {
	return "dev=" + r.Dev + ",test=" + r.Test + ",prod=" + r.Prod
}

// DefaultRole is the role of an environment that nothing else decides
// (jit.defaultRole, Operator when unset).
func (s Settings) DefaultRole() string {
	if s.JIT.DefaultRole != "" {
		return s.JIT.DefaultRole
	}
	return RoleOperator
}

// MemberRoles decides a membership's roles from its explicit workato_role*
// values and its groups, per environment: the rule RuleRole picks, else the
// explicit value, else the default role. A SCIM membership's roles are
// always this function of its ExplicitRoles and its SCIM groups' names
// (SCIMGroupNames).
func (s Settings) MemberRoles(explicit Roles, groups []string) RolesDecision {
	var d RolesDecision
	var out [3]string
	for i := range Environments {
		v := explicit.Env(i)
		switch m, ok := s.RuleRole(i, v, groups); {
		case ok:
			out[i], d.Sources[i], d.Matches[i] = m.Role, RoleSourceRule, m
		case v != "":
			out[i], d.Sources[i] = v, RoleSourceAttribute
		default:
			out[i], d.Sources[i] = s.DefaultRole(), RoleSourceDefault
		}
	}
	d.Roles = Roles{Dev: out[0], Test: out[1], Prod: out[2]}
	return d
}

// SCIMGroupNames are the names group rules match for a member of the SCIM
// groups refs: each group's displayName and, when set, its externalId.
func SCIMGroupNames(refs []GroupRef) []string {
	out := make([]string, 0, 2*len(refs))
	for _, g := range refs {
		out = append(out, g.DisplayName)
		if g.ExternalID != "" {
			out = append(out, g.ExternalID)
		}
	}
	return out
}

// SCIMGroupOf returns the first of refs a rule's group names (by
// displayName or externalId); ok is false when none.
func SCIMGroupOf(refs []GroupRef, group string) (GroupRef, bool) {
	for _, g := range refs {
		if g.DisplayName == group || (g.ExternalID != "" && g.ExternalID == group) {
			return g, true
		}
	}
	return GroupRef{}, false
}
