package scimhandlers

import (
	"strings"
	"unicode/utf8"

	fp "github.com/scim2/filter-parser/v2"
)

// fastFilter parses, without the PEG parser of scim2/filter-parser, the
// filters identity providers send before every create and update: one
// attribute comparison (`userName eq "…"`, `externalId eq "…"`,
// `emails.value eq "…"`, `displayName eq "…"`, `id eq "…"`, `title pr`),
// or several joined by `and` (`userName eq "…" and active eq true`).
// Attribute paths without a schema URN, the nine comparison operators and
// `pr` (any case), string values (RFC 7644 §3.4.2.2, JSON escapes as the
// library's grammar allows them) and true/false/null (any case) are
// handled; anything else (or, not, grouping, value paths, numbers, URNs,
// unusual spacing) reports ok=false and goes to fp.ParseFilter.
//
// For every input it accepts it builds exactly the AST fp.ParseFilter
// builds (the quoted value with its quotes trimmed and escapes left for
// unescapeStrings; and-chains left-associative), which fastfilter_test.go
// checks on a table of filters and on generated ones. The library's
// parser cost about half of a filtered user lookup when this was
// written.
func fastFilter(raw string) (fp.Expression, bool) {
	// '[' is left to the library path, which rewrites Entra's
	// `attr[filter].sub` form first (even inside quoted values).
	if raw == "" || !utf8.ValidString(raw) || strings.IndexByte(raw, '[') >= 0 {
		return nil, false
	}
	var exprs []fp.AttributeExpression
	i := 0
	for {
		e, n, ok := fastAttrExp(raw[i:])
		if !ok {
			return nil, false
		}
		exprs = append(exprs, e)
		i += n
		if i == len(raw) {
			break
		}
		// SP+ "and" SP+
		j := skipSpaces(raw, i)
		if j == i || len(raw)-j < 3 || !strings.EqualFold(raw[j:j+3], "and") {
			return nil, false
		}
		k := skipSpaces(raw, j+3)
		if k == j+3 || k == len(raw) {
			return nil, false
		}
		i = k
	}
	var out fp.Expression = &exprs[0]
	if len(exprs) == 1 {
		return out, true
	}
	// The library's and-chain: (a and b) and c, ...
	out = &fp.LogicalExpression{Left: &exprs[0], Right: &exprs[1], Operator: fp.AND}
	for x := 2; x < len(exprs); x++ {
		out = &fp.LogicalExpression{Left: out, Right: &exprs[x], Operator: fp.AND}
	}
	return out, true
}

func skipSpaces(s string, i int) int {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isNameChar(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' || c == '-' || c == '_' }

// fastAttrName scans ALPHA *(nameChar) at s[i:] and returns its end.
func fastAttrName(s string, i int) (int, bool) {
	if i >= len(s) || !isAlpha(s[i]) {
		return i, false
	}
	i++
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	return i, true
}

// fastAttrExp scans `attrPath SP+ (pr | compareOp SP+ value)` at the start
// of s and returns the expression and the number of bytes consumed; the
// next byte, when there is one, must be a space.
func fastAttrExp(s string) (fp.AttributeExpression, int, bool) {
	var e fp.AttributeExpression
	end, ok := fastAttrName(s, 0)
	if !ok {
		return e, 0, false
	}
	e.AttributePath.AttributeName = s[:end]
	if end < len(s) && s[end] == '.' {
		subEnd, ok := fastAttrName(s, end+1)
		if !ok {
			return e, 0, false
		}
		sub := s[end+1 : subEnd]
		e.AttributePath.SubAttribute = &sub
		end = subEnd
	}
	i := skipSpaces(s, end)
	if i == end || len(s)-i < 2 {
		return e, 0, false
	}
	op := strings.ToLower(s[i : i+2])
	i += 2
	if op == "pr" {
		if i < len(s) && s[i] != ' ' {
			return e, 0, false
		}
		e.Operator = fp.PR
		return e, i, true
	}
	switch fp.CompareOperator(op) {
	case fp.EQ, fp.NE, fp.CO, fp.SW, fp.EW, fp.GT, fp.LT, fp.GE, fp.LE:
		e.Operator = fp.CompareOperator(op)
	default:
		return e, 0, false
	}
	j := skipSpaces(s, i)
	if j == i || j == len(s) {
		return e, 0, false
	}
	var n int
	if s[j] == '"' {
		n, ok = fastString(s[j:])
		if !ok {
			return e, 0, false
		}
		e.CompareValue = s[j+1 : j+n-1]
	} else {
		k := j
		for k < len(s) && s[k] != ' ' {
			k++
		}
		switch w := s[j:k]; {
		case strings.EqualFold(w, "true"):
			e.CompareValue = true
		case strings.EqualFold(w, "false"):
			e.CompareValue = false
		case strings.EqualFold(w, "null"):
			e.CompareValue = nil
		default:
			return e, 0, false // numbers and anything else: the library
		}
		n = k - j
	}
	end = j + n
	if end < len(s) && s[end] != ' ' {
		return e, 0, false
	}
	return e, end, true
}

// fastString scans a quoted string at the start of s as the library's
// grammar defines it (JSON strings, with \u followed by four digits or
// upper-case A-F) and returns its length including both quotes.
func fastString(s string) (int, bool) {
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(s) {
				return 0, false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+6 > len(s) {
					return 0, false
				}
				for _, h := range []byte(s[i+2 : i+6]) {
					if !(h >= '0' && h <= '9' || h >= 'A' && h <= 'F') {
						return 0, false
					}
				}
				i += 5
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		}
	}
	return 0, false
}
