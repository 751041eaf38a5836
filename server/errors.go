package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/scimhandlers"
	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// apiError is an error with a public part (status, code, message) and an
// optional private cause that is logged, never sent.
type apiError struct {
	Status  int
	Code    string // defaults to codeFor(Status)
	Message string
	Err     error
	// problems are a ValidationError's, one per field (storeError), for
	// the console, which shows each next to its field.
	problems []string
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *apiError) Unwrap() error { return e.Err }

func badRequest(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: msg}
}

// codeFor is the machine-readable "error" value of a status.
func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
}

// publicError maps any error to what a client may see, logging the private
// part. Internal error text never reaches the client.
func (s *Server) publicError(c echo.Context, err error) (status int, code, msg string) {
	ctx := c.Request().Context()
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		status, code, msg = ae.Status, ae.Code, ae.Message
		if ae.Err != nil {
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			s.log.Log(ctx, level, "request failed", "status", status, "err", ae.Err)
		}
	case errors.As(err, &he):
		status = he.Code
		if m, ok := he.Message.(string); ok && status < 500 {
			msg = m // Echo's own messages are static texts ("Not Found")
		}
		if status == http.StatusRequestEntityTooLarge {
			// Echo's BodyLimit says only "Request Entity Too Large": name the
			// limit, so that an IdP's log tells the admin what to change.
			if n := s.bodyLimit(c.Path()); n > 0 {
				msg = "request body larger than " + strconv.FormatInt(n, 10) + " bytes"
			}
		}
		if he.Internal != nil {
			s.log.InfoContext(ctx, "request failed", "status", status, "err", he.Internal)
		}
	case errors.Is(err, storage.ErrUnavailable):
		status, msg = http.StatusServiceUnavailable, "storage unavailable, retry later"
		s.log.ErrorContext(ctx, "storage unavailable", "err", err)
	case errors.Is(err, storage.ErrConflictRetries):
		status, msg = http.StatusServiceUnavailable, "too much contention, retry later"
		s.log.WarnContext(ctx, "storage contention", "err", err)
	default:
		status = http.StatusInternalServerError
		s.log.ErrorContext(ctx, "internal error", "err", err)
	}
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if status >= 500 && msg == "" {
		msg = "internal error"
	}
	if code == "" {
		code = codeFor(status)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return status, code, msg
}

// retryAfterUnavailable is the Retry-After (in seconds) of every 503 this
// handler renders: the store was unreachable, or too contended, for this
// request, and a client should simply try again shortly (RFC 9110 §10.2.3).
const retryAfterUnavailable = "1"

// handleError is Echo's HTTPErrorHandler: the error page for browser paths
// (apiPath); under /scim/ the SCIM handler's one error writer renders the
// RFC 7644 §3.12 body (application/scim+json); {"error","message"} JSON for
// the other API paths.
func (s *Server) handleError(err error, c echo.Context) {
	// The access log renders a handler's error so that it logs the final
	// status, and passes the error on; Echo then calls this again with a
	// committed response.
	if c.Response().Committed {
		return
	}
	status, code, msg := s.publicError(c, err)
	h := c.Response().Header()
	if status == http.StatusServiceUnavailable && h.Get(echo.HeaderRetryAfter) == "" {
		h.Set(echo.HeaderRetryAfter, retryAfterUnavailable)
	}
	if !apiPath(c.Request().URL.Path) {
		s.errorPage(c, status)
		return
	}
	if strings.HasPrefix(c.Request().URL.Path, "/scim/") {
		s.scim.WriteError(c.Response(), c.Request(), &scimhandlers.Error{Status: status, Detail: msg})
		return
	}
	if status == http.StatusUnauthorized && strings.HasPrefix(c.Request().URL.Path, "/admin/") {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="scimjit-admin"`)
	}
	body := map[string]string{"error": code, "message": msg}
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(status)
	if c.Request().Method == http.MethodHead {
		return
	}
	if werr := json.NewEncoder(c.Response()).Encode(body); werr != nil {
		s.log.DebugContext(c.Request().Context(), "write error response", "err", werr)
	}
}

// apiPath reports whether an error on path is answered with JSON: the
// SCIM, admin and /api/ paths and the health checks, whether a route
// matched or not. Every other path is a browser's, answered with a page.
// The prefix decides, not the Accept header, so that a client gets the
// same shape for the same path whatever it sends.
func apiPath(path string) bool {
	for _, p := range [...]string{"/scim", "/admin", "/api"} {
		if rest, ok := strings.CutPrefix(path, p); ok && (rest == "" || rest[0] == '/') {
			return true
		}
	}
	return path == "/healthz" || path == "/readyz"
}

// errorPage renders the product's error page for status (package saml),
// with a "sign in again" link when the request named a workspace. Should
// the page itself fail, a plain-text status line is the last resort.
func (s *Server) errorPage(c echo.Context, status int) {
	ctx := c.Request().Context()
	if err := s.saml.ErrorPage(c, status, reqctx.Workspace(ctx)); err != nil {
		s.log.ErrorContext(ctx, "render error page", "err", err)
		if !c.Response().Committed {
			http.Error(c.Response(), http.StatusText(status), status)
		}
	}
}
