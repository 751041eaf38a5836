package saml

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// meAccount is the account part of /api/v1/me.
type meAccount struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	FullName string `json:"fullName"`
}

// meMembership is one membership in /api/v1/me.
type meMembership struct {
	Workspace string        `json:"workspace"`
	Name      string        `json:"name"`
	Roles     storage.Roles `json:"roles"`
	Verified  bool          `json:"verified"`
	Active    bool          `json:"active"`
}

// meResponse is the body of GET /api/v1/me.
type meResponse struct {
	Account         meAccount      `json:"account"`
	ActiveWorkspace string         `json:"activeWorkspace"`
	Memberships     []meMembership `json:"memberships"`
}

// homePage is the data of the home page (home.html). The workspace
// switcher (part_switcher.html, owned by the join/switch side) gets the
// same data: .Me.Memberships, .Me.ActiveWorkspace and .CSRF.
type homePage struct {
	SignedIn bool
	Me       meResponse
	CSRF     string
	Demo     bool
	// Return is the local path (?return=) the find-workspace form passes
	// on to the login, when not the home page.
	Return string
}

// me assembles the signed-in person's view: account, active workspace, and
// every membership (verified or not, active or not) in workspace order.
func (s *Service) me(ctx context.Context, sess storage.Session) (meResponse, bool, error) {
	acct, ok, err := s.sessionAccount(ctx, sess)
	if err != nil || !ok {
		return meResponse{}, ok, err
	}
	refs, err := s.cfg.Store.AccountMemberships(ctx, acct.ID)
	if err != nil {
		return meResponse{}, false, fmt.Errorf("account memberships: %w", err)
	}
	out := meResponse{
		Account:         meAccount{ID: acct.ID, Email: acct.Email, FullName: acct.FullName},
		ActiveWorkspace: sess.ActiveWorkspace,
		Memberships:     []meMembership{},
	}
	for _, ref := range refs {
		u, err := s.cfg.Store.GetUser(ctx, ref.WorkspaceID, ref.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return meResponse{}, false, fmt.Errorf("get membership: %w", err)
		}
		name := ref.WorkspaceID
		if ws, err := s.cfg.Store.GetWorkspace(ctx, ref.WorkspaceID); err == nil && ws.Name != "" {
			name = ws.Name
		}
		out.Memberships = append(out.Memberships, meMembership{Workspace: ref.WorkspaceID, Name: name,
			Roles: u.Roles, Verified: u.Verified, Active: u.Active})
	}
	return out, true, nil
}

// handleMe answers GET /api/v1/me with the signed-in account as JSON, or
// 401 {"error":"not signed in"} (with "reason":"membership_inactive" when
// the session was ended because its membership is no longer active).
func (s *Service) handleMe(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	sess, st, err := s.activeSession(c)
	if err != nil {
		return err
	}
	switch st {
	case sessionEnded:
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "not signed in", "reason": "membership_inactive"})
	case noSession:
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "not signed in"})
	}
	me, ok, err := s.me(c.Request().Context(), sess)
	if err != nil {
		return err
	}
	if !ok {
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "not signed in"})
	}
	return c.JSON(http.StatusOK, me)
}

// handleHome shows the signed-in person's account and memberships, or a
// short welcome (with the demo IdP link in demo mode), and the
// find-workspace form (discover.go) in both cases.
func (s *Service) handleHome(c echo.Context) error {
	data := homePage{Demo: s.demo != nil}
	if ret := localPath(c.QueryParam("return")); ret != "/" {
		data.Return = ret
	}
	sess, st, err := s.activeSession(c)
	if err != nil {
		return s.storeFailed(c, "home page", err)
	}
	if st == sessionEnded {
		return s.showMessage(c, http.StatusUnauthorized, sessionEndedPage)
	}
	if st == sessionLive {
		me, found, err := s.me(c.Request().Context(), sess)
		if err != nil {
			return s.storeFailed(c, "home page", err)
		}
		data.SignedIn, data.Me = found, me
	}
	if data.CSRF, err = s.csrfToken(c); err != nil {
		return s.storeFailed(c, "home page", err)
	}
	return s.render(c, http.StatusOK, "home", data)
}
