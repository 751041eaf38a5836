package scimhandlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	fp "github.com/scim2/filter-parser/v2"

	"github.com/scimjit/scimjit/storage"
)

// listParams are the query parameters of RFC 7644 §3.4.2 (GET) and §3.4.3
// (POST .search).
type listParams struct {
	filter     string
	startIndex int
	count      int
	sortBy     string
	sortPath   fp.AttributePath // sortBy parsed, when set
	descending bool
	proj       projection
}

type paramsFunc func(h *Handler, q *request) (listParams, *Error)

func splitAttrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (h *Handler) clampPaging(p *listParams, start, count *int) {
	p.startIndex, p.count = 1, h.cfg.MaxResults
	if start != nil && *start > 1 {
		p.startIndex = *start
	}
	if count != nil {
		p.count = *count
	}
	if p.count > h.cfg.MaxResults {
		p.count = h.cfg.MaxResults
	}
	if p.count < 0 {
		p.count = 0
	}
}

func parseSortOrder(s string) (bool, *Error) {
	switch strings.ToLower(s) {
	case "", "ascending":
		return false, nil
	case "descending":
		return true, nil
	}
	return false, badRequest(typeInvalidValue, `sortOrder must be "ascending" or "descending"`)
}

// listParamsFromQuery reads GET parameters; the library ignores sortBy,
// sortOrder, attributes and excludedAttributes on GET, so all are read here.
func listParamsFromQuery(h *Handler, q *request) (listParams, *Error) {
	v := q.r.URL.Query()
	var p listParams
	intParam := func(name string) (*int, *Error) {
		s := strings.TrimSpace(v.Get(name))
		if s == "" {
			return nil, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, badRequest(typeInvalidValue, name+" must be an integer")
		}
		return &n, nil
	}
	start, aerr := intParam("startIndex")
	if aerr != nil {
		return p, aerr
	}
	count, aerr := intParam("count")
	if aerr != nil {
		return p, aerr
	}
	h.clampPaging(&p, start, count)
	p.filter = strings.TrimSpace(v.Get("filter"))
	if aerr = p.setSortBy(v.Get("sortBy")); aerr != nil {
		return p, aerr
	}
	if p.descending, aerr = parseSortOrder(v.Get("sortOrder")); aerr != nil {
		return p, aerr
	}
	p.proj = q.proj
	return p, nil
}

// setSortBy guards and parses sortBy (once per request).
func (p *listParams) setSortBy(s string) *Error {
	p.sortBy = strings.TrimSpace(s)
	if p.sortBy == "" {
		return nil
	}
	if aerr := sortByLimit.check(p.sortBy); aerr != nil {
		return aerr
	}
	ap, err := fp.ParseAttrPath([]byte(p.sortBy))
	if err != nil {
		return badRequest(typeInvalidValue, "sortBy names an unknown attribute")
	}
	p.sortPath = ap
	return nil
}

// listParamsFromBody reads a SearchRequest (RFC 7644 §3.4.3).
func listParamsFromBody(h *Handler, q *request) (listParams, *Error) {
	var p listParams
	raw, aerr := readBody(q.r)
	if aerr != nil {
		return p, aerr
	}
	var body struct {
		Schemas            []string        `json:"schemas"`
		Attributes         json.RawMessage `json:"attributes"`
		ExcludedAttributes json.RawMessage `json:"excludedAttributes"`
		Filter             string          `json:"filter"`
		SortBy             string          `json:"sortBy"`
		SortOrder          string          `json:"sortOrder"`
		StartIndex         *int            `json:"startIndex"`
		Count              *int            `json:"count"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return p, badRequest(typeInvalidSyntax, "the search request is not valid JSON (startIndex and count must be integers)")
	}
	ok := false
	for _, s := range body.Schemas {
		ok = ok || strings.EqualFold(s, searchURN)
	}
	if !ok {
		return p, badRequest(typeInvalidValue, "schemas must be [\""+searchURN+"\"]")
	}
	h.clampPaging(&p, body.StartIndex, body.Count)
	p.filter = strings.TrimSpace(body.Filter)
	if aerr = p.setSortBy(body.SortBy); aerr != nil {
		return p, aerr
	}
	if p.descending, aerr = parseSortOrder(body.SortOrder); aerr != nil {
		return p, aerr
	}
	attrList := func(raw json.RawMessage) ([]string, *Error) {
		if len(raw) == 0 || string(raw) == "null" {
			return nil, nil
		}
		var list []string
		if json.Unmarshal(raw, &list) == nil {
			return list, nil
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return splitAttrs(s), nil
		}
		return nil, badRequest(typeInvalidSyntax, "attributes must be a list of attribute names")
	}
	attrs, aerr := attrList(body.Attributes)
	if aerr != nil {
		return p, aerr
	}
	excluded, aerr := attrList(body.ExcludedAttributes)
	if aerr != nil {
		return p, aerr
	}
	p.proj, aerr = newProjection(attrs, excluded)
	return p, aerr
}

// projection is attributes / excludedAttributes (RFC 7644 §3.4.2.5).
// id, schemas and meta are always returned.
type projection struct {
	attrs    []attrRef
	excluded []attrRef
}

// attrRef is one name of attributes or excludedAttributes, parsed once per
// request.
type attrRef struct {
	raw    string
	path   fp.AttributePath
	parsed bool // false: not an attribute path (it may still name an extension)
}

// newProjection guards and parses the names of attributes and
// excludedAttributes.
func newProjection(attrs, excluded []string) (projection, *Error) {
	var p projection
	var aerr *Error
	if p.attrs, aerr = parseAttrRefs("attributes", attrs); aerr != nil {
		return p, aerr
	}
	p.excluded, aerr = parseAttrRefs("excludedAttributes", excluded)
	return p, aerr
}

func parseAttrRefs(param string, names []string) ([]attrRef, *Error) {
	if len(names) > maxAttrNames {
		return nil, badRequest(typeInvalidValue, fmt.Sprintf("%s lists %d names; the limit is %d", param, len(names), maxAttrNames))
	}
	var out []attrRef
	for _, n := range names {
		if aerr := attrLimit.check(n); aerr != nil {
			return nil, aerr
		}
		ref := attrRef{raw: n}
		if ap, err := fp.ParseAttrPath([]byte(n)); err == nil {
			ref.path, ref.parsed = ap, true
		}
		out = append(out, ref)
	}
	return out, nil
}

// projectionFromQuery reads attributes and excludedAttributes of the
// query (ServeHTTP, once per request).
func projectionFromQuery(r *http.Request) (projection, *Error) {
	v := r.URL.Query()
	return newProjection(splitAttrs(v.Get("attributes")), splitAttrs(v.Get("excludedAttributes")))
}

// none reports whether the projection keeps every attribute as it is.
func (p projection) none() bool { return len(p.attrs) == 0 && len(p.excluded) == 0 }

// wants reports whether a top-level core attribute survives the projection
// (used to skip loading a user's groups).
func (p projection) wants(k *resourceKind, name string) bool {
	doc := p.apply(k, map[string]any{name: true})
	_, ok := doc[name]
	return ok
}

// target is one attribute named in a projection.
type target struct {
	ext  string // extension URN ("" = core)
	name string // "" = the whole extension
	sub  string
}

// target resolves the name against k; ok is false for a name k does not
// have (it is ignored).
func (a attrRef) target(k *resourceKind) (target, bool) {
	if urn, ok := k.isExtURN(a.raw); ok {
		return target{ext: urn}, true
	}
	if !a.parsed {
		return target{}, false
	}
	r, err := scope{kind: k}.resolve(a.path)
	if err != nil {
		return target{}, false
	}
	t := target{ext: r.ext, name: r.attr.Name()}
	if r.sub != nil {
		t.sub = r.sub.Name()
	}
	return t, true
}

func (p projection) apply(k *resourceKind, doc map[string]any) map[string]any {
	if len(p.attrs) == 0 && len(p.excluded) == 0 {
		return doc
	}
	always := map[string]bool{"id": true, "schemas": true, "meta": true}
	var out map[string]any
	if len(p.attrs) > 0 {
		out = map[string]any{}
		for key := range always {
			if v, ok := doc[key]; ok {
				out[key] = v
			}
		}
		for _, a := range p.attrs {
			t, ok := a.target(k)
			if !ok {
				continue
			}
			src, dst := doc, out
			if t.ext != "" {
				em, _ := doc[t.ext].(map[string]any)
				if em == nil {
					continue
				}
				if t.name == "" {
					out[t.ext] = em
					continue
				}
				d, _ := out[t.ext].(map[string]any)
				if d == nil {
					d = map[string]any{}
					out[t.ext] = d
				}
				src, dst = em, d
			}
			v, ok := src[t.name]
			if !ok {
				continue
			}
			if t.sub == "" {
				dst[t.name] = v
				continue
			}
			dst[t.name] = pickSub(v, dst[t.name], t.sub)
		}
	} else {
		out = deepCopy(doc)
	}
	for _, a := range p.excluded {
		t, ok := a.target(k)
		if !ok || (t.ext == "" && always[t.name]) {
			continue
		}
		container := out
		if t.ext != "" {
			if t.name == "" {
				delete(out, t.ext)
				continue
			}
			container, _ = out[t.ext].(map[string]any)
			if container == nil {
				continue
			}
		}
		if t.sub == "" {
			delete(container, t.name)
			continue
		}
		switch v := container[t.name].(type) {
		case map[string]any:
			delete(v, t.sub)
		case []any:
			for _, el := range v {
				if m, ok := el.(map[string]any); ok {
					delete(m, t.sub)
				}
			}
		}
	}
	// schemas lists only the extensions still present.
	if _, ok := out["schemas"]; ok {
		schemas := []any{k.core.ID}
		for _, e := range k.exts {
			if _, ok := out[e.ID]; ok {
				schemas = append(schemas, e.ID)
			}
		}
		out["schemas"] = schemas
	}
	return out
}

// pickSub copies one sub-attribute of a complex (or multi-valued complex)
// value, merging with what was already picked.
func pickSub(v, have any, sub string) any {
	switch v := v.(type) {
	case map[string]any:
		d, _ := have.(map[string]any)
		if d == nil {
			d = map[string]any{}
		}
		if sv, ok := v[sub]; ok {
			d[sub] = sv
		}
		return d
	case []any:
		prev, _ := have.([]any)
		out := make([]any, len(v))
		for i, el := range v {
			var h any
			if i < len(prev) {
				h = prev[i]
			}
			out[i] = pickSub(el, h, sub)
		}
		return out
	}
	return v
}

// item is one resource of a result set.
type item struct {
	kind    *resourceKind
	id      string
	created time.Time
	doc     map[string]any
	user    *storage.User
	// direct: a user rendered by appendUser (request.renderOnly). doc
	// then holds just the typed attributes a filter can match on, and the
	// response is written from user and groups by appendUser.
	direct bool
	groups []storage.GroupRef // direct only; nil = not loaded
}

// scanBatch is the page size used when a filter has to be evaluated on
// every resource of the workspace.
const scanBatch = 500

// matchAll hands every resource of kind k matching expr (nil = all) to
// rp, in creation order. Index-backed filters fetch candidates by index;
// others scan the ordered list in batches of scanBatch, so that no more
// than one batch and rp's page are in memory. Between store calls it
// stops with ctx's error once the client is gone or the deadline passed.
func (h *Handler) matchAll(ctx context.Context, q *request, k *resourceKind, expr fp.Expression, rp *resultPage) error {
	needGroups := k == userKind && expr != nil && refersTo(expr, "groups")
	keep := func(batch []item) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var ids []string
		if needGroups {
			for _, it := range batch {
				if _, ok := it.doc["groups"]; !ok {
					ids = append(ids, it.id)
				}
			}
		}
		if len(ids) > 0 {
			// One storage call for the whole batch.
			refs, err := h.store.UserGroups(ctx, q.ws, ids)
			if err != nil {
				return err
			}
			for i := range batch {
				if _, ok := batch[i].doc["groups"]; ok {
					continue
				}
				gs := refs[batch[i].id]
				if gs == nil {
					gs = []storage.GroupRef{}
				}
				batch[i].doc["groups"] = groupsValue(q.base, gs)
			}
		}
		for _, it := range batch {
			if expr == nil || safeMatch(k, expr, it.doc) {
				rp.add(it)
			}
		}
		return nil
	}
	if expr != nil {
		if keys, ok := planLookups(k, expr); ok {
			found, err := h.lookup(ctx, q, k, keys, expr)
			if err != nil {
				return err
			}
			return keep(found)
		}
	}
	for offset := 0; ; offset += scanBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, total, err := h.page(ctx, q, k, offset, scanBatch)
		if err != nil {
			return err
		}
		if err := keep(batch); err != nil {
			return err
		}
		if len(batch) == 0 || offset+len(batch) >= total {
			return nil
		}
	}
}

// safeMatch evaluates without letting odd stored data crash the request.
func safeMatch(k *resourceKind, expr fp.Expression, doc map[string]any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return matches(scope{kind: k}, expr, doc)
}

// typedDoc holds the attributes typedOnly filters compare, as renderUser
// writes them.
func typedDoc(u storage.User) map[string]any {
	doc := map[string]any{"id": u.ID, "userName": u.UserName, "active": u.Active}
	if u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	return doc
}

func (h *Handler) userItem(q *request, u storage.User) item {
	return item{kind: userKind, id: u.ID, created: u.Created, doc: renderUser(q.base, u, nil), user: &u}
}

func groupItem(q *request, g storage.Group) item {
	return item{kind: groupKind, id: g.ID, created: g.Created, doc: renderGroup(q.base, g)}
}

// page returns resources [offset, offset+limit) in creation order and the
// total count (one ordered-index read; cost independent of offset).
func (h *Handler) page(ctx context.Context, q *request, k *resourceKind, offset, limit int) ([]item, int, error) {
	var out []item
	if k == userKind {
		us, total, err := h.store.ListUsers(ctx, q.ws, offset, limit)
		if err != nil {
			return nil, 0, err
		}
		for _, u := range us {
			out = append(out, h.userItem(q, u))
		}
		return out, total, nil
	}
	gs, total, err := h.store.ListGroups(ctx, q.ws, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	for _, g := range gs {
		out = append(out, groupItem(q, g))
	}
	return out, total, nil
}

// lookup fetches the union of index lookups, de-duplicated, in creation
// order.
func (h *Handler) lookup(ctx context.Context, q *request, k *resourceKind, keys []lookupKey, expr fp.Expression) ([]item, error) {
	seen := map[string]bool{}
	var out []item
	add := func(it item) {
		if !seen[it.id] {
			seen[it.id] = true
			out = append(out, it)
		}
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if k == userKind {
			var by storage.UserIndex
			switch key.by {
			case "id":
				by = storage.UserByID
			case "userName":
				by = storage.UserByUserName
			case "externalId":
				by = storage.UserByExternalID
			case "email":
				by, key.value = storage.UserByEmail, strings.ToLower(key.value)
			default:
				continue
			}
			// The users, and their groups when shown or filtered on, in
			// one round trip.
			found, err := h.store.FindUsers(ctx, q.ws, by, key.value,
				storage.FindOptions{Groups: q.wantGroups || refersTo(expr, "groups")})
			if err != nil {
				return nil, err
			}
			refs := found.Groups
			for _, u := range found.Users {
				if q.renderOnly {
					it := item{kind: userKind, id: u.ID, created: u.Created, doc: typedDoc(u), user: &u, direct: true}
					if refs != nil {
						if it.groups = refs[u.ID]; it.groups == nil {
							it.groups = []storage.GroupRef{}
						}
					}
					add(it)
					continue
				}
				it := h.userItem(q, u)
				if refs != nil {
					gs := refs[u.ID]
					if gs == nil {
						gs = []storage.GroupRef{}
					}
					it.doc["groups"] = groupsValue(q.base, gs)
				}
				add(it)
			}
			continue
		}
		var gs []storage.Group
		var err error
		switch key.by {
		case "id":
			var g storage.Group
			g, err = h.store.GetGroup(ctx, q.ws, key.value)
			if err == nil {
				gs = []storage.Group{g}
			} else if isNotFound(err) {
				err = nil
			}
		case "displayName":
			gs, err = h.store.FindGroups(ctx, q.ws, storage.GroupByName, key.value)
		case "externalId":
			gs, err = h.store.FindGroups(ctx, q.ws, storage.GroupByExternal, key.value)
		case "member":
			gs, err = h.store.FindGroups(ctx, q.ws, storage.GroupByMember, key.value)
		}
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			add(groupItem(q, g))
		}
	}
	if len(keys) > 1 {
		sortByCreation(out)
	}
	return out, nil
}

func sortByCreation(items []item) {
	sort.SliceStable(items, func(i, j int) bool {
		if !items[i].created.Equal(items[j].created) {
			return items[i].created.Before(items[j].created)
		}
		return items[i].id < items[j].id
	})
}

// validSortBy reports whether sortBy resolves against one of kinds.
func validSortBy(ap fp.AttributePath, kinds ...*resourceKind) bool {
	for _, k := range kinds {
		if _, err := (scope{kind: k}).resolve(ap); err == nil {
			return true
		}
	}
	return false
}

// finish loads users' groups when the projection keeps them (one
// storage call for the whole page), applies the projection and writes the
// ListResponse.
func (h *Handler) finish(w http.ResponseWriter, q *request, items []item, total int, p listParams) {
	if p.proj.wants(userKind, "groups") {
		// Users rendered without their groups (a page read without them).
		var need []*item
		var ids []string
		for i := range items {
			it := &items[i]
			if it.kind != userKind || it.user == nil {
				continue
			}
			if _, ok := it.doc["groups"]; ok || it.groups != nil {
				continue
			}
			need = append(need, it)
			ids = append(ids, it.id)
		}
		if len(ids) > 0 {
			refs, err := h.store.UserGroups(q.r.Context(), q.ws, ids)
			if err != nil {
				h.WriteError(w, q.r, mapStoreError(err, "user"))
				return
			}
			for _, it := range need {
				gs := refs[it.id]
				if gs == nil {
					gs = []storage.GroupRef{}
				}
				if it.direct {
					it.groups = gs
					continue
				}
				it.doc["groups"] = groupsValue(q.base, gs)
			}
		}
	}
	res := make([]any, 0, len(items))
	for _, it := range items {
		if it.direct {
			// renderOnly: no projection to apply.
			raw, err := appendUser(make([]byte, 0, 1024), q.base, it.user, it.groups)
			if err != nil {
				h.WriteError(w, q.r, &Error{Status: http.StatusInternalServerError, Detail: "internal error",
					cause: fmt.Errorf("encode user: %w", err)})
				return
			}
			res = append(res, rawJSON(raw))
			continue
		}
		doc := p.proj.apply(it.kind, it.doc)
		if it.user != nil {
			doc = presentUser(doc, it.user)
		}
		res = append(res, doc)
	}
	h.writeJSON(w, http.StatusOK, listBody(res, total, p.startIndex))
}

// list serves GET /Users, GET /Groups and their POST /.search.
func (h *Handler) list(w http.ResponseWriter, q *request, k *resourceKind, pf paramsFunc) {
	ctx := q.r.Context()
	p, aerr := pf(h, q)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	q.wantGroups = k == userKind && p.proj.wants(userKind, "groups")
	var expr fp.Expression
	if p.filter != "" {
		if expr, aerr = parseFilter(p.filter, k); aerr != nil {
			h.WriteError(w, q.r, aerr)
			return
		}
	}
	// Found users are only rendered when nothing but typed fields is
	// filtered on and nothing is projected or sorted.
	q.renderOnly = k == userKind && expr != nil && p.proj.none() && p.sortBy == "" && typedOnly(expr)
	if p.sortBy != "" && !validSortBy(p.sortPath, k) {
		h.WriteError(w, q.r, badRequest(typeInvalidValue, "sortBy names an unknown attribute"))
		return
	}
	if expr == nil && p.sortBy == "" {
		// Plain paging: one ordered-index read, whatever startIndex is.
		limit := p.count
		if limit == 0 {
			limit = 1
		}
		items, total, err := h.page(ctx, q, k, p.startIndex-1, limit)
		if err != nil {
			h.WriteError(w, q.r, mapStoreError(err, strings.ToLower(k.name)))
			return
		}
		if p.count == 0 {
			items = nil
		}
		h.finish(w, q, items, total, p)
		return
	}
	rp, aerr := newResultPage(p)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	if err := h.matchAll(ctx, q, k, expr, rp); err != nil {
		h.WriteError(w, q.r, mapStoreError(err, strings.ToLower(k.name)))
		return
	}
	h.finish(w, q, rp.page(), rp.total, p)
}

// listRoot serves GET / and POST /.search across Users and Groups (RFC
// 7644 §3.4.2.1): users first, then groups.
func (h *Handler) listRoot(w http.ResponseWriter, q *request, pf paramsFunc) {
	ctx := q.r.Context()
	p, aerr := pf(h, q)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	q.wantGroups = p.proj.wants(userKind, "groups")
	kinds := []*resourceKind{userKind, groupKind}
	exprs := map[*resourceKind]fp.Expression{}
	if p.filter != "" {
		var first *Error
		for _, k := range kinds {
			e, aerr := parseFilter(p.filter, k)
			if aerr != nil {
				if first == nil {
					first = aerr
				}
				continue
			}
			exprs[k] = e
		}
		if len(exprs) == 0 {
			h.WriteError(w, q.r, first)
			return
		}
	}
	if p.sortBy != "" && !validSortBy(p.sortPath, kinds...) {
		h.WriteError(w, q.r, badRequest(typeInvalidValue, "sortBy names an unknown attribute"))
		return
	}
	if p.filter == "" && p.sortBy == "" {
		_, totalU, err := h.page(ctx, q, userKind, 0, 1)
		if err != nil {
			h.WriteError(w, q.r, mapStoreError(err, "user"))
			return
		}
		_, totalG, err := h.page(ctx, q, groupKind, 0, 1)
		if err != nil {
			h.WriteError(w, q.r, mapStoreError(err, "group"))
			return
		}
		from, want := p.startIndex-1, p.count
		var items []item
		if from < totalU && want > 0 {
			us, _, err := h.page(ctx, q, userKind, from, want)
			if err != nil {
				h.WriteError(w, q.r, mapStoreError(err, "user"))
				return
			}
			items = append(items, us...)
		}
		if rest := want - len(items); rest > 0 {
			gFrom := from - totalU
			if gFrom < 0 {
				gFrom = 0
			}
			if gFrom < totalG {
				gs, _, err := h.page(ctx, q, groupKind, gFrom, rest)
				if err != nil {
					h.WriteError(w, q.r, mapStoreError(err, "group"))
					return
				}
				items = append(items, gs...)
			}
		}
		h.finish(w, q, items, totalU+totalG, p)
		return
	}
	rp, aerr := newResultPage(p)
	if aerr != nil {
		h.WriteError(w, q.r, aerr)
		return
	}
	for _, k := range kinds {
		e, ok := exprs[k]
		if p.filter != "" && !ok {
			continue
		}
		if err := h.matchAll(ctx, q, k, e, rp); err != nil {
			h.WriteError(w, q.r, mapStoreError(err, strings.ToLower(k.name)))
			return
		}
	}
	h.finish(w, q, rp.page(), rp.total, p)
}
