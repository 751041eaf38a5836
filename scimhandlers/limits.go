package scimhandlers

import (
	"fmt"
	"strings"

	"github.com/elimity-com/scim/schema"
)

// Limits of one SCIM request. Each bounds what a client can make one request
// cost; docs/scim.md ("Limits") lists them with what a client gets beyond
// them. Okta and Entra ID stay far below every one (idp-clients.md): their
// filters are one to three comparisons of at most a few hundred bytes,
// without parentheses, and they change group members in batches.
const (
	// maxFilterLen is the longest filter, and the longest PATCH path, in
	// bytes. The filter parser allocates 1.4 to 4.5 KB per byte of input
	// (most for attribute names), so this bounds its memory to about 5 MB
	// and its time to a few milliseconds. An IdP's longest filter, Entra's
	// `emails[type eq "work"].value eq "…"` with a 254-byte address, is
	// under 300 bytes.
	maxFilterLen = 1024
	// maxFilterDepth is how deeply parentheses and brackets may nest in a
	// filter or PATCH path. The filter parser recurses per level and cannot
	// be stopped once it runs out of stack; IdPs nest at most one level
	// (`emails[type eq "work"]`).
	maxFilterDepth = 16
	// maxFilterTerms is the number of comparisons (`eq`, `pr`, ...) a filter
	// or PATCH path may hold. The syntax tree of `a or b or ...` is as deep
	// as it has terms, every term costs one evaluation per resource, and
	// every indexed term of an `or` one index read.
	maxFilterTerms = 32
	// maxAttrNameLen is the longest attribute name in attributes,
	// excludedAttributes and sortBy, in bytes. The longest real one
	// (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName)
	// is 79 bytes.
	maxAttrNameLen = 256
	// maxAttrNames is how many names attributes or excludedAttributes may
	// list. The User schemas have about 100 attributes and sub-attributes in
	// all.
	maxAttrNames = 128
	// maxPatchOps is how many operations one PATCH may carry. Entra sends
	// one per changed attribute (a few dozen at most); Okta one per removed
	// group member, in batches.
	maxPatchOps = 1000
	// maxMultiValues is how many values a multi-valued user attribute
	// (emails, phoneNumbers, ims, photos, addresses, entitlements, roles,
	// x509Certificates and multi-valued extension attributes) may hold.
	// IdPs send one to three.
	maxMultiValues = 100
	// maxMembersPerRequest is how many group members one request may name:
	// the members of a POST or PUT, and all member values of a PATCH
	// together. A group itself may grow beyond it over several PATCH
	// requests, as IdPs send membership changes in batches (AWS IAM Identity
	// Center, a target both Okta and Entra provision, accepts 100 per
	// request). 10,000 member ids are about half of the default 1 MiB body.
	maxMembersPerRequest = 10000
	// maxSortWindow bounds startIndex+count-1 of a query with sortBy: a
	// sorted query keeps that many resources in memory while it scans (RFC
	// 7644 §3.4.2.4 allows tooMany). It is twice the scan batch, so a sorted
	// query holds no more than an unsorted one does while it reads.
	maxSortWindow = 1000
)

// exprLimit is the guard for one kind of string that a parser of
// github.com/scim2/filter-parser will see.
type exprLimit struct {
	what     string // how the detail names the string: "filter", "PATCH path", ...
	scimType string // of the 400 beyond a limit
	maxLen   int
	maxDepth int
	maxTerms int
}

var (
	filterLimit = exprLimit{what: "filter", scimType: typeInvalidFilter,
		maxLen: maxFilterLen, maxDepth: maxFilterDepth, maxTerms: maxFilterTerms}
	pathLimit = exprLimit{what: "PATCH path", scimType: typeInvalidPath,
		maxLen: maxFilterLen, maxDepth: maxFilterDepth, maxTerms: maxFilterTerms}
	// attrLimit is for attribute names (attributes, excludedAttributes,
	// sortBy): their parser does not recurse, so only their length matters.
	attrLimit = exprLimit{what: "attribute name", scimType: typeInvalidValue,
		maxLen: maxAttrNameLen, maxDepth: maxFilterDepth, maxTerms: maxFilterTerms}
	sortByLimit = exprLimit{what: "sortBy", scimType: typeInvalidValue,
		maxLen: maxAttrNameLen, maxDepth: maxFilterDepth, maxTerms: maxFilterTerms}
)

// check runs before any parser sees s: one pass over s, without recursion,
// that measures its length, how deeply "(" and "[" nest outside string
// literals, and how many comparisons it holds. It answers 400 naming the
// limit passed, or nil.
func (l exprLimit) check(s string) *Error {
	sh := exprShape(s)
	switch {
	case sh.depth > l.maxDepth:
		return badRequest(l.scimType, fmt.Sprintf("%s nests %d levels deep; the limit is %d", l.what, sh.depth, l.maxDepth))
	case sh.terms > l.maxTerms:
		return badRequest(l.scimType, fmt.Sprintf("%s has %d comparisons; the limit is %d", l.what, sh.terms, l.maxTerms))
	case len(s) > l.maxLen:
		return badRequest(l.scimType, fmt.Sprintf("%s is %d bytes long; the limit is %d", l.what, len(s), l.maxLen))
	}
	return nil
}

// shape is what exprShape measures.
type shape struct {
	depth int // deepest nesting of "(" and "["
	terms int // comparison operators
}

// exprShape measures s outside string literals ("..." with backslash
// escapes, RFC 7644 §3.4.2.2 takes them from JSON). Comparison operators
// are the words (runs of bytes other than space, tab, CR, LF, parentheses,
// brackets and quotes) eq, ne, co, sw, ew, gt, ge, lt, le and pr in any
// case; the count may exceed the real number of comparisons (an attribute
// named "pr"), never fall short. A stray closing parenthesis is left to
// the parser.
func exprShape(s string) shape {
	var sh shape
	depth := 0
	word := -1 // start of the current word, -1 between words
	endWord := func(end int) {
		if word >= 0 && end-word == 2 && isCompareOp(s[word:end]) {
			sh.terms++
		}
		word = -1
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			endWord(i)
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '(', '[':
			endWord(i)
			depth++
			sh.depth = max(sh.depth, depth)
		case ')', ']':
			endWord(i)
			depth = max(depth-1, 0)
		case ' ', '\t', '\n', '\r':
			endWord(i)
		default:
			if word < 0 {
				word = i
			}
		}
	}
	endWord(len(s))
	return sh
}

func isCompareOp(w string) bool {
	switch strings.ToLower(w) {
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr":
		return true
	}
	return false
}

// checkMultiValued refuses a document in which a multi-valued attribute
// holds more values than allowed: maxMembersPerRequest for a group's
// members, maxMultiValues for every other one, extensions included.
// Read-only attributes (a user's groups) are dropped by validation and not
// counted. doc may be a request body (names in any case) or a canonical
// document.
func checkMultiValued(k *resourceKind, doc map[string]any) *Error {
	check := func(attrs schema.Attributes, container map[string]any) *Error {
		for _, a := range attrs {
			if !a.MultiValued() || a.Mutability() == "readOnly" {
				continue
			}
			v, _ := lookupCI(container, a.Name())
			list, _ := v.([]any)
			limit := maxMultiValues
			if k == groupKind && a.Name() == "members" {
				limit = maxMembersPerRequest
			}
			if len(list) > limit {
				return badRequest(typeInvalidValue, fmt.Sprintf("%s has %d values; the limit is %d", a.Name(), len(list), limit))
			}
		}
		return nil
	}
	if aerr := check(k.core.Attributes, doc); aerr != nil {
		return aerr
	}
	for _, e := range k.exts {
		ev, _ := lookupCI(doc, e.ID)
		if em, ok := ev.(map[string]any); ok {
			if aerr := check(e.Attributes, em); aerr != nil {
				return aerr
			}
		}
	}
	return nil
}
