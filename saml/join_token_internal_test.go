package saml

import (
	"strings"
	"testing"
)

func TestJoinTokenRoundTrip(t *testing.T) {
	tok := newJoinToken("5f0c2a8e-1b7d-4c39-9a52-0e6f4b3d2c1a", "finance-eu")
	parts := strings.Split(tok.raw, ".")
	if len(parts) != 3 || len(parts[2]) != 43 {
		t.Fatalf("token %q is not <account>.<workspace>.<43-char secret>", tok.raw)
	}
	got, ok := parseJoinToken(tok.raw)
	if !ok || got != tok {
		t.Fatalf("parseJoinToken(%q) = %+v, %v", tok.raw, got, ok)
	}
	if other := newJoinToken(tok.accountID, tok.workspace); other.raw == tok.raw || other.hash() == tok.hash() {
		t.Fatal("two tokens for the same account and workspace are equal")
	}
	if h := tok.hash(); len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("hash %q is not hex SHA-256", h)
	}
}

func TestParseJoinTokenRejectsMalformed(t *testing.T) {
	secret := strings.Repeat("A", 43)
	for _, raw := range []string{
		"",
		"acct.ws",
		"acct.ws." + secret + ".x",
		"acct.WS." + secret,            // workspace ids are lower-case slugs
		"acct.ws." + secret[:42],       // short secret
		"acct.ws." + secret[:42] + "+", // not base64url
		"acct/1.ws." + secret,          // not an account id
		".ws." + secret,                // empty account
		"acct.-ws." + secret,           // not a slug
		strings.Repeat("a", 129) + ".ws." + secret, // account id too long
	} {
		if tok, ok := parseJoinToken(raw); ok {
			t.Errorf("parseJoinToken(%q) accepted: %+v", raw, tok)
		}
	}
	if _, ok := parseJoinToken("acct_1-x.ws-2." + secret); !ok {
		t.Error("a well-formed token was refused")
	}
}

func TestMaskEmail(t *testing.T) {
	cases := map[string]string{
		"Jane.Doe@Example.com": "Ja***@Example.com",
		"jo@example.com":       "j***@example.com",
		"j@example.com":        "j***@example.com",
		"not-an-email":         "your email address",
		"@example.com":         "your email address",
		"ñu@example.com":       "ñ***@example.com",
		"élodie@example.fr":    "él***@example.fr",
	}
	for in, want := range cases {
		if got := maskEmail(in); got != want {
			t.Errorf("maskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}
