package scimhandlers

import (
	"strings"

	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// Schema URNs (RFC 7643 §8.7.1, §4.3) and Workato's role extension.
const (
	userURN       = schema.UserSchema
	groupURN      = schema.GroupSchema
	enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// RoleURN is the schema of Workato's role extension: workato_role (DEV),
	// workato_role_test and workato_role_prod (DESIGN §5, R4).
	RoleURN = "urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole"
	// EntraRoleURN is the same extension in the form Microsoft Entra ID
	// can send: Entra maps custom SCIM attributes only as simple strings
	// named urn:ietf:params:scim:schemas:extension:{name}:2.0:User:{attr}.
	// Bodies, PATCH paths and filters that use it are read as RoleURN
	// (canonicalRoles, canonicalRolePath, schemaByURN), and a user created
	// with it is rendered with it (presentUser).
	EntraRoleURN    = "urn:ietf:params:scim:schemas:extension:workato:2.0:User"
	listURN         = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	searchURN       = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	patchURN        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	spcURN          = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	resourceTypeURN = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"

	roleDev  = "workato_role"
	roleTest = "workato_role_test"
	roleProd = "workato_role_prod"
)

// roleSchema is the Workato role extension under the schema URN id
// (RoleURN or EntraRoleURN). Values are case-exact role names, checked
// against the workspace's roles by the handlers.
func roleSchema(id string) schema.Schema {
	attr := func(name, env string) schema.CoreAttribute {
		return schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
			CaseExact:   true,
			Description: optional.NewString("The member's role in " + env + ": Admin, Analyst, Operator, NoAccess or a custom role of the workspace (case-sensitive)."),
			Name:        name,
		}))
	}
	return schema.Schema{
		ID:          id,
		Name:        optional.NewString("WorkatoRole"),
		Description: optional.NewString("Workato roles per environment."),
		Attributes:  schema.Attributes{attr(roleDev, "DEV"), attr(roleTest, "TEST"), attr(roleProd, "PROD")},
	}
}

// resourceKind describes one SCIM resource type with the schemas used to
// validate bodies, filters and PATCH paths.
type resourceKind struct {
	name     string // "User" / "Group"
	endpoint string // "Users" / "Groups"
	core     schema.Schema
	exts     []schema.Schema
	// aliases are other URNs of extensions in exts, accepted wherever
	// those are and listed in /Schemas and /ResourceTypes, keyed by the
	// alias (EntraRoleURN → RoleURN).
	aliases map[string]schema.Schema
	// withCommon is core plus id, externalId and meta (RFC 7643 §3.1),
	// used to resolve filter and sort paths.
	withCommon schema.Schema
	// forBody is core plus externalId, used to validate POST/PUT bodies.
	forBody schema.Schema
}

func newKind(name, endpoint string, core schema.Schema, exts ...schema.Schema) *resourceKind {
	k := &resourceKind{name: name, endpoint: endpoint, core: core, exts: exts}
	k.withCommon = core
	k.withCommon.Attributes = append(append(schema.Attributes{}, core.Attributes...), schema.CommonAttributes()...)
	k.forBody = core
	for _, a := range schema.CommonAttributes() {
		if a.Name() == "externalId" {
			k.forBody.Attributes = append(append(schema.Attributes{}, core.Attributes...), a)
		}
	}
	return k
}

// schemaByURN returns the core schema or extension with that id
// (case-insensitive, RFC 7643 §2.1 "schema URIs ... case insensitive").
func (k *resourceKind) schemaByURN(urn string) (schema.Schema, bool) {
	if strings.EqualFold(urn, k.core.ID) {
		return k.withCommon, true
	}
	for _, e := range k.exts {
		if strings.EqualFold(urn, e.ID) {
			return e, true
		}
	}
	for alias, e := range k.aliases {
		if strings.EqualFold(urn, alias) {
			return e, true
		}
	}
	return schema.Schema{}, false
}

// isExtURN reports whether key names one of the kind's extensions (or an
// alias of one) and returns the extension's canonical spelling.
func (k *resourceKind) isExtURN(key string) (string, bool) {
	if s, ok := k.schemaByURN(key); ok && s.ID != k.core.ID {
		return s.ID, true
	}
	return "", false
}

var (
	userKind  = newKind("User", "Users", schema.CoreUserSchema(), schema.ExtensionEnterpriseUser(), roleSchema(RoleURN))
	groupKind = newKind("Group", "Groups", schema.CoreGroupSchema())
)

func init() {
	userKind.aliases = map[string]schema.Schema{EntraRoleURN: roleSchema(RoleURN)}
}

// resourceTypeJSON is the ResourceType resource of RFC 7643 §6.
func (h *Handler) resourceTypeJSON(k *resourceKind, base string) map[string]any {
	exts := []any{}
	for _, e := range k.exts {
		exts = append(exts, map[string]any{"schema": e.ID, "required": false})
	}
	for alias := range k.aliases {
		exts = append(exts, map[string]any{"schema": alias, "required": false})
	}
	desc := "User Account"
	if k == groupKind {
		desc = "Group"
	}
	return map[string]any{
		"schemas":          []any{resourceTypeURN},
		"id":               k.name,
		"name":             k.name,
		"description":      desc,
		"endpoint":         "/" + k.endpoint,
		"schema":           k.core.ID,
		"schemaExtensions": exts,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     base + "/ResourceTypes/" + k.name,
		},
	}
}

// allSchemas are the schemas served at /Schemas (RFC 7644 §4).
func allSchemas() []schema.Schema {
	return []schema.Schema{userKind.core, userKind.exts[0], userKind.exts[1], roleSchema(EntraRoleURN), groupKind.core}
}

func schemaJSON(s schema.Schema, base string) map[string]any {
	m := s.ToMap()
	m["meta"] = map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + s.ID}
	return m
}

// serviceProviderConfig advertises exactly what this server does (RFC
// 7643 §5). The library's own document hard-codes sort and etag to false,
// so it is served here.
func (h *Handler) serviceProviderConfig(base string) map[string]any {
	return map[string]any{
		"schemas":          []any{spcURN},
		"documentationUri": "https://github.com/scimjit/scimjit/blob/main/docs/scim.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": h.cfg.MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "Authentication with the workspace's SCIM bearer token (Authorization: Bearer <token>).",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     base + "/ServiceProviderConfig",
		},
	}
}
