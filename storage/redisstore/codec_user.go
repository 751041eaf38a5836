package redisstore

import (
	"strconv"
	"unicode/utf8"
)

// fastDecodeUserWire parses the JSON of a stored user record as written by
// encodeUser (json.Marshal of userWire) without reflection: json.Unmarshal
// was the largest single CPU cost of an indexed GET after the Redis round
// trip (docs/benchmarks.md §4.7). It gives up (ok=false) on anything it does
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
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return userWire{}, false
		}
		bit, known := wireFields[key]
		if !known || seen&bit != 0 {
			return userWire{}, false
		}
		seen |= bit
		switch key {
		case "v":
			n, ok := d.integer()
			if !ok || n != int64(int(n)) {
				return userWire{}, false
			}
			w.V = int(n)
		case "id":
			w.ID, ok = d.str()
		case "a":
			w.Account, ok = d.str()
		case "un":
			w.UserName, ok = d.str()
		case "x":
			w.External, ok = d.str()
		case "s":
			w.Source, ok = d.str()
		case "em":
			w.Emails, ok = d.strings()
		case "ac":
			w.Active, ok = d.boolean()
		case "vf":
			w.Verified, ok = d.boolean()
		case "r":
			w.Roles, ok = d.roles()
		case "at":
			d.skipWS()
			if d.i >= len(d.b) || d.b[d.i] != '{' {
				return userWire{}, false
			}
			var v any
			v, ok = d.value(0)
			w.Attrs, _ = v.(map[string]any)
		case "c":
			w.Created, ok = d.integer()
		case "m":
			w.Modified, ok = d.integer()
		case "ver":
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

var wireFields = map[string]uint32{"v": 1, "id": 2, "a": 4, "un": 8, "x": 16, "em": 32, "ac": 64,
	"vf": 128, "s": 256, "r": 512, "at": 1024, "c": 2048, "m": 4096, "ver": 8192}

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
	if !d.consume('"') {
		return "", false
	}
	start, ascii := d.i, true
	for ; d.i < len(d.b); d.i++ {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// number reads a token of the JSON number grammar (RFC 8259 §6).
func (d *wireDec) number() (string, bool) {
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
		return "", false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return "", false
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
			return "", false
		}
	}
	s := string(b[d.i:i])
	d.i = i
	return s, true
}

func (d *wireDec) integer() (int64, bool) {
	s, ok := d.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
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
		m := map[string]any{}
		if d.consume('}') {
			return m, true
		}
		for {
			k, ok := d.str()
			if !ok || !d.consume(':') {
				return nil, false
			}
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			m[k] = v
			if d.consume(',') {
				continue
			}
			return m, d.consume('}')
		}
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
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
}
