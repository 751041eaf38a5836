package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/console"
	"github.com/scimjit/scimjit/storage"
)

// consoleBackend gives the admin console (package server/console) the
// admin API's own code: a change made in the console is validated,
// applied and recorded as through the API.
type consoleBackend struct{ s *Server }

func (s *Server) consoleConfig() console.Config {
	return console.Config{Store: s.store, SAML: s.saml, Backend: consoleBackend{s}, Logger: s.log, BaseURL: s.baseURL}
}

// problems splits an error of the admin API's code into the refusal a
// person can act on (a 4xx: the validation problems, or its message) and
// a failure.
func problems(err error) (console.Problems, error) {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status < 500 {
		if ae.problems != nil {
			return ae.problems, nil
		}
		return console.Problems{ae.Message}, nil
	}
	return nil, err
}

func (b consoleBackend) AuthenticateOperator(c echo.Context, token string) (string, string, error) {
	name, err := b.s.authenticateAdmin(c, token)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
		return "", "Too many failed sign-ins from this address. Wait a minute, then try again.", nil
	case errors.As(err, &ae):
		return "", "This is not a valid admin token.", nil
	}
	return name, "", err
}

func (b consoleBackend) OperatorLive(name string) bool {
	return slices.Contains(b.s.adminTokens.Names(), name)
}

func (b consoleBackend) CreateWorkspace(ctx context.Context, id, name string) (storage.Workspace, console.Problems, error) {
	ws, err := b.s.addWorkspace(ctx, createWorkspaceRequest{ID: id, Name: name})
	p, err := problems(err)
	return ws, p, err
}

func (b consoleBackend) UpdateSettings(ctx context.Context, ws string, ifVersion int64, settings map[string]any) (storage.Workspace, console.Problems, error) {
	// The console's change in the admin API's own shape, read as the API
	// reads a request body.
	raw, err := json.Marshal(map[string]any{"settings": settings})
	if err != nil {
		return storage.Workspace{}, nil, err
	}
	var req updateWorkspaceRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return storage.Workspace{}, nil, err
	}
	req.IfVersion = ifVersion
	w, err := b.s.changeWorkspace(ctx, ws, req)
	p, err := problems(err)
	return w, p, err
}

func (b consoleBackend) CreateSCIMToken(ctx context.Context, ws, name string) (storage.SCIMToken, string, console.Problems, error) {
	t, secret, err := b.s.issueSCIMToken(ctx, ws, name)
	p, err := problems(err)
	return t, secret, p, err
}

func (b consoleBackend) RevokeSCIMToken(ctx context.Context, ws, id string) (console.Problems, error) {
	return problems(b.s.revokeToken(ctx, ws, id))
}

func (b consoleBackend) ExplainRoles(ctx context.Context, ws string, u storage.User) ([]console.RoleReason, error) {
	x, err := explainMember(ctx, b.s.store, ws, u)
	if err != nil {
		return nil, err
	}
	out := make([]console.RoleReason, 0, len(x.Environments))
	for _, e := range x.Environments {
		r := console.RoleReason{Environment: e.Environment, Role: e.Role, Source: e.Source, Group: e.Group, Rule: e.Rule}
		if e.Time != nil {
			r.Time = *e.Time
		}
		out = append(out, r)
	}
	return out, nil
}

func (b consoleBackend) LastEvents(ctx context.Context, ws string, n int, match func(storage.Event) bool) ([]storage.Event, error) {
	var out []storage.Event
	err := eachEvent(ctx, b.s.store, ws, func(e storage.Event) {
		if match(e) {
			if out = append(out, e); len(out) > 2*n {
				out = append(out[:0], out[len(out)-n:]...)
			}
		}
	})
	if len(out) > n {
		out = out[len(out)-n:]
	}
	slices.Reverse(out)
	return out, err
}
