package saml

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/storage"
)

// Attribute names scimjit reads (R2–R4), in their normalised form.
const (
	attrEmail    = "workato_email"
	attrFullName = "workato_full_name"
	attrRoleDev  = "workato_role"
	attrRoleTest = "workato_role_test"
	attrRoleProd = "workato_role_prod"
	// attrAppRole is Entra's app role claim,
	// http://schemas.microsoft.com/ws/2008/06/identity/claims/role, by its
	// final segment (R5); it has one value per assigned app role.
	attrAppRole = "role"
	// attrGroups is the groups attribute by its final segment: Okta's
	// group attribute statement and OneLogin's and Google's as admins
	// usually name it, and Entra's
	// http://schemas.microsoft.com/ws/2008/06/identity/claims/groups.
	attrGroups = "groups"
	// attrGroupsOverage is Entra's overage claim,
	// http://schemas.microsoft.com/claims/groups.link, sent instead of the
	// groups claim for a person in more than 150 groups.
	attrGroupsOverage = "groups.link"
)

// Name claims, normalised (see normName), in the spellings of Okta
// (displayName, firstName, lastName), Entra ID (…/claims/displayname,
// …/claims/givenname, …/claims/surname), Google (free names, usually
// first_name / last_name / full_name) and LDAP-style IdPs (cn, givenName,
// sn, also as FriendlyName of urn:oid names).
var (
	displayNameClaims = []string{"displayname", "fullname", "cn", "commonname"}
	givenNameClaims   = []string{"givenname", "firstname", "given"}
	surnameClaims     = []string{"surname", "lastname", "familyname", "sn"}
)

// identity is what an assertion says about the person.
type identity struct {
	// Email as sent (R2).
	Email string
	// FullName (R3), and the parts when the IdP sent them.
	FullName   string
	GivenName  string
	FamilyName string
	// Roles as sent, per environment; "" = attribute absent (R4).
	Roles [3]string

	// idpSession is what Single Logout needs of the sign-in (set by the
	// ACS; zero when the IdP has no SLO endpoint).
	idpSession storage.IdPSession
	// AppRoles are the values of the app role claim, in order; they give
	// roles only where the workspace says so (appRoles in jit.go).
	AppRoles []string
	// Groups are every value of the groups attribute, as sent.
	Groups []string
	// GroupsUnknown: the IdP said the person's groups did not fit into
	// the assertion (Entra's overage claim), so Groups says nothing.
	GroupsUnknown bool
}

// Environments in the order of identity.Roles.
var envNames = [3]string{"dev", "test", "prod"}

// errNoEmail: the assertion has neither workato_email nor an email NameID.
var errNoEmail = errors.New("assertion carries no email address (no workato_email attribute and the NameID is not an email)")

// attrName reduces an attribute name to the key it is matched on (R5):
// the final segment of a URI or URN (after the last '/', '#' or ':'), then
// without a leading "appuser." or "user." (Okta/Entra value expressions an
// admin typed as the name). Matching is case-insensitive on names only;
// values stay case-sensitive.
func attrName(n string) string {
	if i := strings.LastIndexAny(n, "/#:"); i >= 0 {
		n = n[i+1:]
	}
	low := strings.ToLower(strings.TrimSpace(n))
	for _, p := range []string{"appuser.", "user."} {
		if strings.HasPrefix(low, p) {
			low = low[len(p):]
			break
		}
	}
	return low
}

// normName additionally drops '_', '-' and '.' so that first_name,
// firstName and givenname-style spellings of the name claims meet.
func normName(n string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' {
			return -1
		}
		return r
	}, attrName(n))
}

// attrValues indexes an assertion's attributes by attrName and by normName
// (first value of the first attribute with that name wins; FriendlyName is
// used when Name does not match, e.g. urn:oid names).
type attrValues struct {
	exact map[string]string
	loose map[string]string
	// appRoles: every non-empty value of every app role claim, the one
	// multi-valued attribute scimjit reads.
	appRoles []string
	// groups: every non-empty value of every groups attribute, the
	// multi-valued attribute group rules read; groupsOverage: an overage
	// claim was present.
	groups        []string
	groupsOverage bool
	// from tells, per key of exact, which attribute gave its value: the
	// attribute's position in the assertion (AttributeStatements in
	// order, then Attributes in order) and whether its FriendlyName
	// matched rather than its Name.
	from map[string]attrSource
}

// attrSource is where a value of attrValues.exact came from.
type attrSource struct {
	index    int
	friendly bool
}

func collectAttributes(a *crewjam.Assertion) attrValues {
	av := attrValues{exact: map[string]string{}, loose: map[string]string{}, from: map[string]attrSource{}}
	index := 0
	add := func(name, v string, friendly bool) {
		if name == "" {
			return
		}
		if _, ok := av.exact[attrName(name)]; !ok {
			av.exact[attrName(name)] = v
			av.from[attrName(name)] = attrSource{index, friendly}
		}
		if _, ok := av.loose[normName(name)]; !ok {
			av.loose[normName(name)] = v
		}
	}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if attrName(at.Name) == attrAppRole || attrName(at.FriendlyName) == attrAppRole {
				for _, val := range at.Values {
					if v := strings.TrimSpace(val.Value); v != "" {
						av.appRoles = append(av.appRoles, v)
					}
				}
			}
			switch attrGroups {
			case attrName(at.Name), attrName(at.FriendlyName):
				for _, val := range at.Values {
					if g := strings.TrimSpace(val.Value); g != "" {
						av.groups = append(av.groups, g)
					}
				}
			}
			if attrName(at.Name) == attrGroupsOverage || attrName(at.FriendlyName) == attrGroupsOverage {
				av.groupsOverage = true
			}
			v := ""
			for _, val := range at.Values {
				if strings.TrimSpace(val.Value) != "" {
					v = strings.TrimSpace(val.Value)
					break
				}
			}
			if v != "" {
				add(at.Name, v, false)
				add(at.FriendlyName, v, true)
			}
			index++
		}
	}
	return av
}

func (av attrValues) first(loose []string) string {
	for _, n := range loose {
		if v := av.loose[n]; v != "" {
			return v
		}
	}
	return ""
}

// mapIdentity applies R2–R5 to a validated assertion.
func mapIdentity(a *crewjam.Assertion) (identity, error) {
	av := collectAttributes(a)
	var id identity

	// R2: workato_email, else an email-format (or email-looking) NameID.
	id.Email = av.exact[attrEmail]
	if id.Email != "" && !looksLikeEmail(id.Email) {
		return identity{}, errors.New("the workato_email attribute is not an email address")
	}
	if id.Email == "" && a.Subject != nil && a.Subject.NameID != nil {
		nid := strings.TrimSpace(a.Subject.NameID.Value)
		if looksLikeEmail(nid) {
			id.Email = nid
		}
	}
	if id.Email == "" {
		return identity{}, errNoEmail
	}

	// R3: workato_full_name, else display name, else given + surname,
	// else derived from the email's local part.
	id.GivenName = av.first(givenNameClaims)
	id.FamilyName = av.first(surnameClaims)
	id.FullName = av.exact[attrFullName]
	if id.FullName == "" {
		id.FullName = av.first(displayNameClaims)
	}
	if id.FullName == "" {
		id.FullName = strings.TrimSpace(id.GivenName + " " + id.FamilyName)
	}
	if id.FullName == "" {
		id.FullName = nameFromEmail(id.Email)
	}

	// R4: roles as sent; defaults are applied with the workspace settings.
	id.Roles = [3]string{av.exact[attrRoleDev], av.exact[attrRoleTest], av.exact[attrRoleProd]}
	id.AppRoles = av.appRoles
	// Groups for the workspace's group rules; with an overage claim and no
	// groups claim they are unknown, not empty.
	id.Groups = av.groups
	id.GroupsUnknown = av.groupsOverage && len(av.groups) == 0
	return id, nil
}

// looksLikeEmail reports whether v is a bare addr-spec (RFC 5322 §3.4.1)
// with a dotted domain.
func looksLikeEmail(v string) bool {
	if v == "" || len(v) > 320 || strings.ContainsAny(v, " <>\"") {
		return false
	}
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Address != v || addr.Name != "" {
		return false
	}
	at := strings.LastIndexByte(v, '@')
	return at > 0 && strings.Contains(v[at+1:], ".")
}

// nameFromEmail derives a display name from an email's local part:
// "jane.doe" → "Jane Doe", "j_smith+x" → "J Smith" (R3).
func nameFromEmail(email string) string {
	local := email
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		local = email[:i]
	}
	if i := strings.IndexByte(local, '+'); i >= 0 {
		local = local[:i]
	}
	parts := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' })
	for i, p := range parts {
		r, n := utf8.DecodeRuneInString(p)
		parts[i] = string(unicode.ToUpper(r)) + p[n:]
	}
	if len(parts) == 0 {
		return local
	}
	return strings.Join(parts, " ")
}

// splitName returns given and family names for the SCIM name attribute:
// the IdP's parts when sent, else the first word and the rest of full.
func splitName(id identity) (given, family string) {
	if id.GivenName != "" || id.FamilyName != "" {
		return id.GivenName, id.FamilyName
	}
	f := strings.Fields(id.FullName)
	if len(f) == 0 {
		return "", ""
	}
	return f[0], strings.Join(f[1:], " ")
}
