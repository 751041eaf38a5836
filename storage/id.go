package storage

import (
	"crypto/rand"
	"encoding/base32"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// idEncoding is lower-case base32 without padding: ids are safe in URLs,
// in Redis keys and in systems that compare them case-insensitively.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IDLen is the length of the ids NewID makes.
const IDLen = 20

// NewID returns a new random resource id: 20 characters carrying 100
// random bits from crypto/rand.
//
// Ids are opaque to clients (RFC 7643 §3.1), so their form is ours to
// choose. They are short because each user's id is stored in five
// places and its account's id in three (docs/storage.md): 20 characters
// fit Redis's 24-byte allocation class where a 36-character UUID takes
// 48: about 150 bytes less per user. 100 bits
// leave collisions negligible (and the create scripts refuse a taken id
// anyway). Ids made before this form (UUIDs) stay valid: nothing parses
// an id.
func NewID() string {
	var b [13]byte // 104 bits, encoded to 21 characters, cut to 20
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand.Read does not fail on supported platforms
	}
	return idEncoding.EncodeToString(b[:])[:IDLen]
}

// ValidWorkspaceID reports whether id is a workspace id: a slug matching
// ^[a-z0-9][a-z0-9-]{0,62}$. It is a byte loop because every request
// checks it (the server, the SCIM handler, the store).
func ValidWorkspaceID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// FoldKey is the form in which userNames and emails are compared for
// uniqueness and looked up: without surrounding white space, lower-cased
// and in Unicode normalization form C, so that "JOSÉ@x" typed with a
// precomposed É and "josé@x" typed with e and a combining accent are one
// key. Values are stored as sent; only keys are folded.
func FoldKey(s string) string {
	return norm.NFC.String(strings.ToLower(norm.NFC.String(strings.TrimSpace(s))))
}
