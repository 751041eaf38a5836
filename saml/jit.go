package saml

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// provision decides what a validated sign-in of id into ws does (R1–R7,
// R12) and answers the browser: a session and a redirect to ret, a join
// (beginJoin, R8/R9), or a refusal page. look is the store's LoginLookup
// of id.Email in ws. Every decision is an event.
func (s *Service) provision(c echo.Context, ws storage.Workspace, id identity, ret string, look loginLookup) error {
	if look.err == nil {
		return s.signInMember(c, ws, look.acct, look.u, look.hasMember, id, ret)
	}
	if !errors.Is(look.err, storage.ErrNotFound) {
		return fmt.Errorf("login lookup: %w", look.err)
	}
	// R1: an unknown person gets in only with JIT on.
	if !ws.Settings.JIT.Enabled {
		return s.refuseNoAccess(c, ws, id)
	}
	// An unknown role under the reject policy answers the page here.
	roles, ok, err := s.rolesFor(c, ws, id)
	if !ok {
		return err
	}
	return s.createJITUser(c, ws, id, roles, ret)
}

// createJITUser creates the account of a person signing in for the first
// time together with its verified membership in ws, its origin workspace
// (R7), and signs it in. The store does all of it in one call: account,
// membership, session and the sign-in's events (one round trip on a
// single server or Sentinel; on a Cluster the account is published before
// its membership, and the session and events follow). The session and the
// events are written only when the membership was created.
func (s *Service) createJITUser(c echo.Context, ws storage.Workspace, id identity, roles storage.Roles, ret string) error {
	create, secret := s.prepareJIT(ws, id, roles)
	r, err := s.cfg.Store.CreateAccountAndUserWithSession(c.Request().Context(), ws.ID, create.Account, create.User,
		create.Session, create.Events)
	return s.finishJIT(c, ws, id, ret, secret, r, err)
}

// prepareJIT is the creation of createJITUser: the account, the
// membership, a new session (secret is its cookie value) and the events.
// handleACS prepares it before it knows whether the person exists, so
// the store can consume the assertion, look the email up and create in
// one round trip (storage.Store.ConsumeOnceAndLoginLookupOrCreate).
func (s *Service) prepareJIT(ws storage.Workspace, id identity, roles storage.Roles) (*storage.JITCreate, string) {
	member := newMembership(ws, storage.Account{}, id, roles)
	t := time.Now()
	secret, sess := s.newSession("", ws.ID)
	return &storage.JITCreate{
		Account: storage.Account{Email: id.Email, FullName: id.FullName, Source: storage.SourceJIT,
			OriginWorkspace: ws.ID, CreatedAt: t},
		User:    member,
		Session: sess,
		Events: []storage.Event{
			{Type: "jit.user.created", Actor: "saml", Time: t,
				Detail: map[string]string{"email": id.Email, "roles": rolesDetail(member.Roles)}},
			{Type: "login.succeeded", Actor: "saml", Time: t, Detail: map[string]string{"email": id.Email}},
		},
	}, secret
}

// finishJIT answers a JIT creation's outcome: signed in, or, when a
// concurrent sign-in created the account first or the membership was
// refused, as for a known account or with the refusal.
func (s *Service) finishJIT(c echo.Context, ws storage.Workspace, id identity, ret, secret string, r storage.JITSignIn, err error) error {
	ctx := c.Request().Context()
	acct := r.Account
	if err == nil {
		if r.EventsErr != nil {
			s.logError(c, "append events", "err", r.EventsErr)
		}
		if r.SessionErr != nil {
			return fmt.Errorf("create session: %w", r.SessionErr)
		}
		// The browser's previous session, if any, goes (no session
		// fixation), as in startSession.
		if old, cerr := c.Cookie(sessionCookie); cerr == nil && old.Value != "" {
			if err := s.deleteSession(ctx, old.Value); err != nil {
				return fmt.Errorf("delete old session: %w", err)
			}
		}
		s.setSessionCookie(c, secret)
		return s.signedIn(c, acct, r.User, ret)
	}
	var ce *storage.ConflictError
	switch {
	case acct.ID == "" && errors.As(err, &ce) && ce.Field == "email":
		// A concurrent first sign-in created the account: decide as for
		// a known account.
		acct, err := s.cfg.Store.GetAccountByEmail(ctx, id.Email)
		if err != nil {
			return fmt.Errorf("get account by email: %w", err)
		}
		return s.signInAccount(c, ws, acct, id, ret)
	case acct.ID == "":
		return fmt.Errorf("create account and membership: %w", err)
	}
	// The account exists, its membership was not created.
	raced, err := s.membershipConflict(c, ws, acct, err)
	if raced {
		return s.signInAccount(c, ws, acct, id, ret)
	}
	if errors.As(err, &ce) {
		return s.refuse(c, ws.ID, http.StatusForbidden, "conflict_"+ce.Field, err, failedPage, "email", id.Email)
	}
	return err
}

// signInAccount handles a sign-in of a known account whose membership in
// ws has not been read yet.
func (s *Service) signInAccount(c echo.Context, ws storage.Workspace, acct storage.Account, id identity, ret string) error {
	u, err := s.cfg.Store.GetUserByAccount(c.Request().Context(), ws.ID, acct.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return s.signInMember(c, ws, acct, storage.User{}, false, id, ret)
	}
	if err != nil {
		return fmt.Errorf("get membership: %w", err)
	}
	return s.signInMember(c, ws, acct, u, true, id, ret)
}

// signInMember handles a sign-in of a known account; u is its membership
// in ws when hasMember.
func (s *Service) signInMember(c echo.Context, ws storage.Workspace, acct storage.Account, u storage.User, hasMember bool, id identity, ret string) error {
	ctx := c.Request().Context()
	if !hasMember {
		return s.joinWorkspace(c, ws, acct, id, ret)
	}
	// R12: a SCIM-deactivated membership blocks sign-in; JIT never
	// re-activates it.
	if !u.Active {
		return s.refuse(c, ws.ID, http.StatusForbidden, "deactivated", nil, message{Title: "Your access was deactivated",
			Text:   fmt.Sprintf("Your access to %s was deactivated by your administrator.", wsName(ws)),
			Detail: "Ask your administrator to re-activate it in your identity provider."},
			"email", id.Email, "userId", u.ID)
	}
	// R9: a SCIM-created membership of an account that existed elsewhere
	// starts unverified; the first sign-in goes through verification.
	if !u.Verified {
		roles, ok, err := s.rolesFor(c, ws, id)
		if !ok {
			return err
		}
		return s.beginJoin(c, ws, acct, roles, &u)
	}
	// R6: roles change on later sign-ins only with roleSync=everyLogin.
	var extra []storage.Event
	if ws.Settings.JIT.RoleSync == storage.RoleSyncEveryLogin {
		roles, ok, err := s.rolesFor(c, ws, id)
		if !ok {
			return err
		}
		if roles != u.Roles {
			old := u.Roles
			u, err = s.cfg.Store.UpdateUser(ctx, ws.ID, u.ID, 0, func(x *storage.User) error {
				x.Roles = roles
				return nil
			})
			if err != nil {
				return fmt.Errorf("sync roles: %w", err)
			}
			extra = append(extra, storage.Event{Type: "role.synced", UserID: u.ID, AccountID: acct.ID,
				Detail: map[string]string{"email": id.Email, "from": rolesDetail(old), "to": rolesDetail(u.Roles)}})
		}
	}
	return s.succeed(c, ws, acct, u, ret, extra...)
}

// joinWorkspace handles a known account without a membership in ws (R8).
func (s *Service) joinWorkspace(c echo.Context, ws storage.Workspace, acct storage.Account, id identity, ret string) error {
	if !ws.Settings.JIT.Enabled {
		return s.refuseNoAccess(c, ws, id)
	}
	roles, ok, err := s.rolesFor(c, ws, id)
	if !ok {
		return err
	}
	// The account's origin workspace vouched for the email when the
	// account was created (R7); a concurrent first login there may not have
	// created its membership yet. Anywhere else, verify first (R8) unless
	// the workspace chose auto.
	policy := storage.ExistingAccountAuto
	if acct.OriginWorkspace == ws.ID {
		policy = "origin"
	} else if ws.Settings.JIT.ExistingAccount != storage.ExistingAccountAuto {
		return s.beginJoin(c, ws, acct, roles, nil)
	}
	u, raced, err := s.createMembership(c, ws, acct, id, roles)
	if raced {
		// A concurrent sign-in created it; decide on that one.
		return s.signInAccount(c, ws, acct, id, ret)
	}
	var ce *storage.ConflictError
	if errors.As(err, &ce) {
		return s.refuse(c, ws.ID, http.StatusForbidden, "conflict_"+ce.Field, err, failedPage, "email", id.Email)
	}
	if err != nil {
		return err
	}
	return s.succeed(c, ws, acct, u, ret, storage.Event{Type: "jit.membership.created", UserID: u.ID, AccountID: acct.ID,
		Detail: map[string]string{"email": id.Email, "roles": rolesDetail(u.Roles), "policy": policy}})
}

// createMembership creates the account's JIT membership in ws. raced is
// true when a concurrent request created the account's membership first
// (the store reports that as a conflict on "account" or, when it checks
// the userName first, on "userName"); err is then nil.
func (s *Service) createMembership(c echo.Context, ws storage.Workspace, acct storage.Account, id identity, roles storage.Roles) (storage.User, bool, error) {
	u, err := s.cfg.Store.CreateUser(c.Request().Context(), ws.ID, newMembership(ws, acct, id, roles))
	if err == nil {
		return u, false, nil
	}
	raced, err := s.membershipConflict(c, ws, acct, err)
	return storage.User{}, raced, err
}

// membershipConflict classifies err from creating acct's membership in ws:
// raced (err nil) when a concurrent request created the account's
// membership first (a conflict on "account", or on "userName" when the
// store checks that first); otherwise err, wrapped unless it is a
// conflict (another account holds the userName or externalId in ws).
func (s *Service) membershipConflict(c echo.Context, ws storage.Workspace, acct storage.Account, err error) (bool, error) {
	var ce *storage.ConflictError
	if !errors.As(err, &ce) {
		return false, fmt.Errorf("create membership: %w", err)
	}
	if _, gerr := s.cfg.Store.GetUserByAccount(c.Request().Context(), ws.ID, acct.ID); gerr == nil {
		return true, nil
	} else if !errors.Is(gerr, storage.ErrNotFound) {
		return false, fmt.Errorf("get membership: %w", gerr)
	}
	return false, err
}

// succeed starts the session and redirects to ret. The events (extra,
// then login.succeeded, in that order) are written together with the
// session, in one store call: independent writes, one round trip.
func (s *Service) succeed(c echo.Context, ws storage.Workspace, acct storage.Account, u storage.User, ret string, extra ...storage.Event) error {
	evs := append(extra, storage.Event{Type: "login.succeeded", UserID: u.ID, AccountID: acct.ID,
		Detail: map[string]string{"email": acct.Email}})
	t := time.Now()
	for i := range evs {
		evs[i].Actor, evs[i].Time = "saml", t
	}
	var evErr error
	err := s.startSessionWith(c, acct.ID, ws.ID, func(ctx context.Context, sess storage.Session) error {
		var sessErr error
		_, sessErr, evErr = s.cfg.Store.CreateSessionAndAppendEvents(ctx, sess, ws.ID, evs)
		return sessErr
	})
	if evErr != nil {
		s.logError(c, "append events", "err", evErr)
	}
	if err != nil {
		return err
	}
	return s.signedIn(c, acct, u, ret)
}

// signedIn logs a successful sign-in and sends the browser on to ret.
func (s *Service) signedIn(c echo.Context, acct storage.Account, u storage.User, ret string) error {
	s.logInfo(c, "saml login succeeded", "account", acct.ID, "user", u.ID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, localPath(ret))
}

// refuseNoAccess is R1's page for a person without membership where JIT is
// off.
func (s *Service) refuseNoAccess(c echo.Context, ws storage.Workspace, id identity) error {
	return s.refuse(c, ws.ID, http.StatusForbidden, "no_access", nil, message{Title: "No access",
		Text:   fmt.Sprintf("You have not been given access to this workspace (%s).", wsName(ws)),
		Detail: "Ask your administrator to assign you to it."},
		"email", id.Email)
}

// rolesFor resolves the DEV/TEST/PROD roles of id for ws (R4): a missing
// attribute takes the default role; a value that is not a system or custom
// role (case-sensitive) follows jit.unknownRole: "default" records a
// role.unknown event and uses the default role, "reject" records it and
// refuses with a page naming the role and the workspace. ok is false when
// the response was written.
func (s *Service) rolesFor(c echo.Context, ws storage.Workspace, id identity) (storage.Roles, bool, error) {
	def := jitDefaultRole(ws)
	var out [3]string
	for i, v := range id.Roles {
		if r, ok := roleOf(ws, v, def); ok {
			out[i] = r
			continue
		}
		policy := ws.Settings.JIT.UnknownRole
		if policy != storage.UnknownRoleDefault {
			policy = storage.UnknownRoleReject
		}
		s.event(c, ws.ID, storage.Event{Type: "role.unknown", Detail: map[string]string{
			"email": id.Email, "role": v, "environment": envNames[i], "policy": policy}})
		if policy == storage.UnknownRoleDefault {
			out[i] = def
			continue
		}
		return storage.Roles{}, false, s.refuse(c, ws.ID, http.StatusForbidden, "unknown_role", nil, message{
			Title: "Sign-in failed",
			Text: fmt.Sprintf("The role %q sent for %s is not a role of workspace %q.",
				v, strings.ToUpper(envNames[i]), wsName(ws)),
			Detail: "Roles are case-sensitive. Ask your administrator to fix the role in your identity provider."},
			"email", id.Email, "role", v, "environment", envNames[i])
	}
	return storage.Roles{Dev: out[0], Test: out[1], Prod: out[2]}, true, nil
}

// knownRoles is rolesFor for an identity whose roles are all the
// workspace's or not sent (the default role): no decision to record, so
// no side effect. ok is false when a role is unknown; rolesFor decides.
func knownRoles(ws storage.Workspace, id identity) (storage.Roles, bool) {
	def := jitDefaultRole(ws)
	var out [3]string
	for i, v := range id.Roles {
		r, ok := roleOf(ws, v, def)
		if !ok {
			return storage.Roles{}, false
		}
		out[i] = r
	}
	return storage.Roles{Dev: out[0], Test: out[1], Prod: out[2]}, true
}

// roleOf is the role an environment gets from the value the IdP sent for
// it: def when none was sent, the value when it is one of the workspace's
// roles (case-sensitive); ok is false for an unknown role.
func roleOf(ws storage.Workspace, v, def string) (string, bool) {
	switch {
	case v == "":
		return def, true
	case ws.Settings.ValidRole(v):
		return v, true
	}
	return "", false
}

// jitDefaultRole is the role of an environment the IdP sent none for
// (R4).
func jitDefaultRole(ws storage.Workspace) string {
	if def := ws.Settings.JIT.DefaultRole; def != "" {
		return def
	}
	return storage.RoleOperator
}

// newMembership builds a JIT membership (R7): verified and active, userName
// and primary work email as sent, no externalId, so an IdP's SCIM lookup by
// userName or email finds it (R13).
func newMembership(ws storage.Workspace, acct storage.Account, id identity, roles storage.Roles) storage.User {
	given, family := splitName(id)
	name := map[string]any{"formatted": id.FullName}
	if given != "" {
		name["givenName"] = given
	}
	if family != "" {
		name["familyName"] = family
	}
	return storage.User{
		WorkspaceID: ws.ID,
		AccountID:   acct.ID,
		UserName:    id.Email,
		Emails:      []string{strings.ToLower(id.Email)},
		Active:      true,
		Verified:    true,
		Source:      storage.SourceJIT,
		Roles:       roles,
		Attributes: map[string]any{
			"emails":      []any{map[string]any{"value": id.Email, "type": "work", "primary": true}},
			"name":        name,
			"displayName": id.FullName,
		},
	}
}

func rolesDetail(r storage.Roles) string {
	return "dev=" + r.Dev + ",test=" + r.Test + ",prod=" + r.Prod
}

func wsName(ws storage.Workspace) string {
	if ws.Name != "" {
		return ws.Name
	}
	return ws.ID
}
