package redisstore

import (
	"strings"
	"testing"
)

func TestCodecRoundTripAndPlainJSON(t *testing.T) {
	js := `{"v":1,"id":"u1","un":"jane@example.com","r":{"d":"Operator"},"c":1,"m":1,"ver":3}`
	packed, err := pack([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if packed[0] != codecDeflate1 || len(packed) >= len(js) {
		t.Fatalf("packed = %d bytes with codec %#x; want smaller than %d with %#x", len(packed), packed[0], len(js), codecDeflate1)
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
