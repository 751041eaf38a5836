package scimhandlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/scimjit/scimjit/storage"
)

// App roles: Entra ID sends a user's app role assignments in the core
// `roles` attribute (RFC 7643 §4.1.2), in one of two mappings an admin
// picks: AppRoleAssignments to `roles[primary eq "True"].value` (one
// element), or AppRoleAssignmentsComplex to `roles` (every assignment,
// {"primary","type","display","value"}). The attribute is always stored and
// returned as sent. Where the workspace has roles.appRoles on, its values
// also set the membership's roles like the role extension does
// (storage.AppRoles: "Admin" for DEV, "prod:Admin" for PROD); explicit
// workato_role* values win.

// appRoleValues returns the value of every element of doc's roles.
func appRoleValues(doc map[string]any) []string {
	list, _ := doc["roles"].([]any)
	var out []string
	for _, el := range list {
		m, _ := el.(map[string]any)
		if v, _ := m["value"].(string); strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return out
}

// applyAppRoles writes the roles the app roles of a validated user
// document give into its role extension, where the workspace has
// roles.appRoles on. For a POST or PUT (before nil) every environment the
// document gives no workato_role* value for takes its app role. For a
// PATCH, before is the user's document before the operations, and only an
// environment whose app role the PATCH changed is touched: it takes the new
// app role, or, when it lost its app role, goes back to the default role,
// unless the same PATCH set its workato_role* value itself. Environments
// whose app role did not change keep whatever role they have, so a role an
// admin or a workato_role* PATCH set is not undone by an unrelated change.
//
// Two different app roles for one environment are a 400: the IdP's order is
// no statement of priority, and the IdP's provisioning log then names the
// clash. An app role that is not a role of the workspace is a 400, as an
// unknown workato_role* value is (checkRoles).
func applyAppRoles(s storage.Settings, doc, before map[string]any) *Error {
	if !s.Roles.AppRoles {
		return nil
	}
	now, err := storage.AppRoles(appRoleValues(doc))
	var ce *storage.AppRoleConflictError
	if errors.As(err, &ce) {
		return badRequest(typeInvalidValue, "roles: "+err.Error()+"; assign one app role per environment")
	}
	var was storage.Roles
	var prevExt map[string]any
	if before != nil {
		// A conflict stored before the setting was switched on counts as
		// no app role.
		was, _ = storage.AppRoles(appRoleValues(before))
		prevExt, _ = before[RoleURN].(map[string]any)
	}
	ext, _ := doc[RoleURN].(map[string]any)
	if ext == nil {
		ext = map[string]any{}
	}
	for _, env := range []struct {
		attr     string
		now, was string
	}{{roleDev, now.Dev, was.Dev}, {roleTest, now.Test, was.Test}, {roleProd, now.Prod, was.Prod}} {
		explicit, _ := ext[env.attr].(string)
		if before == nil {
			if explicit != "" || env.now == "" {
				continue
			}
		} else if old, _ := prevExt[env.attr].(string); env.now == env.was || explicit != old {
			continue
		}
		if env.now == "" {
			delete(ext, env.attr)
			continue
		}
		if !s.ValidRole(env.now) {
			return unknownRoleError(s, env.now, "roles (the app role for "+env.attr+")")
		}
		ext[env.attr] = env.now
	}
	if len(ext) == 0 {
		delete(doc, RoleURN)
	} else {
		doc[RoleURN] = ext
	}
	return nil
}

// unknownRoleError is the 400 for a role value that is not one of the
// workspace's roles (R4: case-sensitive, system roles plus custom roles).
func unknownRoleError(s storage.Settings, role, where string) *Error {
	return badRequest(typeInvalidValue, fmt.Sprintf("unknown role %q in %s: valid roles are %s (case-sensitive)",
		role, where, strings.Join(append(append([]string{}, storage.SystemRoles...), s.CustomRoles...), ", ")))
}

// normalizeRoleElements rewrites the roles elements of an Entra PATCH
// whose value is the app role assignment as a JSON text, e.g.
// {"value":"{\"id\":\"…\",\"value\":\"Admin\",\"displayName\":\"Admin\"}"},
// into {"value":"Admin","display":"Admin"}, the form Entra sends in a POST,
// so that the stored attribute and the role it gives do not depend on the
// request that carried it.
func normalizeRoleElements(val any) {
	list, _ := val.([]any)
	for _, el := range list {
		m, _ := el.(map[string]any)
		s, _ := m["value"].(string)
		if !strings.HasPrefix(strings.TrimSpace(s), "{") {
			continue
		}
		var inner struct {
			Value       string `json:"value"`
			DisplayName string `json:"displayName"`
		}
		if json.Unmarshal([]byte(s), &inner) != nil || inner.Value == "" {
			continue
		}
		m["value"] = inner.Value
		if _, ok := m["display"]; !ok && inner.DisplayName != "" {
			m["display"] = inner.DisplayName
		}
	}
}
