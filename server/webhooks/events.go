package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// Types are the public event types, in documentation order.
var Types = []string{
	"user.created", "user.updated", "user.deactivated", "user.reactivated", "user.deleted",
	"group.created", "group.updated", "group.deleted", "group.member_added", "group.member_removed",
	"membership.roles_changed", "join.pending", "join.verified", "signin.succeeded", "signin.refused",
}

// publicTypes maps the workspace event types (storage.Event.Type) that
// become webhooks to their public type. Every other event (admin changes,
// refused joins, rate limits, unknown roles, …) sends no webhook.
var publicTypes = map[string]string{
	"scim.user.created":          "user.created",
	"jit.user.created":           "user.created",
	"jit.membership.created":     "user.created",
	"scim.user.updated":          "user.updated",
	"scim.user.adopted":          "user.updated",
	"scim.user.deactivated":      "user.deactivated",
	"scim.user.reactivated":      "user.reactivated",
	"scim.user.deleted":          "user.deleted",
	"scim.group.created":         "group.created",
	"scim.group.updated":         "group.updated",
	"scim.group.deleted":         "group.deleted",
	"scim.group.member_added":    "group.member_added",
	"scim.group.member_removed":  "group.member_removed",
	"role.synced":                "membership.roles_changed",
	"membership.roles_changed":   "membership.roles_changed", // a SCIM group change, by the group rules
	"admin.member.roles_changed": "membership.roles_changed", // the admin console
	"admin.member.deactivated":   "user.deactivated",         // the admin console
	"join.pending":               "join.pending",
	"join.verified":              "join.verified",
	"login.succeeded":            "signin.succeeded",
	"login.refused":              "signin.refused",
}

// PublicType is the public type of a workspace event, false when the event
// sends no webhook.
func PublicType(internal string) (string, bool) {
	t, ok := publicTypes[internal]
	return t, ok
}

// ValidFilter reports whether f is a type filter entry: a public type or
// a prefix of some ending in ".*" ("user.*"), or "*".
func ValidFilter(f string) bool {
	for _, t := range Types {
		if matches(f, t) {
			return true
		}
	}
	return false
}

// matches reports whether filter entry f selects public type t.
func matches(f, t string) bool {
	if f == "*" || f == t {
		return true
	}
	p, ok := strings.CutSuffix(f, "*")
	return ok && strings.HasSuffix(p, ".") && strings.HasPrefix(t, p)
}

// Wants reports whether endpoint w receives events of public type t: it
// is enabled and its filter is empty or selects t.
func Wants(w storage.Webhook, t string) bool {
	if !w.Enabled {
		return false
	}
	if len(w.Types) == 0 {
		return true
	}
	for _, f := range w.Types {
		if matches(f, t) {
			return true
		}
	}
	return false
}

// Envelope is the JSON body of every delivery.
type Envelope struct {
	// ID is the event's id, also the webhook-id header: the same on every
	// retry and redelivery, so receivers deduplicate by it.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Time is when the change happened (RFC 3339, UTC).
	Time      string `json:"time"`
	Workspace string `json:"workspace"`
	// Actor is what made the change: "scim", "saml", "admin".
	Actor string `json:"actor,omitempty"`
	// Cause is the workspace event type the webhook comes from (the
	// events API lists it under the same id).
	Cause string          `json:"cause"`
	Data  json.RawMessage `json:"data"`
}

// Renderer renders resources as SCIM does (scimhandlers.Handler).
type Renderer interface {
	RenderUser(ctx context.Context, ws, id string) (json.RawMessage, error)
	RenderGroup(ctx context.Context, ws, id string) (json.RawMessage, error)
}

// envelope builds the body of event e of workspace ws (public type t).
// User and group events carry the resource as SCIM renders it now; a
// resource that no longer exists (deleted, also after the event) carries
// only its id.
func envelope(ctx context.Context, r Renderer, ws, t string, e storage.Event) ([]byte, error) {
	env := Envelope{ID: e.ID, Type: t, Time: e.Time.UTC().Format(time.RFC3339Nano), Workspace: ws,
		Actor: e.Actor, Cause: e.Type}
	var data any
	var err error
	switch {
	case strings.HasPrefix(t, "user.") || t == "membership.roles_changed":
		data, err = resource(ctx, r.RenderUser, ws, e.UserID)
	case t == "group.member_added" || t == "group.member_removed":
		members := []map[string]string{}
		for _, id := range strings.Fields(e.Detail["members"]) {
			members = append(members, map[string]string{"value": id})
		}
		data = map[string]any{"id": e.Detail["group"], "members": members}
	case strings.HasPrefix(t, "group."):
		data, err = resource(ctx, r.RenderGroup, ws, e.Detail["group"])
	default: // join.*, signin.*
		d := map[string]any{}
		if e.UserID != "" {
			d["userId"] = e.UserID
		}
		if e.AccountID != "" {
			d["accountId"] = e.AccountID
		}
		if len(e.Detail) > 0 {
			d["detail"] = e.Detail
		}
		data = d
	}
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	env.Data = b
	return json.Marshal(env)
}

// resource renders a user or group, or {"id": id} when it is gone.
func resource(ctx context.Context, render func(context.Context, string, string) (json.RawMessage, error), ws, id string) (any, error) {
	b, err := render(ctx, ws, id)
	if errors.Is(err, storage.ErrNotFound) || id == "" {
		return map[string]string{"id": id}, nil
	}
	return b, err
}
