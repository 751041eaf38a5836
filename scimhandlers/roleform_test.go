package scimhandlers

import (
	"testing"
)

// TestCanonicalRoles: every way a body can give the role attributes ends
// as one object under RoleURN, and Entra's URN is noticed.
func TestCanonicalRoles(t *testing.T) {
	for _, c := range []struct {
		name      string
		body      string
		want      string // the body after canonicalRoles
		entra     bool
		errorType string
	}{
		{"original object", `{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin"}}`,
			`{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin"}}`, false, ""},
		{"Entra object", `{"urn:ietf:params:scim:schemas:extension:workato:2.0:User":{"workato_role":"Admin","workato_role_prod":"NoAccess"}}`,
			`{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin","workato_role_prod":"NoAccess"}}`, true, ""},
		{"Entra flat keys, any case", `{"userName":"x","URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:WORKATO:2.0:USER:workato_role_test":"Analyst"}`,
			`{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role_test":"Analyst"},"userName":"x"}`, true, ""},
		{"original flat key", `{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole:workato_role":"Admin"}`,
			`{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin"}}`, false, ""},
		{"forms merged", `{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin"},"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role_prod":"Analyst"}`,
			`{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin","workato_role_prod":"Analyst"}}`, true, ""},
		{"listed in schemas only", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:workato:2.0:User"]}`,
			`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:workato:2.0:User"]}`, true, ""},
		{"null extension", `{"urn:ietf:params:scim:schemas:extension:workato:2.0:User":null}`,
			`{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{}}`, true, ""},
		{"other extension untouched", `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Legal","urn:ietf:params:scim:schemas:extension:workato:2.0:Userx":"y"}`,
			`{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Legal","urn:ietf:params:scim:schemas:extension:workato:2.0:Userx":"y"}`, false, ""},
		{"same attribute twice", `{"urn:ietf:params:scim:schemas:workato:1.0:WorkatoRole":{"workato_role":"Admin"},"urn:ietf:params:scim:schemas:extension:workato:2.0:User":{"WORKATO_ROLE":"Admin"}}`,
			"", false, typeInvalidSyntax},
		{"not an object", `{"urn:ietf:params:scim:schemas:extension:workato:2.0:User":"Admin"}`, "", false, typeInvalidValue},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := jsonDoc(t, c.body)
			entra, aerr := canonicalRoles(m)
			if c.errorType != "" {
				if aerr == nil || aerr.ScimType != c.errorType {
					t.Fatalf("error %v, want scimType %s", aerr, c.errorType)
				}
				return
			}
			if aerr != nil {
				t.Fatal(aerr)
			}
			eq(t, "entra", entra, c.entra)
			eq(t, "body", stringify(m), c.want)
		})
	}
}

// TestCanonicalRolePath: Entra's PATCH paths name the original extension;
// other paths are unchanged.
func TestCanonicalRolePath(t *testing.T) {
	for in, want := range map[string]string{
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User:workato_role":      RoleURN + ":workato_role",
		"urn:ietf:params:scim:schemas:extension:Workato:2.0:User:workato_role_prod": RoleURN + ":workato_role_prod",
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User":                   RoleURN,
		RoleURN + ":workato_role":                                            RoleURN + ":workato_role",
		"urn:ietf:params:scim:schemas:extension:workato:2.0:User:":           "urn:ietf:params:scim:schemas:extension:workato:2.0:User:",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
		"displayName": "displayName",
		"":            "",
	} {
		eq(t, in, canonicalRolePath(in), want)
	}
}
