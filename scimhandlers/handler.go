package scimhandlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/elimity-com/scim/schema"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

const contentType = "application/scim+json"

// Config is what the SCIM handler needs.
type Config struct {
	Store  storage.Store
	Logger *slog.Logger
	// BaseURL is the public base URL without a trailing slash, e.g.
	// "https://scimjit.example.com"; resource locations are built from it.
	// When empty, it is derived from the request's Host.
	BaseURL string
	// MaxResults caps count per page (default 100).
	MaxResults int
	// TokenCacheTTL is how long a successful bearer-token check is
	// remembered in this process (default 1s when zero, off when
	// negative). A revoked token keeps working here for at most that long.
	TokenCacheTTL time.Duration
}

// Handler serves the SCIM endpoints of every workspace, registered on the
// server's Echo router by Register. It authenticates the workspace's bearer
// token itself and renders every response, errors included, as SCIM JSON.
type Handler struct {
	cfg     Config
	store   storage.Store
	log     *slog.Logger
	patcher patchParser
	tokens  *tokenCache
}

var stringValuesOnce sync.Once

// allowStringValues switches on the library's package-global
// SetAllowStringValues once per process (see New).
func allowStringValues() { stringValuesOnce.Do(func() { schema.SetAllowStringValues(true) }) }

// New returns the SCIM handler.
//
// It switches on elimity-com/scim's schema.SetAllowStringValues(true) once
// for the whole process: Microsoft Entra ID sends booleans as "True" /
// "False" (idp-clients.md E1). The setting is package-global in the
// library; nothing else in scimjit validates SCIM values, so it is safe.
func New(cfg Config) *Handler {
	if cfg.MaxResults <= 0 {
		cfg.MaxResults = 100
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, store: cfg.Store, log: cfg.Logger, patcher: newPatchParser(),
		tokens: newTokenCache(cfg.TokenCacheTTL)}
}

// request is one authenticated SCIM request.
type request struct {
	ws string
	// id is the :id route parameter, unescaped (/Users/:id, /Groups/:id,
	// /ResourceTypes/:id, /Schemas/:id); empty on the other endpoints.
	id   string
	base string // e.g. https://host/scim/v2/finance
	r    *http.Request
	// wantGroups: the response of a user query shows `groups`, so index
	// lookups fetch them in the same round trip as the users.
	wantGroups bool
	// renderOnly: users found by index lookups are rendered unchanged,
	// never matched on (beyond their typed fields), projected or sorted by
	// their attributes, so they are written by appendUser without building
	// a document.
	renderOnly bool
	// proj is the query's attributes / excludedAttributes, parsed before
	// anything is read or written (single-resource responses use it).
	proj projection
	// op names this request when it writes (writeBody): what the store
	// keeps as the Op of the user or group it writes.
	op string
	// roleSchema is the URN under which a POST or PUT body gave the role
	// extension when it is not RoleURN (readUserBody): what a user created
	// by this request keeps as its storage.User.RoleSchema.
	roleSchema string
}

// endpoint serves one authenticated SCIM request.
type endpoint func(w http.ResponseWriter, q *request)

// Register adds every SCIM endpoint (RFC 7644 §3.2) to g, the group of
// /scim/v2/:ws. Echo's router is the only router: a path without a route
// gets 404 and a wrong method 405 with Allow, both rendered by WriteError
// through the server's error handler. Endpoint names are case-sensitive, as
// RFC 7644 writes them; each endpoint also answers with a trailing slash
// ("/Users/" is the collection).
func (h *Handler) Register(g *echo.Group) {
	listUsers := func(pf paramsFunc) endpoint {
		return func(w http.ResponseWriter, q *request) { h.list(w, q, userKind, pf) }
	}
	listGroups := func(pf paramsFunc) endpoint {
		return func(w http.ResponseWriter, q *request) { h.list(w, q, groupKind, pf) }
	}
	listRoot := func(pf paramsFunc) endpoint {
		return func(w http.ResponseWriter, q *request) { h.listRoot(w, q, pf) }
	}
	for _, r := range []struct {
		method, path string
		serve        endpoint
	}{
		{http.MethodGet, "", listRoot(listParamsFromQuery)},
		{http.MethodPost, "/.search", listRoot(listParamsFromBody)},
		{http.MethodGet, "/ServiceProviderConfig", h.getServiceProviderConfig},
		{http.MethodGet, "/ResourceTypes", h.listResourceTypes},
		{http.MethodGet, "/ResourceTypes/:id", h.getResourceType},
		{http.MethodGet, "/Schemas", h.listSchemas},
		{http.MethodGet, "/Schemas/:id", h.getSchema},

		{http.MethodGet, "/Users", listUsers(listParamsFromQuery)},
		{http.MethodPost, "/Users", h.createUser},
		{http.MethodPost, "/Users/.search", listUsers(listParamsFromBody)},
		{http.MethodGet, "/Users/:id", h.getUser},
		{http.MethodPut, "/Users/:id", h.replaceUser},
		{http.MethodPatch, "/Users/:id", h.patchUser},
		{http.MethodDelete, "/Users/:id", h.deleteUser},

		{http.MethodGet, "/Groups", listGroups(listParamsFromQuery)},
		{http.MethodPost, "/Groups", h.createGroup},
		{http.MethodPost, "/Groups/.search", listGroups(listParamsFromBody)},
		{http.MethodGet, "/Groups/:id", h.getGroup},
		{http.MethodPut, "/Groups/:id", h.replaceGroup},
		{http.MethodPatch, "/Groups/:id", h.patchGroup},
		{http.MethodDelete, "/Groups/:id", h.deleteGroup},
	} {
		serve := h.serve(r.serve)
		g.Add(r.method, r.path, serve)
		g.Add(r.method, r.path+"/", serve)
	}
	// /Me and /Bulk (RFC 7644 §3.11, §3.7) are not supported: 501 for any
	// method and sub-path, after authentication like every endpoint.
	for _, name := range []string{"Me", "Bulk"} {
		serve := h.serve(func(w http.ResponseWriter, q *request) {
			h.WriteError(w, q.r, &Error{Status: http.StatusNotImplemented, Detail: "/" + name + " is not supported"})
		})
		g.Any("/"+name, serve)
		g.Any("/"+name+"/*", serve)
	}
}

// serve wraps an endpoint with the steps every SCIM request takes first:
// the workspace from :ws, the bearer-token check, the projection of the
// query, and the :id parameter.
func (h *Handler) serve(fn endpoint) echo.HandlerFunc {
	return func(c echo.Context) error {
		w, r := c.Response(), c.Request()
		ws := c.Param("ws")
		if !storage.ValidWorkspaceID(ws) {
			// An invalid workspace id answers like a wrong token: nothing
			// tells whether a workspace exists.
			h.WriteError(w, r, errUnauthorized())
			return nil
		}
		if reqctx.Workspace(r.Context()) != ws {
			// Behind the server's middleware the context already names it;
			// each WithContext copies the request.
			r = r.WithContext(reqctx.WithWorkspace(r.Context(), ws))
		}
		if err := h.authenticate(r, ws); err != nil {
			h.WriteError(w, r, err)
			return nil
		}
		proj, aerr := projectionFromQuery(r)
		if aerr != nil {
			h.WriteError(w, r, aerr)
			return nil
		}
		id := c.Param("id")
		if r.URL.RawPath != "" {
			// Echo routes on the escaped path when it differs from the
			// decoded one (an id with %2F, say) and leaves its parameters
			// escaped. The workspace is not unescaped: an escaped one is
			// invalid, as it always was.
			var err error
			if id, err = url.PathUnescape(id); err != nil {
				h.WriteError(w, r, notFound("endpoint"))
				return nil
			}
		}
		fn(w, &request{ws: ws, id: id, base: h.baseURL(r) + "/scim/v2/" + ws, r: r, proj: proj})
		return nil
	}
}

func (h *Handler) baseURL(r *http.Request) string {
	if h.cfg.BaseURL != "" {
		return h.cfg.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// authenticate checks the bearer token against the workspace's token
// hashes in constant time (R17). An unknown workspace has no tokens and so
// fails exactly like a wrong token.
func (h *Handler) authenticate(r *http.Request, ws string) *Error {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return errUnauthorized()
	}
	sum := sha256.Sum256([]byte(token))
	if h.tokens.valid(ws, sum) {
		return nil
	}
	tokens, err := h.store.ListSCIMTokens(r.Context(), ws)
	if err != nil && !isNotFound(err) {
		return mapStoreError(err, "workspace")
	}
	hexSum := []byte(hex.EncodeToString(sum[:]))
	match, id := 0, ""
	for _, t := range tokens {
		eq := 0
		switch len(t.Hash) {
		case len(sum):
			eq = subtle.ConstantTimeCompare(t.Hash, sum[:])
		case len(hexSum):
			eq = subtle.ConstantTimeCompare([]byte(strings.ToLower(string(t.Hash))), hexSum)
		}
		match |= eq
		if eq == 1 {
			id = t.ID
		}
	}
	if match != 1 {
		return errUnauthorized()
	}
	// The token's last use is recorded here, at the store check: once per
	// token cache period per process, not on every request.
	if err := h.store.TouchSCIMToken(r.Context(), ws, id, time.Now()); err != nil {
		h.log.WarnContext(r.Context(), "record scim token use", "token_id", id, "err", err)
	}
	h.tokens.remember(ws, sum)
	return nil
}

func (h *Handler) getServiceProviderConfig(w http.ResponseWriter, q *request) {
	h.writeJSON(w, http.StatusOK, h.serviceProviderConfig(q.base))
}

var resourceKinds = []*resourceKind{userKind, groupKind}

func (h *Handler) listResourceTypes(w http.ResponseWriter, q *request) {
	var res []any
	for _, k := range resourceKinds {
		res = append(res, h.resourceTypeJSON(k, q.base))
	}
	h.writeJSON(w, http.StatusOK, listBody(res, len(res), 1))
}

func (h *Handler) getResourceType(w http.ResponseWriter, q *request) {
	for _, k := range resourceKinds {
		if k.name == q.id {
			h.writeJSON(w, http.StatusOK, h.resourceTypeJSON(k, q.base))
			return
		}
	}
	h.WriteError(w, q.r, notFound("resource type"))
}

func (h *Handler) listSchemas(w http.ResponseWriter, q *request) {
	var res []any
	for _, s := range allSchemas() {
		res = append(res, schemaJSON(s, q.base))
	}
	h.writeJSON(w, http.StatusOK, listBody(res, len(res), 1))
}

// getSchema finds the schema by its URN, case-insensitively (RFC 7643
// §2.1: schema URIs are case-insensitive).
func (h *Handler) getSchema(w http.ResponseWriter, q *request) {
	for _, s := range allSchemas() {
		if strings.EqualFold(s.ID, q.id) {
			h.writeJSON(w, http.StatusOK, schemaJSON(s, q.base))
			return
		}
	}
	h.WriteError(w, q.r, notFound("schema"))
}

// listBody is a ListResponse (RFC 7644 §3.4.2): itemsPerPage is the number
// of resources returned, and all numbers are JSON integers.
func listBody(res []any, total, startIndex int) map[string]any {
	if res == nil {
		res = []any{}
	}
	return map[string]any{
		"schemas":      []any{listURN},
		"totalResults": total,
		"itemsPerPage": len(res),
		"startIndex":   startIndex,
		"Resources":    res,
	}
}

// respBufs holds response buffers between requests (writeJSON).
var respBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (h *Handler) writeJSON(w http.ResponseWriter, status int, body any) {
	h.writeEncoded(w, status, func(dst []byte) ([]byte, error) { return appendJSON(dst, body) })
}

// writeEncoded writes the JSON that encode appends to a pooled buffer.
func (h *Handler) writeEncoded(w http.ResponseWriter, status int, encode func([]byte) ([]byte, error)) {
	bp := respBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 { // do not keep a huge page's buffer around
			respBufs.Put(bp)
		}
	}()
	raw, err := encode((*bp)[:0])
	if raw != nil {
		*bp = raw[:0]
	}
	if err != nil {
		h.log.Error("encode scim response", "err", err)
		status = http.StatusInternalServerError
		raw = []byte(`{"schemas":["` + errorSchema + `"],"detail":"internal error","status":"500"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, storage.ErrNotFound) }
