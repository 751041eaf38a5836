package server

import (
	"crypto/sha256"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestIPExtractor(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		remote  string
		xff     string
		want    string
	}{
		{"direct ignores XFF", nil, "10.0.0.5:1234", "203.0.113.9", "10.0.0.5"},
		{"direct ignores XFF from loopback", nil, "127.0.0.1:1234", "203.0.113.9", "127.0.0.1"},
		{"trusted proxy", []string{"10.0.0.0/8"}, "10.0.0.5:1234", "203.0.113.9", "203.0.113.9"},
		{"trusted chain", []string{"10.0.0.0/8"}, "10.0.0.5:1234", "203.0.113.9, 10.1.1.1", "203.0.113.9"},
		{"spoofed entry before the client", []string{"10.0.0.0/8"}, "10.0.0.5:1234", "1.2.3.4, 203.0.113.9", "203.0.113.9"},
		{"untrusted peer", []string{"10.0.0.0/8"}, "198.51.100.7:1234", "203.0.113.9", "198.51.100.7"},
		{"private peer not trusted by default", []string{"10.0.0.0/8"}, "192.168.1.1:1234", "203.0.113.9", "192.168.1.1"},
		{"loopback not trusted by default", []string{"10.0.0.0/8"}, "127.0.0.1:1234", "203.0.113.9", "127.0.0.1"},
		{"ipv6 proxy", []string{"fd00::/8"}, "[fd00::1]:1234", "2001:db8::7", "2001:db8::7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var prefixes []netip.Prefix
			for _, s := range tc.trusted {
				prefixes = append(prefixes, netip.MustParsePrefix(s))
			}
			req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
			req.RemoteAddr = tc.remote
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := ipExtractor(prefixes)(req); got != tc.want {
				t.Errorf("client ip %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBodyLimitClassByRoute(t *testing.T) {
	cases := map[string]int{
		"/scim/v2/:ws/*":          bodySCIM,
		"/scim/v2/:ws":            bodySCIM,
		"/saml/:ws/acs":           bodyOwn, // the SAML service applies SAMLBodyLimit itself
		"/admin/v1/workspaces":    bodyAdmin,
		"/saml/:ws/login":         bodyDefault,
		"/join/:token":            bodyDefault,
		"":                        bodyDefault,
		"/admin/v1/outbox":        bodyAdmin,
		"/saml/:ws/metadata":      bodyDefault,
		"/scim/v2/:ws/Users/.sea": bodySCIM,
	}
	for route, want := range cases {
		if got := bodyLimitClass(route); got != want {
			t.Errorf("%q: class %d, want %d", route, got, want)
		}
	}
}

// TestAdminTokenMatchesOnlyTheToken: the constant-time comparison accepts
// exactly the admin token (surrounding space aside), not a prefix, an
// extension or another letter case.
func TestAdminTokenMatchesOnlyTheToken(t *testing.T) {
	const token = "adm_Q2h4dG9rZW4tZm9yLXRoZS1hZG1pbi1hcGk"
	want := sha256.Sum256([]byte(token))
	for presented, ok := range map[string]bool{
		token:                  true,
		" " + token + "\t":     true,
		token[:len(token)-1]:   false,
		token + "x":            false,
		strings.ToUpper(token): false,
		"":                     false,
	} {
		if got := adminTokenMatches(want, presented); got != ok {
			t.Errorf("adminTokenMatches(%q) = %v, want %v", presented, got, ok)
		}
	}
}
