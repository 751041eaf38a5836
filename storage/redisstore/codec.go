package redisstore

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	kflate "github.com/klauspost/compress/flate"
)

// User records are the bulk of Redis memory, so they are stored deflated
// with a preset dictionary of the JSON that typical IdP users share. A
// stored value is either plain JSON (first byte '{') or codecDeflate1
// followed by the deflate stream. The dictionary below is part of the
// stored format: never edit it; add a new codec byte and dictionary
// instead, and keep decoding the old one. See docs/storage.md.
const codecDeflate1 byte = 0x01

var deflateDict1 = []byte(`"ac":true,"vf":true,"s":"scim","s":"jit","r":{"d":"Admin","t":"Analyst","p":"NoAccess"},` +
	`"r":{"d":"Operator","t":"Operator","p":"Operator"},"at":{"displayName":"","emails":[{"primary":true,` +
	`"type":"work","value":"@gmail.com"}],"locale":"en-US","name":{"familyName":"","givenName":"",` +
	`"formatted":""},"title":"","phoneNumbers":[{"type":"work","value":""}],` +
	`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"","employeeNumber":"",` +
	`"manager":{"value":""}}},"c":17,"m":17,"ver":1}{"v":1,"id":"","a":"","un":"","x":"","em":["`)

// Records are written by klauspost/compress's deflate and read by the
// standard library's inflate: both speak plain RFC 1951 with a preset
// dictionary, so the stored format does not depend on either. The
// standard library's writer clears 640 KiB of match tables on every
// Reset, which made compressing one ~0.5 KB record cost 20 µs (60 µs
// under load, a visible share of a JIT sign-in); klauspost's level 5
// takes about 9 µs for records within a few bytes of the same size. The
// module was already in the build, through
// Prometheus's client.
const deflateLevel = 5

var deflaters = sync.Pool{New: func() any {
	w, err := kflate.NewWriterDict(io.Discard, deflateLevel, deflateDict1)
	if err != nil {
		panic(err) // only for an invalid level
	}
	return w
}}

// inflater is a pooled decompressor with its source reader, so unpack
// allocates neither (flate.NewReaderDict builds large tables per call).
type inflater struct {
	src strings.Reader
	r   io.ReadCloser
}

var inflaters = sync.Pool{New: func() any {
	f := &inflater{}
	f.r = flate.NewReaderDict(&f.src, deflateDict1)
	return f
}}

// pack compresses a JSON record for storage.
func pack(js []byte) (string, error) {
	var buf bytes.Buffer
	buf.Grow(len(js)/2 + 8)
	buf.WriteByte(codecDeflate1)
	w := deflaters.Get().(*kflate.Writer)
	defer deflaters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(js); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	if buf.Len() > len(js) {
		// Tiny records: klauspost's levels up to 6 store them rather
		// than compress, which only adds framing. Plain JSON is a valid
		// stored form (see unpack).
		return string(js), nil
	}
	return buf.String(), nil
}

// unpack returns the JSON of a stored record.
func unpack(s string) ([]byte, error) { return unpackTo(nil, s) }

// unpackTo appends the JSON of a stored record to dst.
func unpackTo(dst []byte, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("redisstore: empty record")
	}
	switch s[0] {
	case '{':
		return append(dst, s...), nil
	case codecDeflate1:
		f := inflaters.Get().(*inflater)
		defer inflaters.Put(f)
		f.src.Reset(s[1:])
		if err := f.r.(flate.Resetter).Reset(&f.src, deflateDict1); err != nil {
			return nil, err
		}
		if need := 4 * len(s); cap(dst)-len(dst) < need {
			dst = slices.Grow(dst, need)
		}
		for {
			if len(dst) == cap(dst) {
				dst = slices.Grow(dst, len(dst))
			}
			n, err := f.r.Read(dst[len(dst):cap(dst)])
			dst = dst[:len(dst)+n]
			if err == io.EOF {
				return dst, nil
			}
			if err != nil {
				return nil, fmt.Errorf("redisstore: inflate record: %w", err)
			}
		}
	}
	return nil, fmt.Errorf("redisstore: record codec %#x unknown", s[0])
}
