package scimhandlers

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"
)

// appendJSON appends the JSON encoding of v to dst, byte for byte what
// json.Marshal(v) produces. The response documents are trees of
// map[string]any, []any, strings, bools and ints; those are encoded here
// without reflection (json.Marshal of such a tree was a quarter of the CPU
// of an indexed GET when this was written). Anything else, and any
// string that needs escaping, is handed to json.Marshal, so the output
// never differs from encoding/json (TestAppendJSONMatchesMarshal).
func appendJSON(dst []byte, v any) ([]byte, error) {
	return appendJSONDepth(dst, v, 0)
}

// maxFastDepth bounds the recursion: deeper values (only a map that
// contains itself gets there) go to json.Marshal, which reports the cycle.
const maxFastDepth = 64

var keySlices = sync.Pool{New: func() any { s := make([]string, 0, 16); return &s }}

func appendJSONDepth(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxFastDepth {
		return appendMarshal(dst, v)
	}
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendJSONString(dst, v)
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case rawJSON:
		// Already JSON (a user written by appendUser).
		return append(dst, v...), nil
	case map[string]any:
		if v == nil {
			return append(dst, "null"...), nil
		}
		kp := keySlices.Get().(*[]string)
		keys := (*kp)[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		var err error
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendJSONString(dst, k); err != nil {
				break
			}
			dst = append(dst, ':')
			if dst, err = appendJSONDepth(dst, v[k], depth+1); err != nil {
				break
			}
		}
		clear(keys)
		*kp = keys[:0]
		keySlices.Put(kp)
		if err != nil {
			return nil, err
		}
		return append(dst, '}'), nil
	case []any:
		if v == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		var err error
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendJSONDepth(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	return appendMarshal(dst, v)
}

// appendJSONString quotes s directly when it is printable ASCII other than
// the HTML characters `<`, `>`, `&` (`"` and `\` escaped as encoding/json
// does, as in a weak ETag W/"3"), else defers to json.Marshal.
func appendJSONString(dst []byte, s string) ([]byte, error) {
	escapes := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '<' || c == '>' || c == '&' {
			return appendMarshal(dst, s)
		}
		escapes = escapes || c == '"' || c == '\\'
	}
	dst = append(dst, '"')
	if !escapes {
		dst = append(dst, s...)
		return append(dst, '"'), nil
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\', c)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, '"'), nil
}

func appendMarshal(dst []byte, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, raw...), nil
}

// rawJSON is a value that is already JSON, copied into the output as it is.
type rawJSON []byte
