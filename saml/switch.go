package saml

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// Workspace switching (R11). The home page lists the signed-in person's
// memberships; part_switcher.html offers a "switch" button for each
// verified, active membership that is not the active workspace, and POST
// /switch changes the session's active workspace after checking the same
// condition against the store (the page is never trusted).

// handleSwitch answers POST /switch (form: csrf_token, workspace). The
// workspace must be a verified, active membership of the signed-in account
// (else 403); the session's active workspace changes and the browser goes
// home.
func (s *Service) handleSwitch(c echo.Context) error {
	if err := s.checkCSRF(c); err != nil {
		return s.refuseCSRF(c, err)
	}
	sess, st, err := s.activeSession(c)
	if err != nil {
		return err
	}
	if st == sessionEnded {
		return s.showMessage(c, http.StatusUnauthorized, sessionEndedPage)
	}
	if st == noSession {
		return s.showMessage(c, http.StatusUnauthorized, message{Title: "Not signed in",
			Text: "Your session has ended. Sign in again.", Link: "/", LinkText: "Home"})
	}
	wsID := c.FormValue("workspace")
	refuse := func(reason string) error {
		s.logWarn(c, "workspace switch refused", "account", sess.AccountID, "target", safeSlug(wsID), "reason", reason)
		return s.showMessage(c, http.StatusForbidden, message{Title: "Cannot switch",
			Text: "You are not an active, verified member of that workspace.", Link: "/", LinkText: "Back to your workspaces"})
	}
	if !wsPattern.MatchString(wsID) {
		return refuse("invalid workspace id")
	}
	ctx := reqctx.WithWorkspace(c.Request().Context(), wsID)
	c.SetRequest(c.Request().WithContext(ctx))
	u, err := s.cfg.Store.GetUserByAccount(ctx, wsID, sess.AccountID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return refuse("no membership")
	case err != nil:
		return fmt.Errorf("switch: get membership: %w", err)
	case !u.Active:
		return refuse("deactivated")
	case !u.Verified:
		return refuse("unverified")
	}
	_, err = s.cfg.Store.UpdateSession(ctx, sess.Key, func(ss *storage.Session) error {
		if ss.AccountID != sess.AccountID {
			return errors.New("session changed hands")
		}
		ss.ActiveWorkspace = wsID
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return s.showMessage(c, http.StatusUnauthorized, message{Title: "Not signed in",
			Text: "Your session has ended. Sign in again.", Link: "/", LinkText: "Home"})
	}
	if err != nil {
		return fmt.Errorf("switch: update session: %w", err)
	}
	s.logInfo(c, "workspace switched", "account", sess.AccountID)
	return c.Redirect(http.StatusSeeOther, "/")
}
