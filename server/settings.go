package server

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/storage"
)

// WorkspaceJSON is a workspace as the admin API shows it.
type WorkspaceJSON struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Settings  SettingsJSON `json:"settings"`
	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`
	Version   int64        `json:"version"`
}

// SettingsJSON is the nested JSON form of storage.Settings: the dotted names
// of DESIGN §3 (jit.enabled, idp.metadataXML, ...) are paths in it.
type SettingsJSON struct {
	JIT         JITJSON   `json:"jit"`
	CustomRoles []string  `json:"customRoles"`
	IdP         IdPJSON   `json:"idp"`
	Roles       RolesJSON `json:"roles"`
	Login       LoginJSON `json:"login"`
}

// LoginJSON is storage.LoginSettings in JSON.
type LoginJSON struct {
	EmailDomains []string `json:"emailDomains"`
}

// JITJSON is storage.JITSettings in JSON.
type JITJSON struct {
	Enabled         bool   `json:"enabled"`
	ExistingAccount string `json:"existingAccount"`
	DefaultRole     string `json:"defaultRole"`
	RoleSync        string `json:"roleSync"`
	UnknownRole     string `json:"unknownRole"`
}

// IdPJSON is storage.IdPSettings in JSON.
type IdPJSON struct {
	MetadataXML       string `json:"metadataXML"`
	EntityID          string `json:"entityID"`
	AllowIdPInitiated bool   `json:"allowIdPInitiated"`

	AllowSHA1 bool `json:"allowSHA1"`
	// MetadataURL and MetadataRefresh (read-only) are present when the
	// metadata is downloaded from a URL and refreshed.
	MetadataURL     string               `json:"metadataURL,omitempty"`
	MetadataRefresh *MetadataRefreshJSON `json:"metadataRefresh,omitempty"`
}

// MetadataRefreshJSON is storage.MetadataRefresh in JSON.
type MetadataRefreshJSON struct {
	FetchedAt time.Time `json:"fetchedAt,omitzero"`
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	LastError string    `json:"lastError,omitempty"`
	NextDue   time.Time `json:"nextDue,omitzero"`
}

func workspaceJSON(ws storage.Workspace) WorkspaceJSON {
	roles := nonNil(ws.Settings.CustomRoles)
	return WorkspaceJSON{
		ID:   ws.ID,
		Name: ws.Name,
		Settings: SettingsJSON{
			JIT: JITJSON{
				Enabled:         ws.Settings.JIT.Enabled,
				ExistingAccount: ws.Settings.JIT.ExistingAccount,
				DefaultRole:     ws.Settings.JIT.DefaultRole,
				RoleSync:        ws.Settings.JIT.RoleSync,
				UnknownRole:     ws.Settings.JIT.UnknownRole,
			},
			CustomRoles: roles,
			IdP: IdPJSON{
				MetadataXML:       ws.Settings.IdP.MetadataXML,
				EntityID:          ws.Settings.IdP.EntityID,
				AllowIdPInitiated: ws.Settings.IdP.AllowIdPInitiated,

				AllowSHA1:       ws.Settings.IdP.AllowSHA1,
				MetadataURL:     ws.Settings.IdP.MetadataURL,
				MetadataRefresh: metadataRefreshJSON(ws.Settings.IdP),
			},
			Roles: rolesJSON(ws.Settings.Roles),
			Login: LoginJSON{EmailDomains: nonNil(ws.Settings.Login.EmailDomains)},
		},
		CreatedAt: ws.CreatedAt,
		UpdatedAt: ws.UpdatedAt,
		Version:   ws.Version,
	}
}

// nonNil returns l, or an empty list for nil (JSON [] rather than null).
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l

}

func metadataRefreshJSON(idp storage.IdPSettings) *MetadataRefreshJSON {
	if idp.MetadataURL == "" {
		return nil
	}
	r := idp.MetadataRefresh
	return &MetadataRefreshJSON{FetchedAt: r.FetchedAt, CheckedAt: r.CheckedAt, LastError: r.LastError, NextDue: r.NextDue}
}

// SettingsPatch is a partial change of settings: absent (nil) fields keep
// their value. It is the "settings" object of the admin API's create and
// update bodies and of the bootstrap file.
type SettingsPatch struct {
	JIT         *JITPatch   `json:"jit,omitempty"`
	CustomRoles *[]string   `json:"customRoles,omitempty"`
	IdP         *IdPPatch   `json:"idp,omitempty"`
	Roles       *RolesPatch `json:"roles,omitempty"`
	Login       *LoginPatch `json:"login,omitempty"`
}

// LoginPatch is a partial change of the login settings. EmailDomains
// replaces the whole list.
type LoginPatch struct {
	EmailDomains *[]string `json:"emailDomains,omitempty"`
}

// JITPatch is a partial change of the JIT settings.
type JITPatch struct {
	Enabled         *bool   `json:"enabled,omitempty"`
	ExistingAccount *string `json:"existingAccount,omitempty"`
	DefaultRole     *string `json:"defaultRole,omitempty"`
	RoleSync        *string `json:"roleSync,omitempty"`
	UnknownRole     *string `json:"unknownRole,omitempty"`
}

// IdPPatch is a partial change of the IdP settings. Setting metadataXML
// without entityID takes the entity ID from the metadata. MetadataURL
// (https) is downloaded into metadataXML (resolveMetadataURL) and kept to
// refresh it on a schedule (mdrefresh.go); setting metadataXML, or an
// empty metadataURL, stops the refreshes.
type IdPPatch struct {
	MetadataXML       *string `json:"metadataXML,omitempty"`
	MetadataURL       *string `json:"metadataURL,omitempty"`
	EntityID          *string `json:"entityID,omitempty"`
	AllowIdPInitiated *bool   `json:"allowIdPInitiated,omitempty"`

	AllowSHA1 *bool `json:"allowSHA1,omitempty"`
	// refresh is the outcome of resolveMetadataURL's download, stored
	// with MetadataURL.
	refresh *storage.MetadataRefresh
}

// apply changes s and returns the dotted names of the fields it set.
func (p *SettingsPatch) apply(s *storage.Settings) []string {
	if p == nil {
		return nil
	}
	var changed []string
	set := func(name string, dst *string, v *string) {
		if v != nil {
			*dst = *v
			changed = append(changed, name)
		}
	}
	if j := p.JIT; j != nil {
		if j.Enabled != nil {
			s.JIT.Enabled = *j.Enabled
			changed = append(changed, "jit.enabled")
		}
		set("jit.existingAccount", &s.JIT.ExistingAccount, j.ExistingAccount)
		set("jit.defaultRole", &s.JIT.DefaultRole, j.DefaultRole)
		set("jit.roleSync", &s.JIT.RoleSync, j.RoleSync)
		set("jit.unknownRole", &s.JIT.UnknownRole, j.UnknownRole)
	}
	if p.CustomRoles != nil {
		s.CustomRoles = slices.Clone(*p.CustomRoles)
		changed = append(changed, "customRoles")
	}
	if i := p.IdP; i != nil {
		if i.MetadataXML != nil {
			s.IdP.MetadataXML = *i.MetadataXML
			if i.EntityID == nil {
				s.IdP.EntityID = "" // derived again from the new metadata
			}
			changed = append(changed, "idp.metadataXML")
		}
		switch {
		case i.MetadataURL != nil:
			s.IdP.MetadataURL = *i.MetadataURL
			s.IdP.MetadataRefresh = storage.MetadataRefresh{}
			if i.refresh != nil {
				s.IdP.MetadataRefresh = *i.refresh
			}
			changed = append(changed, "idp.metadataURL")
		case i.MetadataXML != nil:
			s.IdP.MetadataURL, s.IdP.MetadataRefresh = "", storage.MetadataRefresh{}
		}
		set("idp.entityID", &s.IdP.EntityID, i.EntityID)
		if i.AllowIdPInitiated != nil {
			s.IdP.AllowIdPInitiated = *i.AllowIdPInitiated
			changed = append(changed, "idp.allowIdPInitiated")
		}

		if i.AllowSHA1 != nil {
			s.IdP.AllowSHA1 = *i.AllowSHA1
			changed = append(changed, "idp.allowSHA1")
		}
	}
	if l := p.Login; l != nil && l.EmailDomains != nil {
		s.Login.EmailDomains = slices.Clone(*l.EmailDomains)
		changed = append(changed, "login.emailDomains")
	}
	changed = append(changed, p.Roles.apply(&s.Roles)...)
	return changed
}

// ValidationError lists every problem found in a request, each naming its
// field.
type ValidationError struct {
	Problems []string
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string { return strings.Join(e.Problems, "; ") }

func (e *ValidationError) add(format string, args ...any) {
	e.Problems = append(e.Problems, fmt.Sprintf(format, args...))
}

func (e *ValidationError) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

var customRoleRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9 _.-]{0,63}$`)

// normalizeSettings validates s (DESIGN §3, R4) and fills the IdP entity
// ID from the metadata when it is empty.
func normalizeSettings(s *storage.Settings) error {
	var v ValidationError
	oneOf := func(field, val string, allowed ...string) {
		if !slices.Contains(allowed, val) {
			v.add("settings.%s must be one of %s (got %q)", field, strings.Join(allowed, ", "), val)
		}
	}
	oneOf("jit.existingAccount", s.JIT.ExistingAccount, storage.ExistingAccountVerify, storage.ExistingAccountAuto)
	oneOf("jit.roleSync", s.JIT.RoleSync, storage.RoleSyncOnCreate, storage.RoleSyncEveryLogin)
	oneOf("jit.unknownRole", s.JIT.UnknownRole, storage.UnknownRoleReject, storage.UnknownRoleDefault)

	seen := map[string]bool{}
	rolesOK := true
	for _, r := range s.CustomRoles {
		switch {
		case !customRoleRe.MatchString(r):
			v.add("settings.customRoles: %q must start with a letter and have at most 64 letters, digits, spaces, '.', '_' or '-'", r)
			rolesOK = false
		case slices.ContainsFunc(storage.SystemRoles, func(sys string) bool { return strings.EqualFold(sys, r) }):
			v.add("settings.customRoles: %q collides with the system role of that name", r)
			rolesOK = false
		case seen[r]:
			v.add("settings.customRoles: %q is listed twice", r)
			rolesOK = false
		}
		seen[r] = true
	}
	if len(s.CustomRoles) > 100 {
		v.add("settings.customRoles: at most 100 roles")
	}
	if rolesOK && !s.ValidRole(s.JIT.DefaultRole) {
		v.add("settings.jit.defaultRole %q is not a system role (%s) or a custom role of the workspace",
			s.JIT.DefaultRole, strings.Join(storage.SystemRoles, ", "))
	}

	validateRoleSettings(s, &v)

	if s.IdP.MetadataXML != "" {
		entityID, err := saml.ValidateIdPMetadata(s.IdP.MetadataXML, time.Now())
		switch {
		case err != nil:
			v.add("settings.idp.metadataXML: %v", err)
		case s.IdP.EntityID == "":
			s.IdP.EntityID = entityID
		case s.IdP.EntityID != entityID:
			v.add("settings.idp.entityID %q differs from the metadata's entityID %q", s.IdP.EntityID, entityID)
		}
	}
	if u := s.IdP.MetadataURL; u != "" {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" || len(u) > 2048 {
			v.add("settings.idp.metadataURL must be an https URL")
		}
	}
	if strings.ContainsFunc(s.IdP.EntityID, unicode.IsControl) || len(s.IdP.EntityID) > 1024 {
		v.add("settings.idp.entityID must be at most 1024 characters without control characters")
	}
	normalizeEmailDomains(s, &v)
	return v.orNil()
}

// validateName checks a workspace's display name.
func validateName(name string, v *ValidationError) {
	if strings.TrimSpace(name) == "" {
		v.add("name is required")
	} else if len(name) > 200 || strings.ContainsFunc(name, unicode.IsControl) {
		v.add("name must be at most 200 characters without control characters")
	}
}

// validateID checks a workspace id slug.
func validateID(id string, v *ValidationError) {
	if !ValidWorkspaceID(id) {
		v.add("id %q must match ^[a-z0-9][a-z0-9-]{0,62}$ (lower-case letters, digits and '-')", id)
	}
}

// MaxEmailDomains is how many email domains one workspace may declare.
const MaxEmailDomains = 50

// normalizeEmailDomains replaces each of s.Login.EmailDomains by its
// lower-case ASCII form (saml.NormalizeEmailDomain: the home page looks
// domains up in that form) and reports invalid, repeated and too many
// domains.
func normalizeEmailDomains(s *storage.Settings, v *ValidationError) {
	ds := s.Login.EmailDomains
	if len(ds) > MaxEmailDomains {
		v.add("settings.login.emailDomains: at most %d domains", MaxEmailDomains)
	}
	seen := map[string]bool{}
	for i, d := range ds {
		n, err := saml.NormalizeEmailDomain(d)
		switch {
		case err != nil:
			v.add("settings.login.emailDomains: %q: %v", d, err)
		case seen[n]:
			v.add("settings.login.emailDomains: %q is listed twice", n)
		default:
			ds[i] = n
		}
		seen[n] = true
	}
}
