package redisstore

import (
	"strconv"
	"unicode/utf8"
)

// fastDecodeUserWire parses the JSON of a stored user record as written by
// encodeUser (json.Marshal of userWire) without reflection: json.Unmarshal
// was the largest single CPU cost of an indexed GET after the Redis round
// trip when this was written. It gives up (ok=false) on anything it does
// not handle exactly as json.Unmarshal would: escaped strings, invalid
// UTF-8, unknown or repeated top-level keys, nulls for typed fields,
// non-integer numbers for integer fields, very deep nesting. The caller then
// uses json.Unmarshal, so the result never differs (TestFastDecodeUserWire).
func fastDecodeUserWire(b []byte) (w userWire, ok bool) {
	d := wireDec{b: b}
	if !d.consume('{') {
		return userWire{}, false
	}
	var seen uint32
	if d.consume('}') {
		return w, d.end()
	}
	for {
		key, ok := d.strBytes()
		if !ok || !d.consume(':') {
			return userWire{}, false
		}
		bit := wireFieldBit(string(key)) // no allocation: the string does not escape
		if bit == 0 || seen&bit != 0 {
			return userWire{}, false
		}
		seen |= bit
		switch bit {
		case wV:
			n, ok := d.integer()
			if !ok || n != int64(int(n)) {
				return userWire{}, false
			}
			w.V = int(n)
		case wID:
			w.ID, ok = d.str()
		case wAccount:
			w.Account, ok = d.str()
		case wUserName:
			w.UserName, ok = d.str()
		case wExternal:
			w.External, ok = d.str()
		case wSource:
			w.Source, ok = d.str()
		case wEmails:
			w.Emails, ok = d.strings()
		case wActive:
			w.Active, ok = d.boolean()
		case wVerified:
			w.Verified, ok = d.boolean()
		case wRoles:
			w.Roles, ok = d.roles()
		case wRoleSchema:
			w.RoleSchema, ok = d.str()
		case wExplicit:
			var e rolesWire
			e, ok = d.roles()
			w.Explicit = &e
		case wAttrs:
			d.skipWS()
			if d.i >= len(d.b) || d.b[d.i] != '{' {
				return userWire{}, false
			}
			var v any
			v, ok = d.value(0)
			w.Attrs, _ = v.(map[string]any)
		case wCreated:
			w.Created, ok = d.integer()
		case wModified:
			w.Modified, ok = d.integer()
		case wOp:
			w.Op, ok = d.str()
		case wVersion:
			w.Version, ok = d.integer()
		}
		if !ok {
			return userWire{}, false
		}
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return w, d.end()
		}
		return userWire{}, false
	}
}

// The keys of userWire, as bits for the repeated-key check.
const (
	wV          uint32 = 1 << iota // v
	wID                            // id
	wAccount                       // a
	wUserName                      // un
	wExternal                      // x
	wEmails                        // em
	wActive                        // ac
	wVerified                      // vf
	wSource                        // s
	wRoles                         // r
	wAttrs                         // at
	wCreated                       // c
	wModified                      // m
	wVersion                       // ver
	wOp                            // op
	wRoleSchema                    // rs
	wExplicit                      // e
)

// wireFieldBit returns the bit of a userWire key (0 for an unknown key). A
// switch, not a map: it runs for every field of every record read.
func wireFieldBit(key string) uint32 {
	switch key {
	case "v":
		return wV
	case "id":
		return wID
	case "a":
		return wAccount
	case "un":
		return wUserName
	case "x":
		return wExternal
	case "em":
		return wEmails
	case "ac":
		return wActive
	case "vf":
		return wVerified
	case "s":
		return wSource
	case "r":
		return wRoles
	case "at":
		return wAttrs
	case "c":
		return wCreated
	case "m":
		return wModified
	case "ver":
		return wVersion
	case "op":
		return wOp
	case "rs":
		return wRoleSchema
	case "e":
		return wExplicit
	}
	return 0
}

// maxWireDepth bounds the nesting the fast path follows (json.Unmarshal
// allows 10000 and then fails; deeper records take the slow path).
const maxWireDepth = 200

type wireDec struct {
	b []byte
	i int
}

func (d *wireDec) skipWS() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *wireDec) consume(c byte) bool {
	d.skipWS()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *wireDec) end() bool {
	d.skipWS()
	return d.i == len(d.b)
}

// str reads a string without escapes; valid UTF-8 only.
func (d *wireDec) str() (string, bool) {
	s, ok := d.strBytes()
	return string(s), ok
}

// strBytes is str returning the string's bytes in d.b.
func (d *wireDec) strBytes() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start, ascii := d.i, true
	for ; d.i < len(d.b); d.i++ {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// number reads a token of the JSON number grammar (RFC 8259 §6).
func (d *wireDec) number() ([]byte, bool) {
	d.skipWS()
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return nil, false
		}
	}
	s := b[d.i:i]
	d.i = i
	return s, true
}

// integer reads a number token that is an int64 in decimal without fraction
// or exponent (what strconv.ParseInt accepts of it), without allocating.
func (d *wireDec) integer() (int64, bool) {
	s, ok := d.number()
	if !ok || len(s) == 0 {
		return 0, false
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits fit in a uint64
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

func (d *wireDec) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

func (d *wireDec) boolean() (bool, bool) {
	d.skipWS()
	if d.literal("true") {
		return true, true
	}
	if d.literal("false") {
		return false, true
	}
	return false, false
}

func (d *wireDec) strings() ([]string, bool) {
	if !d.consume('[') {
		return nil, false
	}
	out := []string{}
	if d.consume(']') {
		return out, true
	}
	for {
		s, ok := d.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if d.consume(',') {
			continue
		}
		return out, d.consume(']')
	}
}

func (d *wireDec) roles() (rolesWire, bool) {
	var r rolesWire
	if !d.consume('{') {
		return r, false
	}
	if d.consume('}') {
		return r, true
	}
	var seen [3]bool
	for {
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return r, false
		}
		var dst *string
		switch key {
		case "d":
			dst, seen[0], ok = &r.Dev, true, !seen[0]
		case "t":
			dst, seen[1], ok = &r.Test, true, !seen[1]
		case "p":
			dst, seen[2], ok = &r.Prod, true, !seen[2]
		default:
			return r, false
		}
		if !ok {
			return r, false
		}
		if *dst, ok = d.str(); !ok {
			return r, false
		}
		if d.consume(',') {
			continue
		}
		return r, d.consume('}')
	}
}

// value reads any JSON value into the types json.Unmarshal uses for an
// interface{} (map[string]any, []any, string, float64, bool, nil).
func (d *wireDec) value(depth int) (any, bool) {
	if depth > maxWireDepth {
		return nil, false
	}
	d.skipWS()
	if d.i >= len(d.b) {
		return nil, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		return d.members(func() (any, bool) { return d.value(depth + 1) })
	case c == '[':
		d.i++
		l := []any{}
		if d.consume(']') {
			return l, true
		}
		for {
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			l = append(l, v)
			if d.consume(',') {
				continue
			}
			return l, d.consume(']')
		}
	case c == '"':
		return d.str()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	default:
		s, ok := d.number()
		if !ok {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(s), 64)
		return f, err == nil
	}
}

// members reads the members of an object whose '{' was consumed, each
// value by val.
func (d *wireDec) members(val func() (any, bool)) (map[string]any, bool) {
	m := map[string]any{}
	if d.consume('}') {
		return m, true
	}
	for {
		k, ok := d.str()
		if !ok || !d.consume(':') {
			return nil, false
		}
		v, ok := val()
		if !ok {
			return nil, false
		}
		m[k] = v
		if d.consume(',') {
			continue
		}
		return m, d.consume('}')
	}
}
