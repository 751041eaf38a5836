package saml

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// decide decides what a validated sign-in of id into ws does, from what the
// store knows of the person (login, or err: ErrNotFound when no account
// has the email), and answers the browser:
//
//   - no account: a JIT first sign-in, where the workspace has JIT on
//     (createJITUser), else the no-access page;
//   - an account without a membership here: joinWorkspace;
//   - a membership: signInMember.
//
// Every decision is an event. A creation that loses a race with a
// concurrent one (two sign-ins of one person, or SCIM creating the
// membership meanwhile) decides again once (retry), from the state it
// lost to (decideAgain).
func (s *Service) decide(c echo.Context, ws storage.Workspace, id identity, ret string, login storage.Login, err error, retry bool) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if !ws.Settings.JIT.Enabled {
			return s.refuseNoAccess(c, ws, id)
		}
		return s.createJITUser(c, ws, id, ret, retry)
	case err != nil:
		return s.storeFailed(c, "login lookup", err)
	case !login.Member:
		return s.joinWorkspace(c, ws, login.Account, id, ret, retry)
	}
	return s.signInMember(c, ws, login.Account, login.User, id, ret)
}

// decideAgain is decide after a lost race, from a fresh lookup, once.
func (s *Service) decideAgain(c echo.Context, ws storage.Workspace, id identity, ret string) error {
	login, err := s.cfg.Store.LoginLookup(c.Request().Context(), ws.ID, id.Email)
	return s.decide(c, ws, id, ret, login, err, false)
}

// createJITUser creates the account of a person signing in for the first
// time, its verified membership in ws (its origin workspace), a session and
// the sign-in's events, in one store call (storage.SignIns.CreateJITUser).
// When the email or the membership turns out taken by a concurrent
// request, it decides again.
func (s *Service) createJITUser(c echo.Context, ws storage.Workspace, id identity, ret string, retry bool) error {
	d, ok, err := s.rolesFor(c, ws, id, nil)
	if !ok {
		return err
	}
	u := newMembership(id.Email, id.FullName, d.Roles)
	t := time.Now()
	secret, sess := s.newSession("", ws.ID, id.idpSession)
	j, err := s.cfg.Store.CreateJITUser(c.Request().Context(), ws.ID, storage.JITUser{
		Account: storage.Account{Email: id.Email, FullName: id.FullName, Source: storage.SourceJIT,
			OriginWorkspace: ws.ID, CreatedAt: t},
		User:    u,
		Session: sess,
		Events: []storage.Event{
			{Type: "jit.user.created", Actor: "saml", Time: t,
				Detail: d.detail(map[string]string{"email": id.Email, "roles": u.Roles.Detail()})},
			{Type: "login.succeeded", Actor: "saml", Time: t, Detail: withReceived(c, d.groupsDetail(map[string]string{"email": id.Email}))},
		},
	})
	var ce *storage.ConflictError
	switch {
	case errors.As(err, &ce) && retry:
		// Another request created the account or its membership here
		// first (or holds the userName): decide on what it created.
		return s.decideAgain(c, ws, id, ret)
	case errors.As(err, &ce):
		return s.refuse(c, ws.ID, http.StatusForbidden, "conflict_"+ce.Field, err, failedPage, "email", id.Email)
	case err != nil:
		return s.storeFailed(c, "create jit user", err)
	}
	s.indexIdPSession(c, j.Session)
	if err := s.replaceSession(c, secret); err != nil {
		return err
	}
	return s.signedIn(c, j.Account, j.User, ret)
}

// signInMember handles a sign-in of an account with a membership u in ws.
func (s *Service) signInMember(c echo.Context, ws storage.Workspace, acct storage.Account, u storage.User, id identity, ret string) error {
	// A deactivated membership blocks sign-in; JIT never re-activates it.
	if !u.Active {
		return s.refuse(c, ws.ID, http.StatusForbidden, "deactivated", nil, message{Title: "Your access was deactivated",
			Text:   fmt.Sprintf("Your access to %s was deactivated by your administrator.", wsName(ws)),
			Detail: "Ask your administrator to re-activate it in your identity provider."},
			"email", id.Email, "userId", u.ID)
	}
	// Where this sign-in decides roles, the member's SCIM groups count for
	// the group rules like the groups the assertion sent, so that a
	// sign-in never takes away a role a SCIM group gave.
	if len(ws.Settings.Roles.GroupRules) > 0 && (!u.Verified || ws.Settings.JIT.RoleSync == storage.RoleSyncEveryLogin) {
		refs, err := s.cfg.Store.UserGroups(c.Request().Context(), ws.ID, []string{u.ID})
		if err != nil {
			return s.storeFailed(c, "read scim groups", err)
		}
		id.Groups = append(id.Groups, storage.SCIMGroupNames(refs[u.ID])...)
	}
	// A SCIM-created membership of an account that existed elsewhere
	// starts unverified; its first sign-in goes through verification.
	if !u.Verified {
		d, ok, err := s.rolesFor(c, ws, id, &u.Roles)
		if !ok {
			return err
		}
		return s.beginJoin(c, ws, acct, d, &u)
	}
	// Roles change on later sign-ins only with roleSync=everyLogin.
	var extra []storage.Event
	var d roleDecision
	if ws.Settings.JIT.RoleSync == storage.RoleSyncEveryLogin {
		var ok bool
		var err error
		d, ok, err = s.rolesFor(c, ws, id, &u.Roles)
		if !ok {
			return err
		}
		if roles := d.Roles; roles != u.Roles {
			old := u.Roles
			synced, err := s.cfg.Store.UpdateUser(c.Request().Context(), ws.ID, u.ID, 0, func(x *storage.User) error {
				x.Roles = roles
				return nil
			})
			if err != nil {
				return s.storeFailed(c, "sync roles", err)
			}
			u = synced
			extra = append(extra, storage.Event{Type: "role.synced", UserID: u.ID, AccountID: acct.ID,
				Detail: d.detail(map[string]string{"email": id.Email, "from": old.Detail(), "to": u.Roles.Detail()})})
		}
	}
	return s.succeed(c, ws, acct, u, id, ret, d.groupsDetail(nil), extra...)
}

// joinWorkspace handles a known account without a membership in ws: with
// JIT on, the account joins at once in its origin workspace (whose first
// sign-in vouched for the email, and whose membership a concurrent sign-in
// may not have created yet) or where the workspace chose the auto policy;
// anywhere else it verifies its email first (beginJoin, join.go).
func (s *Service) joinWorkspace(c echo.Context, ws storage.Workspace, acct storage.Account, id identity, ret string, retry bool) error {
	if !ws.Settings.JIT.Enabled {
		return s.refuseNoAccess(c, ws, id)
	}
	d, ok, err := s.rolesFor(c, ws, id, nil)
	if !ok {
		return err
	}
	roles := d.Roles
	policy := storage.ExistingAccountAuto
	if acct.OriginWorkspace == ws.ID {
		policy = "origin"
	} else if ws.Settings.JIT.ExistingAccount != storage.ExistingAccountAuto {
		return s.beginJoin(c, ws, acct, d, nil)
	}
	m := newMembership(acct.Email, acct.FullName, roles)
	m.AccountID = acct.ID
	u, err := s.cfg.Store.CreateUser(c.Request().Context(), ws.ID, m)
	var ce *storage.ConflictError
	switch {
	case errors.As(err, &ce) && retry:
		return s.decideAgain(c, ws, id, ret)
	case errors.As(err, &ce):
		return s.refuse(c, ws.ID, http.StatusForbidden, "conflict_"+ce.Field, err, failedPage, "email", id.Email)
	case err != nil:
		return s.storeFailed(c, "create membership", err)
	}
	return s.succeed(c, ws, acct, u, id, ret, d.groupsDetail(nil), storage.Event{Type: "jit.membership.created", UserID: u.ID, AccountID: acct.ID,
		Detail: d.detail(map[string]string{"email": id.Email, "roles": u.Roles.Detail(), "policy": policy})})
}

// succeed starts the session, with the events (extra, then
// login.succeeded with detail added to its own, in that order), and
// redirects to ret.
func (s *Service) succeed(c echo.Context, ws storage.Workspace, acct storage.Account, u storage.User, id identity, ret string, detail map[string]string, extra ...storage.Event) error {
	login := map[string]string{"email": acct.Email}
	maps.Copy(login, detail)
	evs := append(extra, storage.Event{Type: "login.succeeded", UserID: u.ID, AccountID: acct.ID, Detail: withReceived(c, login)})
	t := time.Now()
	for i := range evs {
		evs[i].Actor, evs[i].Time = "saml", t
	}
	if err := s.startSession(c, acct.ID, ws.ID, id.idpSession, evs...); err != nil {
		return s.storeFailed(c, "create session", err)
	}
	return s.signedIn(c, acct, u, ret)
}

// signedIn logs a successful sign-in and sends the browser on to ret.
func (s *Service) signedIn(c echo.Context, acct storage.Account, u storage.User, ret string) error {
	s.logInfo(c, "saml login succeeded", "account", acct.ID, "user", u.ID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, localPath(ret))
}

// rolesFor resolves the DEV/TEST/PROD roles of id for ws, per
// environment: the workspace's group rules (groupRule) where one decides,
// else the value sent (withAppRoles: the workato_role* attribute, else the
// app role); a missing value takes the default role; a value that is not a
// system or custom role (case-sensitive) follows jit.unknownRole:
// "default" records a role.unknown event and uses the default role,
// "reject" records it and refuses with a page naming the role and the
// workspace. An app role counts as sent, like an attribute, for the
// group rules' explicitWins. current is the membership's roles when it
// exists (kept where the groups are unknown). ok is false when the
// response was written.
func (s *Service) rolesFor(c echo.Context, ws storage.Workspace, id identity, current *storage.Roles) (roleDecision, bool, error) {
	sent, ok, err := s.withAppRoles(c, ws, id)
	if !ok {
		return roleDecision{}, false, err
	}
	id.Roles = sent
	def := ws.Settings.DefaultRole()
	var out [3]string
	d := roleDecision{GroupsUnknown: id.GroupsUnknown && len(ws.Settings.Roles.GroupRules) > 0}
	for i, v := range id.Roles {
		if r, src, m, ok := groupRule(ws, id, i, current); ok {
			out[i], d.Sources[i], d.Matches[i] = r, src, m
			continue
		}
		d.Sources[i] = sourceAttribute
		if v == "" {
			d.Sources[i] = sourceDefault
		}
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
			out[i], d.Sources[i] = def, sourceDefault
			continue
		}
		return roleDecision{}, false, s.refuse(c, ws.ID, http.StatusForbidden, "unknown_role", nil, message{
			Title: "Sign-in failed",
			Text: fmt.Sprintf("The role %q sent for %s is not a role of workspace %q.",
				v, strings.ToUpper(envNames[i]), wsName(ws)),
			Detail: "Roles are case-sensitive. Ask your administrator to fix the role in your identity provider."},
			"email", id.Email, "role", v, "environment", envNames[i])
	}
	d.Roles = storage.Roles{Dev: out[0], Test: out[1], Prod: out[2]}
	return d, true, nil
}

// withAppRoles is the role value sent per environment: the workato_role*
// attribute, else, where the workspace has roles.appRoles on, the app role
// claim's value for that environment (storage.AppRoles). Two different app
// roles for one environment refuse the sign-in with a page naming both
// (ok false): picking one would depend on the order the IdP happened to
// send them in.
func (s *Service) withAppRoles(c echo.Context, ws storage.Workspace, id identity) ([3]string, bool, error) {
	sent := id.Roles
	if !ws.Settings.Roles.AppRoles || len(id.AppRoles) == 0 {
		return sent, true, nil
	}
	ar, err := storage.AppRoles(id.AppRoles)
	var ce *storage.AppRoleConflictError
	if errors.As(err, &ce) {
		return sent, false, s.refuse(c, ws.ID, http.StatusForbidden, "app_role_conflict", err, message{
			Title: "Sign-in failed",
			Text: fmt.Sprintf("Your identity provider sent two app roles for %s (%q and %q) for workspace %q.",
				strings.ToUpper(ce.Environment), ce.First, ce.Second, wsName(ws)),
			Detail: "Ask your administrator to assign you one app role per environment."},
			"email", id.Email, "environment", ce.Environment, "roles", ce.First+","+ce.Second)
	}
	for i, v := range [3]string{ar.Dev, ar.Test, ar.Prod} {
		if sent[i] == "" {
			sent[i] = v
		}
	}
	return sent, true, nil
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

// newMembership is the membership a sign-in creates, by JIT or by a
// confirmed join: verified and active, userName and primary work email
// the email as sent (the store compares them folded), no externalId, so
// that an IdP's SCIM lookup by userName or email finds it and adopts it.
func newMembership(email, fullName string, roles storage.Roles) storage.User {
	given, family := splitName(identity{Email: email, FullName: fullName})
	name := map[string]any{"formatted": fullName}
	if given != "" {
		name["givenName"] = given
	}
	if family != "" {
		name["familyName"] = family
	}
	return storage.User{
		UserName: email,
		Emails:   []string{email},
		Active:   true,
		Verified: true,
		Source:   storage.SourceJIT,
		Roles:    roles,
		Attributes: map[string]any{
			"emails":      []any{map[string]any{"value": email, "type": "work", "primary": true}},
			"name":        name,
			"displayName": fullName,
		},
	}
}

func wsName(ws storage.Workspace) string {
	if ws.Name != "" {
		return ws.Name
	}
	return ws.ID
}
