package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/server/console"
	"github.com/scimjit/scimjit/storage"
)

// RoleExplanationJSON tells why a member has each role.
type RoleExplanationJSON struct {
	UserID       string               `json:"userId"`
	Roles        storage.Roles        `json:"roles"`
	Environments []EnvExplanationJSON `json:"environments"`
}

// EnvExplanationJSON is the reason for one environment's role. Source is
// one of: attribute (the workato_role* value a sign-in sent), rule (group
// rule Rule matched Group), default (a sign-in sent nothing:
// jit.defaultRole), kept (a sign-in's groups were unknown, the role
// stayed), join (the roles of the sign-in a confirmed join link came
// from), saml (set at a sign-in recorded before the reason was), scim (the
// IdP's SCIM client), scimGroup (group rule Rule matched Group, the name
// or externalId of the member's SCIM group SCIMGroupID), unknown (no
// recorded event explains the current role: events older than the stream
// keeps, or a change that records no roles).
type EnvExplanationJSON struct {
	Environment string     `json:"environment"`
	Role        string     `json:"role"`
	Source      string     `json:"source"`
	Rule        int        `json:"rule,omitempty"`
	Group       string     `json:"group,omitempty"`
	SCIMGroupID string     `json:"scimGroupId,omitempty"`
	SCIMGroup   string     `json:"scimGroup,omitempty"`
	GroupsKnown *bool      `json:"groupsKnown,omitempty"`
	EventID     string     `json:"eventId,omitempty"`
	EventType   string     `json:"eventType,omitempty"`
	Time        *time.Time `json:"time,omitempty"`
}

// explainPage is how many events explainRoles reads per store call.
const explainPage = 1000

// explainRoles answers GET .../members/:user/roles/explain. It derives the
// answer from the workspace's event stream, the only record of why a role
// was set (memberships store the roles, not their reasons): it reads the
// whole capped stream, oldest first, and keeps per environment the last
// event that set a role and whether a SCIM change came after it.
func (s *Server) explainRoles(c echo.Context) error {
	ws, err := workspaceParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.store.GetWorkspace(ctx, ws); err != nil {
		return storeError(err, "workspace")
	}
	u, err := s.store.GetUser(ctx, ws, c.Param("userId"))
	if err != nil {
		return storeError(err, "member")
	}
	out, err := explainMember(ctx, s.store, ws, u)
	if err != nil {
		return storeError(err, "workspace")
	}
	return c.JSON(http.StatusOK, out)
}

// explainMember tells why member u of ws has each role (explainRoles;
// the admin console's member page shows the same).
func explainMember(ctx context.Context, store storage.Store, ws string, u storage.User) (RoleExplanationJSON, error) {
	var last [3]*roleRecord
	var scimAfter [3]bool
	err := eachEvent(ctx, store, ws, func(e storage.Event) {
		if e.UserID != u.ID {
			return
		}
		if strings.HasPrefix(e.Type, "scim.user.") {
			scimAfter = [3]bool{true, true, true}
			return
		}
		recs, ok := rolesSetBy(e)
		if !ok {
			return
		}
		for i := range recs {
			last[i], scimAfter[i] = &recs[i], false
		}
	})
	if err != nil {
		return RoleExplanationJSON{}, err
	}
	out := RoleExplanationJSON{UserID: u.ID, Roles: u.Roles}
	for i, env := range storage.Environments {
		x := EnvExplanationJSON{Environment: env, Role: u.Roles.Env(i), Source: "unknown"}
		switch r := last[i]; {
		case r != nil && r.role == x.Role:
			x.Source, x.Rule, x.Group, x.EventID, x.EventType = r.source, r.rule, r.group, r.event.ID, r.event.Type
			x.SCIMGroupID, x.SCIMGroup = r.scimGroupID, r.scimGroup
			t := r.event.Time
			x.Time = &t
			if r.groupsUnknown {
				known := false
				x.GroupsKnown = &known
			}
		case scimAfter[i] || (r == nil && u.Source == storage.SourceSCIM):
			x.Source = "scim"
		}
		out.Environments = append(out.Environments, x)
	}
	return out, nil
}

// roleRecord is what one event says about one environment's role.
type roleRecord struct {
	role, source  string
	rule          int
	group         string
	scimGroupID   string
	scimGroup     string
	groupsUnknown bool
	event         storage.Event
}

// rolesSetBy reads the roles an event set, per environment, and why, from
// the detail the SAML layer records (saml.roleDecision) or a SCIM group
// change records (storage.RolesChangedEvent); ok is false for an event
// that sets no roles.
func rolesSetBy(e storage.Event) ([3]roleRecord, bool) {
	var roles storage.Roles
	source := "saml"
	switch e.Type {
	case "jit.user.created", "jit.membership.created":
		roles = parseRolesDetail(e.Detail["roles"])
	case "role.synced":
		roles = parseRolesDetail(e.Detail["to"])
	case "join.verified":
		roles = storage.Roles{Dev: e.Detail["dev"], Test: e.Detail["test"], Prod: e.Detail["prod"]}
		source = "join"
	case storage.RolesChangedEvent:
		roles = parseRolesDetail(e.Detail["to"])
		source = "scim"
	case console.EventMemberRoles:
		roles = parseRolesDetail(e.Detail["to"])
		source = "console"
	default:
		return [3]roleRecord{}, false
	}
	var out [3]roleRecord
	for i, env := range storage.Environments {
		r := roleRecord{role: roles.Env(i), source: source, event: e, groupsUnknown: e.Detail["groups"] == "unknown"}
		if src := e.Detail[env+".source"]; src != "" {
			r.source = src
			r.rule, _ = strconv.Atoi(e.Detail[env+".rule"])
			r.group = e.Detail[env+".group"]
		}
		if e.Type == storage.RolesChangedEvent {
			// A SCIM group change: a rule matched one of the member's SCIM
			// groups; an explicit value is the SCIM client's.
			switch r.source {
			case storage.RoleSourceRule:
				r.source, r.scimGroupID, r.scimGroup = "scimGroup", e.Detail[env+".scimGroup"], e.Detail[env+".scimGroupName"]
			case storage.RoleSourceAttribute:
				r.source = "scim"
			}
		}
		out[i] = r
	}
	return out, true
}

// parseRolesDetail reads "dev=A,test=B,prod=C" (role names never contain
// ',' or '=').
func parseRolesDetail(v string) storage.Roles {
	var r storage.Roles
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "dev":
			r.Dev = val
		case "test":
			r.Test = val
		case "prod":
			r.Prod = val
		}
	}
	return r
}

// eachEvent calls fn for every event of the workspace, oldest first.
func eachEvent(ctx context.Context, store storage.Store, ws string, fn func(storage.Event)) error {
	after := ""
	for {
		page, err := store.ListEvents(ctx, ws, after, explainPage)
		if err != nil {
			return err
		}
		for _, e := range page {
			fn(e)
		}
		if len(page) < explainPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}
