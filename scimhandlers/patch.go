package scimhandlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	"github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
	fp "github.com/scim2/filter-parser/v2"
)

// patchOp is one validated PATCH operation (RFC 7644 §3.5.2): op is lower
// case, path is nil for a path-less add/replace, value is sanitised to the
// target attribute's type by the library.
type patchOp struct {
	op    string
	path  *fp.Path
	value any
}

// patchParser validates PATCH bodies with elimity-com/scim. The library
// keeps its PATCH validator internal and only runs it inside its router,
// so a private scim.Server per resource type is used as a parser: its
// Patch callback captures the operations and nothing is written anywhere.
type patchParser struct {
	servers map[*resourceKind]scim.Server
}

type captureKey struct{}

type capture struct{ ops []scim.PatchOperation }

type captureHandler struct{}

func (captureHandler) Patch(r *http.Request, _ string, ops []scim.PatchOperation) (scim.Resource, error) {
	if c, ok := r.Context().Value(captureKey{}).(*capture); ok {
		c.ops = ops
	}
	return scim.Resource{}, nil
}

var errUnused = fmt.Errorf("unused")

func (captureHandler) Create(*http.Request, scim.ResourceAttributes) (scim.Resource, error) {
	return scim.Resource{}, errUnused
}
func (captureHandler) Get(*http.Request, string) (scim.Resource, error) {
	return scim.Resource{}, errUnused
}
func (captureHandler) GetAll(*http.Request, scim.ListRequestParams) (scim.Page, error) {
	return scim.Page{}, errUnused
}
func (captureHandler) Replace(*http.Request, string, scim.ResourceAttributes) (scim.Resource, error) {
	return scim.Resource{}, errUnused
}
func (captureHandler) Delete(*http.Request, string) error { return errUnused }

func newPatchParser() patchParser {
	allowStringValues()
	p := patchParser{servers: map[*resourceKind]scim.Server{}}
	for _, k := range []*resourceKind{userKind, groupKind} {
		var exts []scim.SchemaExtension
		for _, e := range k.exts {
			exts = append(exts, scim.SchemaExtension{Schema: e})
		}
		srv, err := scim.NewServer(&scim.ServerArgs{
			ServiceProviderConfig: &scim.ServiceProviderConfig{SupportPatch: true},
			ResourceTypes: []scim.ResourceType{{
				ID: optional.NewString(k.name), Name: k.name, Endpoint: "/" + k.endpoint,
				Schema: k.core, SchemaExtensions: exts, Handler: captureHandler{},
			}},
		})
		if err != nil {
			panic(fmt.Sprintf("scimhandlers: build patch parser: %v", err))
		}
		p.servers[k] = srv
	}
	return p
}

// parse validates a raw PATCH body after normalising the IdP quirks the
// library rejects.
func (p patchParser) parse(ctx context.Context, k *resourceKind, body []byte) ([]patchOp, *Error) {
	body, filters, aerr := normalizePatchBody(k, body)
	if aerr != nil {
		return nil, aerr
	}
	c := &capture{}
	req := httptest.NewRequestWithContext(context.WithValue(ctx, captureKey{}, c),
		http.MethodPatch, "/"+k.endpoint+"/x", bytes.NewReader(body))
	rec := httptest.NewRecorder()
	p.servers[k].ServeHTTP(rec, req)
	if c.ops == nil {
		// The library answered with its own (public, generic) error body.
		var eb struct {
			ScimType string
			Detail   string
			Status   string
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &eb)
		st, _ := strconv.Atoi(eb.Status)
		if st < 400 || st >= 500 {
			st = http.StatusBadRequest
		}
		detail := "invalid PATCH request"
		switch eb.ScimType {
		case typeInvalidPath:
			detail = "the PATCH path is invalid or names an unknown attribute"
		case typeInvalidValue:
			detail = "invalid PATCH request: schemas must be [\"" + patchURN + "\"], Operations must be non-empty, and each op's value must fit its attribute"
		case typeNoTarget:
			detail = "a remove operation needs a path"
		case typeInvalidSyntax:
			detail = "the PATCH body is not valid JSON"
		case typeMutability:
			detail = "the PATCH changes an immutable attribute"
		}
		return nil, &Error{Status: st, ScimType: eb.ScimType, Detail: detail}
	}
	ops := make([]patchOp, len(c.ops))
	for i, o := range c.ops {
		ops[i] = patchOp{op: o.Op, path: o.Path, value: o.Value}
		if o.Path != nil && i < len(filters) && filters[i] != nil {
			o.Path.ValueExpression = filters[i]
		}
	}
	return ops, nil
}

// valuePathFilter parses the value filter of a PATCH path such as
// `members[value eq "a" or value eq "b" or value eq "c"]` or
// `emails[type eq "work"].value` with the full filter grammar (RFC 7644
// §3.5.2 allows any filter there), resolved against the attribute's
// sub-attributes. The library's own grammar for value filters takes at most
// two comparisons and no parentheses, so the path the library validates
// gets a placeholder filter instead (`attr[sub pr]`, which it accepts for
// every complex attribute and which keeps its handling of the value) and
// the parsed filter replaces it afterwards. It returns a nil expression for
// a path without a value filter, and for one whose attribute does not
// resolve to a complex attribute: the library refuses those.
func valuePathFilter(k *resourceKind, path string) (expr fp.Expression, placeholder string, aerr *Error) {
	attr, filter, sub, ok := splitValuePath(path)
	if !ok {
		return nil, "", nil
	}
	ap, err := fp.ParseAttrPath([]byte(attr))
	if err != nil {
		return nil, "", nil
	}
	r, err := scope{kind: k}.resolve(ap)
	if err != nil || r.sub != nil || !r.attr.HasSubAttributes() {
		return nil, "", nil
	}
	if expr, err = fp.ParseFilter([]byte(filter)); err != nil {
		return nil, "", badRequest(typeInvalidPath, "the value filter of the PATCH path is not valid RFC 7644 filter syntax")
	}
	unescapeStrings(expr)
	subs := r.attr.SubAttributes()
	if err := validateExpr(scope{subs: subs}, expr); err != nil {
		return nil, "", badRequest(typeInvalidPath, "invalid value filter in the PATCH path: "+err.Error())
	}
	return expr, attr + "[" + subs[0].Name() + " pr]" + sub, nil
}

// splitValuePath splits `attr[filter]` or `attr[filter].sub` at its outer
// brackets (brackets inside the filter's string literals do not count);
// ok is false for any other shape.
func splitValuePath(path string) (attr, filter, sub string, ok bool) {
	open := strings.IndexByte(path, '[')
	if open <= 0 || strings.IndexByte(path[:open], '"') >= 0 {
		return "", "", "", false
	}
	depth := 0
	for i := open; i < len(path); i++ {
		switch path[i] {
		case '"':
			for i++; i < len(path) && path[i] != '"'; i++ {
				if path[i] == '\\' {
					i++
				}
			}
		case '[':
			depth++
		case ']':
			if depth--; depth == 0 {
				rest := path[i+1:]
				if rest != "" && (rest[0] != '.' || strings.ContainsAny(rest, "[]\" ")) {
					return "", "", "", false
				}
				return path[:open], path[open+1 : i], rest, true
			}
		}
	}
	return "", "", "", false
}

// normalizePatchBody rewrites forms real IdPs send that the library would
// refuse (idp-clients.md): Entra's bare-string enterprise manager (E11)
// becomes {"value": id}, and "replace" with a null value becomes "remove"
// (RFC 7644 §3.5.2.3 treats it as unassigning). It also guards every path
// before the library or applyOp parses it (checkPaths), and parses the
// value filters of op paths itself (valuePathFilter): filters[i] is op i's,
// or nil.
func normalizePatchBody(k *resourceKind, body []byte) (out []byte, filters []fp.Expression, aerr *Error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, nil, badRequest(typeInvalidSyntax, "the request body is not valid JSON")
	}
	opsRaw, _ := lookupCI(m, "Operations")
	ops, ok := opsRaw.([]any)
	if !ok {
		return body, nil, nil
	}
	if len(ops) > maxPatchOps {
		return nil, nil, badRequest(typeInvalidValue, fmt.Sprintf("the PATCH has %d operations; the limit is %d", len(ops), maxPatchOps))
	}
	filters = make([]fp.Expression, len(ops))
	for i, o := range ops {
		om, ok := o.(map[string]any)
		if !ok {
			continue
		}
		opName, _ := lookupCI(om, "op")
		opStr, _ := opName.(string)
		pathRaw, _ := lookupCI(om, "path")
		path, _ := pathRaw.(string)
		val, hasVal := lookupCI(om, "value")
		if k == userKind {
			// Entra's custom-attribute form of the role extension.
			if p := canonicalRolePath(path); p != path {
				path = p
				setCI(om, "path", p)
			}
			if vm, ok := val.(map[string]any); ok && path == "" {
				if _, aerr := canonicalRoles(vm); aerr != nil {
					return nil, nil, aerr
				}
			}
		}
		if aerr := checkPaths(k, path, val); aerr != nil {
			return nil, nil, aerr
		}
		expr, placeholder, aerr := valuePathFilter(k, path)
		if aerr != nil {
			return nil, nil, aerr
		}
		if expr != nil {
			filters[i] = expr
			setCI(om, "path", placeholder)
		}
		if k == userKind {
			if strings.EqualFold(path, "roles") {
				normalizeRoleElements(val)
			}
			if strings.EqualFold(path, enterpriseURN+":manager") {
				if s, ok := val.(string); ok {
					setCI(om, "value", map[string]any{"value": s})
				}
			}
			if vm, ok := val.(map[string]any); ok && path == "" {
				normalizeManager(vm)
				for key, v := range vm {
					if s, ok := v.(string); ok && strings.EqualFold(key, enterpriseURN+":manager") {
						vm[key] = map[string]any{"value": s}
					}
				}
			}
		}
		if strings.EqualFold(opStr, "replace") && path != "" && hasVal && val == nil {
			setCI(om, "op", "remove")
			for key := range om {
				if strings.EqualFold(key, "value") {
					delete(om, key)
				}
			}
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, nil, badRequest(typeInvalidSyntax, "the request body is not valid JSON")
	}
	return out, filters, nil
}

// checkPaths guards the strings of one operation that are parsed as
// PATCH paths: its path, or without one the keys of its value object and
// the keys inside an extension's object there.
func checkPaths(k *resourceKind, path string, val any) *Error {
	if path != "" {
		return pathLimit.check(path)
	}
	vm, _ := val.(map[string]any)
	for key, v := range vm {
		if aerr := pathLimit.check(key); aerr != nil {
			return aerr
		}
		if _, ok := k.isExtURN(key); !ok {
			continue
		}
		sub, _ := v.(map[string]any)
		for sk := range sub {
			if aerr := pathLimit.check(sk); aerr != nil {
				return aerr
			}
		}
	}
	return nil
}

// normalizeManager turns the enterprise extension's bare-string manager
// (Entra, idp-clients.md E11) into the complex form of RFC 7643 §4.3.
func normalizeManager(doc map[string]any) {
	for key, ext := range doc {
		if !strings.EqualFold(key, enterpriseURN) {
			continue
		}
		em, ok := ext.(map[string]any)
		if !ok {
			continue
		}
		for mk, mv := range em {
			if s, ok := mv.(string); ok && strings.EqualFold(mk, "manager") {
				em[mk] = map[string]any{"value": s}
			}
		}
	}
}

func setCI(m map[string]any, key string, v any) {
	for k := range m {
		if strings.EqualFold(k, key) {
			m[k] = v
			return
		}
	}
	m[key] = v
}

// applyOps applies user PATCH operations to a JSON-shaped document (RFC
// 7644 §3.5.2), keyed by canonical attribute names with extension data
// under the extension URN. After each operation every multi-valued
// attribute must still be within maxMultiValues, so that no operation
// works on a longer list.
func applyOps(k *resourceKind, doc map[string]any, ops []patchOp) *Error {
	for _, o := range ops {
		if err := applyOp(k, doc, o); err != nil {
			return err
		}
		if err := checkMultiValued(k, doc); err != nil {
			return err
		}
	}
	return nil
}

func applyOp(k *resourceKind, doc map[string]any, o patchOp) *Error {
	if o.path == nil {
		vm, ok := o.value.(map[string]any)
		if !ok {
			return badRequest(typeInvalidValue, "a PATCH without path needs an object value")
		}
		for key, v := range vm {
			if urn, ok := k.isExtURN(key); ok {
				sub, _ := v.(map[string]any)
				for sk, sv := range sub {
					p, err := fp.ParsePath([]byte(urn + ":" + sk))
					if err != nil {
						return badRequest(typeInvalidPath, fmt.Sprintf("invalid attribute %q in %s", sk, urn))
					}
					if err := applyOp(k, doc, patchOp{op: o.op, path: &p, value: sv}); err != nil {
						return err
					}
				}
				continue
			}
			p, err := fp.ParsePath([]byte(key))
			if err != nil {
				return badRequest(typeInvalidPath, fmt.Sprintf("invalid attribute %q", key))
			}
			if err := applyOp(k, doc, patchOp{op: o.op, path: &p, value: v}); err != nil {
				return err
			}
		}
		return nil
	}
	r, err := scope{kind: k}.resolve(o.path.AttributePath)
	if err != nil {
		return badRequest(typeInvalidPath, "invalid path: "+err.Error())
	}
	if r.attr.Mutability() == "readOnly" {
		if strings.EqualFold(r.attr.Name(), "id") || strings.EqualFold(r.attr.Name(), "meta") {
			return nil // Okta sends id alongside changes; it cannot change.
		}
		return badRequest(typeMutability, fmt.Sprintf("attribute %q is read-only", r.attr.Name()))
	}
	container := doc
	if r.ext != "" {
		c, _ := doc[r.ext].(map[string]any)
		if c == nil {
			c = map[string]any{}
			doc[r.ext] = c
		}
		container = c
	}
	name := r.attr.Name()
	cur := container[name]

	// Value filter: emails[type eq "work"] / emails[type eq "work"].value.
	if o.path.ValueExpression != nil {
		list, _ := cur.([]any)
		inner := scope{subs: r.attr.SubAttributes()}
		subName := ""
		if s := o.path.SubAttributeName(); s != "" {
			sa, ok := r.attr.SubAttributes().ContainsAttribute(s)
			if !ok {
				return badRequest(typeInvalidPath, fmt.Sprintf("unknown sub-attribute %q", s))
			}
			subName = sa.Name()
		}
		var kept []any
		matched := 0
		for _, el := range list {
			em, ok := el.(map[string]any)
			if !ok || !matches(inner, o.path.ValueExpression, em) {
				kept = append(kept, el)
				continue
			}
			matched++
			switch {
			case o.op == "remove" && subName == "":
				continue // drop the element
			case o.op == "remove":
				delete(em, subName)
			case subName != "":
				em[subName] = o.value
			default:
				if vm, ok := o.value.(map[string]any); ok {
					for vk, vv := range vm {
						em[vk] = vv
					}
				}
			}
			kept = append(kept, em)
		}
		if matched == 0 && o.op != "remove" {
			// Entra adds (and replaces) emails[type eq "work"].value on a
			// user without a work email: create the element, seeded with
			// the filter's equality terms (idp-clients.md E4).
			el := map[string]any{}
			seedFromFilter(inner, o.path.ValueExpression, el)
			if subName != "" {
				el[subName] = o.value
			} else if vm, ok := o.value.(map[string]any); ok {
				for vk, vv := range vm {
					el[vk] = vv
				}
			}
			kept = append(kept, el)
		}
		if len(kept) == 0 {
			delete(container, name)
		} else {
			container[name] = kept
		}
		return nil
	}

	// Sub-attribute without filter: name.givenName, or emails.value (all
	// elements).
	if s := o.path.AttributePath.SubAttributeName(); s != "" {
		subName := r.sub.Name()
		if r.attr.MultiValued() {
			list, _ := cur.([]any)
			for _, el := range list {
				if em, ok := el.(map[string]any); ok {
					if o.op == "remove" {
						delete(em, subName)
					} else {
						em[subName] = o.value
					}
				}
			}
			return nil
		}
		cm, _ := cur.(map[string]any)
		if o.op == "remove" {
			if cm != nil {
				delete(cm, subName)
				if len(cm) == 0 {
					delete(container, name)
				}
			}
			return nil
		}
		if cm == nil {
			cm = map[string]any{}
			container[name] = cm
		}
		cm[subName] = o.value
		return nil
	}

	switch o.op {
	case "remove":
		if r.attr.MultiValued() && o.value != nil {
			// Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]}
			// removes only the listed elements (idp-clients.md E5).
			list, _ := cur.([]any)
			drop, _ := o.value.([]any)
			dropped := elemKeys(drop)
			var kept []any
			for _, el := range list {
				if !dropped[elemKey(el)] {
					kept = append(kept, el)
				}
			}
			if len(kept) == 0 {
				delete(container, name)
			} else {
				container[name] = kept
			}
			return nil
		}
		delete(container, name)
	case "add":
		if r.attr.MultiValued() {
			list, _ := cur.([]any)
			add, _ := o.value.([]any)
			have := elemKeys(list)
			for _, el := range add {
				if key := elemKey(el); !have[key] {
					have[key] = true
					list = append(list, el)
				}
			}
			container[name] = list
			return nil
		}
		if cm, ok := cur.(map[string]any); ok && r.attr.HasSubAttributes() {
			if vm, ok := o.value.(map[string]any); ok {
				for vk, vv := range vm {
					cm[vk] = vv
				}
				return nil
			}
		}
		container[name] = o.value
	default: // replace
		if cm, ok := cur.(map[string]any); ok && r.attr.HasSubAttributes() && !r.attr.MultiValued() {
			if vm, ok := o.value.(map[string]any); ok {
				for vk, vv := range vm {
					cm[vk] = vv
				}
				return nil
			}
		}
		if l, ok := o.value.([]any); ok && len(l) == 0 {
			delete(container, name)
			return nil
		}
		container[name] = o.value
	}
	return nil
}

// seedFromFilter copies the `attr eq "x"` terms of an and-chain into el.
func seedFromFilter(s scope, e fp.Expression, el map[string]any) {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		if e.Operator != fp.EQ || e.CompareValue == nil {
			return
		}
		if r, err := s.resolve(e.AttributePath); err == nil && r.sub == nil {
			el[r.attr.Name()] = e.CompareValue
		}
	case *fp.LogicalExpression:
		if e.Operator == fp.AND {
			seedFromFilter(s, e.Left, el)
			seedFromFilter(s, e.Right, el)
		}
	}
}

// elemKeys returns the set of elemKey of list's elements.
func elemKeys(list []any) map[string]bool {
	keys := make(map[string]bool, len(list))
	for _, el := range list {
		keys[elemKey(el)] = true
	}
	return keys
}

// elemKey is what makes two multi-valued elements the same: their "value"
// sub-attribute when they have one (case-insensitive), else their JSON.
func elemKey(el any) string {
	if m, ok := el.(map[string]any); ok {
		if v, ok := lookupCI(m, "value"); ok {
			if s, ok := v.(string); ok {
				return "v:" + strings.ToLower(s)
			}
		}
	}
	raw, _ := json.Marshal(el)
	return "j:" + string(raw)
}

// validateResource checks a POST/PUT body (or a patched document) against
// the kind's schemas with the library's validator (RFC 7643 types,
// required attributes; unknown attributes are dropped) and returns the
// sanitised attributes keyed by canonical names, extensions under their
// URN.
func validateResource(k *resourceKind, m map[string]any, requireSchemas bool) (map[string]any, *Error) {
	if requireSchemas {
		sv, ok := lookupCI(m, "schemas")
		list, isList := sv.([]any)
		if !ok || !isList {
			return nil, badRequest(typeInvalidSyntax, "the schemas attribute is missing")
		}
		found := false
		for _, s := range list {
			if str, ok := s.(string); ok && strings.EqualFold(str, k.core.ID) {
				found = true
			}
		}
		if !found {
			return nil, badRequest(typeInvalidSyntax, "schemas must contain "+k.core.ID)
		}
		// Drop the schemas key so the library's exact-case check passes.
		for key := range m {
			if strings.EqualFold(key, "schemas") {
				delete(m, key)
			}
		}
	}
	if aerr := checkMultiValued(k, m); aerr != nil {
		return nil, aerr
	}
	if k == userKind {
		normalizeManager(m)
	}
	m["schemas"] = []any{k.core.ID}
	attrs, serr := k.forBody.Validate(m)
	if serr != nil {
		return nil, libError(serr.ScimType, serr.Status, "")
	}
	for _, e := range k.exts {
		ev, ok := lookupCI(m, e.ID)
		if !ok || ev == nil {
			continue
		}
		ea, serr := e.ValidateExtension(ev)
		if serr != nil {
			return nil, libError(serr.ScimType, serr.Status, e.ID)
		}
		if len(ea) > 0 {
			attrs[e.ID] = ea
		}
	}
	return attrs, nil
}

func libError(scimType any, status int, where string) *Error {
	st := fmt.Sprint(scimType)
	if status == 0 {
		status = http.StatusBadRequest
	}
	detail := "the resource does not conform to its schema: a required attribute is missing or a value has the wrong type"
	switch st {
	case typeInvalidSyntax:
		detail = "the resource is malformed (an attribute is given twice or has the wrong structure)"
	case typeMutability:
		detail = "the request changes an immutable attribute"
	}
	if where != "" {
		detail += " (in " + where + ")"
	}
	return &Error{Status: status, ScimType: st, Detail: detail}
}

// jsonRoundTrip converts stored values (float64 numbers and the like) into
// the shapes the validator accepts.
func jsonRoundTrip(m map[string]any) map[string]any {
	raw, err := json.Marshal(m)
	if err != nil {
		return m
	}
	out, aerr := decodeObject(raw)
	if aerr != nil {
		return m
	}
	return out
}

var _ = schema.UserSchema
