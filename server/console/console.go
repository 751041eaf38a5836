// Package console is the workspace admin console in the browser: server
// rendered html/template pages under /console, their stylesheet and script
// under /static (embedded, no build step).
//
// Two kinds of people sign in. Operators hold an admin token: they type it
// once on /console/operator, it is checked like the admin API's bearer
// token (Backend.AuthenticateOperator) and exchanged for a server-side
// session (storage.Session with Operator set, idle expiry OperatorIdle);
// the token never goes back to the browser. Workspace admins are members
// signed in through their workspace's SSO (package saml's session) whose
// DEV role in that workspace is Admin, read from the store on every
// request. Every route checks who is asking before its handler runs
// (Console.allow); every state change is a POST with the CSRF token of
// package saml; every change is an event whose actor is the person
// ("user:<id>") or the admin token ("admin:<name>").
//
// The changes go through the admin API's own code (Backend): one
// validation, one event per change.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

//go:embed static
var staticFS embed.FS

// OperatorIdle is how long an operator's console session lives without a
// request.
const OperatorIdle = 30 * time.Minute

// operatorCookie carries the operator session's secret; its SHA-256 (hex)
// is the store key.
const operatorCookie = "scimjit_console"

// EventMemberRoles is the event of a member's roles changed in the
// console; detail "from" and "to" as storage.Roles.Detail writes them.
const EventMemberRoles = "admin.member.roles_changed"

// EventMemberDeactivated is the event of a member deactivated in the
// console.
const EventMemberDeactivated = "admin.member.deactivated"

// Problems are the reasons a change was refused, each naming its field as
// the admin API does ("settings.jit.defaultRole ...", "name ...").
type Problems []string

// RoleReason is why a member has one environment's role (the admin API's
// roles explain call).
type RoleReason struct {
	Environment, Role, Source, Group string
	Rule                             int
	Time                             time.Time
}

// Backend is the admin API's code the console calls, so that a change made
// here is validated, applied and recorded exactly as through the API. A
// refused change is Problems with a nil error; error is for failures (the
// store), answered with the error page.
type Backend interface {
	// AuthenticateOperator checks an admin token the client of c typed,
	// counting failures against the admin API's per-address limit; name
	// is the token's name, or refusal says why not.
	AuthenticateOperator(c echo.Context, token string) (name, refusal string, err error)
	// OperatorLive reports whether the admin token of that name is still
	// configured (a removed token ends its sessions).
	OperatorLive(name string) bool
	// CreateWorkspace creates a workspace with the default settings.
	CreateWorkspace(ctx context.Context, id, name string) (storage.Workspace, Problems, error)
	// UpdateSettings applies settings, the admin API's "settings" object
	// of an update (JSON-shaped: jit, customRoles, idp, roles, ...).
	// ifVersion, when not zero, is the workspace version the change was
	// made against: when someone changed the workspace since, the change
	// is refused (a problem saying so) and nothing is written.
	UpdateSettings(ctx context.Context, ws string, ifVersion int64, settings map[string]any) (storage.Workspace, Problems, error)
	// CreateSCIMToken issues a SCIM token; secret is shown once.
	CreateSCIMToken(ctx context.Context, ws, name string) (t storage.SCIMToken, secret string, p Problems, err error)
	// RevokeSCIMToken revokes a SCIM token.
	RevokeSCIMToken(ctx context.Context, ws, id string) (Problems, error)
	// ExplainRoles tells why u has each role.
	ExplainRoles(ctx context.Context, ws string, u storage.User) ([]RoleReason, error)
	// LastEvents returns the last n events of ws that match, newest
	// first, read from the whole (capped) stream.
	LastEvents(ctx context.Context, ws string, n int, match func(storage.Event) bool) ([]storage.Event, error)
	WebhookBackend
}

// Config is what the console needs.
type Config struct {
	Store   storage.Store
	SAML    *saml.Service
	Backend Backend
	Logger  *slog.Logger
	// BaseURL is the public URL without trailing slash.
	BaseURL string
}

// Console serves the console's pages.
type Console struct {
	cfg Config
}

// Register adds the console's routes under /console and its assets under
// /static to e.
func Register(e *echo.Echo, cfg Config) {
	h := &Console{cfg: cfg}
	static, _ := fs.Sub(staticFS, "static")
	e.GET("/static/*", h.static(static))

	e.GET("/console/operator", h.operatorForm)
	e.POST("/console/operator", h.operatorSignIn, h.checkCSRF)
	for _, r := range []struct {
		method, path string
		h            echo.HandlerFunc
		who          scope
	}{
		{http.MethodGet, "/console", h.workspaces, operatorOnly},
		{http.MethodPost, "/console/workspaces", h.createWorkspace, operatorOnly},
		{http.MethodPost, "/console/signout", h.operatorSignOut, operatorOnly},
		{http.MethodGet, "/console/w/:ws/delete", h.confirmDelete, operatorOnly},
		{http.MethodPost, "/console/w/:ws/delete", h.deleteWorkspace, operatorOnly},

		{http.MethodGet, "/console/w/:ws", h.authPage, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/jit", h.saveJIT, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/metadata", h.saveMetadata, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/roles", h.saveCustomRoles, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/rules", h.addRule, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/rules/delete", h.deleteRule, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/scim", h.scimPage, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/scim/tokens", h.createToken, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/scim/tokens/:token/revoke", h.revokeToken, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/members", h.membersPage, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/members/:user", h.memberPage, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/members/:user/roles", h.changeRoles, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/members/:user/deactivate", h.deactivate, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/groups", h.groupsPage, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/groups/:group", h.groupPage, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/events", h.eventsPage, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/events/tail", h.eventsTail, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/webhooks", h.webhooksPage, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/webhooks", h.createWebhook, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/webhooks/:endpoint", h.webhookPage, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/webhooks/:endpoint", h.updateWebhook, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/webhooks/:endpoint/rotate", h.rotateWebhook, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/webhooks/:endpoint/remove", h.deleteWebhook, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/webhooks/:endpoint/failed/:event/redeliver", h.redeliverOne, workspaceAdmin},
		{http.MethodPost, "/console/w/:ws/webhooks/:endpoint/redeliver", h.redeliverSince, workspaceAdmin},
		{http.MethodGet, "/console/w/:ws/sign-ins", h.signInsPage, workspaceAdmin},
	} {
		mw := []echo.MiddlewareFunc{h.allow(r.who)}
		if r.method == http.MethodPost {
			mw = append(mw, h.checkCSRF)
		}
		e.Add(r.method, r.path, r.h, mw...)
	}
}

// PublicRoutes are the console routes anyone may open (method and path):
// the operator sign-in. Every other route under /console refuses a
// visitor who is not allowed (the authorization test walks them all).
var PublicRoutes = []string{"GET /console/operator", "POST /console/operator"}

func (h *Console) static(fsys fs.FS) echo.HandlerFunc {
	files := http.FileServer(http.FS(fsys))
	return func(c echo.Context) error {
		name := c.Param("*")
		if name != "scimjit.css" && name != "console.js" {
			return echo.ErrNotFound
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		r := c.Request().Clone(c.Request().Context())
		r.URL.Path = "/" + name
		files.ServeHTTP(c.Response(), r)
		return nil
	}
}

// scope is who may use a route.
type scope int

const (
	// operatorOnly: an operator.
	operatorOnly scope = iota
	// workspaceAdmin: an operator, or an admin of the route's workspace.
	workspaceAdmin
)

// who is the person a request acts for.
type who struct {
	// Operator is the admin token's name for an operator.
	Operator string
	// UserID and Email are the workspace admin's membership and address.
	UserID, Email string
	// Actor is what events record ("admin:<name>" or "user:<id>").
	Actor string
}

const whoKey = "console.who"

func whoOf(c echo.Context) who {
	w, _ := c.Get(whoKey).(who)
	return w
}

// allow runs before every console route but the operator sign-in: it
// finds who is asking and refuses, with 401 (no live session) or 403
// (signed in, but not allowed here), anyone the scope does not admit.
func (h *Console) allow(sc scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			w, signedIn, err := h.identify(c, sc)
			if err != nil {
				return err
			}
			if w.Actor == "" {
				status := http.StatusUnauthorized
				if signedIn {
					status = http.StatusForbidden
				}
				return h.denied(c, status)
			}
			c.Set(whoKey, w)
			ctx := c.Request().Context()
			if w.Operator != "" {
				ctx = reqctx.WithAdminToken(ctx, w.Operator)
			} else {
				ctx = reqctx.WithPerson(ctx, w.Actor)
			}
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

// identify finds the operator session, or (for a workspace route) the
// person's SSO session and their DEV role in the route's workspace.
// signedIn tells whether the browser had a live session at all.
func (h *Console) identify(c echo.Context, sc scope) (w who, signedIn bool, err error) {
	op, err := h.operatorSession(c)
	if err != nil {
		return who{}, false, err
	}
	if op != "" {
		return who{Operator: op, Actor: "admin:" + op}, true, nil
	}
	sess, ok, err := h.cfg.SAML.SignedIn(c)
	if err != nil || !ok {
		return who{}, false, err
	}
	ws := c.Param("ws")
	if sc != workspaceAdmin || sess.ActiveWorkspace != ws {
		return who{}, true, nil
	}
	ctx := c.Request().Context()
	u, err := h.cfg.Store.GetUserByAccount(ctx, ws, sess.AccountID)
	if errors.Is(err, storage.ErrNotFound) {
		return who{}, true, nil
	}
	if err != nil {
		return who{}, false, fmt.Errorf("console: membership: %w", err)
	}
	if !u.Active || u.Roles.Dev != storage.RoleAdmin {
		return who{}, true, nil
	}
	acct, err := h.cfg.Store.GetAccount(ctx, sess.AccountID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return who{}, false, fmt.Errorf("console: account: %w", err)
	}
	return who{UserID: u.ID, Email: acct.Email, Actor: "user:" + u.ID}, true, nil
}

// operatorSession returns the name of the admin token of the browser's
// live operator session ("" when none), moving its expiry OperatorIdle
// ahead (at most once a minute: one store write).
func (h *Console) operatorSession(c echo.Context) (string, error) {
	ck, err := c.Cookie(operatorCookie)
	if err != nil || ck.Value == "" {
		return "", nil
	}
	ctx := c.Request().Context()
	sess, err := h.cfg.Store.GetSession(ctx, hashSecret(ck.Value))
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("console: operator session: %w", err)
	}
	if sess.Operator == "" || !h.cfg.Backend.OperatorLive(sess.Operator) {
		return "", nil
	}
	if now := time.Now(); sess.ExpiresAt.Sub(now) < OperatorIdle-time.Minute {
		sess.ExpiresAt = now.Add(OperatorIdle)
		if err := h.cfg.Store.CreateSession(ctx, sess); err != nil {
			return "", fmt.Errorf("console: extend operator session: %w", err)
		}
	}
	return sess.Operator, nil
}

// checkCSRF refuses a POST without the CSRF token of package saml.
func (h *Console) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := h.cfg.SAML.CheckCSRF(c); errors.Is(err, saml.ErrCSRF) {
			return h.render(c, http.StatusForbidden, "denied", page{Title: "Request refused",
				Data: deniedData{Text: "This form has expired or did not come from this site. Go back, reload the page and try again."}})
		} else if err != nil {
			return err
		}
		return next(c)
	}
}

type deniedData struct {
	Text string
	// SignIn is the workspace whose SSO sign-in is offered ("" for none).
	SignIn string
	Return string
}

// denied renders the refusal of allow.
func (h *Console) denied(c echo.Context, status int) error {
	ws := c.Param("ws")
	d := deniedData{Text: "Sign in to use the admin console.", Return: c.Request().URL.Path}
	if status == http.StatusForbidden {
		d.Text = "You are signed in, but this page is for the workspace's admins or operators only."
	}
	if storage.ValidWorkspaceID(ws) {
		d.SignIn = ws
	}
	title := "Sign in required"
	if status == http.StatusForbidden {
		title = "Not allowed"
	}
	return h.render(c, status, "denied", page{Title: title, Data: d})
}

// newSecret returns 256 random bits, base64url.
func newSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("console: crypto/rand: %w", err)) // never happens (Go ≥1.24)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

func (h *Console) secure() bool { return strings.HasPrefix(h.cfg.BaseURL, "https://") }

func (h *Console) setOperatorCookie(c echo.Context, value string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: operatorCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure(), SameSite: http.SameSiteStrictMode})
}
