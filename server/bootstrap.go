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

	"github.com/scimjit/scimjit/server/webhooks"
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
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Settings   *SettingsPatch     `json:"settings,omitempty"`
	SCIMTokens []BootstrapToken   `json:"scimTokens,omitempty"`
	Webhooks   []BootstrapWebhook `json:"webhooks,omitempty"`
}

// BootstrapWebhook declares a webhook endpoint, known by its URL: an
// endpoint of the workspace with that URL is updated, else one is created.
// Description, Types and Enabled left out keep their value (a new endpoint
// is enabled and takes every event). The signing secret comes from
// SecretEnv or SecretFile, never from the file itself; with neither, a new
// endpoint gets a generated secret that is shown nowhere (rotate-secret
// makes one to read).
type BootstrapWebhook struct {
	URL         string    `json:"url"`
	Description *string   `json:"description,omitempty"`
	Types       *[]string `json:"types,omitempty"`
	Enabled     *bool     `json:"enabled,omitempty"`
	SecretEnv   string    `json:"secretEnv,omitempty"`
	SecretFile  string    `json:"secretFile,omitempty"`
}

// request is the admin API's form of the declaration.
func (b BootstrapWebhook) request() webhookRequest {
	return webhookRequest{URL: &b.URL, Description: b.Description, Types: b.Types, Enabled: b.Enabled}
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
	// SecretKey seals webhook secrets (Config.SAML.SecretKey) and
	// WebhooksAllowPrivate is Config.Webhooks.AllowPrivate.
	SecretKey            string
	WebhooksAllowPrivate bool
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
		urls := map[string]bool{}
		for j, h := range w.Webhooks {
			hat := fmt.Sprintf("%s.webhooks[%d]", at, j)
			switch {
			case h.URL == "":
				v.add("%s: url is required", hat)
			case urls[h.URL]:
				v.add("%s: url %q is declared twice", hat, h.URL)
			}
			urls[h.URL] = true
			if h.SecretEnv != "" && h.SecretFile != "" {
				v.add("%s: set at most one of secretEnv, secretFile", hat)
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
	hooks := make([][]webhookSecret, len(b.Workspaces))
	var v ValidationError
	for i, w := range b.Workspaces {
		for j, t := range w.SCIMTokens {
			h, err := resolveTokenHash(t, src)
			if err != nil {
				v.add("bootstrap: workspaces[%d].scimTokens[%d] (%s/%s): %v", i, j, w.ID, t.Name, err)
			}
			hashes[i] = append(hashes[i], h)
		}
		for j, h := range w.Webhooks {
			sec, err := resolveWebhook(h, src)
			if err != nil {
				v.add("bootstrap: workspaces[%d].webhooks[%d] (%s): %v", i, j, w.ID, err)
			}
			hooks[i] = append(hooks[i], sec)
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
		if err := applyBootstrapWorkspace(ctx, store, log, w, hashes[i], hooks[i], src); err != nil {
			return fmt.Errorf("bootstrap: workspace %q: %w", w.ID, err)
		}
	}
	return nil
}

func resolveTokenHash(t BootstrapToken, src SecretSource) ([]byte, error) {
	switch {
	case t.SHA256 != "":
		return hex.DecodeString(t.SHA256)
	default:
		tok, err := readSecretRef(t.Env, t.File, src)
		if err != nil {
			return nil, err
		}
		return HashSCIMToken(tok), nil
	}
}

// readSecretRef reads a secret from the environment variable env, else
// from the file file, without the white space around it.
func readSecretRef(env, file string, src SecretSource) (string, error) {
	if env != "" {
		if src.LookupEnv == nil {
			return "", errors.New("environment lookups are not available")
		}
		val, ok := src.LookupEnv(env)
		if !ok || strings.TrimSpace(val) == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return strings.TrimSpace(val), nil
	}
	if src.ReadFile == nil {
		return "", errors.New("file reads are not available")
	}
	data, err := src.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", file, err)
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("secret file %s is empty", file)
	}
	return secret, nil
}

func applyBootstrapWorkspace(ctx context.Context, store storage.Store, log *slog.Logger, w BootstrapWorkspace, hashes [][]byte,
	hooks []webhookSecret, src SecretSource) error {
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
	return applyBootstrapWebhooks(ctx, store, log, w, hooks, src)
}

// webhookSecret is a declared endpoint's secret, resolved and sealed; zero
// when the declaration names none.
type webhookSecret struct {
	secret string
	stored storage.WebhookSecret
}

// resolveWebhook checks a declared endpoint as the admin API would and
// reads its secret.
func resolveWebhook(h BootstrapWebhook, src SecretSource) (webhookSecret, error) {
	if err := applyWebhook(h.request(), &storage.Webhook{}, src.WebhooksAllowPrivate); err != nil {
		return webhookSecret{}, err
	}
	if h.SecretEnv == "" && h.SecretFile == "" {
		return webhookSecret{}, nil
	}
	secret, err := readSecretRef(h.SecretEnv, h.SecretFile, src)
	if err != nil {
		return webhookSecret{}, err
	}
	stored, err := webhooks.SealEndpointSecret(secret, src.SecretKey)
	if err != nil {
		return webhookSecret{}, err
	}
	return webhookSecret{secret: secret, stored: stored}, nil
}

// applyBootstrapWebhooks creates the declared endpoints whose URL the
// workspace has no endpoint for, and updates the others where they differ
// from the declaration. A declared secret that differs from the current
// one replaces it as rotate-secret does: the previous one keeps signing
// for a day.
func applyBootstrapWebhooks(ctx context.Context, store storage.Store, log *slog.Logger, w BootstrapWorkspace, hooks []webhookSecret, src SecretSource) error {
	if len(w.Webhooks) == 0 {
		return nil
	}
	live, err := store.ListWebhooks(ctx, w.ID)
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	byURL := map[string]string{}
	for _, ep := range live {
		byURL[ep.URL] = ep.ID
	}
	for j, h := range w.Webhooks {
		sec := hooks[j]
		id, ok := byURL[h.URL]
		if !ok {
			ep := storage.Webhook{Enabled: true}
			if err := applyWebhook(h.request(), &ep, src.WebhooksAllowPrivate); err != nil {
				return err
			}
			secret := "declared"
			if sec.secret == "" {
				secret = "generated, shown nowhere: scimjit webhooks rotate-secret makes one to read"
				if _, sec.stored, err = webhooks.NewEndpointSecret(src.SecretKey); err != nil {
					return err
				}
			}
			ep.Secrets = []storage.WebhookSecret{sec.stored}
			if ep, err = store.CreateWebhook(ctx, w.ID, ep); err != nil {
				return fmt.Errorf("create webhook %s: %w", h.URL, err)
			}
			appendAdminEvent(ctx, store, log, w.ID, "admin.webhook.created",
				map[string]string{"endpoint": ep.ID, "url": ep.URL, "source": "bootstrap"})
			log.InfoContext(ctx, "bootstrap: webhook endpoint created", "endpoint", ep.ID, "url", ep.URL, "secret", secret)
			continue
		}
		_, err := store.UpdateWebhook(ctx, w.ID, id, func(ep *storage.Webhook) error {
			before := *ep
			if err := applyWebhook(h.request(), ep, src.WebhooksAllowPrivate); err != nil {
				return err
			}
			same := before.Description == ep.Description && slices.Equal(before.Types, ep.Types) &&
				before.Enabled == ep.Enabled && before.DisabledReason == ep.DisabledReason
			if sec.secret != "" {
				current, err := webhooks.CurrentSecret(*ep, src.SecretKey)
				if err != nil {
					return err
				}
				if current != sec.secret {
					webhooks.Rotate(ep, sec.stored, time.Now().UTC(), 24*time.Hour)
					same = false
				}
			}
			if same {
				return errNoChange
			}
			ep.UpdatedAt = time.Now().UTC()
			return nil
		})
		switch {
		case errors.Is(err, errNoChange):
			log.DebugContext(ctx, "bootstrap: webhook endpoint unchanged", "endpoint", id)
		case err != nil:
			return fmt.Errorf("update webhook %s: %w", h.URL, err)
		default:
			appendAdminEvent(ctx, store, log, w.ID, "admin.webhook.updated",
				map[string]string{"endpoint": id, "url": h.URL, "source": "bootstrap"})
			log.InfoContext(ctx, "bootstrap: webhook endpoint updated", "endpoint", id, "url", h.URL)
		}
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
