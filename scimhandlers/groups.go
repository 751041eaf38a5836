package scimhandlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	fp "github.com/scim2/filter-parser/v2"

	"github.com/scimjit/scimjit/storage"
)

// renderGroup builds the SCIM representation of g (RFC 7643 §4.2).
// Members carry value, $ref and type; display is left out (it would cost
// one lookup per member).
func renderGroup(base string, g storage.Group) map[string]any {
	doc := deepCopy(g.Attributes)
	for _, k := range []string{"id", "meta", "schemas", "displayName", "externalId", "members"} {
		delete(doc, k)
	}
	doc["id"] = g.ID
	doc["schemas"] = []any{groupURN}
	doc["displayName"] = g.DisplayName
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	members := make([]string, len(g.Members))
	copy(members, g.Members)
	sort.Strings(members)
	list := []any{}
	for _, m := range members {
		list = append(list, map[string]any{"value": m, "$ref": base + "/Users/" + m, "type": "User"})
	}
	doc["members"] = list
	doc["meta"] = map[string]any{
		"resourceType": "Group",
		"created":      fmtTime(g.Created),
		"lastModified": fmtTime(g.Modified),
		"location":     base + "/Groups/" + g.ID,
		"version":      etag(g.Version),
	}
	return doc
}

func (h *Handler) writeGroup(w http.ResponseWriter, q *request, status int, g storage.Group) {
	body := q.proj.apply(groupKind, renderGroup(q.base, g))
	w.Header().Set("ETag", etag(g.Version))
	if status == http.StatusCreated {
		w.Header().Set("Location", q.base+"/Groups/"+g.ID)
	}
	h.writeJSON(w, status, body)
}

// groupEvent is the event of a SCIM write of group id, which the store
// appends with the write itself.
func groupEvent(typ, id string) storage.Event {
	return storage.Event{Type: typ, Actor: "scim", Detail: map[string]string{"group": id}}
}

// groupChangeEvents are the events of a PATCH of group id: members the
// change adds (scim.group.member_added) and removes
// (scim.group.member_removed), their ids space-separated in Detail
// "members", and scim.group.updated when it changes anything else (or
// nothing at all).
func groupChangeEvents(id string, ch storage.GroupChange) []storage.Event {
	var evs []storage.Event
	other := ch.DisplayName != nil || ch.ExternalID != nil || ch.Attributes != nil || ch.ReplaceMembers != nil
	if other || len(ch.AddMembers) == 0 && len(ch.RemoveMembers) == 0 {
		evs = append(evs, groupEvent("scim.group.updated", id))
	}
	for _, m := range []struct {
		typ string
		ids []string
	}{{"scim.group.member_added", ch.AddMembers}, {"scim.group.member_removed", ch.RemoveMembers}} {
		if len(m.ids) > 0 {
			e := groupEvent(m.typ, id)
			e.Detail["members"] = strings.Join(m.ids, " ")
			evs = append(evs, e)
		}
	}
	return evs
}

// groupFields are the parts of a validated group document.
type groupFields struct {
	displayName string
	externalID  string
	members     []string
	attrs       map[string]any
}

func splitGroupDoc(doc map[string]any) groupFields {
	var f groupFields
	f.displayName, _ = doc["displayName"].(string)
	f.externalID, _ = doc["externalId"].(string)
	f.members = memberIDs(doc["members"])
	f.attrs = map[string]any{}
	for k, v := range doc {
		switch k {
		case "displayName", "externalId", "members", "id", "meta", "schemas":
		default:
			f.attrs[k] = v
		}
	}
	return f
}

// memberIDs returns the distinct "value"s of a members list.
func memberIDs(v any) []string {
	list, _ := v.([]any)
	seen := map[string]bool{}
	out := []string{}
	for _, el := range list {
		m, _ := el.(map[string]any)
		id, _ := m["value"].(string)
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (h *Handler) readGroupBody(q *request) (groupFields, *Error) {
	raw, aerr := q.writeBody()
	if aerr != nil {
		return groupFields{}, aerr
	}
	m, aerr := decodeObject(raw)
	if aerr != nil {
		return groupFields{}, aerr
	}
	doc, aerr := validateResource(groupKind, m, true)
	if aerr != nil {
		return groupFields{}, aerr
	}
	f := splitGroupDoc(doc)
	if strings.TrimSpace(f.displayName) == "" {
		return groupFields{}, badRequest(typeInvalidValue, "displayName is required")
	}
	return f, nil
}

func (h *Handler) createGroup(w http.ResponseWriter, q *request) {
	ctx := q.r.Context()
	f, aerr := h.readGroupBody(q)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	id := storage.NewID()
	g, err := h.store.CreateGroup(ctx, q.ws, storage.Group{
		ID: id, WorkspaceID: q.ws, DisplayName: f.displayName, ExternalID: f.externalID,
		Members: f.members, Attributes: f.attrs, Op: q.op,
	}, groupEvent("scim.group.created", id))
	var ce *storage.ConflictError
	if errors.As(err, &ce) && ce.Field == "displayName" {
		// This very request, sent again after its answer was lost?
		found, ferr := h.store.FindGroups(ctx, q.ws, storage.GroupByName, f.displayName)
		if ferr == nil && len(found) == 1 && found[0].Op == q.op {
			h.writeGroup(w, q, http.StatusCreated, found[0])
			return
		}
		if ferr == nil && len(found) == 1 {
			h.WriteError(w, q.r, &Error{Status: http.StatusConflict, ScimType: typeUniqueness, cause: err,
				Detail: fmt.Sprintf("displayName %q is already in use in this workspace, by group %s",
					clip(found[0].DisplayName), found[0].ID)})
			return
		}
	}
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "group"))
		return
	}
	h.writeGroup(w, q, http.StatusCreated, g)
}

func (h *Handler) getGroup(w http.ResponseWriter, q *request) {
	id := q.id
	g, err := h.store.GetGroup(q.r.Context(), q.ws, id)
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "group"))
		return
	}
	h.writeGroup(w, q, http.StatusOK, g)
}

func (h *Handler) replaceGroup(w http.ResponseWriter, q *request) {
	id := q.id
	ctx := q.r.Context()
	ver, aerr := ifMatch(q.r)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	f, aerr := h.readGroupBody(q)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	members := f.members
	g, err := h.store.ChangeGroup(ctx, q.ws, id, storage.GroupChange{
		IfVersion: ver, DisplayName: &f.displayName, ExternalID: &f.externalID,
		Attributes: f.attrs, ReplaceMembers: &members,
		Op: q.op, Events: []storage.Event{groupEvent("scim.group.updated", id)},
	})
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "group"))
		return
	}
	h.writeGroup(w, q, http.StatusOK, g)
}

// memberDelta composes a sequence of member operations into one
// GroupChange with the same end result (storage applies Replace, then
// Remove, then Add). Each step costs O(1) per id.
type memberDelta struct {
	replace *idSet // nil: no replace
	remove  idSet
	add     idSet
}

func (d *memberDelta) doReplace(ids []string) {
	d.replace, d.remove, d.add = &idSet{}, idSet{}, idSet{}
	for _, id := range ids {
		d.replace.put(id)
	}
}

func (d *memberDelta) doRemove(ids []string) {
	for _, id := range ids {
		d.add.drop(id)
		if d.replace != nil {
			d.replace.drop(id)
		} else {
			d.remove.put(id)
		}
	}
}

func (d *memberDelta) doAdd(ids []string) {
	for _, id := range ids {
		d.remove.drop(id)
		if d.replace != nil {
			d.replace.put(id)
		} else {
			d.add.put(id)
		}
	}
}

// change returns the delta as GroupChange fields.
func (d *memberDelta) change() (replace *[]string, remove, add []string) {
	if d.replace != nil {
		r := d.replace.list()
		if r == nil {
			r = []string{}
		}
		replace = &r
	}
	return replace, d.remove.list(), d.add.list()
}

// idSet is a set of ids that keeps the order in which they were put.
type idSet struct {
	ids []string
	at  map[string]int // index in ids of each id in the set
}

func (s *idSet) put(id string) {
	if _, ok := s.at[id]; ok {
		return
	}
	if s.at == nil {
		s.at = map[string]int{}
	}
	s.at[id] = len(s.ids)
	s.ids = append(s.ids, id)
}

// drop removes id; its slot in ids stays and list skips it.
func (s *idSet) drop(id string) { delete(s.at, id) }

func (s *idSet) list() []string {
	var out []string
	for i, id := range s.ids {
		if at, ok := s.at[id]; ok && at == i {
			out = append(out, id)
		}
	}
	return out
}

// groupChangeFromOps turns PATCH operations into an atomic GroupChange.
// Member changes become deltas so that concurrent PATCHes never lose each
// other (R15). current is needed only for member removal by a filter
// other than an or-chain of `value eq`; it is loaded lazily. All member
// values the operations name count against maxMembersPerRequest.
func groupChangeFromOps(ctx context.Context, ops []patchOp, current func() (storage.Group, error)) (storage.GroupChange, *Error) {
	b := groupChange{current: current}
	for _, o := range ops {
		if aerr := b.apply(ctx, o); aerr != nil {
			return b.ch, aerr
		}
	}
	b.ch.ReplaceMembers, b.ch.RemoveMembers, b.ch.AddMembers = b.d.change()
	return b.ch, nil
}

// groupChange is the state of groupChangeFromOps.
type groupChange struct {
	current func() (storage.Group, error)
	ch      storage.GroupChange
	d       memberDelta
	named   int // member values named so far
}

// name counts n more member values named by the request.
func (b *groupChange) name(n int) *Error {
	if b.named += n; b.named > maxMembersPerRequest {
		return badRequest(typeInvalidValue, fmt.Sprintf("the request names %d or more members; the limit is %d", b.named, maxMembersPerRequest))
	}
	return nil
}

func (b *groupChange) apply(ctx context.Context, o patchOp) *Error {
	if o.path == nil {
		vm, _ := o.value.(map[string]any)
		for key, v := range vm {
			p, err := fp.ParsePath([]byte(key))
			if err != nil {
				return badRequest(typeInvalidPath, "invalid attribute "+key)
			}
			if aerr := b.apply(ctx, patchOp{op: o.op, path: &p, value: v}); aerr != nil {
				return aerr
			}
		}
		return nil
	}
	r, err := scope{kind: groupKind}.resolve(o.path.AttributePath)
	if err != nil {
		return badRequest(typeInvalidPath, "invalid path: "+err.Error())
	}
	switch r.attr.Name() {
	case "id", "meta":
		return nil // Okta sends id with a rename; it cannot change.
	case "displayName":
		if o.op == "remove" {
			return badRequest(typeInvalidValue, "displayName is required and cannot be removed")
		}
		s, _ := o.value.(string)
		if strings.TrimSpace(s) == "" {
			return badRequest(typeInvalidValue, "displayName must not be empty")
		}
		b.ch.DisplayName = &s
	case "externalId":
		s := ""
		if o.op != "remove" {
			s, _ = o.value.(string)
		}
		b.ch.ExternalID = &s
	case "members":
		if o.path.ValueExpression != nil {
			if o.op != "remove" {
				return badRequest(typeInvalidPath, "members[...] is only supported with remove")
			}
			ids, ok := valueEqs(o.path.ValueExpression, nil)
			if !ok {
				var aerr *Error
				if ids, aerr = b.matchingMembers(ctx, scope{subs: r.attr.SubAttributes()}, o.path.ValueExpression); aerr != nil {
					return aerr
				}
			} else if aerr := b.name(len(ids)); aerr != nil {
				return aerr
			}
			b.d.doRemove(ids)
			return nil
		}
		list, _ := o.value.([]any)
		if aerr := b.name(len(list)); aerr != nil {
			return aerr
		}
		ids := memberIDs(list)
		switch o.op {
		case "add":
			b.d.doAdd(ids)
		case "replace":
			b.d.doReplace(ids)
		case "remove":
			if o.value != nil {
				b.d.doRemove(ids) // Entra: removes only the listed members
			} else {
				b.d.doReplace(nil)
			}
		}
	default:
		return badRequest(typeInvalidPath, "only displayName, externalId and members can be changed on a group")
	}
	return nil
}

// matchingMembers returns the group's current members that filter
// matches, each seen as {"value": id, "type": "User"}. A big group takes a
// while: it stops once ctx is done.
func (b *groupChange) matchingMembers(ctx context.Context, inner scope, filter fp.Expression) ([]string, *Error) {
	g, err := b.current()
	if err != nil {
		return nil, mapStoreError(err, "group")
	}
	var ids []string
	doc := map[string]any{"type": "User"}
	for i, m := range g.Members {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, mapStoreError(ctx.Err(), "group")
		}
		doc["value"] = m
		if matches(inner, filter, doc) {
			ids = append(ids, m)
		}
	}
	return ids, nil
}

// valueEqs returns the values of a filter that is `value eq "x"` or an
// or-chain of them (Okta's and Entra's member removal), appended to ids:
// the members it matches are exactly those ids, without reading the group.
func valueEqs(e fp.Expression, ids []string) ([]string, bool) {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		v, ok := valueEq(e)
		return append(ids, v), ok
	case *fp.LogicalExpression:
		if e.Operator != fp.OR {
			return nil, false
		}
		ids, ok := valueEqs(e.Left, ids)
		if !ok {
			return nil, false
		}
		return valueEqs(e.Right, ids)
	}
	return nil, false
}

func (h *Handler) patchGroup(w http.ResponseWriter, q *request) {
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
	ops, aerr := h.patcher.parse(ctx, groupKind, raw)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	var cur *storage.Group // read at most once, by the first filter that needs the members
	ch, aerr := groupChangeFromOps(ctx, ops, func() (storage.Group, error) {
		if cur == nil {
			g, err := h.store.GetGroup(ctx, q.ws, id)
			if err != nil {
				return g, err
			}
			cur = &g
		}
		return *cur, nil
	})
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	ch.IfVersion = ver
	// A response without members (excludedAttributes=members, or
	// attributes not naming it) does not read them at all.
	ch.OmitMembers = !q.proj.wants(groupKind, "members")
	// Sent again after its answer was lost, the change is recognised by
	// its op and not applied twice (nor its event recorded twice).
	ch.Op, ch.Events = q.op, groupChangeEvents(id, ch)
	g, err := h.store.ChangeGroup(ctx, q.ws, id, ch)
	if err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "group"))
		return
	}
	h.writeGroup(w, q, http.StatusOK, g)
}

func (h *Handler) deleteGroup(w http.ResponseWriter, q *request) {
	id := q.id
	ctx := q.r.Context()
	ver, aerr := ifMatch(q.r)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	// The event is appended with the delete, which re-evaluates the
	// members' roles in the same step; the version check is atomic with it.
	if err := h.store.DeleteGroup(ctx, q.ws, id, ver, groupEvent("scim.group.deleted", id)); err != nil {
		h.WriteError(w, q.r, mapStoreError(err, "group"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
