package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/storage"
)

// pageSize is how many rows a paged list shows.
const pageSize = 25

// pageParam reads ?page= (1-based, default 1).
func pageParam(c echo.Context) int {
	n, err := strconv.Atoi(c.QueryParam("page"))
	if err != nil || n < 1 || n > 1_000_000 {
		return 1
	}
	return n
}

// pager is the position in a paged list.
type pager struct{ Page, Pages, Total int }

func newPager(page, total int) pager {
	return pager{Page: page, Pages: max(1, (total+pageSize-1)/pageSize), Total: total}
}

// --- SCIM ---

type scimData struct {
	BaseURL string
	Tokens  []storage.SCIMToken
	// New is the token just created, shown once.
	New       *storage.SCIMToken
	NewSecret string
	Name      string
	Errors    fieldErrors
	// Outcomes are the provisioning requests of the last day counted by
	// outcome (changes applied, then errors by status); LastErrors the
	// last errors answered, newest first.
	Outcomes   []outcomeCount
	LastErrors []storage.SCIMRequestError
}

// outcomeCount is a line of the provisioning summary.
type outcomeCount struct {
	Outcome string
	Count   int64
	Error   bool
}

// changeOutcomes name the SCIM changes the summary counts, in the order
// shown.
var changeOutcomes = []struct{ typ, label string }{
	{"scim.user.created", "Users created"},
	{"scim.user.adopted", "Users adopted (created at sign-in)"},
	{"scim.user.updated", "Users updated"},
	{"scim.user.deactivated", "Users deactivated"},
	{"scim.user.reactivated", "Users re-activated"},
	{"scim.user.deleted", "Users deleted"},
	{"scim.group.created", "Groups created"},
	{"scim.group.updated", "Groups updated"},
	{"scim.group.member_added", "Group members added"},
	{"scim.group.member_removed", "Group members removed"},
	{"scim.group.deleted", "Groups deleted"},
}

// outcomes orders a summary's counts for the page: the changes, then the
// errors by status.
func outcomes(counts map[string]int64) []outcomeCount {
	var out []outcomeCount
	for _, o := range changeOutcomes {
		if n := counts[o.typ]; n > 0 {
			out = append(out, outcomeCount{Outcome: o.label, Count: n})
		}
	}
	var errs []outcomeCount
	for k, n := range counts {
		if status, ok := strings.CutPrefix(k, "error."); ok {
			code, _ := strconv.Atoi(status)
			errs = append(errs, outcomeCount{Outcome: "Errors " + status + " " + http.StatusText(code), Count: n, Error: true})
		}
	}
	slices.SortFunc(errs, func(a, b outcomeCount) int { return strings.Compare(a.Outcome, b.Outcome) })
	return append(out, errs...)
}

func (h *Console) scimPage(c echo.Context) error {
	return h.showSCIM(c, http.StatusOK, scimData{}, c.QueryParam("done"))
}

func (h *Console) showSCIM(c echo.Context, status int, d scimData, done string) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	if d.Tokens, err = h.cfg.Store.ListSCIMTokens(c.Request().Context(), ws.ID); err != nil {
		return err
	}
	activity, err := h.cfg.Store.SCIMActivity(c.Request().Context(), ws.ID, time.Now())
	if err != nil {
		return err
	}
	d.Outcomes, d.LastErrors = outcomes(activity.Counts), activity.Errors
	d.BaseURL = h.cfg.BaseURL + "/scim/v2/" + ws.ID
	return h.render(c, status, "scim", page{Title: "SCIM", WS: &ws, Nav: "scim", Flash: flashText(done), Data: d})
}

func (h *Console) createToken(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	t, secret, problems, err := h.cfg.Backend.CreateSCIMToken(c.Request().Context(), c.Param("ws"), name)
	if err != nil {
		return err
	}
	if problems != nil {
		return h.showSCIM(c, http.StatusBadRequest, scimData{Name: name, Errors: sortProblems(problems, "name")}, "")
	}
	// The secret is shown on this answer only: it is not stored.
	return h.showSCIM(c, http.StatusOK, scimData{New: &t, NewSecret: secret}, "")
}

func (h *Console) revokeToken(c echo.Context) error {
	problems, err := h.cfg.Backend.RevokeSCIMToken(c.Request().Context(), c.Param("ws"), c.Param("token"))
	if err != nil {
		return err
	}
	if problems != nil {
		return h.showSCIM(c, http.StatusNotFound, scimData{Errors: fieldErrors{"form": problems}}, "")
	}
	return c.Redirect(http.StatusSeeOther, "/console/w/"+c.Param("ws")+"/scim?done=revoked")
}

// --- Members ---

// memberSearches are the indexes the members page can look a value up
// in (storage.FindUsers: an index hit, whatever the workspace's size).
var memberSearches = []struct{ By, Label string }{
	{string(storage.UserByEmail), "Email"},
	{string(storage.UserByName), "Name (starts with)"},
	{string(storage.UserByUserName), "User name"},
	{string(storage.UserByExternalID), "External ID"},
}

// memberFilters are the members page's filters as its query carries them
// (each "" = any).
type memberFilters struct {
	Env, Role, Status, Source, Verification string
}

// memberFilterChoices are the values each filter accepts, with labels.
var memberFilterChoices = struct{ Status, Source, Verification [][2]string }{
	Status:       [][2]string{{"active", "Active"}, {"deactivated", "Deactivated"}},
	Source:       [][2]string{{storage.SourceSCIM, "SCIM"}, {storage.SourceJIT, "JIT"}},
	Verification: [][2]string{{"verified", "Verified"}, {"pending", "Pending"}},
}

func readMemberFilters(c echo.Context) memberFilters {
	f := memberFilters{Env: c.QueryParam("env"), Role: c.QueryParam("role"), Status: c.QueryParam("status"),
		Source: c.QueryParam("source"), Verification: c.QueryParam("verification")}
	if f.Env == "" {
		f.Env = "dev"
	}
	return f
}

// store is f as a storage filter; false when a value is not one the page
// offers.
func (f memberFilters) store(ws storage.Workspace) (storage.UserFilter, bool) {
	var uf storage.UserFilter
	if f.Role != "" {
		if !ws.Settings.ValidRole(f.Role) {
			return uf, false
		}
		switch f.Env {
		case "dev":
			uf.Roles.Dev = f.Role
		case "test":
			uf.Roles.Test = f.Role
		case "prod":
			uf.Roles.Prod = f.Role
		default:
			return uf, false
		}
	}
	flag := func(v, yes, no string) (*bool, bool) {
		switch v {
		case "":
			return nil, true
		case yes, no:
			b := v == yes
			return &b, true
		}
		return nil, false
	}
	var okA, okV bool
	uf.Active, okA = flag(f.Status, "active", "deactivated")
	uf.Verified, okV = flag(f.Verification, "verified", "pending")
	switch f.Source {
	case "", storage.SourceSCIM, storage.SourceJIT:
		uf.Source = f.Source
	default:
		return uf, false
	}
	return uf, okA && okV
}

// query is f (and, when not "", the cursor after and the trail back) as
// a query string for the page's links; the default environment is left
// out.
func (f memberFilters) query(after string, back []string) string {
	v := url.Values{}
	for _, kv := range [][2]string{{"role", f.Role}, {"status", f.Status}, {"source", f.Source},
		{"verification", f.Verification}, {"after", after}, {"back", strings.Join(back, ",")}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	if f.Role != "" && f.Env != "dev" {
		v.Set("env", f.Env)
	}
	return "?" + v.Encode()
}

type membersData struct {
	Users    []storage.User
	By, Q    string
	Searches any
	Filters  memberFilters
	Choices  any
	// Filtered: a filter is set; NotIndexed: the store cannot filter this
	// workspace yet (storage.ErrNotIndexed).
	Filtered, NotIndexed bool
	Searched             bool
	// NameNotIndexed: the store cannot search this workspace by name yet
	// (storage.ErrNotIndexed); Capped: a name search found more than it
	// shows (storage.NameSearchLimit).
	NameNotIndexed, Capped bool
	// Total counts the members listed (About: an estimate).
	Total int
	About bool
	// FirstURL, PrevURL and NextURL page through the list ("" = no such
	// link).
	FirstURL, PrevURL, NextURL string
	// Limit is the most members a name search shows (the Capped notice).
	Limit int
}

// pageTrail is how many earlier pages' cursors the members page's links
// carry (the "back" parameter), so that Previous works without a
// backwards walk in the store; from deeper, Previous goes back that many
// pages and then to the first page.
const pageTrail = 50

// readTrail is the "back" parameter: the cursors of the pages before this
// one, oldest first, without the first page's (none); at most the newest
// pageTrail, and only values that can be cursors (numbers).
func readTrail(c echo.Context) []string {
	var out []string
	for _, a := range strings.Split(c.QueryParam("back"), ",") {
		if _, err := strconv.ParseUint(a, 10, 64); err == nil {
			out = append(out, a)
		}
	}
	return out[max(0, len(out)-pageTrail):]
}

// membersPage lists the members that match the filters a page at a time
// (storage.ListUsersFiltered: through the store's indexes, from a cursor,
// whatever the workspace's size), or finds them by email, user name or
// external id through the store's index.
func (h *Console) membersPage(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d := membersData{By: c.QueryParam("by"), Q: strings.TrimSpace(c.QueryParam("q")), Searches: memberSearches,
		Filters: readMemberFilters(c), Choices: memberFilterChoices, Limit: storage.NameSearchLimit}
	if d.By == "" {
		d.By = string(storage.UserByEmail)
	}
	if d.Q != "" {
		known := false
		for _, s := range memberSearches {
			known = known || s.By == d.By
		}
		if !known {
			return echo.NewHTTPError(http.StatusBadRequest, "unknown search")
		}
		found, err := h.cfg.Store.FindUsers(ctx, ws.ID, storage.UserIndex(d.By), d.Q, storage.FindOptions{})
		if errors.Is(err, storage.ErrNotIndexed) {
			d.NameNotIndexed = true
			return h.render(c, http.StatusServiceUnavailable, "members", page{Title: "Members", WS: &ws, Nav: "members", Data: d})
		}
		if err != nil {
			return err
		}
		d.Users, d.Searched, d.Total = found.Users, true, len(found.Users)
		d.Capped = found.More
		return h.render(c, http.StatusOK, "members", page{Title: "Members", WS: &ws, Nav: "members", Data: d})
	}
	uf, ok := d.Filters.store(ws)
	if !ok {
		return echo.NewHTTPError(http.StatusBadRequest, "unknown filter")
	}
	d.Filtered = !uf.Empty()
	after := c.QueryParam("after")
	p, err := h.cfg.Store.ListUsersFiltered(ctx, ws.ID, uf, after, pageSize)
	if errors.Is(err, storage.ErrNotIndexed) {
		d.NotIndexed = true
		return h.render(c, http.StatusServiceUnavailable, "members", page{Title: "Members", WS: &ws, Nav: "members", Data: d})
	}
	if err != nil {
		return err
	}
	d.Users, d.Total, d.About = p.Users, p.Total, !p.TotalExact
	if after != "" {
		back := readTrail(c)
		d.FirstURL = d.Filters.query("", nil)
		d.PrevURL = d.FirstURL
		if n := len(back); n > 0 {
			d.PrevURL = d.Filters.query(back[n-1], back[:n-1])
		}
		if p.Next != "" {
			back = append(back, after)
			d.NextURL = d.Filters.query(p.Next, back[max(0, len(back)-pageTrail):])
		}
	} else if p.Next != "" {
		d.NextURL = d.Filters.query(p.Next, nil)
	}
	return h.render(c, http.StatusOK, "members", page{Title: "Members", WS: &ws, Nav: "members", Data: d})
}

type memberData struct {
	User     storage.User
	Email    string
	Groups   []storage.GroupRef
	Reasons  []RoleReason
	Events   []storage.Event
	Editable bool
	Roles    storage.Roles // the form's values
	Errors   fieldErrors
}

func (h *Console) member(c echo.Context) (storage.Workspace, storage.User, error) {
	ws, err := h.workspace(c)
	if err != nil {
		return ws, storage.User{}, err
	}
	u, err := h.cfg.Store.GetUser(c.Request().Context(), ws.ID, c.Param("user"))
	if isNotFound(err) {
		return ws, u, echo.ErrNotFound
	}
	return ws, u, err
}

func (h *Console) memberPage(c echo.Context) error {
	ws, u, err := h.member(c)
	if err != nil {
		return err
	}
	return h.showMember(c, http.StatusOK, ws, u, memberData{Roles: u.Roles}, c.QueryParam("done"))
}

func (h *Console) showMember(c echo.Context, status int, ws storage.Workspace, u storage.User, d memberData, done string) error {
	ctx := c.Request().Context()
	groups, err := h.cfg.Store.UserGroups(ctx, ws.ID, []string{u.ID})
	if err != nil {
		return err
	}
	if d.Reasons, err = h.cfg.Backend.ExplainRoles(ctx, ws.ID, u); err != nil {
		return err
	}
	if d.Events, err = h.cfg.Backend.LastEvents(ctx, ws.ID, memberEventsShown, func(e storage.Event) bool { return e.UserID == u.ID }); err != nil {
		return err
	}
	d.User, d.Groups, d.Editable = u, groups[u.ID], u.Source != storage.SourceSCIM
	if len(u.Emails) > 0 {
		d.Email = u.Emails[0]
	}
	return h.render(c, status, "member", page{Title: u.UserName, WS: &ws, Nav: "members", Flash: flashText(done), Data: d})
}

// memberEventsShown is how many of a member's events their page lists.
const memberEventsShown = 20

// errSCIMManaged refuses a change to a member the IdP's SCIM client owns.
var errSCIMManaged = errors.New("managed by your identity provider")

// changeRoles sets a JIT member's roles; every role must be one of the
// workspace's (case-sensitive, as everywhere).
func (h *Console) changeRoles(c echo.Context) error {
	ws, u, err := h.member(c)
	if err != nil {
		return err
	}
	roles := storage.Roles{Dev: c.FormValue("dev"), Test: c.FormValue("test"), Prod: c.FormValue("prod")}
	errs := fieldErrors{}
	for i, env := range storage.Environments {
		if r := roles.Env(i); !ws.Settings.ValidRole(r) {
			errs[env] = []string{strconv.Quote(r) + " is not a role of this workspace"}
		}
	}
	if len(errs) > 0 {
		return h.showMember(c, http.StatusBadRequest, ws, u, memberData{Roles: roles, Errors: errs}, "")
	}
	return h.updateMember(c, ws, u, func(x *storage.User) { x.Roles = roles }, storage.Event{Type: EventMemberRoles,
		Detail: map[string]string{"from": u.Roles.Detail(), "to": roles.Detail()}}, "member")
}

func (h *Console) deactivate(c echo.Context) error {
	ws, u, err := h.member(c)
	if err != nil {
		return err
	}
	return h.updateMember(c, ws, u, func(x *storage.User) { x.Active = false },
		storage.Event{Type: EventMemberDeactivated}, "deactivated")
}

// updateMember changes a member that is not SCIM-managed and records ev
// (actor: who is signed in).
func (h *Console) updateMember(c echo.Context, ws storage.Workspace, u storage.User, change func(*storage.User), ev storage.Event, done string) error {
	ctx := c.Request().Context()
	u, err := h.cfg.Store.UpdateUser(ctx, ws.ID, u.ID, 0, func(x *storage.User) error {
		if x.Source == storage.SourceSCIM {
			return errSCIMManaged
		}
		change(x)
		return nil
	})
	switch {
	case errors.Is(err, errSCIMManaged):
		return h.showMember(c, http.StatusConflict, ws, u, memberData{Roles: u.Roles,
			Errors: fieldErrors{"form": {"This member is managed by your identity provider: change it there."}}}, "")
	case isNotFound(err):
		return echo.ErrNotFound
	case err != nil:
		return err
	}
	ev.Actor, ev.UserID, ev.AccountID, ev.Time = whoOf(c).Actor, u.ID, u.AccountID, time.Now().UTC()
	if _, err := h.cfg.Store.AppendEvents(ctx, ws.ID, ev); err != nil {
		// The change is made; the log keeps the record.
		h.cfg.Logger.WarnContext(ctx, "console: append event", "type", ev.Type, "err", err)
	}
	return c.Redirect(http.StatusSeeOther, "/console/w/"+ws.ID+"/members/"+u.ID+"?done="+done)
}

// --- Groups ---

type groupsData struct {
	Groups []storage.Group
	Pager  pager
}

func (h *Console) groupsPage(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	p := pageParam(c)
	groups, total, err := h.cfg.Store.ListGroups(c.Request().Context(), ws.ID, (p-1)*pageSize, pageSize)
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, "groups", page{Title: "Groups", WS: &ws, Nav: "groups",
		Data: groupsData{Groups: groups, Pager: newPager(p, total)}})
}

// groupMembersShown caps the members a group's page lists.
const groupMembersShown = 200

type groupData struct {
	Group   storage.Group
	Members []string
	More    int
}

func (h *Console) groupPage(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	g, err := h.cfg.Store.GetGroup(c.Request().Context(), ws.ID, c.Param("group"))
	if isNotFound(err) {
		return echo.ErrNotFound
	}
	if err != nil {
		return err
	}
	d := groupData{Group: g, Members: g.Members}
	if len(d.Members) > groupMembersShown {
		d.Members, d.More = d.Members[:groupMembersShown], len(g.Members)-groupMembersShown
	}
	return h.render(c, http.StatusOK, "group", page{Title: g.DisplayName, WS: &ws, Nav: "groups", Data: d})
}

// --- Recent sign-ins ---

// signInsShown is how many sign-in decisions the sign-ins page lists.
const signInsShown = 50

// signInEvent reports whether an event is a sign-in decision: what the
// SAML side records for every sign-in attempt (login.*, jit.*, join.*,
// role.synced). Events never hold signature material or assertions.
func signInEvent(e storage.Event) bool {
	for _, p := range []string{"login.", "jit.", "join.", "role.synced"} {
		if strings.HasPrefix(e.Type, p) {
			return true
		}
	}
	return false
}

// signIn is one line of the sign-ins page.
type signIn struct {
	storage.Event
	Decision string
	Refused  bool
	// Attributes are what the IdP sent, as the decision event recorded
	// them; Matches say, for each attribute scimjit reads, which one gave
	// it (Name empty: not sent).
	Attributes []saml.ReceivedAttribute
	Matches    []attributeMatch
}

// attributeMatch is how one attribute scimjit reads was found.
type attributeMatch struct{ Reads, Name, Spelling string }

// readNames are the attributes scimjit reads, as the page lists them.
var readNames = []string{"workato_email", "workato_full_name", "workato_role", "workato_role_test", "workato_role_prod"}

func matchesOf(attrs []saml.ReceivedAttribute) []attributeMatch {
	out := make([]attributeMatch, 0, len(readNames))
	for _, n := range readNames {
		m := attributeMatch{Reads: n}
		for _, a := range attrs {
			if a.Reads == n {
				m.Name, m.Spelling = a.Name, a.Spelling
				break
			}
		}
		out = append(out, m)
	}
	return out
}

var decisions = map[string]string{
	"login.succeeded":        "signed in",
	"jit.user.created":       "member created (JIT)",
	"jit.membership.created": "joined (existing account)",
	"join.pending":           "verification email sent",
	"join.verified":          "joined after email verification",
	"join.refused":           "join refused",
	"role.synced":            "roles updated from the sign-in",
	"login.refused":          "refused",
	"login.rate_limited":     "refused: too many attempts",
	"login.slo_refused":      "sign-out request refused",
}

func (h *Console) signInsPage(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	events, err := h.cfg.Backend.LastEvents(c.Request().Context(), ws.ID, signInsShown, signInEvent)
	if err != nil {
		return err
	}
	list := make([]signIn, 0, len(events))
	for _, e := range events {
		d := decisions[e.Type]
		if d == "" {
			d = e.Type
		}
		si := signIn{Event: e, Decision: d, Refused: strings.HasSuffix(e.Type, "refused") || e.Type == "login.rate_limited"}
		if si.Attributes = saml.ReceivedAttributes(e.Detail); si.Attributes != nil {
			si.Matches = matchesOf(si.Attributes)
		}
		list = append(list, si)
	}
	return h.render(c, http.StatusOK, "signins", page{Title: "Recent sign-ins", WS: &ws, Nav: "sign-ins", Data: list})
}
