package server

import (
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

// TestAdminTokensLookupMatchesOnlyATokenOfTheSet: the constant-time lookup
// accepts exactly a token of the set (surrounding space aside), not a
// prefix, an extension or another letter case, and names it; a new set
// replaces the old one whole.
func TestAdminTokensLookupMatchesOnlyATokenOfTheSet(t *testing.T) {
	const ci, ops = "adm_Q2h4dG9rZW4tZm9yLXRoZS1hZG1pbi1hcGk", "adm_b3BzLXRva2VuLWZvci10aGUtYWRtaW4tYXBp"
	var set AdminTokens
	if _, ok := set.Lookup(""); ok {
		t.Error("the empty set accepted the empty token")
	}
	if err := set.Set([]AdminToken{{Name: "ci", Token: ci}, {Name: "ops", Token: ops}}); err != nil {
		t.Fatal(err)
	}
	for presented, want := range map[string]string{
		ci:                  "ci",
		ops:                 "ops",
		" " + ci + "\t":     "ci",
		ci[:len(ci)-1]:      "",
		ci + "x":            "",
		strings.ToUpper(ci): "",
		"":                  "",
	} {
		if got, ok := set.Lookup(presented); got != want || ok != (want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", presented, got, ok, want)
		}
	}
	if err := set.Set([]AdminToken{{Name: "ops", Token: ops}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Lookup(ci); ok {
		t.Error("a removed token still matches")
	}
	for _, bad := range [][]AdminToken{
		{{Name: "ci", Token: ci}, {Name: "ci", Token: ops}},
		{{Name: "", Token: ci}},
		{{Name: "has space", Token: ci}},
		{{Name: "blank", Token: "  "}},
	} {
		if err := set.Set(bad); err == nil {
			t.Errorf("Set(%v names) accepted", len(bad))
		} else if strings.Contains(err.Error(), ci) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	if names := set.Names(); len(names) != 1 || names[0] != "ops" {
		t.Errorf("a refused set changed the tokens: %v", names)
	}
}
