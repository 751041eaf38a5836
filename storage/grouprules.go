package storage

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
