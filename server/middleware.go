package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/reqctx"
)

// HeaderRequestID carries the request id in requests and responses.
const HeaderRequestID = "X-Request-ID"

// requestIDRe is what an inbound request id may look like; anything else is
// replaced so that a client cannot inject text into our logs.
var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// slugRe is the workspace id syntax (storage.Workspace).
var slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidRequestID reports whether an inbound X-Request-ID is kept as is: at
// most 64 characters of [A-Za-z0-9._-].
func ValidRequestID(id string) bool { return requestIDRe.MatchString(id) }

// ValidWorkspaceID reports whether id is a valid workspace slug.
func ValidWorkspaceID(id string) bool { return slugRe.MatchString(id) }

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID takes a well-formed inbound X-Request-ID or makes a new one,
// echoes it in the response and puts it into the request context.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Header.Get(HeaderRequestID)
		if !ValidRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(HeaderRequestID, id)
		c.SetRequest(req.WithContext(reqctx.WithRequestID(req.Context(), id)))
		return next(c)
	}
}

// workspaceCtx puts a well-formed :ws route parameter into the request
// context, so that every log record of the request names the workspace.
func (s *Server) workspaceCtx(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ws := c.Param("ws"); ws != "" && ValidWorkspaceID(ws) {
			req := c.Request()
			c.SetRequest(req.WithContext(reqctx.WithWorkspace(req.Context(), ws)))
		}
		return next(c)
	}
}

// accessLog writes one line per request: method, route template (never the
// raw path or query, which may carry ids or secrets), status, duration,
// response size and client IP; and records the request's metrics. Errors are rendered here so the status is
// known when the line is written.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		elapsed := time.Since(start)
		s.metrics.observe(c.Request().Method, route, status, elapsed)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		// The context may have gained a workspace further down the chain.
		s.log.LogAttrs(c.Request().Context(), level, "request",
			slog.String("method", c.Request().Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int64("bytes", c.Response().Size),
			slog.String("remote_ip", c.RealIP()),
		)
		return nil
	}
}

// recoverPanic turns a panic into a 500 (rendered by handleError) and logs
// the panic value with the stack.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.ErrorContext(c.Request().Context(), "panic in handler",
					"err", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = echo.NewHTTPError(http.StatusInternalServerError)
			}
		}()
		return next(c)
	}
}

// bodyLimitFor returns the body cap of a route template.
func (s *Server) bodyLimitFor(route string) int64 {
	switch {
	case strings.HasPrefix(route, "/scim/"):
		return s.cfg.SCIMBodyLimit
	case strings.HasPrefix(route, "/saml/") && strings.HasSuffix(route, "/acs"):
		return s.cfg.SAMLBodyLimit
	case strings.HasPrefix(route, "/admin/"):
		return s.cfg.AdminBodyLimit
	default:
		return s.cfg.DefaultBodyLimit
	}
}

// bodyLimit answers 413 when the declared Content-Length exceeds the
// route's cap, and otherwise makes reading past the cap fail.
func (s *Server) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		limit := s.bodyLimitFor(c.Path())
		if req.ContentLength > limit {
			return &apiError{Status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("request body larger than %d bytes", limit)}
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
		return next(c)
	}
}

// ipExtractor picks the client IP: the TCP peer, or with trusted proxies
// the nearest X-Forwarded-For entry that is not one of them. Echo's own
// defaults (trust loopback and private ranges) are switched off so that only
// the configured networks count.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{
			IP:   net.IP(p.Addr().AsSlice()),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// reqctxWithWorkspace records ws in the request's context (for logs) and
// returns that context.
func reqctxWithWorkspace(c echo.Context, ws string) context.Context {
	req := c.Request()
	ctx := reqctx.WithWorkspace(req.Context(), ws)
	c.SetRequest(req.WithContext(ctx))
	return ctx
}
