package scimhandlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// SCIM error types of RFC 7644 §3.12, table 9.
const (
	typeInvalidFilter = "invalidFilter"
	typeTooMany       = "tooMany"
	typeUniqueness    = "uniqueness"
	typeMutability    = "mutability"
	typeInvalidSyntax = "invalidSyntax"
	typeInvalidPath   = "invalidPath"
	typeNoTarget      = "noTarget"
	typeInvalidValue  = "invalidValue"
	typeInvalidVers   = "invalidVers"
)

const errorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

// Error is a SCIM failure: the public part is the RFC 7644 §3.12 error
// body (status, scimType, detail), written by WriteError; its text is
// always written by scimjit, never copied from an internal error.
type Error struct {
	Status   int
	ScimType string
	Detail   string
	// cause is logged, never sent.
	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("scim %d %s: %s: %v", e.Status, e.ScimType, e.Detail, e.cause)
	}
	return fmt.Sprintf("scim %d %s: %s", e.Status, e.ScimType, e.Detail)
}

func (e *Error) Unwrap() error { return e.cause }

func badRequest(scimType, detail string) *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: scimType, Detail: detail}
}

func notFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Detail: what + " not found"}
}

func errUniqueness(field string) *Error {
	return &Error{Status: http.StatusConflict, ScimType: typeUniqueness,
		Detail: fmt.Sprintf("%s is already in use in this workspace", field)}
}

func errUnauthorized() *Error {
	return &Error{Status: http.StatusUnauthorized, Detail: "authentication required: a valid bearer token for this workspace"}
}

// mapStoreError turns a storage error into its public form (CONVENTIONS
// "Errors": scimhandlers is the one place that maps storage errors). what
// names the resource for 404s ("user", "group").
func mapStoreError(err error, what string) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var ce *storage.ConflictError
	switch {
	case errors.As(err, &ce):
		field := ce.Field
		if field == "account" || field == "email" {
			field = "a membership for this email"
		}
		return &Error{Status: http.StatusConflict, ScimType: typeUniqueness,
			Detail: fmt.Sprintf("%s is already in use in this workspace", field), cause: err}
	case errors.Is(err, storage.ErrAlreadyExists):
		return &Error{Status: http.StatusConflict, ScimType: typeUniqueness,
			Detail: "a unique attribute value is already in use in this workspace", cause: err}
	case errors.Is(err, storage.ErrNotFound):
		e := notFound(what)
		e.cause = err
		return e
	case errors.Is(err, storage.ErrPreconditionFailed):
		return &Error{Status: http.StatusPreconditionFailed,
			Detail: "the resource was modified: If-Match does not match the current version", cause: err}
	case errors.Is(err, storage.ErrInvalidReference):
		return &Error{Status: http.StatusBadRequest, ScimType: typeInvalidValue,
			Detail: "a member value is not the id of a user in this workspace", cause: err}
	case errors.Is(err, storage.ErrConflictRetries):
		return &Error{Status: http.StatusServiceUnavailable,
			Detail: "too many concurrent changes to this resource, retry later", cause: err}
	case errors.Is(err, storage.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Status: http.StatusServiceUnavailable,
			Detail: "the service is temporarily unavailable, retry later", cause: err}
	default:
		return &Error{Status: http.StatusInternalServerError, Detail: "internal error", cause: err}
	}
}

// errorBody is the JSON form of RFC 7644 §3.12 (status is a string).
type errorBody struct {
	Schemas  []string `json:"schemas"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
	Status   string   `json:"status"`
}

// WriteError writes e as the RFC 7644 §3.12 body (application/scim+json),
// with WWW-Authenticate on 401 and Retry-After on 503. It is the one writer
// of SCIM error bodies: the handlers' own errors and, through the server's
// error handler, the ones Echo produces under /scim/ (unknown path, wrong
// method, body too large, a panic). The cause of a server-side failure is
// logged (a client that went away is not one), never sent.
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	h.recordError(r, e)
	if e.cause != nil {
		level := slog.LevelDebug
		if e.Status >= 500 && !errors.Is(e.cause, context.Canceled) {
			level = slog.LevelError
		}
		h.log.Log(r.Context(), level, "scim request failed", "status", e.Status, "err", e.cause)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	raw, _ := json.Marshal(errorBody{
		Schemas:  []string{errorSchema},
		ScimType: e.ScimType,
		Detail:   e.Detail,
		Status:   strconv.Itoa(e.Status),
	})
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(e.Status)
	_, _ = w.Write(raw)
}

// maxRecordedDetail bounds the detail an error record keeps.
const maxRecordedDetail = 500

// recordError keeps an error answer in the workspace's provisioning
// summary (storage.Store.RecordSCIMError): the method, the route template,
// and the status, scimType and detail the client gets; never the body or
// the token. Errors are rare, so the write they cost is not on the path of
// a successful request. A 503 (the store is failing) is not recorded, nor
// is anything for a workspace that does not exist.
func (h *Handler) recordError(r *http.Request, e *Error) {
	ws := reqctx.Workspace(r.Context())
	if !storage.ValidWorkspaceID(ws) || e.Status == http.StatusServiceUnavailable {
		return
	}
	detail := e.Detail
	if len(detail) > maxRecordedDetail {
		detail = strings.ToValidUTF8(detail[:maxRecordedDetail], "") + "…"
	}
	method := r.Method
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
	default:
		method = "other"
	}
	err := h.store.RecordSCIMError(r.Context(), ws, storage.SCIMRequestError{Time: time.Now(), Method: method,
		Route: routeTemplate(r.URL.Path, ws), Status: e.Status, SCIMType: e.ScimType, Detail: detail})
	if err != nil && !isNotFound(err) {
		h.log.WarnContext(r.Context(), "record scim error", "err", err)
	}
}

// scimEndpoints are the first path segments routeTemplate keeps.
var scimEndpoints = []string{"Users", "Groups", "ResourceTypes", "Schemas", "ServiceProviderConfig", ".search", "Me", "Bulk"}

// routeTemplate is the path of a SCIM request under the workspace's base
// as a template ("/Users/:id"); a path of no endpoint is "(other)", so that
// nothing a client put in a path is stored.
func routeTemplate(path, ws string) string {
	rest := strings.Trim(strings.TrimPrefix(path, "/scim/v2/"+ws), "/")
	if rest == "" {
		return "/"
	}
	segs := strings.Split(rest, "/")
	if !slices.Contains(scimEndpoints, segs[0]) {
		return "(other)"
	}
	switch {
	case len(segs) == 1:
		return "/" + segs[0]
	case len(segs) == 2 && segs[1] == ".search":
		return "/" + segs[0] + "/.search"
	case len(segs) == 2:
		return "/" + segs[0] + "/:id"
	}
	return "/" + segs[0] + "/…"
}
