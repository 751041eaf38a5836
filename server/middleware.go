package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// HeaderRequestID carries the request id in requests and responses.
const HeaderRequestID = echo.HeaderXRequestID

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

// newRequestID makes a request id: 24 hex digits of randomness.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	var h [2 * len(b)]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// requestID is Echo's RequestID middleware (it takes the inbound
// X-Request-ID or makes one, and echoes it in the response) with what it
// cannot do itself in its RequestIDHandler: replace an inbound id that
// ValidRequestID refuses (Echo keeps any non-empty one), and put the id
// and a well-formed :ws route parameter into the request context, so that
// every log record of the request names both. Echo has matched the route
// before any middleware runs, so :ws is known here.
func requestID() echo.MiddlewareFunc {
	return middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		TargetHeader: HeaderRequestID,
		Generator:    newRequestID,
		RequestIDHandler: func(c echo.Context, id string) {
			if !ValidRequestID(id) {
				id = newRequestID()
				c.Response().Header().Set(HeaderRequestID, id)
			}
			ws := c.Param("ws")
			if !ValidWorkspaceID(ws) {
				ws = ""
			}
			req := c.Request()
			c.SetRequest(req.WithContext(reqctx.WithRequest(req.Context(), id, ws)))
		},
	})
}

// accessLog is Echo's RequestLogger writing one line per request through
// slog: method, route template (never the raw path or query, which may
// carry ids or secrets), status, duration, response size, client IP and,
// when an admin token authenticated the request, the token's name
// (reqctx.AdminToken, never its value); it records the request's metrics
// too. It renders errors itself (HandleError) so that the line has the
// status the client got; 5xx lines are warnings.
func (s *Server) accessLog() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:     true,
		LogLatency:      true,
		LogMethod:       true,
		LogRoutePath:    true,
		LogStatus:       true,
		LogResponseSize: true,
		LogRemoteIP:     true,
		LogValuesFunc:   s.logRequest,
	})
}

func (s *Server) logRequest(c echo.Context, v middleware.RequestLoggerValues) error {
	route := v.RoutePath
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observe(v.Method, route, v.Status, v.Latency)
	level := slog.LevelInfo
	if v.Status >= 500 {
		level = slog.LevelWarn
	}
	// The handler may have replaced the request (a context with a
	// workspace or an admin token), so its context is read now.
	ctx := c.Request().Context()
	attrs := [...]slog.Attr{
		slog.String("method", v.Method),
		slog.String("route", route),
		slog.Int("status", v.Status),
		slog.Float64("duration_ms", float64(v.Latency.Microseconds())/1000),
		slog.Int64("bytes", v.ResponseSize),
		slog.String("remote_ip", v.RemoteIP),
		{}, // admin_token, when set
	}
	n := len(attrs) - 1
	if name := reqctx.AdminToken(ctx); name != "" {
		attrs[n] = slog.String("admin_token", name)
		n++
	}
	s.log.LogAttrs(ctx, level, "request", attrs[:n]...)
	return nil
}

// recoverPanic is Echo's Recover: a panic becomes a 500 (rendered by
// handleError through the access log's HandleError) and an error log
// with the panic value and the stack of the panicking goroutine.
func (s *Server) recoverPanic() echo.MiddlewareFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableStackAll:     true,
		DisableErrorHandler: true, // accessLog renders the returned error once
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.ErrorContext(c.Request().Context(), "panic in handler", "err", err, "stack", string(stack))
			return echo.NewHTTPError(http.StatusInternalServerError)
		},
	})
}

// secureHeaders is Echo's Secure: every response says nosniff and may not
// be framed. HSTS is left to the TLS-terminating proxy in front, which
// knows whether every host name is served over https; the pages set their
// own Content-Security-Policy (package saml). The X-XSS-Protection header
// is not sent: browsers dropped the filter it controlled.
func secureHeaders() echo.MiddlewareFunc {
	return middleware.SecureWithConfig(middleware.SecureConfig{
		ContentTypeNosniff: "nosniff",
		XFrameOptions:      "DENY",
		ReferrerPolicy:     "same-origin",
	})
}

// Body-limit classes of routes (bodyLimitClass).
const (
	bodyDefault = iota
	bodySCIM
	bodyAdmin
	bodyOwn // the SAML ACS, which applies its own limit
)

// bodyLimitClass is the body-limit class of a route template. The ACS
// applies SAMLBodyLimit itself (saml.Config.ACSBodyLimit) so that a
// person gets a page and the refusal an event.
func bodyLimitClass(route string) int {
	switch {
	case strings.HasPrefix(route, "/scim/"), route == saml.DemoReceivePath: // the demo receiver gets SCIM resources
		return bodySCIM
	case strings.HasPrefix(route, "/admin/"), strings.HasPrefix(route, "/console/"): // the console takes IdP metadata too
		return bodyAdmin
	case strings.HasPrefix(route, "/saml/") && strings.HasSuffix(route, "/acs"):
		return bodyOwn
	default:
		return bodyDefault
	}
}

// bodyLimits caps request bodies with Echo's BodyLimit, one per class of
// route: SCIM, admin and every other route. Each skips the routes of the
// other classes; a declared Content-Length over the cap is a 413 before
// the handler runs, and reading past it fails with the same error.
func (s *Server) bodyLimits() []echo.MiddlewareFunc {
	limit := func(class int, n int64) echo.MiddlewareFunc {
		return middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
			Limit:   strconv.FormatInt(n, 10) + "B",
			Skipper: func(c echo.Context) bool { return bodyLimitClass(c.Path()) != class },
		})
	}
	return []echo.MiddlewareFunc{
		limit(bodySCIM, s.classLimit(bodySCIM)),
		limit(bodyAdmin, s.classLimit(bodyAdmin)),
		limit(bodyDefault, s.classLimit(bodyDefault)),
	}
}

// bodyLimit is the body cap of a route template in bytes; 0 for the ACS,
// which applies its own.
func (s *Server) bodyLimit(route string) int64 { return s.classLimit(bodyLimitClass(route)) }

// classLimit is the body cap of a body-limit class in bytes.
func (s *Server) classLimit(class int) int64 {
	switch class {
	case bodySCIM:
		return s.cfg.SCIMBodyLimit
	case bodyAdmin:
		return s.cfg.AdminBodyLimit
	case bodyDefault:
		return s.cfg.DefaultBodyLimit
	}
	return 0
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
