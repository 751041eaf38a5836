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
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// HeaderRequestID carries the request id in requests and responses.
const HeaderRequestID = "X-Request-ID"

// headerRequestIDKey is HeaderRequestID in canonical form, the key of
// http.Header maps. Indexing the map with it directly saves Get and Set the
// canonicalisation of "X-Request-ID" (an allocation each) on every request.
var headerRequestIDKey = http.CanonicalHeaderKey(HeaderRequestID)

// ValidRequestID reports whether an inbound X-Request-ID is kept as is: 1 to
// 64 characters of [A-Za-z0-9._-] (^[A-Za-z0-9._-]{1,64}$), so that a client
// cannot inject text into our logs.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidWorkspaceID reports whether id is a valid workspace slug
// (storage.ValidWorkspaceID).
func ValidWorkspaceID(id string) bool { return storage.ValidWorkspaceID(id) }

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	var h [2 * len(b)]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// requestID takes a well-formed inbound X-Request-ID or makes a new one and
// echoes it in the response. It puts the id, and a well-formed :ws route
// parameter (so that every log record of the request names the workspace),
// into the request context. Echo has matched the route before any
// middleware runs, so both go in with one derivation of the request.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		var id string
		if v := req.Header[headerRequestIDKey]; len(v) > 0 {
			id = v[0]
		}
		if !ValidRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header()[headerRequestIDKey] = []string{id}
		ws := c.Param("ws")
		if !ValidWorkspaceID(ws) {
			ws = ""
		}
		c.SetRequest(req.WithContext(reqctx.WithRequest(req.Context(), id, ws)))
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
		elapsed := time.Since(start)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		// The handler may have replaced the request (a context with a
		// workspace), so it is read after next.
		req, resp := c.Request(), c.Response()
		status := resp.Status
		s.metrics.observe(req.Method, route, status, elapsed)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		var buf [7]slog.Attr // on the stack: LogAttrs copies the attributes
		attrs := append(buf[:0],
			slog.String("method", req.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int64("bytes", resp.Size),
			slog.String("remote_ip", c.RealIP()),
		)
		if name := reqctx.AdminToken(req.Context()); name != "" {
			attrs = append(attrs, slog.String("admin_token", name)) // its name, never its value
		}
		s.log.LogAttrs(req.Context(), level, "request", attrs...)
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

// bodyLimitFor returns the body cap of a route template; 0 for the SAML
// ACS, which applies SAMLBodyLimit itself (saml.Config.ACSBodyLimit) so
// that a person gets a page rather than a JSON error.
func (s *Server) bodyLimitFor(route string) int64 {
	switch {
	case strings.HasPrefix(route, "/scim/"):
		return s.cfg.SCIMBodyLimit
	case strings.HasPrefix(route, "/saml/") && strings.HasSuffix(route, "/acs"):
		return 0
	case strings.HasPrefix(route, "/admin/"):
		return s.cfg.AdminBodyLimit
	default:
		return s.cfg.DefaultBodyLimit
	}
}

// bodyLimit answers 413 when the declared Content-Length exceeds the
// route's cap, and otherwise makes reading past the cap fail (routes with
// no cap here apply their own).
func (s *Server) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		limit := s.bodyLimitFor(c.Path())
		if limit == 0 {
			return next(c)
		}
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
