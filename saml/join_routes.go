package saml

import (
	"github.com/labstack/echo/v4"
)

func init() {
	extraRoutes = append(extraRoutes, (*Service).registerJoin)
}

// registerJoin adds the join and switch routes; Register calls it through
// extraRoutes. The demo outbox page exists in demo mode only.
func (s *Service) registerJoin(e *echo.Echo) {
	e.GET("/join/:token", s.handleJoinLink)
	e.POST("/join/confirm", s.handleJoinConfirm)
	e.POST("/join/resend", s.handleJoinResend)
	e.POST("/switch", s.handleSwitch)
	if s.cfg.Demo {
		e.GET("/demo/outbox", s.handleDemoOutbox)
	}
}
