package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/scimhandlers"
	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// SCIMTokenPrefix starts every SCIM token scimjit issues, so that leaked
// tokens are easy to recognise (secret scanners, logs).
const SCIMTokenPrefix = "sjt_"

// NewSCIMToken returns a fresh SCIM bearer token (256 random bits) and the
// SHA-256 hash that the store keeps.
func NewSCIMToken() (token string, hash []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("server: crypto/rand failed: " + err.Error()) // never happens (Go ≥1.24 rand.Read does not fail)
	}
	token = SCIMTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashSCIMToken(token)
}

// HashSCIMToken is the SHA-256 of a SCIM token as stored in
// storage.SCIMToken.Hash.
func HashSCIMToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// requireAdmin authenticates an admin API request: "Authorization: Bearer
// <admin token>", compared in constant time. Failed authentications are
// counted per client address (c.RealIP, so after the trusted proxies) in
// the store, shared by all processes; once a client has failed more than
// Config.AdminAuthLimit times in a minute (GCRA, in bursts of as many),
// every request of it gets 429 with Retry-After, before its token is even
// looked at, until it is back under the rate: refusing only the wrong
// guesses would still tell a right one apart. Successful requests are
// never counted, and other clients' failures never count against a
// client.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		auth := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, tok, found := strings.Cut(auth, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			tok = ""
		}
		name, err := s.authenticateAdmin(c, tok)
		if err != nil {
			return err
		}
		// The token's name goes to the access log and the events' actor.
		c.SetRequest(c.Request().WithContext(reqctx.WithAdminToken(c.Request().Context(), name)))
		return next(c)
	}
}

// authenticateAdmin checks an admin token presented by the client of c
// (the admin API's bearer token, or the console's operator sign-in) and
// returns its name. A refusal is an *apiError: 401 for a missing or wrong
// token, 429 with Retry-After for a client over the limit of failures
// (see requireAdmin); any other error is the store's.
func (s *Server) authenticateAdmin(c echo.Context, tok string) (string, error) {
	if len(s.adminTokens.Names()) == 0 {
		return "", &apiError{Status: http.StatusUnauthorized, Message: "the admin API is disabled: no admin token is configured"}
	}
	ctx := c.Request().Context()
	limit := storage.Limit{Key: "admin:auth:" + reqctx.ClientKey(c.RealIP()), Rate: storage.PerMinute(s.cfg.AdminAuthLimit)}
	tooMany := func(a storage.Allowed) error {
		s.log.WarnContext(ctx, "admin api: too many failed authentications", "remote_ip", c.RealIP())
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.FormatInt(int64(max(1, (a.RetryAfter+time.Second-1)/time.Second)), 10))
		return &apiError{Status: http.StatusTooManyRequests,
			Message: "too many failed authentications from this address; retry after the time in Retry-After"}
	}
	if a, err := s.store.CheckRate(ctx, limit); err != nil {
		// Fail closed: the admin API cannot work without the store anyway.
		return "", fmt.Errorf("admin api: rate limit: %w", err)
	} else if !a.OK {
		return "", tooMany(a)
	}
	failed := func(msg string) error {
		a, err := s.store.Allow(ctx, limit)
		if err != nil {
			return fmt.Errorf("admin api: rate limit: %w", err)
		}
		if !a.OK {
			return tooMany(a)
		}
		return &apiError{Status: http.StatusUnauthorized, Message: msg}
	}
	if tok == "" {
		return "", failed("missing bearer token")
	}
	name, ok := s.adminTokens.Lookup(tok)
	if !ok {
		s.log.WarnContext(ctx, "admin api: wrong bearer token", "remote_ip", c.RealIP())
		return "", failed("invalid bearer token")
	}
	return name, nil
}

// decodeJSON reads a JSON object into v, rejecting unknown fields and
// trailing data.
func decodeJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) { // Echo's BodyLimit
			return err
		}
		return &apiError{Status: http.StatusBadRequest, Message: "could not read the request body", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("request body must be a JSON object")
	}
	// encoding/json would keep the last of two equal keys (compared
	// without case, as it matches fields) silently.
	if first, second, dup := scimhandlers.DuplicateKey(body); dup {
		return badRequest(fmt.Sprintf("invalid JSON: the key %q is given twice in one object (also as %q)", first, second))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid JSON: " + jsonProblem(err))
	}
	if dec.More() {
		return badRequest("invalid JSON: data after the object")
	}
	return nil
}

// jsonProblem describes a decoding error without echoing Go internals.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, jsonType(te.Type.Kind().String()))
		}
		return "the body must be a JSON object"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return "malformed body"
}

func jsonType(kind string) string {
	switch kind {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a " + kind
}

// storeError maps a storage error to the admin API's public error.
func storeError(err error, what string) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Message: what + " not found"}
	case errors.Is(err, storage.ErrAlreadyExists):
		return &apiError{Status: http.StatusConflict, Message: what + " already exists"}
	case errors.Is(err, storage.ErrPreconditionFailed):
		return &apiError{Status: http.StatusPreconditionFailed, Err: err,
			Message: "the " + what + " was changed by someone else since you read it: reload it and make your change again"}
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return &apiError{Status: http.StatusBadRequest, Message: ve.Error(), problems: ve.Problems}
	}
	return err // rendered as 503/500 by handleError, cause logged
}

// workspaceParam returns the :ws parameter, answering 404 for a malformed
// id (no workspace can have it).
func workspaceParam(c echo.Context) (string, error) {
	ws := c.Param("ws")
	if !ValidWorkspaceID(ws) {
		return "", &apiError{Status: http.StatusNotFound, Message: "workspace not found"}
	}
	return ws, nil
}

func (s *Server) adminEvent(c echo.Context, ws, typ string, detail map[string]string) {
	appendAdminEvent(c.Request().Context(), s.store, s.log, ws, typ, detail)
}

// appendAdminEvent records an admin change in the workspace's event stream.
// A failure is logged, not returned: the change itself succeeded.
func appendAdminEvent(ctx context.Context, store storage.Store, log *slog.Logger, ws, typ string, detail map[string]string) {
	actor := reqctx.Actor(ctx)
	if actor == "" {
		actor = "admin" // the bootstrap file
	}
	_, err := store.AppendEvents(ctx, ws, storage.Event{
		Type: typ, Actor: actor, Detail: detail, Time: time.Now().UTC(),
	})
	if err != nil {
		log.WarnContext(ctx, "append admin event", "type", typ, "err", err)
	}
}

type createWorkspaceRequest struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Settings *SettingsPatch `json:"settings,omitempty"`
}

// newWorkspace validates a create request and returns the workspace to
// store.
func newWorkspace(req createWorkspaceRequest) (storage.Workspace, error) {
	var v ValidationError
	validateID(req.ID, &v)
	validateName(req.Name, &v)
	settings := storage.DefaultSettings()
	req.Settings.apply(&settings)
	if err := normalizeSettings(&settings); err != nil {
		v.Problems = append(v.Problems, err.(*ValidationError).Problems...)
	}
	if err := v.orNil(); err != nil {
		return storage.Workspace{}, err
	}
	now := time.Now().UTC()
	return storage.Workspace{ID: req.ID, Name: req.Name, Settings: settings, CreatedAt: now, UpdatedAt: now}, nil
}

func (s *Server) createWorkspace(c echo.Context) error {
	var req createWorkspaceRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ws, err := s.addWorkspace(reqctxWithWorkspace(c, req.ID), req)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, s.baseURL+"/admin/v1/workspaces/"+ws.ID)
	return c.JSON(http.StatusCreated, workspaceJSON(ws))
}

// addWorkspace validates and stores a new workspace and records the
// event (the admin API and the console). Its errors are storeError's.
func (s *Server) addWorkspace(ctx context.Context, req createWorkspaceRequest) (storage.Workspace, error) {
	if err := resolveMetadataURL(ctx, s.metadataClient, s.log, req.Settings, s.cfg.MetadataRefreshInterval, true); err != nil {
		return storage.Workspace{}, storeError(err, "workspace")
	}
	ws, err := newWorkspace(req)
	if err != nil {
		return storage.Workspace{}, storeError(err, "workspace")
	}
	ws, err = s.store.CreateWorkspace(ctx, ws)
	if err != nil {
		return storage.Workspace{}, storeError(err, "workspace "+strconv.Quote(req.ID))
	}
	appendAdminEvent(ctx, s.store, s.log, ws.ID, "admin.workspace.created", map[string]string{"name": ws.Name})
	s.log.InfoContext(ctx, "workspace created")
	return ws, nil
}

func (s *Server) getWorkspace(c echo.Context) error {
	id, err := workspaceParam(c)
	if err != nil {
		return err
	}
	ws, err := s.store.GetWorkspace(c.Request().Context(), id)
	if err != nil {
		return storeError(err, "workspace")
	}
	setWorkspaceETag(c, ws)
	return c.JSON(http.StatusOK, workspaceJSON(ws))
}

func (s *Server) listWorkspaces(c echo.Context) error {
	list, err := s.store.ListWorkspaces(c.Request().Context())
	if err != nil {
		return storeError(err, "workspace")
	}
	out := make([]WorkspaceJSON, 0, len(list))
	for _, ws := range list {
		out = append(out, workspaceJSON(ws))
	}
	return c.JSON(http.StatusOK, map[string]any{"workspaces": out})
}

type updateWorkspaceRequest struct {
	Name     *string        `json:"name,omitempty"`
	Settings *SettingsPatch `json:"settings,omitempty"`
	// IfVersion, when not zero, is the version the change was made
	// against (the admin API's If-Match, the console's hidden field):
	// when the workspace is at another version, someone else changed it
	// meanwhile and the change is refused (ErrPreconditionFailed) instead
	// of overwriting theirs, e.g. a whole list of group rules.
	IfVersion int64 `json:"-"`
}

// updateWorkspace applies u to the stored workspace atomically and returns
// the names of the fields it changed.
func updateWorkspace(ctx context.Context, store storage.Store, id string, u updateWorkspaceRequest) (storage.Workspace, []string, error) {
	var changed []string
	ws, err := store.UpdateWorkspace(ctx, id, func(ws *storage.Workspace) error {
		changed = changed[:0] // fn may run more than once
		if u.IfVersion != 0 && ws.Version != u.IfVersion {
			return fmt.Errorf("workspace %s is at version %d, not %d: %w", id, ws.Version, u.IfVersion, storage.ErrPreconditionFailed)
		}
		var v ValidationError
		if u.Name != nil {
			validateName(*u.Name, &v)
			ws.Name = *u.Name
			changed = append(changed, "name")
		}
		changed = append(changed, u.Settings.apply(&ws.Settings)...)
		if err := normalizeSettings(&ws.Settings); err != nil {
			v.Problems = append(v.Problems, err.(*ValidationError).Problems...)
		}
		ws.UpdatedAt = time.Now().UTC()
		return v.orNil()
	})
	return ws, changed, err
}

func (s *Server) updateWorkspace(c echo.Context) error {
	id, err := workspaceParam(c)
	if err != nil {
		return err
	}
	var req updateWorkspaceRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.IfVersion, err = ifMatchVersion(c.Request().Header.Get("If-Match")); err != nil {
		return err
	}
	ws, err := s.changeWorkspace(c.Request().Context(), id, req)
	if err != nil {
		return err
	}
	setWorkspaceETag(c, ws)
	return c.JSON(http.StatusOK, workspaceJSON(ws))
}

// setWorkspaceETag sets the ETag of a workspace response: its version,
// what If-Match of an update names.
func setWorkspaceETag(c echo.Context, ws storage.Workspace) {
	c.Response().Header().Set("ETag", `"`+strconv.FormatInt(ws.Version, 10)+`"`)
}

// ifMatchVersion reads the If-Match header of a workspace update: a
// workspace's ETag ("7", weak W/"7" accepted) or a bare version; 0 when
// absent or "*" (no check).
func ifMatchVersion(h string) (int64, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, badRequest(`If-Match must be the workspace's ETag, its version in quotes (e.g. "7")`)
	}
	return v, nil
}

// changeWorkspace applies an update request (downloading a metadata URL
// first) and records the event (the admin API and the console). Its
// errors are storeError's.
func (s *Server) changeWorkspace(ctx context.Context, id string, req updateWorkspaceRequest) (storage.Workspace, error) {
	if err := resolveMetadataURL(ctx, s.metadataClient, s.log, req.Settings, s.cfg.MetadataRefreshInterval, true); err != nil {
		return storage.Workspace{}, storeError(err, "workspace")
	}
	ws, changed, err := updateWorkspace(ctx, s.store, id, req)
	if err != nil {
		return storage.Workspace{}, storeError(err, "workspace")
	}
	appendAdminEvent(ctx, s.store, s.log, id, "admin.workspace.updated", map[string]string{"fields": strings.Join(changed, ",")})
	s.log.InfoContext(ctx, "workspace updated", "fields", changed)
	return ws, nil
}

func (s *Server) deleteWorkspace(c echo.Context) error {
	id, err := workspaceParam(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWorkspace(c.Request().Context(), id); err != nil {
		return storeError(err, "workspace")
	}
	// The event stream went with the workspace; the log keeps the record.
	s.log.InfoContext(c.Request().Context(), "workspace deleted")
	return c.NoContent(http.StatusNoContent)
}

// SCIMTokenJSON is a SCIM token as listed: never the secret or its hash.
type SCIMTokenJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	// LastUsedAt is when a SCIM request last authenticated with the token,
	// to within the SCIM token cache's period (absent: never used).
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
	// Token is the secret, present only in the answer to its creation.
	Token string `json:"token,omitempty"`
}

type createTokenRequest struct {
	Name string `json:"name"`
}

func validTokenName(name string) bool {
	return len(name) <= 100 && !strings.ContainsFunc(name, unicode.IsControl)
}

func (s *Server) createSCIMToken(c echo.Context) error {
	id, err := workspaceParam(c)
	if err != nil {
		return err
	}
	var req createTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, secret, err := s.issueSCIMToken(c.Request().Context(), id, req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, SCIMTokenJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, Token: secret})
}

// issueSCIMToken creates a SCIM token named name in workspace id and
// records the event (the admin API and the console); secret is shown
// once. Its errors are storeError's.
func (s *Server) issueSCIMToken(ctx context.Context, id, name string) (t storage.SCIMToken, secret string, err error) {
	if !validTokenName(name) {
		return t, "", storeError(&ValidationError{Problems: []string{"name must be at most 100 characters without control characters"}}, "")
	}
	if _, err := s.store.GetWorkspace(ctx, id); err != nil {
		return t, "", storeError(err, "workspace")
	}
	secret, hash := NewSCIMToken()
	t = storage.SCIMToken{ID: uuid.NewString(), Name: name, Hash: hash, CreatedAt: time.Now().UTC()}
	if err := s.store.CreateSCIMToken(ctx, id, t); err != nil {
		return t, "", storeError(err, "workspace")
	}
	appendAdminEvent(ctx, s.store, s.log, id, "admin.scim_token.created", map[string]string{"tokenId": t.ID, "name": t.Name})
	s.log.InfoContext(ctx, "scim token created", "token_id", t.ID)
	return t, secret, nil
}

func (s *Server) listSCIMTokens(c echo.Context) error {
	id, err := workspaceParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.store.GetWorkspace(ctx, id); err != nil {
		return storeError(err, "workspace")
	}
	list, err := s.store.ListSCIMTokens(ctx, id)
	if err != nil {
		return storeError(err, "workspace")
	}
	out := make([]SCIMTokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, SCIMTokenJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsed})
	}
	return c.JSON(http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) revokeSCIMToken(c echo.Context) error {
	id, err := workspaceParam(c)
	if err != nil {
		return err
	}
	if err := s.revokeToken(c.Request().Context(), id, c.Param("token")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// revokeToken revokes a SCIM token of workspace id and records the event
// (the admin API and the console). Its errors are storeError's.
func (s *Server) revokeToken(ctx context.Context, id, tokenID string) error {
	if _, err := s.store.GetWorkspace(ctx, id); err != nil {
		return storeError(err, "workspace")
	}
	if err := s.store.RevokeSCIMToken(ctx, id, tokenID); err != nil {
		return storeError(err, "scim token")
	}
	appendAdminEvent(ctx, s.store, s.log, id, "admin.scim_token.revoked", map[string]string{"tokenId": tokenID})
	s.log.InfoContext(ctx, "scim token revoked", "token_id", tokenID)
	return nil
}

// EventJSON is a workspace event as the admin API shows it.
type EventJSON struct {
	ID        string            `json:"id"`
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	Actor     string            `json:"actor"`
	UserID    string            `json:"userId,omitempty"`
	AccountID string            `json:"accountId,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
}

// queryLimit reads ?limit= (default def, at most max).
func queryLimit(c echo.Context, def, max int) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > max {
		return 0, badRequest(fmt.Sprintf("limit must be an integer from 1 to %d", max))
	}
	return n, nil
}

func (s *Server) listEvents(c echo.Context) error {
	id, err := workspaceParam(c)
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.store.GetWorkspace(ctx, id); err != nil {
		return storeError(err, "workspace")
	}
	after := c.QueryParam("after")
	if len(after) > 64 {
		return badRequest("after must be an event id")
	}
	list, err := s.store.ListEvents(ctx, id, after, limit)
	if errors.Is(err, storage.ErrNotFound) && after != "" {
		return badRequest("after must be an event id returned by this API")
	}
	if err != nil {
		return storeError(err, "workspace")
	}
	out := make([]EventJSON, 0, len(list))
	for _, e := range list {
		out = append(out, EventJSON{ID: e.ID, Time: e.Time, Type: e.Type, Actor: e.Actor,
			UserID: e.UserID, AccountID: e.AccountID, Detail: e.Detail})
	}
	resp := map[string]any{"events": out}
	if len(out) > 0 {
		resp["next"] = out[len(out)-1].ID
	}
	return c.JSON(http.StatusOK, resp)
}

// MailJSON is an outbox message as the admin API shows it.
type MailJSON struct {
	ID      string    `json:"id"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
	HTML    string    `json:"html,omitempty"`
	Time    time.Time `json:"time"`
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`
	// Expires is omitted when zero.
	Expires  *time.Time        `json:"expires,omitempty"`
	Attempts []MailAttemptJSON `json:"attempts"`
}

// MailAttemptJSON is one delivery attempt of an outbox message.
type MailAttemptJSON struct {
	Time    time.Time `json:"time"`
	Outcome string    `json:"outcome"`
	Error   string    `json:"error,omitempty"`
}

func (s *Server) listOutbox(c echo.Context) error {
	limit, err := queryLimit(c, 50, 500)
	if err != nil {
		return err
	}
	list, err := s.store.ListMail(c.Request().Context(), limit)
	if err != nil {
		return storeError(err, "outbox")
	}
	out := make([]MailJSON, 0, len(list))
	for _, m := range list {
		mj := MailJSON{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML,
			Time: m.Time, Status: m.Status, Error: m.Error, Attempts: make([]MailAttemptJSON, 0, len(m.Attempts))}
		if !m.Expires.IsZero() {
			mj.Expires = &m.Expires
		}
		for _, a := range m.Attempts {
			mj.Attempts = append(mj.Attempts, MailAttemptJSON{Time: a.Time, Outcome: a.Outcome, Error: a.Error})
		}
		out = append(out, mj)
	}
	return c.JSON(http.StatusOK, map[string]any{"mail": out})
}
