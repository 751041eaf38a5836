package scimhandlers

import (
	"context"
	"encoding/json"
	"errors"
)

// RenderUser returns user id of workspace ws as a SCIM GET of it answers
// (every attribute, with its groups), for payloads outside a SCIM request
// such as webhooks. It needs Config.BaseURL.
func (h *Handler) RenderUser(ctx context.Context, ws, id string) (json.RawMessage, error) {
	if h.cfg.BaseURL == "" {
		return nil, errors.New("scimhandlers: RenderUser needs Config.BaseURL")
	}
	u, err := h.store.GetUser(ctx, ws, id)
	if err != nil {
		return nil, err
	}
	groups, err := h.userGroups(ctx, ws, id)
	if err != nil {
		return nil, err
	}
	return appendUser(nil, h.cfg.BaseURL+"/scim/v2/"+ws, &u, groups)
}

// RenderGroup returns group id of workspace ws as a SCIM GET of it
// answers (with its members). It needs Config.BaseURL.
func (h *Handler) RenderGroup(ctx context.Context, ws, id string) (json.RawMessage, error) {
	if h.cfg.BaseURL == "" {
		return nil, errors.New("scimhandlers: RenderGroup needs Config.BaseURL")
	}
	g, err := h.store.GetGroup(ctx, ws, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(renderGroup(h.cfg.BaseURL+"/scim/v2/"+ws, g))
}
