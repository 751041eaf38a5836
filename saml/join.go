package saml

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// The join flow (R8–R10): an existing account signs in to a workspace where
// it has no verified membership. Nothing joins yet; a single-use link is
// mailed to the account's own address, GET of the link only shows a
// confirmation page (mail scanners and link previews only GET), and the
// POST from that page consumes the link and creates (or verifies) the
// membership. docs/verification.md describes it for operators.
//
// Token: "<accountID>.<workspaceID>.<secret>", secret = 256 random bits
// base64url. The store keeps only hex SHA-256 of the whole token
// (storage.Verification.TokenHash), so changing any part of it (another
// workspace, another account) makes it unknown. The account id lets the
// store find the verification (GetVerification(accountID, hash)); the
// workspace id lets an expired link offer a fresh email for the right
// workspace without the store still knowing the old one.

// Join limits.
const (
	// joinMailLimit links may be mailed to one account per joinMailWindow
	// on average, in bursts of up to joinMailLimit (R10); further
	// requests get a "too many emails" page and no mail.
	joinMailLimit  = 5
	joinMailWindow = 15 * time.Minute
	// joinPendingTTL keeps a pending join's roles so that "send a new
	// link" works after the link expired, without a new sign-in.
	joinPendingTTL = 24 * time.Hour
)

// Event types of the join flow.
const (
	eventJoinPending  = "join.pending"
	eventJoinVerified = "join.verified"
	eventJoinRefused  = "join.refused"
)

var accountIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// joinToken is a parsed join link token.
type joinToken struct {
	raw       string
	accountID string
	workspace string
}

// newJoinToken makes a fresh token for account and workspace.
func newJoinToken(accountID, workspace string) joinToken {
	raw := accountID + "." + workspace + "." + randomToken(32)
	return joinToken{raw: raw, accountID: accountID, workspace: workspace}
}

// parseJoinToken checks the token's shape; ok is false for anything that
// cannot be one of ours.
func parseJoinToken(raw string) (joinToken, bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || !accountIDPattern.MatchString(parts[0]) || !wsPattern.MatchString(parts[1]) ||
		len(parts[2]) != 43 || !base64URLPattern.MatchString(parts[2]) {
		return joinToken{}, false
	}
	return joinToken{raw: raw, accountID: parts[0], workspace: parts[1]}, true
}

var base64URLPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// hash is the store key of the token (hex SHA-256).
func (t joinToken) hash() string { return hashToken(t.raw) }

// pendingJoin is what a pending join remembers beyond the verification, so
// that a fresh link can be sent after the old one expired.
type pendingJoin struct {
	Roles storage.Roles `json:"roles"`
	// Sources say why Roles were decided (roleDecision.detail).
	Sources map[string]string `json:"sources,omitempty"`
	UserID  string            `json:"userId,omitempty"`
}

func pendingKey(accountID string) string { return "join:pending:" + accountID }

// beginJoin starts the verification of an existing account that signs in to
// a workspace where it has no verified membership (R8, R9): it stores a
// pending join carrying roles, emails a single-use link to the account's own
// address and renders the "check your email" page. d is the sign-in's role
// decision, kept with the join so that join.verified says why the roles
// are what they are. existing is the SCIM-created unverified membership,
// or nil. The ACS calls it after the assertion was validated.
func (s *Service) beginJoin(c echo.Context, ws storage.Workspace, acct storage.Account, d roleDecision, existing *storage.User) error {
	ctx := c.Request().Context()
	p := pendingJoin{Roles: d.Roles, Sources: d.detail(map[string]string{})}
	if existing != nil {
		if !existing.Active {
			// The ACS refuses deactivated memberships itself (R12); never
			// let a join reactivate one.
			s.joinEvent(ctx, ws.ID, eventJoinRefused, acct.ID, existing.ID, map[string]string{"reason": "deactivated"})
			return s.showDeactivated(c, ws)
		}
		p.UserID = existing.ID
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("join: encode pending: %w", err)
	}
	if err := s.cfg.Store.PutTemp(ctx, ws.ID, pendingKey(acct.ID), b, joinPendingTTL); err != nil {
		return fmt.Errorf("join: store pending: %w", err)
	}
	return s.issueJoin(c, ws, acct, p, false)
}

// issueJoin mails a new link for a pending join (rate-limited per account)
// and renders the "check your email" page.
func (s *Service) issueJoin(c echo.Context, ws storage.Workspace, acct storage.Account, p pendingJoin, resend bool) error {
	ctx := c.Request().Context()
	allowed, err := s.cfg.Store.Allow(ctx, storage.Limit{Key: "join:mail:" + acct.ID, Rate: storage.Rate{Limit: joinMailLimit, Period: joinMailWindow}})
	if err != nil {
		return fmt.Errorf("join: rate limit: %w", err)
	}
	if !allowed.OK {
		s.logWarn(c, "join link not sent: rate limit", "account", acct.ID)
		s.joinEvent(ctx, ws.ID, eventJoinRefused, acct.ID, p.UserID, map[string]string{"reason": "rate_limited"})
		return s.showMessage(c, http.StatusTooManyRequests, message{
			Title:  "Too many emails",
			Text:   fmt.Sprintf("We have sent several confirmation emails to this account recently, so we are not sending another one now. Use the newest email you received, or try again in %d minutes.", int((allowed.RetryAfter+time.Minute-1)/time.Minute)),
			Detail: "Only the most recent link works.",
		})
	}
	now := time.Now().UTC()
	tok := newJoinToken(acct.ID, ws.ID)
	v := storage.Verification{
		TokenHash:   tok.hash(),
		AccountID:   acct.ID,
		WorkspaceID: ws.ID,
		Roles:       p.Roles,
		RoleSources: p.Sources,
		UserID:      p.UserID,
		CreatedAt:   now,
		ExpiresAt:   now.Add(s.cfg.VerifyTTL),
	}
	if err := s.cfg.Store.CreateVerification(ctx, v); err != nil {
		return fmt.Errorf("join: store verification: %w", err)
	}
	detail := map[string]string{
		"dev": p.Roles.Dev, "test": p.Roles.Test, "prod": p.Roles.Prod,
		"expires": v.ExpiresAt.Format(time.RFC3339),
	}
	if resend {
		detail["resend"] = "true"
	}
	detail = withReceived(c, detail)
	sender := s.cfg.Mailer
	if sender == nil {
		return errors.New("join: no mailer configured")
	}
	csrf, err := s.csrfToken(c)
	if err != nil {
		return s.storeFailed(c, "join sent page", err)
	}
	data := joinSentPage{
		Workspace: wsView(ws),
		Email:     maskEmail(acct.Email),
		Minutes:   int(s.cfg.VerifyTTL.Round(time.Minute) / time.Minute),
		Demo:      s.cfg.Demo && sender.OutboxOnly(),
		AccountID: acct.ID,
		CSRF:      csrf,
	}
	m, err := joinMail(s.urlString("/join/"+tok.raw), ws, acct, v.ExpiresAt)
	if err != nil {
		return err
	}
	if err := sender.Send(ctx, m); err != nil {
		// The pending join survives: the person can ask for a new link.
		s.logWarn(c, "join link not sent", "account", acct.ID, "err", err)
		detail["mail"] = "failed"
		s.joinEvent(ctx, ws.ID, eventJoinPending, acct.ID, p.UserID, detail)
		data.SendFailed = true
		return s.render(c, http.StatusServiceUnavailable, "join_sent", data)
	}
	s.joinEvent(ctx, ws.ID, eventJoinPending, acct.ID, p.UserID, detail)
	s.logInfo(c, "join link sent", "account", acct.ID, "resend", resend)
	return s.render(c, http.StatusOK, "join_sent", data)
}

// joinEvent appends an event to the workspace's stream; a failure is
// logged, never shown (the decision itself already happened).
func (s *Service) joinEvent(ctx context.Context, ws, typ, accountID, userID string, detail map[string]string) {
	_, err := s.cfg.Store.AppendEvents(ctx, ws, storage.Event{
		Time: time.Now().UTC(), Type: typ, Actor: "saml", AccountID: accountID, UserID: userID, Detail: detail,
	})
	if err != nil {
		s.logger.WarnContext(ctx, "append event", "type", typ, "err", err)
	}
}

// workspaceView is what pages show of a workspace.
type workspaceView struct {
	ID   string
	Name string
}

func wsView(ws storage.Workspace) workspaceView {
	name := ws.Name
	if name == "" {
		name = ws.ID
	}
	return workspaceView{ID: ws.ID, Name: name}
}

// joinSentPage is the data of join_sent.html.
type joinSentPage struct {
	Workspace workspaceView
	Email     string // masked
	Minutes   int
	// Demo: demo mode with mail going to the outbox only (link to it).
	Demo       bool
	SendFailed bool
	AccountID  string
	CSRF       string
}

// joinConfirmPage is the data of join_confirm.html.
type joinConfirmPage struct {
	Workspace workspaceView
	Email     string
	FullName  string
	Roles     storage.Roles
	// Existing: the membership exists (SCIM-created) and keeps its roles.
	Existing  bool
	ExpiresAt time.Time
	Token     string
	CSRF      string
	// Attempt identifies this page's confirmation (handleJoinConfirm).
	Attempt string
}

// joinInvalidPage is the data of join_invalid.html.
type joinInvalidPage struct {
	// CanResend: the link named an account and workspace, so a new email
	// can be requested.
	CanResend bool
	AccountID string
	Workspace string
	CSRF      string
}

// maskEmail shows enough of an address to recognise it: "ja***@example.com".
func maskEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return "your email address"
	}
	local := []rune(email[:at])
	keep := 2
	if len(local) <= 2 {
		keep = 1
	}
	return string(local[:keep]) + "***" + email[at:]
}

// handleJoinLink answers GET /join/:token. It changes nothing: it checks the
// token without consuming it and shows a confirmation form (POST
// /join/confirm). Unknown, expired, used, replaced and tampered tokens get
// a page that offers a new email.
func (s *Service) handleJoinLink(c echo.Context) error {
	tok, ok := parseJoinToken(c.Param("token"))
	if !ok {
		return s.showJoinInvalid(c, http.StatusNotFound, joinToken{})
	}
	ctx := reqctx.WithWorkspace(c.Request().Context(), tok.workspace)
	c.SetRequest(c.Request().WithContext(ctx))
	pj, dead, err := s.lookupJoin(ctx, tok, "")
	if err != nil {
		return s.storeFailed(c, "look up join", err)
	}
	if dead != nil {
		return s.showJoinInvalid(c, http.StatusGone, *dead)
	}
	v, ws, acct := pj.v, pj.ws, pj.acct
	csrf, err := s.csrfToken(c)
	if err != nil {
		return s.storeFailed(c, "join confirm page", err)
	}
	return s.render(c, http.StatusOK, "join_confirm", joinConfirmPage{
		Attempt:   randomToken(16),
		Workspace: wsView(ws),
		Email:     acct.Email,
		FullName:  acct.FullName,
		Roles:     v.Roles,
		Existing:  v.UserID != "",
		ExpiresAt: v.ExpiresAt.UTC(),
		Token:     tok.raw,
		CSRF:      csrf,
	})
}

// joinLink is what a live join link refers to.
type joinLink struct {
	v    storage.Verification
	ws   storage.Workspace
	acct storage.Account
	// consumed: the link was already consumed by this very confirmation
	// (the same attempt id), whose answer got lost.
	consumed bool
}

// lookupJoin loads the live verification a join link names, with its
// workspace and account, without consuming it; with attempt (a
// confirmation's id), a link that this confirmation already consumed
// counts as live (joinLink.consumed). A dead link (unknown, used,
// expired, replaced, or whose workspace or account is gone) gives a
// non-nil dead: the token for which the invalid-link page may offer a new
// email, or the zero token when it may not.
func (s *Service) lookupJoin(ctx context.Context, tok joinToken, attempt string) (pj joinLink, dead *joinToken, err error) {
	gone := &joinToken{}
	v, err := s.cfg.Store.GetVerification(ctx, tok.accountID, tok.hash())
	if errors.Is(err, storage.ErrNotFound) && attempt != "" {
		v, err = s.cfg.Store.ConsumeVerification(ctx, tok.accountID, tok.hash(), attempt)
		pj.consumed = err == nil
	}
	if errors.Is(err, storage.ErrNotFound) {
		return pj, &tok, nil
	}
	if err != nil {
		return pj, nil, fmt.Errorf("join: get verification: %w", err)
	}
	if v.WorkspaceID != tok.workspace || v.AccountID != tok.accountID {
		return pj, &tok, nil
	}
	ws, err := s.cfg.Store.GetWorkspace(ctx, v.WorkspaceID)
	if errors.Is(err, storage.ErrNotFound) {
		return pj, gone, nil
	}
	if err != nil {
		return pj, nil, fmt.Errorf("join: get workspace: %w", err)
	}
	acct, err := s.cfg.Store.GetAccount(ctx, v.AccountID)
	if errors.Is(err, storage.ErrNotFound) {
		return pj, gone, nil
	}
	if err != nil {
		return pj, nil, fmt.Errorf("join: get account: %w", err)
	}
	pj.v, pj.ws, pj.acct = v, ws, acct
	return pj, nil, nil
}

func (s *Service) showJoinInvalid(c echo.Context, status int, tok joinToken) error {
	csrf, err := s.csrfToken(c)
	if err != nil {
		return s.storeFailed(c, "join invalid page", err)
	}
	data := joinInvalidPage{CSRF: csrf}
	if tok.raw != "" {
		data.CanResend, data.AccountID, data.Workspace = true, tok.accountID, tok.workspace
	}
	return s.render(c, status, "join_invalid", data)
}

func (s *Service) showDeactivated(c echo.Context, ws storage.Workspace) error {
	return s.showMessage(c, http.StatusForbidden, message{
		Title: "Access deactivated",
		Text:  fmt.Sprintf("Your access to the workspace %q has been deactivated. Ask its administrator to reactivate it.", wsView(ws).Name),
	})
}

// errJoinDeactivated: the membership was deactivated; joining never
// reactivates it (R12).
var errJoinDeactivated = errors.New("membership is deactivated")

// handleJoinConfirm answers POST /join/confirm (form: csrf_token, token,
// workspace, attempt). It consumes the token atomically (of concurrent
// confirms exactly one proceeds), creates the membership with the pending
// join's roles, or verifies the SCIM-created one, records join.verified
// and signs the browser in to that workspace.
//
// attempt is a random id the confirm page carries, the same in every
// submission of that page: a confirmation re-sent because its answer was
// lost (a 503 while the store was unreachable, a dropped connection) is
// recognised by it, finishes the join and signs in, where the link alone
// would now say "already used". Without it a submission gets one of its
// own and cannot be recognised later.
func (s *Service) handleJoinConfirm(c echo.Context) error {
	if err := s.checkCSRF(c); err != nil {
		return s.refuseCSRF(c, err)
	}
	tok, ok := parseJoinToken(c.FormValue("token"))
	if !ok {
		return s.showJoinInvalid(c, http.StatusNotFound, joinToken{})
	}
	ctx := reqctx.WithWorkspace(c.Request().Context(), tok.workspace)
	c.SetRequest(c.Request().WithContext(ctx))
	if form := c.FormValue("workspace"); form != tok.workspace {
		s.logWarn(c, "join confirm refused: link is for another workspace", "account", tok.accountID, "form_workspace", safeSlug(form))
		return s.showMessage(c, http.StatusBadRequest, message{
			Title: "Wrong workspace",
			Text:  "This confirmation link belongs to another workspace. Open the link from your email again.",
		})
	}
	attempt, err := s.joinAttempt(c)
	if err != nil {
		return s.storeFailed(c, "csrf binding", err)
	}
	pj, dead, err := s.lookupJoin(ctx, tok, attempt)
	if err != nil {
		return s.storeFailed(c, "look up join", err)
	}
	if dead != nil {
		return s.showJoinInvalid(c, http.StatusGone, *dead)
	}
	v, ws, acct := pj.v, pj.ws, pj.acct
	// Refuse before consuming what would be refused anyway, so a later
	// reactivation by an admin leaves a still-usable link.
	cur, err := s.cfg.Store.GetUserByAccount(ctx, ws.ID, acct.ID)
	exists := err == nil
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if !ws.Settings.JIT.Enabled && v.UserID == "" {
			s.logWarn(c, "join confirm refused: jit disabled", "account", acct.ID)
			s.joinEvent(ctx, ws.ID, eventJoinRefused, acct.ID, "", map[string]string{"reason": "jit_disabled"})
			return s.showMessage(c, http.StatusForbidden, message{Title: "No access",
				Text: fmt.Sprintf("You have not been given access to the workspace %q.", wsView(ws).Name)})
		}
	case err != nil:
		return s.storeFailed(c, "get membership", err)
	case !cur.Active:
		s.logWarn(c, "join confirm refused: membership deactivated", "account", acct.ID, "user", cur.ID)
		s.joinEvent(ctx, ws.ID, eventJoinRefused, acct.ID, cur.ID, map[string]string{"reason": "deactivated"})
		return s.showDeactivated(c, ws)
	}

	if !pj.consumed {
		if _, err := s.cfg.Store.ConsumeVerification(ctx, acct.ID, tok.hash(), attempt); errors.Is(err, storage.ErrNotFound) {
			// Another confirm (a double click, a second tab) won the race.
			return s.showJoinInvalid(c, http.StatusGone, tok)
		} else if err != nil {
			return s.storeFailed(c, "consume verification", err)
		}
	}

	u, err := s.completeJoin(ctx, ws, acct, v, exists)
	if errors.Is(err, errJoinDeactivated) {
		s.logWarn(c, "join confirm refused: membership deactivated", "account", acct.ID)
		s.joinEvent(ctx, ws.ID, eventJoinRefused, acct.ID, u.ID, map[string]string{"reason": "deactivated"})
		return s.showDeactivated(c, ws)
	}
	var conflict *storage.ConflictError
	if errors.As(err, &conflict) {
		s.logWarn(c, "join confirm refused: conflicting user", "account", acct.ID, "field", conflict.Field)
		s.joinEvent(ctx, ws.ID, eventJoinRefused, acct.ID, "", map[string]string{"reason": conflict.Field + "_conflict"})
		return s.showMessage(c, http.StatusConflict, message{Title: "Cannot join",
			Text: fmt.Sprintf("The workspace %q already has a different user with your email address as its user name. Ask its administrator to resolve this.", wsView(ws).Name)})
	}
	if err != nil {
		return s.storeFailed(c, "complete join", err)
	}
	if _, err := s.cfg.Store.TakeTemp(ctx, ws.ID, pendingKey(acct.ID)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.logWarn(c, "join: drop pending", "err", err)
	}
	s.logInfo(c, "join verified", "account", acct.ID, "user", u.ID, "resent", pj.consumed)
	// No IdP session: the join link may be opened in another browser
	// than the sign-in's.
	if err := s.startSession(c, acct.ID, ws.ID, storage.IdPSession{}); err != nil {
		return s.storeFailed(c, "start session", err)
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

// attemptPattern is the shape of the confirm page's attempt id.
var attemptPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// joinAttempt is the id under which this confirmation consumes its link:
// the confirm page's attempt id bound to the browser (its CSRF binding),
// so that only the browser that submitted the page can re-send it. A
// browser that was signed in by the first submission has a new binding, so
// a replay of the page from there, or from anywhere else, finds the link
// used.
func (s *Service) joinAttempt(c echo.Context) (string, error) {
	attempt := c.FormValue("attempt")
	if !attemptPattern.MatchString(attempt) {
		attempt = randomToken(16)
	}
	binding, err := s.csrfBinding(c, false)
	if err != nil {
		return "", err
	}
	keys, err := s.keys(c.Request().Context())
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, keys.csrfKeys[0])
	m.Write([]byte("join attempt\x00" + attempt + "\x00" + binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// completeJoin creates the verified membership, or verifies the existing
// one (SCIM-created, or created since the link was sent: exists), and
// records join.verified with the change. It never reactivates a
// deactivated membership. Repeating it changes nothing and records
// nothing more.
func (s *Service) completeJoin(ctx context.Context, ws storage.Workspace, acct storage.Account, v storage.Verification, exists bool) (storage.User, error) {
	verified := func(r storage.Roles) storage.Event {
		return storage.Event{Time: time.Now().UTC(), Type: eventJoinVerified, Actor: "saml",
			Detail: map[string]string{"dev": r.Dev, "test": r.Test, "prod": r.Prod}}
	}
	if !exists {
		m := newMembership(acct.Email, acct.FullName, v.Roles)
		m.AccountID = acct.ID
		// The roles come from the sign-in that started the join: say why.
		e := verified(m.Roles)
		maps.Copy(e.Detail, v.RoleSources)
		// The membership and its event in one store write: a confirmation
		// re-sent after a lost answer finds it and records nothing twice.
		u, err := s.cfg.Store.CreateUser(ctx, ws.ID, m, e)
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return storage.User{}, fmt.Errorf("join: create membership: %w", err)
		}
		// Created concurrently (SCIM, or this confirmation sent before)?
		// Then verify that one; otherwise the conflict is someone else's
		// userName.
		if _, gerr := s.cfg.Store.GetUserByAccount(ctx, ws.ID, acct.ID); gerr != nil {
			return storage.User{}, err
		}
	}
	cur, err := s.cfg.Store.GetUserByAccount(ctx, ws.ID, acct.ID)
	if err != nil {
		return storage.User{}, fmt.Errorf("join: get membership: %w", err)
	}
	if cur.Active && cur.Verified {
		return cur, nil
	}
	u, err := s.cfg.Store.UpdateUser(ctx, ws.ID, cur.ID, 0, func(u *storage.User) error {
		if !u.Active {
			return errJoinDeactivated
		}
		u.Verified = true
		return nil
	})
	if errors.Is(err, errJoinDeactivated) {
		return cur, errJoinDeactivated
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("join: verify membership: %w", err)
	}
	e := verified(u.Roles)
	e.UserID, e.AccountID = u.ID, acct.ID
	if _, err := s.cfg.Store.AppendEvents(ctx, ws.ID, e); err != nil {
		s.logger.WarnContext(ctx, "append event", "type", e.Type, "err", err)
	}
	return u, nil
}

// handleJoinResend answers POST /join/resend (form: csrf_token, account,
// workspace): it mails a fresh link for a pending join that is still
// remembered (joinPendingTTL), to the account's own address only, within
// the per-account rate limit. Without a pending join it asks the person to
// sign in to the workspace again.
func (s *Service) handleJoinResend(c echo.Context) error {
	if err := s.checkCSRF(c); err != nil {
		return s.refuseCSRF(c, err)
	}
	accountID, wsID := c.FormValue("account"), c.FormValue("workspace")
	if !accountIDPattern.MatchString(accountID) || !wsPattern.MatchString(wsID) {
		return s.showMessage(c, http.StatusBadRequest, message{Title: "Cannot send a new link",
			Text: "This request is incomplete. Sign in to the workspace again to get a new link."})
	}
	ctx := reqctx.WithWorkspace(c.Request().Context(), wsID)
	c.SetRequest(c.Request().WithContext(ctx))
	signInAgain := func() error {
		return s.showMessage(c, http.StatusGone, message{
			Title:    "Sign in again",
			Text:     "There is no pending request to join this workspace any more. Sign in to it again and we will send you a new link.",
			Link:     "/saml/" + wsID + "/login",
			LinkText: "Sign in to " + wsID,
		})
	}
	raw, err := s.cfg.Store.TakeTemp(ctx, wsID, pendingKey(accountID))
	if errors.Is(err, storage.ErrNotFound) {
		return signInAgain()
	}
	if err != nil {
		return fmt.Errorf("join: take pending: %w", err)
	}
	if err := s.cfg.Store.PutTemp(ctx, wsID, pendingKey(accountID), raw, joinPendingTTL); err != nil {
		return fmt.Errorf("join: keep pending: %w", err)
	}
	var p pendingJoin
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("join: decode pending: %w", err)
	}
	ws, err := s.cfg.Store.GetWorkspace(ctx, wsID)
	if errors.Is(err, storage.ErrNotFound) {
		return signInAgain()
	}
	if err != nil {
		return fmt.Errorf("join: get workspace: %w", err)
	}
	acct, err := s.cfg.Store.GetAccount(ctx, accountID)
	if errors.Is(err, storage.ErrNotFound) {
		return signInAgain()
	}
	if err != nil {
		return fmt.Errorf("join: get account: %w", err)
	}
	cur, err := s.cfg.Store.GetUserByAccount(ctx, ws.ID, acct.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return fmt.Errorf("join: get membership: %w", err)
	case !cur.Active:
		s.joinEvent(ctx, ws.ID, eventJoinRefused, acct.ID, cur.ID, map[string]string{"reason": "deactivated"})
		return s.showDeactivated(c, ws)
	case cur.Verified:
		return s.showMessage(c, http.StatusOK, message{Title: "Already a member",
			Text:     fmt.Sprintf("You are already a member of %q.", wsView(ws).Name),
			Link:     "/saml/" + ws.ID + "/login",
			LinkText: "Sign in to " + wsView(ws).Name})
	default:
		p.UserID = cur.ID
	}
	return s.issueJoin(c, ws, acct, p, true)
}

// safeSlug returns v when it is a workspace slug, else a placeholder (for
// logs: never echo arbitrary input).
func safeSlug(v string) string {
	if wsPattern.MatchString(v) {
		return v
	}
	return "(invalid)"
}
