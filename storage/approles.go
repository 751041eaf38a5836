package storage

import (
	"fmt"
	"strings"
)

// AppRoleConflictError reports two different app roles for one environment:
// scimjit refuses to pick one, since the IdP's order of the values is not
// a statement of priority.
type AppRoleConflictError struct {
	// Environment is "dev", "test" or "prod".
	Environment string
	// First and Second are the two role names, in the order they were sent.
	First, Second string
}

// Error names the environment and both roles.
func (e *AppRoleConflictError) Error() string {
	return fmt.Sprintf("two different app roles for %s: %q and %q", strings.ToUpper(e.Environment), e.First, e.Second)
}

// AppRoles maps IdP app role values to a role per environment: "Admin"
// gives the DEV role; "test:Analyst" and "prod:Admin" give the role of the
// named environment (the prefix dev, test or prod in any letter case; the
// role after it as sent). Any other value, "staging:Admin" included, is a
// DEV role name as a whole, which the caller's role check then finds
// unknown. Environments no value names stay "". The same role sent twice
// for one environment is no conflict; two different ones are an
// *AppRoleConflictError. Whether the roles exist in the workspace is left
// to the caller (Settings.ValidRole).
func AppRoles(values []string) (Roles, error) {
	var r Roles
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		env, role := "dev", v
		if p, rest, ok := strings.Cut(v, ":"); ok {
			switch strings.ToLower(p) {
			case "dev", "test", "prod":
				env, role = strings.ToLower(p), rest
			}
		}
		dst := &r.Dev
		switch env {
		case "test":
			dst = &r.Test
		case "prod":
			dst = &r.Prod
		}
		if *dst != "" && *dst != role {
			return Roles{}, &AppRoleConflictError{Environment: env, First: *dst, Second: role}
		}
		*dst = role
	}
	return r, nil
}
