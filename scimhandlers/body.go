package scimhandlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// readBody reads the request body of every SCIM request that has one
// (POST, PUT, PATCH, .search) and refuses one that gives a key twice in an
// object (DuplicateKey). An error from the server's body limit becomes 413.
func readBody(r *http.Request) ([]byte, *Error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || strings.Contains(strings.ToLower(err.Error()), "too large") {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Detail: "the request body is too large"}
		}
		return nil, badRequest(typeInvalidSyntax, "the request body could not be read")
	}
	if first, second, dup := DuplicateKey(raw); dup {
		detail := fmt.Sprintf("the request body gives %q twice in one object", clip(first))
		if first != second {
			detail = fmt.Sprintf("the request body gives %q and %q in one object: attribute names are case-insensitive", clip(first), clip(second))
		}
		return nil, badRequest(typeInvalidSyntax, detail)
	}
	return raw, nil
}

// writeBody is readBody for a request that writes a user or group: it also
// names the write (request.op) with a digest of the workspace, method,
// path, If-Match header and body. The store keeps that name with the
// resource (storage.User.Op, storage.Group.Op), so the same request sent
// again, because its answer was lost (a 503 while Redis did not answer, a
// dropped connection), finds its own effect and gets the answer the first
// one would have had instead of a 409 or a second change.
func (q *request) writeBody() ([]byte, *Error) {
	raw, aerr := readBody(q.r)
	if aerr != nil {
		return nil, aerr
	}
	d := sha256.New()
	for _, part := range []string{q.ws, q.r.Method, q.r.URL.EscapedPath(), q.r.Header.Get("If-Match")} {
		d.Write([]byte(part))
		d.Write([]byte{0})
	}
	d.Write(raw)
	// 96 bits: the name is only compared with the one resource's last
	// write, and every byte of it is stored with every user.
	q.op = base64.RawURLEncoding.EncodeToString(d.Sum(nil)[:12])
	return raw, nil
}

// clip shortens a client's string for an error detail.
func clip(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	return s[:most] + "…"
}

// DuplicateKey reports the first key that appears twice in one object of
// the JSON text raw, at any depth: first as it was given first, second as
// it was given again. Keys are compared after decoding their escapes and
// case-insensitively, as SCIM compares attribute names (RFC 7643 §2.1); a
// JSON decoder would keep the last one silently. It is one pass over raw
// with an explicit stack, no recursion, and one map entry per key. It
// does not validate the JSON (the decoder does); on malformed input it
// reports what it saw. The admin API refuses such bodies too.
func DuplicateKey(raw []byte) (first, second string, dup bool) {
	type key struct {
		object int // which object, numbered in order of appearance
		name   string
	}
	seen := map[key]string{}
	var stack []int // per open container: its object number, or -1 for an array
	objects := 0
	expectKey := false
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{':
			objects++
			stack = append(stack, objects)
			expectKey = true
		case '[':
			stack = append(stack, -1)
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1] > 0
		case '"':
			start, escaped := i, false
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					escaped = true
					i++
				}
			}
			if !expectKey || i >= len(raw) {
				continue
			}
			expectKey = false
			name := string(raw[start+1 : i])
			if escaped || !utf8.ValidString(name) { // decoded as the JSON decoder does
				var s string
				if json.Unmarshal(raw[start:i+1], &s) == nil {
					name = s
				}
			}
			k := key{stack[len(stack)-1], strings.ToLower(name)}
			if prev, ok := seen[k]; ok {
				return prev, name, true
			}
			seen[k] = name
		}
	}
	return "", "", false
}

// decodeObject parses a JSON object keeping numbers exact.
func decodeObject(raw []byte) (map[string]any, *Error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, badRequest(typeInvalidSyntax, "the request body is not a valid JSON object")
	}
	if d.More() {
		return nil, badRequest(typeInvalidSyntax, "the request body has trailing data after the JSON object")
	}
	return m, nil
}
