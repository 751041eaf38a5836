package scimhandlers

import (
	"fmt"
	"strings"

	"github.com/scimjit/scimjit/storage"
)

// Entra's custom-attribute form of the role extension. Documents are
// handled with the role extension under RoleURN only, so that validation,
// PATCH, filters, sorting and projections resolve one name; the functions
// here translate at the edges: canonicalRoles and canonicalRolePath on the
// way in, presentUser (and appendUser) on the way out.

// canonicalRoles moves the role attributes an object gives under
// EntraRoleURN or RoleURN, as an extension object or as top-level keys
// "<URN>:<attribute>" (Entra's flat form), into one object under RoleURN.
// It reports whether any of them used EntraRoleURN, or schemas lists it.
// An attribute given twice (in two forms) is a 400: which one would win is
// not defined.
func canonicalRoles(m map[string]any) (entra bool, aerr *Error) {
	merged := map[string]any{}
	found := false
	put := func(attr string, v any) *Error {
		for have := range merged {
			if strings.EqualFold(have, attr) {
				return badRequest(typeInvalidSyntax, fmt.Sprintf("the request gives the role attribute %q twice (%s and %s are one extension)",
					clip(attr), RoleURN, EntraRoleURN))
			}
		}
		merged[attr] = v
		return nil
	}
	for key, v := range m {
		urn, attr, ok := roleKeyParts(key)
		if !ok {
			continue
		}
		found = true
		entra = entra || urn == EntraRoleURN
		delete(m, key)
		if attr != "" {
			if aerr := put(attr, v); aerr != nil {
				return false, aerr
			}
			continue
		}
		obj, isObj := v.(map[string]any)
		if !isObj {
			if v != nil {
				return false, badRequest(typeInvalidValue, fmt.Sprintf("%s must be an object", clip(key)))
			}
			continue
		}
		for a, av := range obj {
			if aerr := put(a, av); aerr != nil {
				return false, aerr
			}
		}
	}
	if found {
		m[RoleURN] = merged
	}
	if sv, ok := lookupCI(m, "schemas"); ok {
		list, _ := sv.([]any)
		for _, s := range list {
			if str, _ := s.(string); strings.EqualFold(str, EntraRoleURN) {
				entra = true
			}
		}
	}
	return entra, nil
}

// roleKeyParts splits a key naming the role extension (either URN, any
// case) or one of its attributes ("<URN>:<attribute>"); attr is "" for
// the extension itself.
func roleKeyParts(key string) (urn, attr string, ok bool) {
	for _, u := range []string{RoleURN, EntraRoleURN} {
		if len(key) < len(u) || !strings.EqualFold(key[:len(u)], u) {
			continue
		}
		switch rest := key[len(u):]; {
		case rest == "":
			return u, "", true
		case rest[0] == ':' && len(rest) > 1:
			return u, rest[1:], true
		}
	}
	return "", "", false
}

// canonicalRolePath rewrites a PATCH path in Entra's form
// ("<EntraRoleURN>:workato_role", or the URN alone) to RoleURN; other
// paths are returned unchanged.
func canonicalRolePath(path string) string {
	if urn, attr, ok := roleKeyParts(path); ok && urn == EntraRoleURN {
		if attr == "" {
			return RoleURN
		}
		return RoleURN + ":" + attr
	}
	return path
}

// roleKey is the URN under which u's roles are rendered: the one its
// creating client used (storage.User.RoleSchema), RoleURN by default.
func roleKey(u *storage.User) string {
	if u.RoleSchema == EntraRoleURN {
		return EntraRoleURN
	}
	return RoleURN
}

// presentUser moves the role extension of a rendered (and projected) user
// document, and its entry in schemas, to roleKey(u).
func presentUser(doc map[string]any, u *storage.User) map[string]any {
	key := roleKey(u)
	if key == RoleURN {
		return doc
	}
	if v, ok := doc[RoleURN]; ok {
		delete(doc, RoleURN)
		doc[key] = v
	}
	if list, ok := doc["schemas"].([]any); ok {
		for i, s := range list {
			if s == RoleURN {
				list[i] = key
			}
		}
	}
	return doc
}
