package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

type operatorData struct {
	Idle  string
	Error string
}

func (h *Console) operatorForm(c echo.Context) error {
	return h.render(c, http.StatusOK, "operator", page{Title: "Operator sign-in", Data: operatorData{Idle: "30 minutes"}})
}

// operatorSignIn exchanges an admin token for an operator session.
func (h *Console) operatorSignIn(c echo.Context) error {
	name, refusal, err := h.cfg.Backend.AuthenticateOperator(c, c.FormValue("token"))
	if err != nil {
		return err
	}
	if refusal != "" {
		status := http.StatusUnauthorized
		if c.Response().Header().Get(echo.HeaderRetryAfter) != "" {
			status = http.StatusTooManyRequests
		}
		return h.render(c, status, "operator", page{Title: "Operator sign-in", Data: operatorData{Idle: "30 minutes", Error: refusal}})
	}
	ctx := c.Request().Context()
	// A new secret on every sign-in, and the previous session gone: no
	// session fixation.
	if old, err := c.Cookie(operatorCookie); err == nil && old.Value != "" {
		if err := h.cfg.Store.DeleteSession(ctx, hashSecret(old.Value)); err != nil {
			h.cfg.Logger.WarnContext(ctx, "console: delete the previous operator session", "err", err)
		}
	}
	secret, now := newSecret(), time.Now()
	if err := h.cfg.Store.CreateSession(ctx, storage.Session{Key: hashSecret(secret), Operator: name,
		CreatedAt: now, ExpiresAt: now.Add(OperatorIdle)}); err != nil {
		return err
	}
	h.setOperatorCookie(c, secret, 0)
	h.cfg.Logger.InfoContext(ctx, "console: operator signed in", "admin_token", name)
	return c.Redirect(http.StatusSeeOther, "/console")
}

func (h *Console) operatorSignOut(c echo.Context) error {
	if ck, err := c.Cookie(operatorCookie); err == nil && ck.Value != "" {
		if err := h.cfg.Store.DeleteSession(c.Request().Context(), hashSecret(ck.Value)); err != nil {
			return err
		}
	}
	h.setOperatorCookie(c, "", -1)
	return c.Redirect(http.StatusSeeOther, "/console/operator")
}

type workspacesData struct {
	Workspaces []storage.Workspace
	// The create form: its values and problems per field.
	ID, Name string
	Errors   fieldErrors
}

func (h *Console) workspaces(c echo.Context) error {
	return h.showWorkspaces(c, http.StatusOK, workspacesData{}, c.QueryParam("done"))
}

func (h *Console) showWorkspaces(c echo.Context, status int, d workspacesData, flash string) error {
	list, err := h.cfg.Store.ListWorkspaces(c.Request().Context())
	if err != nil {
		return err
	}
	d.Workspaces = list
	return h.render(c, status, "workspaces", page{Title: "Workspaces", Flash: flashText(flash), Data: d})
}

func (h *Console) createWorkspace(c echo.Context) error {
	d := workspacesData{ID: strings.TrimSpace(c.FormValue("id")), Name: strings.TrimSpace(c.FormValue("name"))}
	ws, problems, err := h.cfg.Backend.CreateWorkspace(c.Request().Context(), d.ID, d.Name)
	if err != nil {
		return err
	}
	if problems != nil {
		d.Errors = sortProblems(problems, "id", "name")
		return h.showWorkspaces(c, http.StatusBadRequest, d, "")
	}
	return c.Redirect(http.StatusSeeOther, "/console/w/"+ws.ID+"?done=created")
}

type deleteData struct {
	Confirm string
	Error   string
}

// confirmDelete asks the operator to type the workspace's id: a deletion
// removes every member, group, token and event of it.
func (h *Console) confirmDelete(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, "delete", page{Title: "Delete " + ws.Name, WS: &ws, Data: deleteData{}})
}

func (h *Console) deleteWorkspace(c echo.Context) error {
	ws, err := h.workspace(c)
	if err != nil {
		return err
	}
	if confirm := strings.TrimSpace(c.FormValue("confirm")); confirm != ws.ID {
		return h.render(c, http.StatusBadRequest, "delete", page{Title: "Delete " + ws.Name, WS: &ws,
			Data: deleteData{Confirm: confirm, Error: "Type the workspace's ID, " + ws.ID + ", to delete it."}})
	}
	ctx := c.Request().Context()
	if err := h.cfg.Store.DeleteWorkspace(ctx, ws.ID); err != nil && !isNotFound(err) {
		return err
	}
	// The event stream went with the workspace; the log keeps the record.
	h.cfg.Logger.InfoContext(ctx, "console: workspace deleted", "workspace", ws.ID)
	return c.Redirect(http.StatusSeeOther, "/console?done=deleted")
}
