package scimhandlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// typedUserKeys are the SCIM attributes kept in typed storage.User fields,
// never in User.Attributes.
var typedUserKeys = []string{"id", "meta", "schemas", "groups", "password", "userName", "externalId", "active", RoleURN}

// userDoc returns the JSON-shaped SCIM attributes of u, without id, meta,
// schemas and groups. The top-level map is new; nested values are u's own.
// Every caller renders a user the store has just returned for this request
// (or copies the document before changing it, as PATCH does), so nothing
// else sees them and a deep copy of every value on every read is not
// needed.
func userDoc(u storage.User) map[string]any {
	doc := make(map[string]any, len(u.Attributes)+8) // + id, meta, schemas, groups, typed attributes
	for k, v := range u.Attributes {
		doc[k] = v
	}
	for _, k := range typedUserKeys {
		delete(doc, k)
	}
	doc["userName"] = u.UserName
	if u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	doc["active"] = u.Active
	roles := map[string]any{}
	if u.Roles.Dev != "" {
		roles[roleDev] = u.Roles.Dev
	}
	if u.Roles.Test != "" {
		roles[roleTest] = u.Roles.Test
	}
	if u.Roles.Prod != "" {
		roles[roleProd] = u.Roles.Prod
	}
	if len(roles) > 0 {
		doc[RoleURN] = roles
	}
	// A JIT-created membership may carry its email only in the typed field.
	if _, ok := doc["emails"]; !ok && len(u.Emails) > 0 {
		var emails []any
		for i, e := range u.Emails {
			el := map[string]any{"value": e, "type": "work"}
			if i == 0 {
				el["primary"] = true
			}
			emails = append(emails, el)
		}
		doc["emails"] = emails
	}
	return doc
}

// applyUserDoc copies validated attributes into u. Roles missing from the
// document keep u's current ones (the caller fills defaults on create);
// active keeps its value when absent.
func applyUserDoc(u *storage.User, doc map[string]any) {
	u.UserName, _ = doc["userName"].(string)
	u.ExternalID, _ = doc["externalId"].(string)
	if a, ok := doc["active"].(bool); ok {
		u.Active = a
	}
	if rm, ok := doc[RoleURN].(map[string]any); ok {
		if v, ok := rm[roleDev].(string); ok && v != "" {
			u.Roles.Dev = v
		}
		if v, ok := rm[roleTest].(string); ok && v != "" {
			u.Roles.Test = v
		}
		if v, ok := rm[roleProd].(string); ok && v != "" {
			u.Roles.Prod = v
		}
	}
	u.Emails = emailValues(doc)
	attrs := map[string]any{}
	for k, v := range doc {
		attrs[k] = v
	}
	for _, k := range typedUserKeys {
		delete(attrs, k)
	}
	u.Attributes = attrs
}

// emailValues returns the email values as sent, without repeats (compared
// folded, storage.FoldKey): the user's Emails, which the store indexes
// folded for emails.value lookups. JIT and joins keep emails the same way.
func emailValues(doc map[string]any) []string {
	list, _ := doc["emails"].([]any)
	var out []string
	seen := map[string]bool{}
	for _, el := range list {
		m, _ := el.(map[string]any)
		v, _ := m["value"].(string)
		v = strings.TrimSpace(v)
		if k := storage.FoldKey(v); k != "" && !seen[k] {
			seen[k] = true
			out = append(out, v)
		}
	}
	return out
}

// linkEmail picks the email that links a SCIM user to an account (R9): the
// primary emails value, else the first, else userName when it is an email
// address.
func linkEmail(doc map[string]any) string {
	list, _ := doc["emails"].([]any)
	first := ""
	for _, el := range list {
		m, _ := el.(map[string]any)
		v, _ := m["value"].(string)
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if p, _ := m["primary"].(bool); p {
			return v
		}
		if first == "" {
			first = v
		}
	}
	if first != "" {
		return first
	}
	un, _ := doc["userName"].(string)
	if looksLikeEmail(un) {
		return strings.TrimSpace(un)
	}
	return ""
}

func looksLikeEmail(s string) bool {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "@") || strings.ContainsAny(s, " <>") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

// checkRoles validates the role extension against the workspace's roles
// (R4: case-sensitive, system roles plus custom roles).
func checkRoles(settings storage.Settings, doc map[string]any) *Error {
	rm, _ := doc[RoleURN].(map[string]any)
	for _, name := range []string{roleDev, roleTest, roleProd} {
		v, _ := rm[name].(string)
		if v == "" {
			continue
		}
		if !settings.ValidRole(v) {
			return unknownRoleError(settings, v, name)
		}
	}
	return nil
}

// settleRoles makes the role values applyUserDoc left in u.Roles its
// explicit values and leaves its roles for the store to decide
// (storage.Store.UpdateUser): Settings.MemberRoles of them and the user's
// SCIM groups as of the write, a group rule where one decides, else the
// explicit value, else the default role.
func settleRoles(u *storage.User) {
	explicit := u.Roles
	u.ExplicitRoles = &explicit
	u.Roles = storage.Roles{}
}

// explicitView is u with its explicit role values in place of its roles:
// what a PUT or PATCH starts from, so that a role a group rule gives is
// never taken for a value the IdP sent.
func explicitView(u storage.User) storage.User {
	u.Roles = u.Explicit()
	return u
}

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch parses If-Match (RFC 7232 §3.1, RFC 7644 §3.14). 0 means no
// precondition ("*" or absent).
func ifMatch(r *http.Request) (int64, *Error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	// Only one tag is meaningful for a single resource; take the first.
	v, _, _ = strings.Cut(v, ",")
	v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "W/"))
	v = strings.Trim(v, `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		// An ETag we never issued cannot match.
		return 0, &Error{Status: http.StatusPreconditionFailed, Detail: "If-Match does not match the current version"}
	}
	return n, nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// renderUser builds the full SCIM representation of u (RFC 7643 §4.1).
// groups is nil when not loaded (the attribute is then omitted).
func renderUser(base string, u storage.User, groups []storage.GroupRef) map[string]any {
	doc := userDoc(u)
	doc["id"] = u.ID
	schemas := []any{userURN}
	for _, e := range userKind.exts {
		if _, ok := doc[e.ID]; ok {
			schemas = append(schemas, e.ID)
		}
	}
	doc["schemas"] = schemas
	loc := base + "/Users/" + u.ID
	doc["meta"] = map[string]any{
		"resourceType": "User",
		"created":      fmtTime(u.Created),
		"lastModified": fmtTime(u.Modified),
		"location":     loc,
		"version":      etag(u.Version),
	}
	if groups != nil {
		doc["groups"] = groupsValue(base, groups)
	}
	return doc
}

// groupsValue is a user's `groups` attribute (RFC 7643 §4.1.2): direct
// memberships only.
func groupsValue(base string, groups []storage.GroupRef) []any {
	list := make([]any, 0, len(groups))
	for _, g := range groups {
		list = append(list, map[string]any{
			"value":   g.ID,
			"$ref":    base + "/Groups/" + g.ID,
			"display": g.DisplayName,
			"type":    "direct",
		})
	}
	return list
}

// userGroups returns the group references of one user (never the groups'
// members: storage.Store.UserGroups), ordered by group id.
func (h *Handler) userGroups(ctx context.Context, ws, id string) ([]storage.GroupRef, error) {
	m, err := h.store.UserGroups(ctx, ws, []string{id})
	if err != nil {
		return nil, err
	}
	if gs := m[id]; gs != nil {
		return gs, nil
	}
	return []storage.GroupRef{}, nil
}

func (h *Handler) event(ctx context.Context, ws, typ string, u storage.User, detail map[string]string) {
	_, err := h.store.AppendEvents(ctx, ws, storage.Event{
		Type: typ, Actor: "scim", UserID: u.ID, AccountID: u.AccountID, Detail: detail,
	})
	if err != nil {
		h.log.WarnContext(ctx, "append scim event", "type", typ, "err", err)
	}
}

// writeUser renders u. groups is loaded from the store when nil and the
// projection keeps it; a user created by this request passes an empty
// list (it cannot be in a group yet), saving a round trip.
func (h *Handler) writeUser(w http.ResponseWriter, q *request, status int, u storage.User, groups []storage.GroupRef) {
	p := q.proj
	if groups == nil && p.wants(userKind, "groups") {
		var err error
		if groups, err = h.userGroups(q.r.Context(), q.ws, u.ID); err != nil {
			h.WriteError(w, q.r, mapStoreError(err, "user"))
			return
		}
	}
	w.Header().Set("ETag", etag(u.Version))
	if status == http.StatusCreated {
		w.Header().Set("Location", q.base+"/Users/"+u.ID)
	}
	if p.none() {
		h.writeEncoded(w, status, func(dst []byte) ([]byte, error) { return appendUser(dst, q.base, &u, groups) })
		return
	}
	h.writeJSON(w, status, presentUser(p.apply(userKind, renderUser(q.base, u, groups)), &u))
}

// readUserBody reads and validates a POST/PUT user body.
func (h *Handler) readUserBody(q *request) (map[string]any, storage.Settings, *Error) {
	raw, aerr := q.writeBody()
	if aerr != nil {
		return nil, storage.Settings{}, aerr
	}
	m, aerr := decodeObject(raw)
	if aerr != nil {
		return nil, storage.Settings{}, aerr
	}
	entra, aerr := canonicalRoles(m)
	if aerr != nil {
		return nil, storage.Settings{}, aerr
	}
	if entra {
		q.roleSchema = EntraRoleURN
	}
	doc, aerr := validateResource(userKind, m, true)
	if aerr != nil {
		return nil, storage.Settings{}, aerr
	}
	delete(doc, "password") // never stored nor returned (RFC 7643 §4.1.1)
	ws, err := h.store.GetWorkspace(q.r.Context(), q.ws)
	if err != nil {
		return nil, storage.Settings{}, mapStoreError(err, "workspace")
	}
	if aerr := applyAppRoles(ws.Settings, doc, nil); aerr != nil {
		return nil, storage.Settings{}, aerr
	}
	if aerr := checkRoles(ws.Settings, doc); aerr != nil {
		return nil, storage.Settings{}, aerr
	}
	return doc, ws.Settings, nil
}

// adoptable reports whether an existing membership may be taken over by a
// SCIM POST instead of answering 409 (R13): an inactive membership
// (re-assignment after deactivation, Entra E10), or an active JIT-created
// one that no IdP has claimed yet (empty externalId, X1).
func adoptable(u storage.User) (string, bool) {
	if !u.Active {
		return "reactivated", true
	}
	if u.Source == storage.SourceJIT && u.ExternalID == "" {
		return "adopted", true
	}
	return "", false
}

var errNotAdoptable = errors.New("membership is active")

func (h *Handler) createUser(w http.ResponseWriter, q *request) {
	ctx := q.r.Context()
	doc, settings, aerr := h.readUserBody(q)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	email := linkEmail(doc)
	if email == "" {
		h.WriteError(w, q.r, badRequest(typeInvalidValue,
			"the user has no email: send emails (primary or first is used) or an email address as userName"))
		return
	}
	userName, _ := doc["userName"].(string)

	// An existing membership with this userName: this very request sent
	// again, or one to re-activate or adopt, else 409.
	found, err := h.store.FindUsers(ctx, q.ws, storage.UserByUserName, userName, storage.FindOptions{})
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "user"))
		return
	}
	if existing := found.Users; len(existing) > 0 {
		m := existing[0]
		h.takeOver(w, q, m, doc, &Error{Status: http.StatusConflict, ScimType: typeUniqueness,
			Detail: fmt.Sprintf("userName %q is already in use in this workspace, by user %s", clip(m.UserName), m.ID)})
		return
	}

	acct, created, err := h.store.GetOrCreateAccount(ctx, storage.Account{
		Email: email, FullName: storage.FullName(doc), Source: storage.SourceSCIM, OriginWorkspace: q.ws,
	})
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "account"))
		return
	}
	if !created {
		// The account's membership here under another userName.
		m, err := h.store.GetUserByAccount(ctx, q.ws, acct.ID)
		switch {
		case err == nil:
			h.takeOver(w, q, m, doc, &Error{Status: http.StatusConflict, ScimType: typeUniqueness,
				Detail: fmt.Sprintf("the email %q is already a member of this workspace, as user %s (userName %q); "+
					"one person has one membership per workspace", clip(email), m.ID, clip(m.UserName))})
			return
		case !isNotFound(err):
			h.WriteError(w, q.r, mapStoreError(err, "user"))
			return
		}
	}
	u := storage.User{
		WorkspaceID: q.ws,
		AccountID:   acct.ID,
		Active:      true,
		// A new account (created by this call) or one that this workspace
		// created is verified; an account from elsewhere must verify at
		// its first SAML sign-in here.
		Verified: created || acct.OriginWorkspace == q.ws,
		Source:   storage.SourceSCIM,
		Op:       q.op,
		// Responses use the role extension's form this POST used.
		RoleSchema: q.roleSchema,
	}
	applyUserDoc(&u, doc)
	settleRoles(&u)
	u.Roles = settings.MemberRoles(*u.ExplicitRoles, nil).Roles // a new user is in no group yet
	// The membership and its event are one store write.
	stored, err := h.store.CreateUser(ctx, q.ws, u, storage.Event{Type: "scim.user.created", Actor: "scim",
		Detail: map[string]string{"verified": strconv.FormatBool(u.Verified)}})
	var ce *storage.ConflictError
	if errors.As(err, &ce) {
		// A concurrent request took the userName or the account's place
		// here first: this very request, sent again, or another one.
		found, ferr := h.store.FindUsers(ctx, q.ws, storage.UserByUserName, userName, storage.FindOptions{})
		if ferr == nil && len(found.Users) > 0 {
			m := found.Users[0]
			if m.Op == q.op {
				h.writeUser(w, q, http.StatusCreated, m, nil)
				return
			}
			if ce.Field == "userName" {
				h.WriteError(w, q.r, &Error{Status: http.StatusConflict, ScimType: typeUniqueness, cause: err,
					Detail: fmt.Sprintf("userName %q is already in use in this workspace, by user %s", clip(m.UserName), m.ID)})
				return
			}
		}
	}
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "user"))
		return
	}
	u = stored
	h.writeUser(w, q, http.StatusCreated, u, []storage.GroupRef{})
}

// takeOver answers a POST whose user already has a membership m: when m
// was written by this very request (sent again after its answer was lost)
// with m as it is; when m may be re-activated or adopted, with m updated
// from the POSTed document, atomically re-checking that it still may;
// otherwise with conflict, which names the clash.
func (h *Handler) takeOver(w http.ResponseWriter, q *request, m storage.User, doc map[string]any, conflict *Error) {
	ctx := q.r.Context()
	if m.Op == q.op {
		h.writeUser(w, q, http.StatusCreated, m, nil)
		return
	}
	if _, ok := adoptable(m); !ok {
		h.WriteError(w, q.r, conflict)
		return
	}
	how := ""
	u, err := h.store.UpdateUser(ctx, q.ws, m.ID, 0, func(u *storage.User) error {
		if u.Op == q.op {
			how = "replayed"
			return errReplayed
		}
		var ok bool
		if how, ok = adoptable(*u); !ok {
			return errNotAdoptable
		}
		fresh := explicitView(*u)
		fresh.Active = true
		applyUserDoc(&fresh, doc)
		fresh.Source = storage.SourceSCIM
		fresh.RoleSchema = q.roleSchema
		settleRoles(&fresh)
		fresh.Op = q.op
		*u = fresh
		return nil
	})
	switch {
	case errors.Is(err, errReplayed):
		u, err = h.store.GetUser(ctx, q.ws, m.ID)
	case errors.Is(err, errNotAdoptable):
		h.WriteError(w, q.r, conflict)
		return
	}
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "user"))
		return
	}
	if how != "replayed" {
		typ := "scim.user.reactivated"
		if how == "adopted" {
			typ = "scim.user.adopted"
		}
		if !u.Active {
			typ = "scim.user.updated"
		}
		h.event(ctx, q.ws, typ, u, nil)
	}
	// 201: the POST created the resource from the client's point of view
	// (RFC 7644 §3.3); docs/scim.md explains the choice.
	h.writeUser(w, q, http.StatusCreated, u, nil)
}

// errReplayed: the stored resource was written by this very request (its
// Op), sent again; nothing is written and the answer is the resource.
var errReplayed = errors.New("the request was applied before")

func (h *Handler) getUser(w http.ResponseWriter, q *request) {
	id := q.id
	p := q.proj
	if !p.wants(userKind, "groups") {
		u, err := h.store.GetUser(q.r.Context(), q.ws, id)
		if err != nil {
			h.WriteError(w, q.r, mapStoreError(err, "user"))
			return
		}
		h.writeUser(w, q, http.StatusOK, u, nil)
		return
	}
	// The user and its groups in one round trip.
	found, err := h.store.FindUsers(q.r.Context(), q.ws, storage.UserByID, id, storage.FindOptions{Groups: true})
	if err == nil && len(found.Users) == 0 {
		err = storage.ErrNotFound
	}
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "user"))
		return
	}
	us := found.Users
	gs := found.Groups[us[0].ID]
	if gs == nil {
		gs = []storage.GroupRef{}
	}
	h.writeUser(w, q, http.StatusOK, us[0], gs)
}

func transitionEvent(before, after bool) string {
	switch {
	case before && !after:
		return "scim.user.deactivated"
	case !before && after:
		return "scim.user.reactivated"
	}
	return "scim.user.updated"
}

func (h *Handler) replaceUser(w http.ResponseWriter, q *request) {
	id := q.id
	ver, aerr := ifMatch(q.r)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	doc, _, aerr := h.readUserBody(q)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	h.commitUserUpdate(w, q, id, ver, func(u *storage.User) error {
		fresh := explicitView(*u)
		applyUserDoc(&fresh, doc)
		settleRoles(&fresh)
		*u = fresh
		return nil
	})
}

// commitUserUpdate applies mutate through store.UpdateUser (it may run more
// than once, always on the fresh copy), then records the event of the
// active-state transition and answers 200 with the user. A user whose Op
// is this request's was written by it before (sent again after its answer
// was lost): it is answered as it is, without a second change or a 412
// for the version that request already bumped.
func (h *Handler) commitUserUpdate(w http.ResponseWriter, q *request, id string, ver int64, mutate func(*storage.User) error) {
	ctx := q.r.Context()
	var before bool
	u, err := h.store.UpdateUser(ctx, q.ws, id, 0, func(u *storage.User) error {
		if u.Op == q.op {
			return errReplayed
		}
		if ver != 0 && u.Version != ver {
			return storage.ErrPreconditionFailed
		}
		before = u.Active
		if err := mutate(u); err != nil {
			return err
		}
		u.Op = q.op
		return nil
	})
	if errors.Is(err, errReplayed) {
		if u, err = h.store.GetUser(ctx, q.ws, id); err != nil {
			h.WriteError(w, q.r, mapStoreError(err, "user"))
			return
		}
		h.writeUser(w, q, http.StatusOK, u, nil)
		return
	}
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "user"))
		return
	}
	h.event(ctx, q.ws, transitionEvent(before, u.Active), u, nil)
	h.writeUser(w, q, http.StatusOK, u, nil)
}

func (h *Handler) patchUser(w http.ResponseWriter, q *request) {
	id := q.id
	ctx := q.r.Context()
	ver, aerr := ifMatch(q.r)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	raw, aerr := q.writeBody()
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	ops, aerr := h.patcher.parse(ctx, userKind, raw)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	ws, err := h.store.GetWorkspace(ctx, q.ws)
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "workspace"))
		return
	}
	h.commitUserUpdate(w, q, id, ver, func(u *storage.User) error {
		// May run more than once: always start from the fresh copy, with
		// the values the IdP sent as its roles.
		doc := jsonRoundTrip(userDoc(explicitView(*u)))
		var before map[string]any // for applyAppRoles, only when they count
		if ws.Settings.Roles.AppRoles {
			before = jsonRoundTrip(userDoc(explicitView(*u)))
		}
		if aerr := applyOps(userKind, doc, ops); aerr != nil {
			return aerr
		}
		valid, aerr := validateResource(userKind, doc, false)
		if aerr != nil {
			return aerr
		}
		delete(valid, "password")
		if aerr := applyAppRoles(ws.Settings, valid, before); aerr != nil {
			return aerr
		}
		if aerr := checkRoles(ws.Settings, valid); aerr != nil {
			return aerr
		}
		fresh := *u
		fresh.Roles = storage.Roles{} // removed roles fall back to the rules or the default
		applyUserDoc(&fresh, valid)
		settleRoles(&fresh)
		*u = fresh
		return nil
	})
}

func (h *Handler) deleteUser(w http.ResponseWriter, q *request) {
	id := q.id
	ctx := q.r.Context()
	ver, aerr := ifMatch(q.r)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	// Read for the event only; the version check is atomic with the delete.
	u, err := h.store.GetUser(ctx, q.ws, id)
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "user"))
		return
	}
	if err := h.store.DeleteUser(ctx, q.ws, id, ver); err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "user"))
		return
	}
	h.event(ctx, q.ws, "scim.user.deleted", u, nil)
	w.WriteHeader(http.StatusNoContent)
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return deepCopy(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopyValue(x)
		}
		return out
	}
	return v
}
