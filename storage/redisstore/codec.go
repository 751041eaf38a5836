package redisstore

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
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

var inflaters = sync.Pool{New: func() any {
	return flate.NewReaderDict(bytes.NewReader(nil), deflateDict1)
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
func unpack(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("redisstore: empty record")
	}
	switch s[0] {
	case '{':
		return []byte(s), nil
	case codecDeflate1:
		r := inflaters.Get().(io.ReadCloser)
		defer inflaters.Put(r)
		if err := r.(flate.Resetter).Reset(bytes.NewReader([]byte(s[1:])), deflateDict1); err != nil {
			return nil, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("redisstore: inflate record: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("redisstore: record codec %#x unknown", s[0])
}
