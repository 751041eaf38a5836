package console

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/storage"
)

// fieldErrors are a form's problems by field ("form" for the rest).
type fieldErrors map[string][]string

// sortProblems files each problem under the field whose admin API name
// (a key of fields: "settings.jit.defaultRole", "id", ...) starts it, or
// under "form".
func sortProblems(problems Problems, fields ...string) fieldErrors {
	out := fieldErrors{}
	for _, p := range problems {
		key := "form"
		for _, f := range fields {
			if rest, ok := strings.CutPrefix(p, f); ok && (rest == "" || strings.ContainsAny(rest[:1], " :[")) {
				key = f
				break
			}
		}
		out[key] = append(out[key], p)
	}
	return out
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// flashText is the confirmation of a ?done= code after a change.
func flashText(done string) string {
	return map[string]string{
		"created":     "Workspace created.",
		"deleted":     "Workspace deleted.",
		"jit":         "Provisioning settings saved.",
		"metadata":    "Identity provider metadata saved.",
		"roles":       "Custom roles saved.",
		"rule":        "Mapping rule added.",
		"rule-delete": "Mapping rule removed.",
		"revoked":     "SCIM token revoked.",
		"member":      "Member roles saved.",
		"deactivated": "Member deactivated.",
	}[done]
}

// workspace loads the route's workspace; a missing one is the 404 page.
func (h *Console) workspace(c echo.Context) (storage.Workspace, error) {
	if !storage.ValidWorkspaceID(c.Param("ws")) {
		return storage.Workspace{}, echo.ErrNotFound
	}
	ws, err := h.cfg.Store.GetWorkspace(c.Request().Context(), c.Param("ws"))
	if isNotFound(err) {
		return ws, echo.ErrNotFound
	}
	return ws, err
}

// authData is the Authentication & provisioning page: the stored settings
// and, after a refused form, that form's values and problems.
type authData struct {
	SP struct{ EntityID, ACS, Metadata string }
	// IdP facts read from the stored metadata.
	CertExpiry  time.Time
	CertExpired bool
	JIT         storage.JITSettings
	RoleSync    bool // roles at every sign-in
	CustomRoles string
	Metadata    struct{ XML, URL string }
	Rule        struct {
		Group           string
		Dev, Test, Prod string
	}
	Errors fieldErrors
	// Form names the form the errors belong to.
	Form       string
	Attributes []attributeRow
}

// attributeRow is a line of the attribute reference table.
type attributeRow struct{ Name, Meaning, Okta, Entra, Google string }

var attributeRows = func() []attributeRow {
	row := func(n, meaning string) attributeRow {
		return attributeRow{n, meaning, "appuser." + n, "user." + n, n}
	}
	return []attributeRow{
		row("workato_email", "Email"),
		row("workato_full_name", "Full name"),
		row("workato_role", "DEV role"),
		row("workato_role_test", "TEST role"),
		row("workato_role_prod", "PROD role"),
	}
}()

func (h *Console) authPage(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	return h.showAuth(c, http.StatusOK, ws, h.authData(ws), c.QueryParam("done"))
}

// authData fills the page's forms from the stored settings.
func (h *Console) authData(ws storage.Workspace) authData {
	var d authData
	base := h.cfg.BaseURL + "/saml/" + ws.ID
	d.SP.EntityID, d.SP.ACS, d.SP.Metadata = base+"/metadata", base+"/acs", base+"/metadata"
	d.JIT = ws.Settings.JIT
	d.RoleSync = ws.Settings.JIT.RoleSync == storage.RoleSyncEveryLogin
	d.CustomRoles = strings.Join(ws.Settings.CustomRoles, "\n")
	d.Metadata.URL = ws.Settings.IdP.MetadataURL
	if md := ws.Settings.IdP.MetadataXML; md != "" {
		if f, err := saml.InspectIdPMetadata(md, ws.Settings.IdP.EntityID, time.Now()); err == nil {
			d.CertExpiry = f.CertificateExpiry
			d.CertExpired = !f.CertificateExpiry.IsZero() && f.CertificateExpiry.Before(time.Now())
		}
	}
	d.Attributes = attributeRows
	return d
}

func (h *Console) showAuth(c echo.Context, status int, ws storage.Workspace, d authData, done string) error {
	return h.render(c, status, "auth", page{Title: "Authentication & provisioning", WS: &ws, Nav: "auth",
		Flash: flashText(done), Data: d})
}

// save applies settings through the admin API's code; on problems it
// shows the page again with the form's values (fill) and the problems
// filed by field, else it redirects to the page with a confirmation.
//
// The form that carries the workspace's version (the hidden field
// "version", written by the page it came from) is applied only to that
// version: a list the form replaces as a whole (custom roles, group
// rules) never overwrites a change someone else made after the page was
// shown.
// A change computed from the workspace as read here (addRule,
// deleteRule) passes that read's version, or the form's when it has one.
func (h *Console) save(c echo.Context, form string, version int64, settings map[string]any, fill func(*authData), fields ...string) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	_, problems, err := h.cfg.Backend.UpdateSettings(c.Request().Context(), ws.ID, version, settings)
	if err != nil {
		return err
	}
	if problems != nil {
		d := h.authData(ws)
		fill(&d)
		d.Form, d.Errors = form, sortProblems(problems, fields...)
		return h.showAuth(c, http.StatusBadRequest, ws, d, "")
	}
	return c.Redirect(http.StatusSeeOther, "/console/w/"+ws.ID+"?done="+form+"#"+form)
}

func (h *Console) saveJIT(c echo.Context) error {
	j := storage.JITSettings{
		Enabled:         c.FormValue("enabled") == "on",
		ExistingAccount: c.FormValue("existingAccount"),
		DefaultRole:     c.FormValue("defaultRole"),
		RoleSync:        storage.RoleSyncOnCreate,
		UnknownRole:     c.FormValue("unknownRole"),
	}
	if c.FormValue("roleSync") == "on" {
		j.RoleSync = storage.RoleSyncEveryLogin
	}
	return h.save(c, "jit", formVersion(c), map[string]any{"jit": map[string]any{
		"enabled": j.Enabled, "existingAccount": j.ExistingAccount, "defaultRole": j.DefaultRole,
		"roleSync": j.RoleSync, "unknownRole": j.UnknownRole,
	}}, func(d *authData) { d.JIT, d.RoleSync = j, j.RoleSync == storage.RoleSyncEveryLogin },
		"settings.jit.existingAccount", "settings.jit.defaultRole", "settings.jit.roleSync", "settings.jit.unknownRole")
}

// saveMetadata takes the IdP metadata from an uploaded file, the pasted
// XML or a URL to download (and refresh) it from, in that order.
func (h *Console) saveMetadata(c echo.Context) error {
	xml := c.FormValue("metadataXML")
	if fh, err := c.FormFile("metadataFile"); err == nil && fh.Size > 0 {
		f, err := fh.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return err
		}
		xml = string(b)
	}
	url := strings.TrimSpace(c.FormValue("metadataURL"))
	idp := map[string]any{}
	switch {
	case strings.TrimSpace(xml) != "":
		idp["metadataXML"] = xml
	case url != "":
		idp["metadataURL"] = url
	default:
		ws, err := h.workspace(c)
		if err != nil {
			return err
		}
		d := h.authData(ws)
		d.Form, d.Errors = "metadata", fieldErrors{"form": {"Choose a metadata file, paste the metadata or give its URL."}}
		return h.showAuth(c, http.StatusBadRequest, ws, d, "")
	}
	return h.save(c, "metadata", formVersion(c), map[string]any{"idp": idp}, func(d *authData) {
		d.Metadata.XML, d.Metadata.URL = xml, url
	}, "settings.idp.metadataXML", "settings.idp.metadataURL", "settings.idp.entityID")
}

// saveCustomRoles replaces the custom roles: one per line.
func (h *Console) saveCustomRoles(c echo.Context) error {
	text := c.FormValue("customRoles")
	roles := []string{}
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			roles = append(roles, l)
		}
	}
	return h.save(c, "roles", formVersion(c), map[string]any{"customRoles": roles},
		func(d *authData) { d.CustomRoles = text }, "settings.customRoles", "settings.jit.defaultRole")
}

// addRule appends a group mapping rule to the workspace's list.
func (h *Console) addRule(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	group := strings.TrimSpace(c.FormValue("group"))
	roles := storage.Roles{Dev: c.FormValue("dev"), Test: c.FormValue("test"), Prod: c.FormValue("prod")}
	rules := ruleList(ws.Settings.Roles.GroupRules)
	rules = append(rules, map[string]any{"group": group, "roles": roles})
	n := len(ws.Settings.Roles.GroupRules)
	return h.save(c, "rule", readVersion(c, ws), map[string]any{"roles": map[string]any{"groupRules": rules}}, func(d *authData) {
		d.Rule.Group, d.Rule.Dev, d.Rule.Test, d.Rule.Prod = group, roles.Dev, roles.Test, roles.Prod
	}, "settings.roles.groupRules["+strconv.Itoa(n)+"]", "settings.roles.groupRules")
}

// deleteRule removes the rule at 1-based position ?n.
func (h *Console) deleteRule(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	version := readVersion(c, ws)
	n, err := strconv.Atoi(c.FormValue("n"))
	rules := ruleList(ws.Settings.Roles.GroupRules)
	switch {
	case err == nil && n >= 1 && n <= len(rules):
		rules = append(rules[:n-1], rules[n:]...)
	case version == ws.Version:
		return echo.NewHTTPError(http.StatusBadRequest, "no such rule")
	}
	// From a page of an older version the position may name another rule
	// now: save refuses the change as stale.
	return h.save(c, "rule-delete", version, map[string]any{"roles": map[string]any{"groupRules": rules}}, func(*authData) {})
}

// formVersion is the form's "version" field: the workspace version the
// page showed; 0 (no check) when absent or malformed.
func formVersion(c echo.Context) int64 {
	v, err := strconv.ParseInt(c.FormValue("version"), 10, 64)
	if err != nil || v < 1 {
		return 0
	}
	return v
}

// readVersion is the version a change to the list ws holds is made
// against: the form's, else that of ws as the handler read it.
func readVersion(c echo.Context, ws storage.Workspace) int64 {
	if v := formVersion(c); v != 0 {
		return v
	}
	return ws.Version
}

func ruleList(rs []storage.GroupRule) []any {
	out := make([]any, 0, len(rs)+1)
	for _, r := range rs {
		out = append(out, map[string]any{"group": r.Group, "roles": r.Roles})
	}
	return out
}
