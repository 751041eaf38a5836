package saml

import (
	"reflect"
	"testing"

	crewjam "github.com/crewjam/saml"
)

func assertionWith(nameID, format string, attrs ...crewjam.Attribute) *crewjam.Assertion {
	return &crewjam.Assertion{
		Subject:             &crewjam.Subject{NameID: &crewjam.NameID{Value: nameID, Format: format}},
		AttributeStatements: []crewjam.AttributeStatement{{Attributes: attrs}},
	}
}

func at(name, value string) crewjam.Attribute {
	return crewjam.Attribute{Name: name, Values: []crewjam.AttributeValue{{Value: value}}}
}

func TestAttrNameSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"workato_role":         "workato_role",
		"appuser.workato_role": "workato_role",
		"user.workato_role":    "workato_role",
		"User.email":           "email",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/workato_role":   "workato_role",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/workato_role": "workato_role",
		"http://schemas.microsoft.com/identity/claims/displayname":             "displayname",
		"https://claims.acme.example/saml/workato_role_prod":                   "workato_role_prod",
		"urn:acme:claims:workato_role_test":                                    "workato_role_test",
		"http://acme.example/claims#workato_email":                             "workato_email",
	} {
		if got := attrName(in); got != want {
			t.Errorf("attrName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMapIdentity(t *testing.T) {
	const email = string(crewjam.EmailAddressNameIDFormat)
	cases := []struct {
		name    string
		a       *crewjam.Assertion
		want    identity
		wantErr bool
	}{
		{name: "every attribute, plain",
			a: assertionWith("ignored@x.example", email, at("workato_email", "Jane.Doe@Acme.example"),
				at("workato_full_name", "Jane Q. Doe"), at("workato_role", "Admin"),
				at("workato_role_test", "Analyst"), at("workato_role_prod", "NoAccess")),
			want: identity{Email: "Jane.Doe@Acme.example", FullName: "Jane Q. Doe", Roles: [3]string{"Admin", "Analyst", "NoAccess"}}},
		{name: "okta names typed as value expressions",
			a: assertionWith("jane@acme.example", email, at("appuser.workato_role", "Admin"), at("user.workato_role_prod", "Operator"),
				at("firstName", "Jane"), at("lastName", "Doe")),
			want: identity{Email: "jane@acme.example", FullName: "Jane Doe", GivenName: "Jane", FamilyName: "Doe", Roles: [3]string{"Admin", "", "Operator"}}},
		{name: "entra claim uris",
			a: assertionWith("jane@acme.example", email,
				at("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/workato_role", "Analyst"),
				at("http://schemas.microsoft.com/ws/2008/06/identity/claims/workato_role_test", "Admin"),
				at("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "upn@acme.example"),
				at("http://schemas.microsoft.com/identity/claims/displayname", "Jane Doe"),
				at("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "Jane"),
				at("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "Doe")),
			want: identity{Email: "jane@acme.example", FullName: "Jane Doe", GivenName: "Jane", FamilyName: "Doe", Roles: [3]string{"Analyst", "Admin", ""}}},
		{name: "entra app role claim keeps every value in order",
			a: assertionWith("jane@acme.example", email,
				crewjam.Attribute{Name: "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
					Values: []crewjam.AttributeValue{{Value: "prod:Admin"}, {Value: " "}, {Value: "Analyst"}}},
				at("workato_role", "Operator")),
			want: identity{Email: "jane@acme.example", FullName: "Jane", Roles: [3]string{"Operator", "", ""},
				AppRoles: []string{"prod:Admin", "Analyst"}}},
		{name: "google plain with first_name/last_name",
			a:    assertionWith("jane@acme.example", email, at("workato_role", "Operator"), at("first_name", "Jane"), at("last_name", "Doe")),
			want: identity{Email: "jane@acme.example", FullName: "Jane Doe", GivenName: "Jane", FamilyName: "Doe", Roles: [3]string{"Operator", "", ""}}},
		{name: "name derived from the email local part",
			a:    assertionWith("jane.doe@acme.example", ""),
			want: identity{Email: "jane.doe@acme.example", FullName: "Jane Doe"}},
		{name: "role value keeps its case",
			a:    assertionWith("jane@acme.example", email, at("workato_role", "admin")),
			want: identity{Email: "jane@acme.example", FullName: "Jane", Roles: [3]string{"admin", "", ""}}},
		{name: "nameid not an email and no workato_email", a: assertionWith("00u1abcd", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"), wantErr: true},
		{name: "workato_email not an email", a: assertionWith("jane@acme.example", email, at("workato_email", "jane")), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mapIdentity(tc.a)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNameFromEmail(t *testing.T) {
	for in, want := range map[string]string{
		"jane.doe@x.example":    "Jane Doe",
		"j_smith+tag@x.example": "J Smith",
		"élodie-martin@x.fr":    "Élodie Martin",
	} {
		if got := nameFromEmail(in); got != want {
			t.Errorf("nameFromEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                     "/",
		"/app?x=1":              "/app?x=1",
		"https://evil.example/": "/",
		"//evil.example":        "/",
		"/\\evil.example":       "/",
		"javascript:alert(1)":   "/",
		"evil.example":          "/",
		"/ok\r\nSet-Cookie: x":  "/",
		"":                      "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMapIdentityGroups(t *testing.T) {
	const email = string(crewjam.EmailAddressNameIDFormat)
	multi := func(name string, values ...string) crewjam.Attribute {
		a := crewjam.Attribute{Name: name}
		for _, v := range values {
			a.Values = append(a.Values, crewjam.AttributeValue{Value: v})
		}
		return a
	}
	const entraGroups = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	const entraOverage = "http://schemas.microsoft.com/claims/groups.link"
	for _, tc := range []struct {
		name    string
		attrs   []crewjam.Attribute
		groups  []string
		unknown bool
	}{
		{"okta groups statement, every value", []crewjam.Attribute{multi("groups", "Engineering", " Ops ", "")}, []string{"Engineering", "Ops"}, false},
		{"entra object ids", []crewjam.Attribute{multi(entraGroups, "8f1c7c1e-0000-4000-8000-000000000001", "8f1c7c1e-0000-4000-8000-000000000002")},
			[]string{"8f1c7c1e-0000-4000-8000-000000000001", "8f1c7c1e-0000-4000-8000-000000000002"}, false},
		{"entra overage: groups unknown", []crewjam.Attribute{at(entraOverage, "https://graph.windows.net/tenant/users/x/getMemberObjects")}, nil, true},
		{"no groups attribute: no groups, known", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mapIdentity(assertionWith("jane@acme.example", email, tc.attrs...))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Groups, tc.groups) || got.GroupsUnknown != tc.unknown {
				t.Errorf("groups %q unknown %v, want %q %v", got.Groups, got.GroupsUnknown, tc.groups, tc.unknown)
			}
		})
	}
}
