package redisstore

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestCodecRoundTripAndPlainJSON(t *testing.T) {
	js := `{"v":1,"id":"u1","un":"jane@example.com","r":{"d":"Operator"},"c":1,"m":1,"ver":3}`
	packed, err := pack([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if len(packed) > len(js) {
		t.Fatalf("packed = %d bytes with codec %#x; want at most the JSON's %d", len(packed), packed[0], len(js))
	}
	big := `{"v":1,"id":"u1","un":"jane@example.com","r":{"d":"Operator","t":"Operator","p":"Operator"},` +
		`"at":{"displayName":"Jane Doe","locale":"en-US","name":{"familyName":"Doe","givenName":"Jane"}},"c":1,"m":1,"ver":3}`
	if p, err := pack([]byte(big)); err != nil || p[0] != codecDeflate1 || len(p) >= len(big)/2 {
		t.Fatalf("pack of a %d-byte record = %d bytes (codec %#x), %v; want compressed to under half", len(big), len(p), p[0], err)
	}
	for _, stored := range []string{packed, js} { // compressed, and plain JSON as older writers could store
		u, err := decodeUser("ws", stored)
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != "u1" || u.UserName != "jane@example.com" || u.Version != 3 || u.Roles.Dev != "Operator" || u.WorkspaceID != "ws" {
			t.Fatalf("decoded %+v", u)
		}
	}
	if _, err := unpack("\x7fgarbage"); err == nil || !strings.Contains(err.Error(), "codec") {
		t.Fatalf("unknown codec: err = %v", err)
	}
	if _, err := decodeUser("ws", `{"v":2}`); err == nil {
		t.Fatalf("a record of an unknown wire version decoded without error")
	}
}

// TestCodecStandardDeflate pins that the stored format is plain deflate
// with the preset dictionary, whichever library wrote it: records written
// before pack moved to klauspost/compress (by the standard library's
// writer at BestCompression) decode, and what pack writes now is what the
// standard library's inflate reads.
func TestCodecStandardDeflate(t *testing.T) {
	u := benchUser()
	for i := 0; i < 50; i++ {
		u.UserName = strings.Repeat("x", i) + "@example.com"
		u.Attributes["displayName"] = strings.Repeat("Name ", i)
		js, err := json.Marshal(userWire{V: 1, ID: u.ID, Account: u.AccountID, UserName: u.UserName, Attrs: u.Attributes, Version: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		var old bytes.Buffer
		old.WriteByte(codecDeflate1)
		w, err := flate.NewWriterDict(&old, flate.BestCompression, deflateDict1)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(js)
		w.Close()
		packed, err := pack(js)
		if err != nil {
			t.Fatal(err)
		}
		for name, stored := range map[string]string{"standard library writer": old.String(), "pack": packed} {
			got, err := unpack(stored)
			if err != nil || !bytes.Equal(got, js) {
				t.Fatalf("record %d written by %s: unpack = %q, %v; want %q", i, name, got, err, js)
			}
		}
		// pack's output through the standard library's reader directly.
		got, err := io.ReadAll(flate.NewReaderDict(strings.NewReader(packed[1:]), deflateDict1))
		if err != nil || !bytes.Equal(got, js) {
			t.Fatalf("record %d: standard inflate of pack's output = %q, %v", i, got, err)
		}
	}
}
