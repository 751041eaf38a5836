package server

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"sigs.k8s.io/yaml"

	"github.com/scimjit/scimjit/storage"
)

// Bootstrap is the declarative workspace file given with --bootstrap
// (docs/configuration.md). Its keys are those of the admin API's JSON.
type Bootstrap struct {
	Workspaces []BootstrapWorkspace `json:"workspaces"`
}

// BootstrapWorkspace declares one workspace. Settings left out keep their
// current (or default) value.
type BootstrapWorkspace struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Settings   *SettingsPatch   `json:"settings,omitempty"`
	SCIMTokens []BootstrapToken `json:"scimTokens,omitempty"`
}

// BootstrapToken declares a SCIM token that must be live. Exactly one of
// SHA256 (hex hash of the token), Env (name of an environment variable
// holding the token) or File (path of a file holding the token) is set.
// The file itself never holds a usable secret unless File/Env point to one.
type BootstrapToken struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256,omitempty"`
	Env    string `json:"env,omitempty"`
	File   string `json:"file,omitempty"`
}

// SecretSource resolves the Env and File references of bootstrap tokens.
// cmd/scimjit passes os.LookupEnv and os.ReadFile; the server package never
// reads the environment itself.
type SecretSource struct {
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
	// HTTPClient downloads idp.metadataURL (default: 15s timeout), as
	// Config.MetadataClient; MetadataAllowPrivateHosts is
	// Config.MetadataAllowPrivateHosts.
	HTTPClient                *http.Client
	MetadataAllowPrivateHosts bool
	// MetadataRefreshInterval is Config.MetadataRefreshInterval (default
	// DefaultMetadataRefreshInterval).
	MetadataRefreshInterval time.Duration
}

// ParseBootstrap parses a bootstrap file strictly (unknown keys are errors)
// and validates it, reporting every problem at once.
func ParseBootstrap(data []byte) (*Bootstrap, error) {
	var b Bootstrap
	if err := yaml.UnmarshalStrict(data, &b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var v ValidationError
	seen := map[string]bool{}
	for i, w := range b.Workspaces {
		at := fmt.Sprintf("workspaces[%d]", i)
		if seen[w.ID] {
			v.add("%s: id %q is declared twice", at, w.ID)
		}
		seen[w.ID] = true
		if _, err := newWorkspace(createWorkspaceRequest{ID: w.ID, Name: w.Name, Settings: w.Settings}); err != nil {
			for _, p := range err.(*ValidationError).Problems {
				v.add("%s: %s", at, p)
			}
		}
		for j, t := range w.SCIMTokens {
			tat := fmt.Sprintf("%s.scimTokens[%d]", at, j)
			if !validTokenName(t.Name) || t.Name == "" {
				v.add("%s: name is required (at most 100 characters)", tat)
			}
			n := 0
			for _, s := range []string{t.SHA256, t.Env, t.File} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				v.add("%s: set exactly one of sha256, env, file", tat)
			}
			if t.SHA256 != "" {
				if h, err := hex.DecodeString(t.SHA256); err != nil || len(h) != 32 {
					v.add("%s: sha256 must be 64 hex digits", tat)
				}
			}
		}
	}
	if err := v.orNil(); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return &b, nil
}

// errNoChange aborts an update that would change nothing.
var errNoChange = errors.New("no change")

// ApplyBootstrap makes the store match b: it creates missing workspaces,
// updates the name and the declared settings of existing ones (only when
// something differs), and adds declared SCIM tokens whose hash is not live
// yet. It never deletes anything, so applying the same file again changes
// nothing. Token secrets are resolved through src and never logged.
func ApplyBootstrap(ctx context.Context, store storage.Store, log *slog.Logger, b *Bootstrap, src SecretSource) error {
	// Resolve every secret first, so that a missing one fails before any
	// write.
	hashes := make([][][]byte, len(b.Workspaces))
	var v ValidationError
	for i, w := range b.Workspaces {
		for j, t := range w.SCIMTokens {
			h, err := resolveTokenHash(t, src)
			if err != nil {
				v.add("bootstrap: workspaces[%d].scimTokens[%d] (%s/%s): %v", i, j, w.ID, t.Name, err)
			}
			hashes[i] = append(hashes[i], h)
		}
	}
	if err := v.orNil(); err != nil {
		return err
	}
	// A metadata URL that cannot be downloaded now is recorded and retried
	// by the refresh loop (not strict): it never stops startup.
	client := newMetadataClient(src.HTTPClient, src.MetadataAllowPrivateHosts)
	interval := cmp.Or(src.MetadataRefreshInterval, DefaultMetadataRefreshInterval)
	for i := range b.Workspaces {
		wlog := log.With("workspace", b.Workspaces[i].ID)
		if err := resolveMetadataURL(ctx, client, wlog, b.Workspaces[i].Settings, interval, false); err != nil {
			v.add("bootstrap: workspaces[%d] (%s): %v", i, b.Workspaces[i].ID, err)
		}
	}
	if err := v.orNil(); err != nil {
		return err
	}
	for i, w := range b.Workspaces {
		if err := applyBootstrapWorkspace(ctx, store, log, w, hashes[i]); err != nil {
			return fmt.Errorf("bootstrap: workspace %q: %w", w.ID, err)
		}
	}
	return nil
}

func resolveTokenHash(t BootstrapToken, src SecretSource) ([]byte, error) {
	switch {
	case t.SHA256 != "":
		return hex.DecodeString(t.SHA256)
	case t.Env != "":
		if src.LookupEnv == nil {
			return nil, errors.New("environment lookups are not available")
		}
		val, ok := src.LookupEnv(t.Env)
		if !ok || strings.TrimSpace(val) == "" {
			return nil, fmt.Errorf("environment variable %s is not set", t.Env)
		}
		return HashSCIMToken(strings.TrimSpace(val)), nil
	default:
		if src.ReadFile == nil {
			return nil, errors.New("file reads are not available")
		}
		data, err := src.ReadFile(t.File)
		if err != nil {
			return nil, fmt.Errorf("read token file %s: %w", t.File, err)
		}
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			return nil, fmt.Errorf("token file %s is empty", t.File)
		}
		return HashSCIMToken(tok), nil
	}
}

func applyBootstrapWorkspace(ctx context.Context, store storage.Store, log *slog.Logger, w BootstrapWorkspace, hashes [][]byte) error {
	log = log.With("workspace", w.ID)
	_, err := store.GetWorkspace(ctx, w.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		ws, verr := newWorkspace(createWorkspaceRequest{ID: w.ID, Name: w.Name, Settings: w.Settings})
		if verr != nil {
			return verr
		}
		if _, err := store.CreateWorkspace(ctx, ws); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			return fmt.Errorf("create: %w", err)
		} else if err == nil {
			appendAdminEvent(ctx, store, log, w.ID, "admin.workspace.created", map[string]string{"name": w.Name, "source": "bootstrap"})
			log.InfoContext(ctx, "bootstrap: workspace created")
			break
		}
		// Created concurrently by another instance: update it like an
		// existing one.
		fallthrough
	case err == nil:
		var changed []string
		_, err := store.UpdateWorkspace(ctx, w.ID, func(ws *storage.Workspace) error {
			before := *ws
			before.Settings.CustomRoles = slices.Clone(ws.Settings.CustomRoles)
			ws.Name = w.Name
			changed = w.Settings.apply(&ws.Settings)
			if err := normalizeSettings(&ws.Settings); err != nil {
				return err
			}
			if before.Name == ws.Name && settingsEqual(before.Settings, ws.Settings) {
				return errNoChange
			}
			ws.UpdatedAt = time.Now().UTC()
			return nil
		})
		switch {
		case errors.Is(err, errNoChange):
			log.DebugContext(ctx, "bootstrap: workspace unchanged")
		case err != nil:
			return fmt.Errorf("update: %w", err)
		default:
			appendAdminEvent(ctx, store, log, w.ID, "admin.workspace.updated",
				map[string]string{"fields": strings.Join(changed, ","), "source": "bootstrap"})
			log.InfoContext(ctx, "bootstrap: workspace updated", "fields", changed)
		}
	default:
		return fmt.Errorf("get: %w", err)
	}

	live, err := store.ListSCIMTokens(ctx, w.ID)
	if err != nil {
		return fmt.Errorf("list scim tokens: %w", err)
	}
	for j, h := range hashes {
		if tokenLive(live, h) {
			continue
		}
		t := storage.SCIMToken{ID: uuid.NewString(), Name: w.SCIMTokens[j].Name, Hash: h, CreatedAt: time.Now().UTC()}
		if err := store.CreateSCIMToken(ctx, w.ID, t); err != nil {
			return fmt.Errorf("create scim token %q: %w", t.Name, err)
		}
		live = append(live, t)
		appendAdminEvent(ctx, store, log, w.ID, "admin.scim_token.created",
			map[string]string{"tokenId": t.ID, "name": t.Name, "source": "bootstrap"})
		log.InfoContext(ctx, "bootstrap: scim token added", "token_id", t.ID, "name", t.Name)
	}
	return nil
}

func tokenLive(live []storage.SCIMToken, h []byte) bool {
	for _, t := range live {
		if len(t.Hash) == len(h) && subtle.ConstantTimeCompare(t.Hash, h) == 1 {
			return true
		}
	}
	return false
}

// settingsEqual compares settings, treating a nil and an empty role list
// alike. Of the metadata refresh state only the error counts: a bootstrap
// that downloads the same metadata again writes nothing, one whose
// download failed records why.
func settingsEqual(a, b storage.Settings) bool {
	ai, bi := a.IdP, b.IdP
	ai.MetadataRefresh = storage.MetadataRefresh{LastError: ai.MetadataRefresh.LastError}
	bi.MetadataRefresh = storage.MetadataRefresh{LastError: bi.MetadataRefresh.LastError}
	return a.JIT == b.JIT && ai == bi && slices.Equal(a.CustomRoles, b.CustomRoles) &&
		a.Roles.GroupRulesWin == b.Roles.GroupRulesWin && a.Roles.AppRoles == b.Roles.AppRoles &&
		slices.Equal(a.Roles.GroupRules, b.Roles.GroupRules) && slices.Equal(a.Login.EmailDomains, b.Login.EmailDomains)
}
