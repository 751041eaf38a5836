package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/webhooks"
	"github.com/scimjit/scimjit/storage"
)

// Demo workspaces: the first one a newcomer signs in to, and a second one
// to watch the join-with-verification flow (R8) and workspace switching.
var demoWorkspaces = []struct{ ID, Name string }{
	{"demo", "Demo"},
	{"demo-hr", "Demo HR"},
}

// demoTokenName names the SCIM token demo mode prints; it is replaced at
// every start.
const demoTokenName = "demo (printed at startup)"

// demoInfo is what the demo banner prints.
type demoInfo struct {
	BaseURL string
	// AdminToken is the generated admin token; empty when the operator
	// configured one (a configured secret is not echoed).
	AdminToken string
	SCIMToken  string
	InMemory   bool
}

// setupDemo creates the demo workspaces when missing (JIT on), points their
// IdP at the built-in demo IdP and their demo webhook endpoint at the
// server's demo receiver, and replaces the demo SCIM token. secretKey is
// --secret-key (it seals the endpoints' signing secrets).
func setupDemo(ctx context.Context, store storage.Store, srv *server.Server, secretKey string, log *slog.Logger) (demoInfo, error) {
	var info demoInfo
	md, err := srv.SAML().DemoIdPMetadata()
	if err != nil {
		return info, err
	}
	idpMetadata := string(md)
	idpEntityID, err := saml.ValidateIdPMetadata(idpMetadata, time.Now())
	if err != nil {
		return info, fmt.Errorf("demo idp metadata: %w", err)
	}
	for _, dw := range demoWorkspaces {
		ws := storage.Workspace{ID: dw.ID, Name: dw.Name, Settings: storage.DefaultSettings(),
			CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
		ws.Settings.JIT.Enabled = true
		_, err := store.CreateWorkspace(ctx, ws)
		switch {
		case err == nil:
			log.Info("demo: workspace created", "workspace", dw.ID)
		case errors.Is(err, storage.ErrAlreadyExists):
		default:
			return info, fmt.Errorf("create workspace %s: %w", dw.ID, err)
		}
		{
			// The demo IdP's key is new in every process: refresh the
			// metadata at every start.
			_, err := store.UpdateWorkspace(ctx, dw.ID, func(w *storage.Workspace) error {
				w.Settings.IdP.MetadataXML = idpMetadata
				w.Settings.IdP.EntityID = idpEntityID
				w.UpdatedAt = time.Now().UTC()
				return nil
			})
			if err != nil {
				return info, fmt.Errorf("set demo idp of %s: %w", dw.ID, err)
			}
		}
		if err := demoWebhook(ctx, store, dw.ID, srv.SAML().DemoWebhookURL(), secretKey); err != nil {
			return info, fmt.Errorf("demo webhook endpoint of %s: %w", dw.ID, err)
		}
	}
	ws := demoWorkspaces[0].ID
	tokens, err := store.ListSCIMTokens(ctx, ws)
	if err != nil {
		return info, fmt.Errorf("list scim tokens: %w", err)
	}
	for _, t := range tokens {
		if t.Name == demoTokenName {
			if err := store.RevokeSCIMToken(ctx, ws, t.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return info, fmt.Errorf("revoke old demo token: %w", err)
			}
		}
	}
	tok, hash := server.NewSCIMToken()
	if err := store.CreateSCIMToken(ctx, ws, storage.SCIMToken{
		ID: uuid.NewString(), Name: demoTokenName, Hash: hash, CreatedAt: time.Now().UTC(),
	}); err != nil {
		return info, fmt.Errorf("create demo scim token: %w", err)
	}
	info.SCIMToken = tok
	return info, nil
}

// demoWebhook gives workspace ws its endpoint that delivers every event
// to the demo receiver at url: created with a new secret when missing,
// else pointed at url (the base URL may differ from the last start) and
// enabled. The receiver reads the secret from the endpoint, so a restart
// keeps it.
func demoWebhook(ctx context.Context, store storage.Store, ws, url, secretKey string) error {
	w, err := store.GetWebhook(ctx, ws, saml.DemoWebhookEndpoint)
	if errors.Is(err, storage.ErrNotFound) {
		_, stored, err := webhooks.NewEndpointSecret(secretKey)
		if err != nil {
			return err
		}
		_, err = store.CreateWebhook(ctx, ws, storage.Webhook{ID: saml.DemoWebhookEndpoint, URL: url,
			Description: "demo receiver (/demo/webhooks)", Enabled: true, Secrets: []storage.WebhookSecret{stored}})
		if errors.Is(err, storage.ErrAlreadyExists) {
			err = nil // another process created it meanwhile
		}
		return err
	}
	if err != nil || (w.URL == url && w.Enabled) {
		return err
	}
	_, err = store.UpdateWebhook(ctx, ws, saml.DemoWebhookEndpoint, func(w *storage.Webhook) error {
		w.URL, w.Enabled, w.DisabledReason = url, true, ""
		return nil
	})
	return err
}

// newAdminToken makes a random admin token for demo mode.
func newAdminToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "adm_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// printDemo writes the demo banner: everything a newcomer needs.
func printDemo(w io.Writer, d demoInfo) {
	base := strings.TrimSuffix(d.BaseURL, "/")
	var b strings.Builder
	line := strings.Repeat("=", 78)
	fmt.Fprintln(&b, line)
	if d.InMemory {
		fmt.Fprintln(&b, "scimjit DEMO MODE: data lives IN MEMORY ONLY and is lost when scimjit stops.")
	} else {
		fmt.Fprintln(&b, "scimjit DEMO MODE (on the configured Redis).")
	}
	fmt.Fprintln(&b)
	row := func(k, v string) { fmt.Fprintf(&b, "  %-16s %s\n", k+":", v) }
	row("Base URL", base)
	row("Demo sign-in", base+"/demo/idp")
	row("SCIM base URL", base+"/scim/v2/demo")
	row("SCIM token", d.SCIMToken)
	row("Admin API", base+"/admin/v1")
	adminToken := d.AdminToken
	if adminToken == "" {
		adminToken = "(configured: --admin-token or --admin-tokens-file)"
	}
	row("Admin token", adminToken)
	row("SAML metadata", base+"/saml/demo/metadata")
	row("Mail outbox", base+"/demo/outbox")
	row("Demo webhooks", base+"/demo/webhooks")
	row("Outbox API", base+"/admin/v1/outbox")
	row("Admin console", base+"/console/operator")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "  Workspaces \"demo\" and \"demo-hr\" have JIT on. Sign in at the demo IdP,")
	fmt.Fprintln(&b, "  then to demo-hr with the same email: the join link is in the mail outbox.")
	fmt.Fprintln(&b, "  Each demo workspace sends its events as signed webhooks to the built-in")
	fmt.Fprintln(&b, "  receiver: the demo webhooks page shows them with their verified signatures.")
	fmt.Fprintln(&b, "  The admin console takes the admin token; a member whose DEV role is Admin")
	fmt.Fprintln(&b, "  reaches their workspace's console from the home page after signing in.")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "  Try:")
	shown := d.AdminToken
	if shown == "" {
		shown = "$SCIMJIT_ADMIN_TOKEN"
	}
	fmt.Fprintf(&b, "    curl -H \"Authorization: Bearer %s\" %s/admin/v1/workspaces\n", shown, base)
	fmt.Fprintf(&b, "    curl -H \"Authorization: Bearer %s\" %s/scim/v2/demo/Users\n", d.SCIMToken, base)
	fmt.Fprintln(&b, line)
	_, _ = io.WriteString(w, b.String())
}
