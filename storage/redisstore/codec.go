package redisstore

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
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

var deflaters = sync.Pool{New: func() any {
	w, err := flate.NewWriterDict(io.Discard, flate.BestCompression, deflateDict1)
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
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(js); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
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
