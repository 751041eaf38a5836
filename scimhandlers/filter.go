package scimhandlers

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/elimity-com/scim/schema"
	fp "github.com/scim2/filter-parser/v2"
)

// This file evaluates RFC 7644 §3.4.2.2 filters. The library parses them
// (github.com/scim2/filter-parser); its own evaluator (PassesFilter) misses
// multi-valued sub-attributes such as emails.value, rejects filters that mix
// core and extension attributes and panics on type mismatches, so
// evaluation and validation are done here over the AST.

// resolved is an attribute path resolved against a resource kind.
type resolved struct {
	ext  string // canonical extension URN, "" for the core schema
	attr schema.CoreAttribute
	sub  *schema.CoreAttribute
}

// scope is where attribute paths are resolved: a resource kind, or the
// sub-attributes of a multi-valued complex attribute inside a value path.
type scope struct {
	kind *resourceKind
	subs schema.Attributes
}

func (s scope) resolve(p fp.AttributePath) (resolved, error) {
	var r resolved
	if s.kind == nil {
		if p.URIPrefix != nil {
			return r, fmt.Errorf("a value filter cannot use a schema URN")
		}
		a, ok := s.subs.ContainsAttribute(p.AttributeName)
		if !ok {
			return r, fmt.Errorf("unknown sub-attribute %q", p.AttributeName)
		}
		r.attr = a
	} else {
		found := false
		if uri := p.URI(); uri != "" {
			sch, ok := s.kind.schemaByURN(uri)
			if !ok {
				return r, fmt.Errorf("unknown schema %q", uri)
			}
			if a, ok := sch.Attributes.ContainsAttribute(p.AttributeName); ok {
				r.attr, found = a, true
				if !strings.EqualFold(uri, s.kind.core.ID) {
					r.ext = sch.ID
				}
			}
		} else {
			if a, ok := s.kind.withCommon.Attributes.ContainsAttribute(p.AttributeName); ok {
				r.attr, found = a, true
			}
		}
		if !found {
			return r, fmt.Errorf("unknown attribute %q", p.String())
		}
	}
	if sub := p.SubAttributeName(); sub != "" {
		if !r.attr.HasSubAttributes() {
			return r, fmt.Errorf("attribute %q has no sub-attributes", r.attr.Name())
		}
		sa, ok := r.attr.SubAttributes().ContainsAttribute(sub)
		if !ok {
			return r, fmt.Errorf("attribute %q has no sub-attribute %q", r.attr.Name(), sub)
		}
		r.sub = &sa
	}
	return r, nil
}

// leaf is the attribute whose values are compared: the sub-attribute, or
// for a complex attribute without one its "value" sub-attribute (RFC 7644
// §3.4.2.2: "the 'value' sub-attribute ... when no sub-attribute is
// specified").
func (r resolved) leaf() (schema.CoreAttribute, bool) {
	if r.sub != nil {
		return *r.sub, true
	}
	if r.attr.HasSubAttributes() {
		v, ok := r.attr.SubAttributes().ContainsAttribute("value")
		return v, ok
	}
	return r.attr, true
}

// parseFilter parses and validates a filter for kind; every failure is a
// 400 invalidFilter. The guard runs first: no parser (nor the rewrite of
// Entra's form) sees a filter beyond the limits.
func parseFilter(raw string, k *resourceKind) (fp.Expression, *Error) {
	if aerr := filterLimit.check(raw); aerr != nil {
		return nil, aerr
	}
	expr, ok := fastFilter(raw)
	if !ok {
		var err error
		if expr, err = fp.ParseFilter([]byte(rewriteSubAttrValuePaths(raw))); err != nil {
			return nil, badRequest(typeInvalidFilter, "the filter is not valid RFC 7644 filter syntax")
		}
	}
	unescapeStrings(expr)
	if err := validateExpr(scope{kind: k}, expr); err != nil {
		return nil, badRequest(typeInvalidFilter, "invalid filter: "+err.Error())
	}
	return expr, nil
}

// subAttrValuePath matches the non-RFC form `emails[type eq "work"].value
// eq "x"` that Entra ID sends when a value-path attribute is a matching
// attribute (idp-clients.md E7).
var subAttrValuePath = regexp.MustCompile(`(?i)([A-Za-z][\w:.\-]*)\[([^\[\]]*)\]\.([A-Za-z][\w\-]*)\s+(?:(eq|ne|co|sw|ew|gt|ge|lt|le)\s+("(?:[^"\\]|\\.)*"|true|false|null|-?[0-9][0-9.eE+\-]*)|(pr)\b)`)

// rewriteSubAttrValuePaths turns `attr[f].sub op v` into the RFC 7644
// equivalent `attr[f and sub op v]`.
func rewriteSubAttrValuePaths(raw string) string {
	return subAttrValuePath.ReplaceAllStringFunc(raw, func(m string) string {
		g := subAttrValuePath.FindStringSubmatch(m)
		cond := g[3] + " " + g[4] + " " + g[5]
		if g[6] != "" {
			cond = g[3] + " pr"
		}
		if strings.Contains(strings.ToLower(g[2]), " or ") {
			// The parser has no grouping inside value filters; leave it.
			return m
		}
		return g[1] + "[" + g[2] + " and " + cond + "]"
	})
}

// unescapeStrings decodes JSON escapes in compare values (the parser only
// trims the quotes).
func unescapeStrings(e fp.Expression) {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		if s, ok := e.CompareValue.(string); ok && strings.Contains(s, `\`) {
			var out string
			if json.Unmarshal([]byte(`"`+s+`"`), &out) == nil {
				e.CompareValue = out
			}
		}
	case *fp.LogicalExpression:
		unescapeStrings(e.Left)
		unescapeStrings(e.Right)
	case *fp.NotExpression:
		unescapeStrings(e.Expression)
	case *fp.ValuePath:
		unescapeStrings(e.ValueFilter)
	}
}

func validateExpr(s scope, e fp.Expression) error {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		r, err := s.resolve(e.AttributePath)
		if err != nil {
			return err
		}
		if e.Operator == fp.PR {
			return nil
		}
		leaf, ok := r.leaf()
		if !ok {
			return fmt.Errorf("attribute %q is complex: name a sub-attribute", r.attr.Name())
		}
		switch leaf.AttributeType() {
		case "boolean", "binary":
			switch e.Operator {
			case fp.GT, fp.GE, fp.LT, fp.LE, fp.CO, fp.SW, fp.EW:
				return fmt.Errorf("operator %q is not supported for %s attribute %q", e.Operator, leaf.AttributeType(), leaf.Name())
			}
		}
		switch e.Operator {
		case fp.EQ, fp.NE, fp.CO, fp.SW, fp.EW, fp.GT, fp.GE, fp.LT, fp.LE:
		default:
			return fmt.Errorf("unknown operator %q", e.Operator)
		}
		return nil
	case *fp.ValuePath:
		r, err := s.resolve(e.AttributePath)
		if err != nil {
			return err
		}
		if !r.attr.HasSubAttributes() || r.sub != nil {
			return fmt.Errorf("value filter on %q needs a complex attribute", r.attr.Name())
		}
		return validateExpr(scope{subs: r.attr.SubAttributes()}, e.ValueFilter)
	case *fp.LogicalExpression:
		if err := validateExpr(s, e.Left); err != nil {
			return err
		}
		return validateExpr(s, e.Right)
	case *fp.NotExpression:
		return validateExpr(s, e.Expression)
	default:
		return fmt.Errorf("unsupported expression")
	}
}

// lookupCI returns m[name], trying the exact key first and then a
// case-insensitive match (attribute names are case-insensitive, RFC 7643
// §2.1).
func lookupCI(m map[string]any, name string) (any, bool) {
	if m == nil {
		return nil, false
	}
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// values returns the values at r in doc, flattened over multi-valued
// attributes.
func (r resolved) values(doc map[string]any) []any {
	container := doc
	if r.ext != "" {
		e, _ := lookupCI(doc, r.ext)
		container, _ = e.(map[string]any)
	}
	v, ok := lookupCI(container, r.attr.Name())
	if !ok || v == nil {
		return nil
	}
	var elems []any
	if list, ok := v.([]any); ok {
		elems = list
	} else {
		elems = []any{v}
	}
	if !r.attr.HasSubAttributes() {
		return elems
	}
	subName := "value"
	if r.sub != nil {
		subName = r.sub.Name()
	}
	var out []any
	for _, el := range elems {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		if sv, ok := lookupCI(m, subName); ok && sv != nil {
			out = append(out, sv)
		}
	}
	return out
}

// matches evaluates e against a JSON-shaped resource (or element). It never
// panics on odd data: a value of the wrong type simply does not match.
func matches(s scope, e fp.Expression, doc map[string]any) bool {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		r, err := s.resolve(e.AttributePath)
		if err != nil {
			return false
		}
		vals := r.values(doc)
		if e.Operator == fp.PR {
			for _, v := range vals {
				if present(v) {
					return true
				}
			}
			// A complex attribute without "value" counts when non-empty.
			if r.sub == nil && r.attr.HasSubAttributes() {
				container := doc
				if r.ext != "" {
					c, _ := lookupCI(doc, r.ext)
					container, _ = c.(map[string]any)
				}
				v, _ := lookupCI(container, r.attr.Name())
				return present(v)
			}
			return false
		}
		leaf, _ := r.leaf()
		if e.CompareValue == nil { // "x eq null" (absent) / "x ne null"
			has := false
			for _, v := range vals {
				has = has || present(v)
			}
			if e.Operator == fp.EQ {
				return !has
			}
			if e.Operator == fp.NE {
				return has
			}
			return false
		}
		if e.Operator == fp.NE {
			// ne on a multi-valued attribute: no value equals.
			for _, v := range vals {
				if compare(leaf, fp.EQ, v, e.CompareValue) {
					return false
				}
			}
			return true
		}
		for _, v := range vals {
			if compare(leaf, e.Operator, v, e.CompareValue) {
				return true
			}
		}
		return false
	case *fp.ValuePath:
		r, err := s.resolve(e.AttributePath)
		if err != nil {
			return false
		}
		container := doc
		if r.ext != "" {
			c, _ := lookupCI(doc, r.ext)
			container, _ = c.(map[string]any)
		}
		v, _ := lookupCI(container, r.attr.Name())
		inner := scope{subs: r.attr.SubAttributes()}
		var elems []any
		if list, ok := v.([]any); ok {
			elems = list
		} else if v != nil {
			elems = []any{v}
		}
		for _, el := range elems {
			if m, ok := el.(map[string]any); ok && matches(inner, e.ValueFilter, m) {
				return true
			}
		}
		return false
	case *fp.LogicalExpression:
		if e.Operator == fp.AND {
			return matches(s, e.Left, doc) && matches(s, e.Right, doc)
		}
		return matches(s, e.Left, doc) || matches(s, e.Right, doc)
	case *fp.NotExpression:
		return !matches(s, e.Expression, doc)
	}
	return false
}

func present(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// compare applies op to a stored value and the filter's compare value
// according to the attribute's type and caseExact (RFC 7644 §3.4.2.2).
func compare(attr schema.CoreAttribute, op fp.CompareOperator, v, ref any) bool {
	switch attr.AttributeType() {
	case "boolean":
		a, ok1 := toBool(v)
		b, ok2 := toBool(ref)
		if !ok1 || !ok2 {
			return false
		}
		return op == fp.EQ && a == b
	case "integer", "decimal":
		a, ok1 := toFloat(v)
		b, ok2 := toFloat(ref)
		if !ok1 || !ok2 {
			return false
		}
		return cmpOrdered(op, a, b)
	case "dateTime":
		as, ok1 := v.(string)
		bs, ok2 := ref.(string)
		if !ok1 || !ok2 {
			return false
		}
		a, err1 := time.Parse(time.RFC3339Nano, as)
		b, err2 := time.Parse(time.RFC3339Nano, bs)
		if err1 != nil || err2 != nil {
			return cmpString(op, as, bs, true)
		}
		return cmpOrdered(op, a.UnixNano(), b.UnixNano())
	default:
		as, ok1 := v.(string)
		bs, ok2 := ref.(string)
		if !ok1 || !ok2 {
			return false
		}
		return cmpString(op, as, bs, attr.CaseExact())
	}
}

func cmpString(op fp.CompareOperator, a, b string, caseExact bool) bool {
	if !caseExact {
		a, b = strings.ToLower(a), strings.ToLower(b)
	}
	switch op {
	case fp.EQ:
		return a == b
	case fp.CO:
		return strings.Contains(a, b)
	case fp.SW:
		return strings.HasPrefix(a, b)
	case fp.EW:
		return strings.HasSuffix(a, b)
	}
	return cmpOrdered(op, a, b)
}

func cmpOrdered[T int64 | float64 | string](op fp.CompareOperator, a, b T) bool {
	switch op {
	case fp.EQ:
		return a == b
	case fp.GT:
		return a > b
	case fp.GE:
		return a >= b
	case fp.LT:
		return a < b
	case fp.LE:
		return a <= b
	}
	return false
}

func toBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	}
	return false, false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, !math.IsNaN(v)
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

// lookupKey is one index lookup of a plan.
type lookupKey struct {
	by    string // userName, externalId, email, id / displayName, externalId, member, id
	value string
}

// planLookups derives index lookups from a filter: it returns keys whose
// union is a superset of the matching resources, or ok=false when the
// filter needs a scan. The full filter is still evaluated on every
// candidate.
func planLookups(k *resourceKind, e fp.Expression) (keys []lookupKey, ok bool) {
	s := scope{kind: k}
	switch e := e.(type) {
	case *fp.AttributeExpression:
		if e.Operator != fp.EQ {
			return nil, false
		}
		val, isStr := e.CompareValue.(string)
		if !isStr {
			return nil, false
		}
		r, err := s.resolve(e.AttributePath)
		if err != nil || r.ext != "" {
			return nil, false
		}
		name := r.attr.Name()
		if k == userKind {
			switch {
			case name == "userName" && r.sub == nil:
				return []lookupKey{{"userName", val}}, true
			case name == "externalId":
				return []lookupKey{{"externalId", val}}, true
			case name == "id":
				return []lookupKey{{"id", val}}, true
			case name == "emails" && (r.sub == nil || r.sub.Name() == "value"):
				return []lookupKey{{"email", val}}, true
			}
		} else {
			switch {
			case name == "displayName":
				return []lookupKey{{"displayName", val}}, true
			case name == "externalId":
				return []lookupKey{{"externalId", val}}, true
			case name == "id":
				return []lookupKey{{"id", val}}, true
			case name == "members" && (r.sub == nil || r.sub.Name() == "value"):
				return []lookupKey{{"member", val}}, true
			}
		}
		return nil, false
	case *fp.ValuePath:
		r, err := s.resolve(e.AttributePath)
		if err != nil || r.ext != "" {
			return nil, false
		}
		by := ""
		switch {
		case k == userKind && r.attr.Name() == "emails":
			by = "email"
		case k == groupKind && r.attr.Name() == "members":
			by = "member"
		default:
			return nil, false
		}
		if v, ok := valueEq(e.ValueFilter); ok {
			return []lookupKey{{by, v}}, true
		}
		return nil, false
	case *fp.LogicalExpression:
		if e.Operator == fp.AND {
			if keys, ok := planLookups(k, e.Left); ok {
				return keys, true
			}
			return planLookups(k, e.Right)
		}
		l, ok1 := planLookups(k, e.Left)
		if !ok1 {
			return nil, false
		}
		r, ok2 := planLookups(k, e.Right)
		if !ok2 {
			return nil, false
		}
		return append(l, r...), true
	}
	return nil, false
}

// valueEq finds `value eq "x"` in an and-chain of a value filter.
func valueEq(e fp.Expression) (string, bool) {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		if e.Operator == fp.EQ && e.AttributePath.URIPrefix == nil && e.AttributePath.SubAttribute == nil &&
			strings.EqualFold(e.AttributePath.AttributeName, "value") {
			s, ok := e.CompareValue.(string)
			return s, ok
		}
	case *fp.LogicalExpression:
		if e.Operator == fp.AND {
			if v, ok := valueEq(e.Left); ok {
				return v, true
			}
			return valueEq(e.Right)
		}
	}
	return "", false
}

// refersTo reports whether the filter mentions the core attribute name
// (used to load the costly "groups" attribute only when filtered on).
func refersTo(e fp.Expression, name string) bool {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		return e.AttributePath.URIPrefix == nil && strings.EqualFold(e.AttributePath.AttributeName, name) ||
			e.AttributePath.URIPrefix != nil && strings.EqualFold(e.AttributePath.URI(), userURN) && strings.EqualFold(e.AttributePath.AttributeName, name)
	case *fp.ValuePath:
		return strings.EqualFold(e.AttributePath.AttributeName, name)
	case *fp.LogicalExpression:
		return refersTo(e.Left, name) || refersTo(e.Right, name)
	case *fp.NotExpression:
		return refersTo(e.Expression, name)
	}
	return false
}

// typedOnly reports whether e only compares attributes a user keeps in
// typed storage.User fields (id, userName, externalId, active), so it can
// be matched against a document of only those (typedDoc), and the user
// rendered directly (appendUser).
func typedOnly(e fp.Expression) bool {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		ap := e.AttributePath
		if ap.SubAttribute != nil || ap.URIPrefix != nil && !strings.EqualFold(ap.URI(), userURN) {
			return false
		}
		for _, name := range []string{"id", "userName", "externalId", "active"} {
			if strings.EqualFold(ap.AttributeName, name) {
				return true
			}
		}
		return false
	case *fp.LogicalExpression:
		return typedOnly(e.Left) && typedOnly(e.Right)
	case *fp.NotExpression:
		return typedOnly(e.Expression)
	}
	return false
}
