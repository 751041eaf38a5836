package server

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/scimjit/scimjit/storage"
)

// RolesJSON is storage.RoleSettings in JSON: the workspace's group rules
// and whether explicit workato_role* attributes win over them.
type RolesJSON struct {
	GroupRules   []GroupRuleJSON `json:"groupRules"`
	ExplicitWins bool            `json:"explicitWins"`
	// AppRoles: IdP app roles give roles (storage.RoleSettings.AppRoles).
	AppRoles bool `json:"appRoles"`
}

// GroupRuleJSON is a storage.GroupRule: the roles, per environment, that
// members of Group get. An environment left out gets nothing from the
// rule.
type GroupRuleJSON struct {
	Group string        `json:"group"`
	Roles storage.Roles `json:"roles"`
}

// RolesPatch is a partial change of the role settings. GroupRules, when
// present, replaces the whole ordered list.
type RolesPatch struct {
	GroupRules   *[]GroupRuleJSON `json:"groupRules,omitempty"`
	ExplicitWins *bool            `json:"explicitWins,omitempty"`
	AppRoles     *bool            `json:"appRoles,omitempty"`
}

func rolesJSON(r storage.RoleSettings) RolesJSON {
	out := RolesJSON{GroupRules: []GroupRuleJSON{}, ExplicitWins: !r.GroupRulesWin, AppRoles: r.AppRoles}
	for _, g := range r.GroupRules {
		out.GroupRules = append(out.GroupRules, GroupRuleJSON{Group: g.Group, Roles: g.Roles})
	}
	return out
}

// apply changes r and returns the dotted names of the fields it set.
func (p *RolesPatch) apply(r *storage.RoleSettings) []string {
	if p == nil {
		return nil
	}
	var changed []string
	if p.GroupRules != nil {
		rules := make([]storage.GroupRule, 0, len(*p.GroupRules))
		for _, g := range *p.GroupRules {
			rules = append(rules, storage.GroupRule{Group: g.Group, Roles: g.Roles})
		}
		r.GroupRules = rules
		changed = append(changed, "roles.groupRules")
	}
	if p.ExplicitWins != nil {
		r.GroupRulesWin = !*p.ExplicitWins
		changed = append(changed, "roles.explicitWins")
	}
	if p.AppRoles != nil {
		r.AppRoles = *p.AppRoles
		changed = append(changed, "roles.appRoles")
	}
	return changed
}

// validateRoleSettings checks the group rules: a bounded number, each with
// a group and at least one role, every role a system role or a custom role
// of the workspace (case-sensitive, like every role).
func validateRoleSettings(s *storage.Settings, v *ValidationError) {
	rules := s.Roles.GroupRules
	if len(rules) > storage.MaxGroupRules {
		v.add("settings.roles.groupRules: at most %d rules (got %d)", storage.MaxGroupRules, len(rules))
		return
	}
	for i, r := range rules {
		field := fmt.Sprintf("settings.roles.groupRules[%d]", i)
		if strings.TrimSpace(r.Group) == "" || len(r.Group) > 256 || strings.ContainsFunc(r.Group, unicode.IsControl) {
			v.add("%s.group must be 1 to 256 characters without control characters", field)
		}
		if r.Roles == (storage.Roles{}) {
			v.add("%s.roles must name a role for at least one of dev, test, prod", field)
		}
		for e, env := range storage.Environments {
			if role := r.Roles.Env(e); role != "" && !s.ValidRole(role) {
				v.add("%s.roles.%s %q is not a system role (%s) or a custom role of the workspace",
					field, env, role, strings.Join(storage.SystemRoles, ", "))
			}
		}
	}
}
