package storage

import (
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := NewID()
		if len(id) != IDLen {
			t.Fatalf("NewID() = %q: length %d, want %d", id, len(id), IDLen)
		}
		if strings.Trim(id, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("NewID() = %q: outside lower-case base32", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValidWorkspaceID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "finance": true, "hr-2": true, "0ws": true, strings.Repeat("a", 63): true,
		"": false, "-a": false, "A": false, "a_b": false, "a b": false, "a\n": false, "é": false,
		strings.Repeat("a", 64): false, "{ws}": false, "a:b": false,
	} {
		if got := ValidWorkspaceID(id); got != want {
			t.Errorf("ValidWorkspaceID(%q) = %v, want %v", id, got, want)
		}
	}
}
