package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// DefaultAdminTokenName is the name of Config.AdminToken (and of
// --admin-token) in logs and event actors.
const DefaultAdminTokenName = "default"

// AdminToken is one named bearer token of the admin API.
type AdminToken struct {
	// Name identifies the token in the access log and in admin events'
	// actor ("admin:<name>"); ValidAdminTokenName.
	Name string
	// Token is the secret itself.
	Token string
}

// AdminTokens is the set of admin API tokens. Set replaces the whole set at
// once, so tokens rotate without a restart; only their SHA-256 hashes are
// kept. It is safe for concurrent use; the zero value holds no token.
type AdminTokens struct {
	set atomic.Pointer[[]hashedAdminToken]
}

type hashedAdminToken struct {
	name string
	hash [sha256.Size]byte
}

// ValidAdminTokenName reports whether name is 1 to 64 characters of
// [A-Za-z0-9._-]: it goes into log lines and event actors as is.
func ValidAdminTokenName(name string) bool { return ValidRequestID(name) }

// Set replaces the tokens with tokens. It refuses, keeping the current set,
// an invalid or repeated name and an empty token; the error names the
// token, never shows it.
func (a *AdminTokens) Set(tokens []AdminToken) error {
	set := make([]hashedAdminToken, 0, len(tokens))
	seen := map[string]bool{}
	for _, t := range tokens {
		switch {
		case !ValidAdminTokenName(t.Name):
			return fmt.Errorf("admin token name %q: use 1 to 64 letters, digits, '.', '_' or '-'", t.Name)
		case seen[t.Name]:
			return fmt.Errorf("admin token name %q is given twice", t.Name)
		case strings.TrimSpace(t.Token) == "":
			return fmt.Errorf("admin token %q is empty", t.Name)
		}
		seen[t.Name] = true
		set = append(set, hashedAdminToken{name: t.Name, hash: sha256.Sum256([]byte(strings.TrimSpace(t.Token)))})
	}
	a.set.Store(&set)
	return nil
}

// Names lists the token names.
func (a *AdminTokens) Names() []string {
	var names []string
	for _, t := range a.tokens() {
		names = append(names, t.name)
	}
	return names
}

func (a *AdminTokens) tokens() []hashedAdminToken {
	if a == nil {
		return nil
	}
	if p := a.set.Load(); p != nil {
		return *p
	}
	return nil
}

// Lookup returns the name of the token presented (surrounding space
// ignored). It hashes the presented token and compares the hash with every
// token's in constant time, without stopping at a match, so the time taken
// tells nothing about which token, or how much of one, matched.
func (a *AdminTokens) Lookup(presented string) (name string, ok bool) {
	got := sha256.Sum256([]byte(strings.TrimSpace(presented)))
	for _, t := range a.tokens() {
		if subtle.ConstantTimeCompare(got[:], t.hash[:]) == 1 {
			name, ok = t.name, true
		}
	}
	return name, ok
}

// adminTokensFor is cfg's token source: Config.AdminTokens, or else
// Config.AdminToken as the one token DefaultAdminTokenName.
func adminTokensFor(cfg Config) (*AdminTokens, error) {
	if cfg.AdminTokens != nil {
		return cfg.AdminTokens, nil
	}
	tokens := &AdminTokens{}
	if cfg.AdminToken != "" {
		if err := tokens.Set([]AdminToken{{Name: DefaultAdminTokenName, Token: cfg.AdminToken}}); err != nil {
			return nil, errors.New("server: config: AdminToken is blank")
		}
	}
	return tokens, nil
}
