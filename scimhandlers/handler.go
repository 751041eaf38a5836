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

// Handler serves every request whose path starts with /scim/v2/{workspace}.
// It authenticates the workspace's bearer token itself and renders every
// response, errors included, as SCIM JSON.
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
	ws   string
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
}

// ServeHTTP handles /scim/v2/{workspace}/... (the full, unstripped path).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.ErrorContext(r.Context(), "scim handler panic", "err", v)
			h.writeError(w, r, &apiError{Status: http.StatusInternalServerError, Detail: "internal error"})
		}
	}()
	escaped := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(escaped, "/scim/v2/")
	if !ok {
		h.writeError(w, r, notFound("endpoint"))
		return
	}
	ws, sub, _ := strings.Cut(rest, "/")
	if !storage.ValidWorkspaceID(ws) {
		// An invalid workspace id answers like a wrong token: nothing
		// tells whether a workspace exists (R17).
		h.writeError(w, r, errUnauthorized())
		return
	}
	if reqctx.Workspace(r.Context()) != ws {
		// Behind the server's middleware the context already names it
		// (route /scim/v2/:ws); each WithContext copies the request.
		r = r.WithContext(reqctx.WithWorkspace(r.Context(), ws))
	}
	if err := h.authenticate(r, ws); err != nil {
		h.writeError(w, r, err)
		return
	}
	proj, aerr := projectionFromQuery(r)
	if aerr != nil {
		h.writeError(w, r, aerr)
		return
	}
	req := &request{ws: ws, base: h.baseURL(r) + "/scim/v2/" + ws, r: r, proj: proj}
	var segs []string
	for _, s := range strings.Split(sub, "/") {
		if s == "" {
			continue
		}
		u, err := url.PathUnescape(s)
		if err != nil {
			h.writeError(w, r, notFound("endpoint"))
			return
		}
		segs = append(segs, u)
	}
	h.route(w, req, segs)
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
func (h *Handler) authenticate(r *http.Request, ws string) *apiError {
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
	match := 0
	for _, t := range tokens {
		switch len(t.Hash) {
		case len(sum):
			match |= subtle.ConstantTimeCompare(t.Hash, sum[:])
		case len(hexSum):
			match |= subtle.ConstantTimeCompare([]byte(strings.ToLower(string(t.Hash))), hexSum)
		}
	}
	if match != 1 {
		return errUnauthorized()
	}
	h.tokens.remember(ws, sum)
	return nil
}

func (h *Handler) route(w http.ResponseWriter, q *request, segs []string) {
	r := q.r
	method := r.Method
	methodNotAllowed := func(allowed string) {
		w.Header().Set("Allow", allowed)
		h.writeError(w, r, &apiError{Status: http.StatusMethodNotAllowed, Detail: "method not allowed on this endpoint"})
	}
	if len(segs) == 0 {
		if method == http.MethodGet {
			h.listRoot(w, q, listParamsFromQuery)
			return
		}
		methodNotAllowed("GET")
		return
	}
	first := segs[0]
	switch {
	case first == ".search" && len(segs) == 1:
		if method != http.MethodPost {
			methodNotAllowed("POST")
			return
		}
		h.listRoot(w, q, listParamsFromBody)
		return
	case strings.EqualFold(first, "ServiceProviderConfig") && len(segs) == 1:
		if method != http.MethodGet {
			methodNotAllowed("GET")
			return
		}
		h.writeJSON(w, http.StatusOK, h.serviceProviderConfig(q.base))
		return
	case strings.EqualFold(first, "ResourceTypes"):
		if method != http.MethodGet {
			methodNotAllowed("GET")
			return
		}
		h.serveResourceTypes(w, q, segs[1:])
		return
	case strings.EqualFold(first, "Schemas"):
		if method != http.MethodGet {
			methodNotAllowed("GET")
			return
		}
		h.serveSchemas(w, q, segs[1:])
		return
	case strings.EqualFold(first, "Me"), strings.EqualFold(first, "Bulk"):
		h.writeError(w, r, &apiError{Status: http.StatusNotImplemented, Detail: "/" + first + " is not supported"})
		return
	}
	var k *resourceKind
	switch {
	case strings.EqualFold(first, "Users"):
		k = userKind
	case strings.EqualFold(first, "Groups"):
		k = groupKind
	default:
		h.writeError(w, r, notFound("endpoint"))
		return
	}
	switch {
	case len(segs) == 1:
		switch method {
		case http.MethodGet:
			h.list(w, q, k, listParamsFromQuery)
		case http.MethodPost:
			h.create(w, q, k)
		default:
			methodNotAllowed("GET, POST")
		}
	case len(segs) == 2 && segs[1] == ".search":
		if method != http.MethodPost {
			methodNotAllowed("POST")
			return
		}
		h.list(w, q, k, listParamsFromBody)
	case len(segs) == 2:
		id := segs[1]
		switch method {
		case http.MethodGet:
			h.get(w, q, k, id)
		case http.MethodPut:
			h.replace(w, q, k, id)
		case http.MethodPatch:
			h.patch(w, q, k, id)
		case http.MethodDelete:
			h.delete(w, q, k, id)
		default:
			methodNotAllowed("GET, PUT, PATCH, DELETE")
		}
	default:
		h.writeError(w, r, notFound("endpoint"))
	}
}

func (h *Handler) serveResourceTypes(w http.ResponseWriter, q *request, rest []string) {
	kinds := []*resourceKind{userKind, groupKind}
	if len(rest) == 1 {
		for _, k := range kinds {
			if k.name == rest[0] {
				h.writeJSON(w, http.StatusOK, h.resourceTypeJSON(k, q.base))
				return
			}
		}
	}
	if len(rest) != 0 {
		h.writeError(w, q.r, notFound("resource type"))
		return
	}
	var res []any
	for _, k := range kinds {
		res = append(res, h.resourceTypeJSON(k, q.base))
	}
	h.writeJSON(w, http.StatusOK, listBody(res, len(res), 1))
}

func (h *Handler) serveSchemas(w http.ResponseWriter, q *request, rest []string) {
	if len(rest) == 1 {
		for _, s := range allSchemas() {
			if strings.EqualFold(s.ID, rest[0]) {
				h.writeJSON(w, http.StatusOK, schemaJSON(s, q.base))
				return
			}
		}
	}
	if len(rest) != 0 {
		h.writeError(w, q.r, notFound("schema"))
		return
	}
	var res []any
	for _, s := range allSchemas() {
		res = append(res, schemaJSON(s, q.base))
	}
	h.writeJSON(w, http.StatusOK, listBody(res, len(res), 1))
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
