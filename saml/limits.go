package saml

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// Rate and size limits of the browser-facing SAML endpoints. Each rate is
// per minute with bursts of the same size, enforced by Store.Allow (GCRA
// on the shared Redis, so every process counts together). A client is a
// client network (loginClient: the IPv4 address, or the IPv6 /64).
const (
	// DefaultLoginLimit is Config.LoginLimit's default: SP-initiated
	// sign-ins per minute per client network and workspace (and the
	// home page's find-workspace look-ups per minute per client
	// network). It equals DefaultACSClientLimit, since each sign-in ends
	// in one ACS post: an office of 500 people behind one NAT address who
	// all open the app around 9:00 (a burst of 300 at once, then 300 a
	// minute, counting a retry or a second tab) get through within the
	// first minute or two; at 60 a minute most of them would have hit the
	// 429 page. Each sign-in stores a tracked request for requestTTL, so
	// the limit also bounds what one client keeps in Redis: at most 300
	// per minute of requestTTL plus one burst, 3,300 records (about
	// 375 kB, see trackedRequest) per client and workspace.
	DefaultLoginLimit = 300
	// DefaultACSClientLimit is Config.ACSClientLimit's default: SAML
	// responses per minute one client network may post, to all
	// workspaces together. A company's morning sign-in wave from one
	// office NAT address (a few hundred people within minutes) passes;
	// one attacker gets 5 refused sign-ins a second at most.
	DefaultACSClientLimit = 300
	// DefaultACSWorkspaceLimit is Config.ACSWorkspaceLimit's default:
	// SAML responses per minute one workspace's ACS takes from all
	// clients together: 100 a second, well above the morning wave of a
	// company of 100,000 people, and a bound on what a distributed flood
	// costs the workspace.
	DefaultACSWorkspaceLimit = 6000
	// DefaultACSBodyLimit is Config.ACSBodyLimit's default: 2 MiB, far
	// above the largest real SAML response (tens of kB, a few hundred kB
	// with thousands of group claims).
	DefaultACSBodyLimit = 2 << 20
)

// noticeRate bounds the warn logs and login.rate_limited events of the ACS
// limits to one per minute per limited client or workspace, however many
// requests are refused: the refusals themselves must not flood the log or
// the event stream.
var noticeRate = storage.Rate{Limit: 1, Burst: 1, Period: time.Minute}

func positiveOr[T int | int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// limitACS rate-limits the ACS before anything is parsed or read from the
// store, per client network (all workspaces) and per workspace, in one
// store call: a request over either limit gets a 429 page with
// Retry-After and is counted against neither. Without the store it fails
// closed (the ACS could not work anyway). A malformed workspace id is
// left to the handler (404).
func (s *Service) limitACS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ws := c.Param("ws")
		if !wsPattern.MatchString(ws) {
			return next(c)
		}
		client := loginClient(c.RealIP())
		scopes := [...]struct {
			name, notice string
			perMinute    int
		}{
			{"client", "saml:acs:notice:c:" + client, s.cfg.ACSClientLimit},
			{"workspace", "saml:acs:notice:w:" + ws, s.cfg.ACSWorkspaceLimit},
		}
		a, err := s.cfg.Store.Allow(c.Request().Context(),
			storage.Limit{Key: "saml:acs:c:" + client, Rate: storage.PerMinute(s.cfg.ACSClientLimit)},
			storage.Limit{Key: "saml:acs:w:" + ws, Rate: storage.PerMinute(s.cfg.ACSWorkspaceLimit)})
		if err != nil {
			return s.storeFailed(c, "acs rate limit", err)
		}
		if a.OK {
			return next(c)
		}
		l := scopes[a.Limit]
		if n, err := s.cfg.Store.Allow(c.Request().Context(), storage.Limit{Key: l.notice, Rate: noticeRate}); err == nil && n.OK {
			// No IP in the log record (the access-log line has it).
			s.logWarn(c, "saml acs refused: rate limit", "reason", "rate_limited", "limit", l.name,
				"per_minute", l.perMinute)
			s.event(c, ws, storage.Event{Type: "login.rate_limited", Detail: map[string]string{
				"limit": l.name, "perMinute": strconv.Itoa(l.perMinute)}})
		}
		return s.tooManySignIns(c, a.RetryAfter)
	}
}

// tooManySignIns answers 429 with Retry-After (whole seconds, at least 1)
// and the plain page.
func (s *Service) tooManySignIns(c echo.Context, retry time.Duration) error {
	c.Response().Header().Set("Retry-After", strconv.FormatInt(int64(max(1, (retry+time.Second-1)/time.Second)), 10))
	return s.showMessage(c, http.StatusTooManyRequests, message{Title: "Too many sign-in attempts",
		Text: "There have been too many sign-in attempts from your network recently. Please try again in a minute."})
}

// limitACSBody caps the ACS request body at Config.ACSBodyLimit: a
// declared Content-Length over it is refused at once, and reading past it
// fails (the handler's form parsing then refuses with the same page).
// It is the only limit on this route: the server's per-route body limit
// leaves the ACS to this one so that the person gets a page, not JSON.
func (s *Service) limitACSBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		limit := s.cfg.ACSBodyLimit
		if r.ContentLength > limit {
			cause := fmt.Errorf("request body of %d bytes is over the limit of %d", r.ContentLength, limit)
			if ws := c.Param("ws"); wsPattern.MatchString(ws) {
				return s.refuse(c, ws, http.StatusRequestEntityTooLarge, "body_too_large", cause, tooLargePage)
			}
			return s.showMessage(c, http.StatusRequestEntityTooLarge, tooLargePage)
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
		}
		return next(c)
	}
}

// tooLargePage is the page for an ACS body over the limit.
var tooLargePage = message{Title: "Sign-in failed",
	Text: "The sign-in message from your identity provider was too large. Please contact your administrator."}
