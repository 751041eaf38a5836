package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/storage"
	"github.com/scimjit/scimjit/storage/redistest"
)

func secrets(env map[string]string, files map[string]string) server.SecretSource {
	return server.SecretSource{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		},
	}
}

func hexSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestParseBootstrapReportsEveryProblem(t *testing.T) {
	_, err := server.ParseBootstrap([]byte(`
workspaces:
  - id: Bad_ID
    name: ""
    settings:
      jit: {roleSync: sometimes, defaultRole: Boss}
      login: {emailDomains: ["*.example.com"]}
    scimTokens:
      - name: both
        sha256: abc
        env: X
      - sha256: nothex
  - id: ok
    name: OK
  - id: ok
    name: again
`))
	if err == nil {
		t.Fatal("invalid file accepted")
	}
	for _, want := range []string{"workspaces[0]: id", "workspaces[0]: name", "settings.jit.roleSync", "settings.jit.defaultRole", "settings.login.emailDomains",
		"scimTokens[0]: set exactly one", "scimTokens[0]: sha256", "scimTokens[1]: name", "scimTokens[1]: sha256", "workspaces[2]: id \"ok\" is declared twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if _, err := server.ParseBootstrap([]byte("workspaces:\n  - id: a\n    name: A\n    colour: red\n")); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestApplyBootstrapIsIdempotent(t *testing.T) {
	store := redistest.NewStore(t)
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	const fileTok, envTok, hashedTok = "sjt_from-file", "sjt_from-env", "sjt_hashed"
	src := secrets(map[string]string{"FIN_TOKEN": envTok}, map[string]string{"/secrets/fin": fileTok + "\n"})
	b, err := server.ParseBootstrap([]byte(`
workspaces:
  - id: finance
    name: Finance
    settings:
      jit: {enabled: true, defaultRole: Auditor}
      customRoles: [Auditor]
      idp: {allowSHA1: true}
      login: {emailDomains: [Finance.EXAMPLE]}
    scimTokens:
      - {name: okta, sha256: ` + hexSHA(hashedTok) + `}
      - {name: entra, env: FIN_TOKEN}
      - {name: file, file: /secrets/fin}
  - id: legal
    name: Legal
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := server.ApplyBootstrap(ctx, store, log, b, src); err != nil {
		t.Fatal(err)
	}
	fin, err := store.GetWorkspace(ctx, "finance")
	if err != nil || !fin.Settings.JIT.Enabled || fin.Settings.JIT.DefaultRole != "Auditor" || !fin.Settings.IdP.AllowSHA1 || fin.Version != 1 {
		t.Fatalf("finance %+v, %v", fin, err)
	}
	if ws, err := store.WorkspacesByEmailDomain(ctx, "finance.example"); err != nil || len(ws) != 1 || ws[0].ID != "finance" {
		t.Fatalf("workspaces of finance.example: %+v, %v", ws, err)
	}
	legal, err := store.GetWorkspace(ctx, "legal")
	if err != nil || legal.Settings.JIT != storage.DefaultSettings().JIT {
		t.Fatalf("legal %+v, %v", legal, err)
	}
	toks, err := store.ListSCIMTokens(ctx, "finance")
	if err != nil || len(toks) != 3 {
		t.Fatalf("tokens %+v, %v", toks, err)
	}
	want := map[string]string{"okta": hashedTok, "entra": envTok, "file": fileTok}
	for _, tok := range toks {
		if hex.EncodeToString(tok.Hash) != hexSHA(want[tok.Name]) {
			t.Errorf("token %s stored with the wrong hash", tok.Name)
		}
	}

	// Again: nothing changes, not even the version.
	if err := server.ApplyBootstrap(ctx, store, log, b, src); err != nil {
		t.Fatal(err)
	}
	fin2, _ := store.GetWorkspace(ctx, "finance")
	toks2, _ := store.ListSCIMTokens(ctx, "finance")
	if fin2.Version != 1 || len(toks2) != 3 {
		t.Fatalf("second apply changed things: version %d, %d tokens", fin2.Version, len(toks2))
	}
	events, _ := store.ListEvents(ctx, "finance", "", 100)
	if len(events) != 4 { // created + 3 tokens
		t.Errorf("events after two applies: %+v", events)
	}

	// An admin change of an undeclared setting survives; a declared one is
	// put back; a token added by an admin stays.
	if _, err := store.UpdateWorkspace(ctx, "finance", func(w *storage.Workspace) error {
		w.Settings.JIT.RoleSync = storage.RoleSyncEveryLogin
		w.Settings.JIT.Enabled = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateSCIMToken(ctx, "finance", storage.SCIMToken{ID: "admin-made", Name: "x", Hash: server.HashSCIMToken("other")}); err != nil {
		t.Fatal(err)
	}
	if err := server.ApplyBootstrap(ctx, store, log, b, src); err != nil {
		t.Fatal(err)
	}
	fin3, _ := store.GetWorkspace(ctx, "finance")
	toks3, _ := store.ListSCIMTokens(ctx, "finance")
	if !fin3.Settings.JIT.Enabled || fin3.Settings.JIT.RoleSync != storage.RoleSyncEveryLogin || len(toks3) != 4 {
		t.Fatalf("third apply: %+v, %d tokens", fin3.Settings.JIT, len(toks3))
	}
}

func TestApplyBootstrapChecksSecretsBeforeWriting(t *testing.T) {
	store := redistest.NewStore(t)
	b, err := server.ParseBootstrap([]byte(`
workspaces:
  - id: a
    name: A
  - id: b
    name: B
    scimTokens: [{name: t, env: MISSING}, {name: u, file: /nope}]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = server.ApplyBootstrap(t.Context(), store, slog.New(slog.DiscardHandler), b, secrets(nil, nil))
	if err == nil || !strings.Contains(err.Error(), "MISSING") || !strings.Contains(err.Error(), "/nope") {
		t.Fatalf("err = %v", err)
	}
	if _, err := store.GetWorkspace(t.Context(), "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("workspace a was created although the file could not be applied: %v", err)
	}
}
