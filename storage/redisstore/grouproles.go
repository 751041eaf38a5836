package redisstore

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/scimjit/scimjit/storage"
)

// Group writes re-evaluate the roles of the members whose groups they
// change (storage.Store.DeleteGroup). The roles depend on the members'
// records (packed, which Lua cannot read) and the workspace's settings, so
// Go computes them and the group script applies them: rolePlan reads the
// settings, the records and the groups of the members the write touches,
// computes their new records, and passes the script (luaRolePlan) what it
// read. The script checks that all of it is unchanged before its first
// write and otherwise answers SJ_RETRY: the caller then plans again, like
// UpdateUser's compare-and-set loop. A plan holds only the members the
// write touches, so a write to a small group stays cheap in a large
// workspace, and none at all where the workspace has no group rules.

// groupEdit is what a group write does to its members' groups, as a plan
// evaluates it.
type groupEdit struct {
	// group is the group after the write (its id, displayName and
	// externalId); gone when the write deletes it.
	group storage.GroupRef
	gone  bool
	// version is the group's version as read ("" for a group the write
	// creates): the script checks it, so that a concurrent write of the
	// same group makes this one plan again with its members as they are.
	version string
	// member tells whether user uid, a member before the write when was,
	// is one after it.
	member func(uid string, was bool) bool
}

// decodeGroupsOf reads one luaGroupsOf list: the group references and,
// when seen is not nil, the list joined with NUL (what rolePlanHolds
// compares).
func decodeGroupsOf(v any, seen *string) []storage.GroupRef {
	flat, _ := v.([]any)
	parts := make([]string, len(flat))
	for i, x := range flat {
		parts[i], _ = x.(string)
	}
	refs := make([]storage.GroupRef, 0, len(parts)/4)
	for i := 0; i+3 < len(parts); i += 4 {
		refs = append(refs, storage.GroupRef{ID: parts[i], DisplayName: parts[i+1], ExternalID: parts[i+2]})
	}
	if seen != nil {
		*seen = strings.Join(parts, "\x00")
	}
	return refs
}

// rolePlan returns the script arguments of the role plan (luaRolePlan)
// of the group write that prepare describes (the members it touches, and
// what it does to their groups), and the events to append with the write:
// events, then one storage.RolesChangedEvent per member whose roles
// change. Without group rules in the workspace the plan is empty and
// prepare is not called.
func (s *Store) rolePlan(ctx context.Context, ws string, prepare func() (groupEdit, []string, error), events []storage.Event) ([]any, []storage.Event, error) {
	empty := []any{s.wsPrefix(ws), "", 0}
	w, err := s.GetWorkspace(ctx, ws)
	if errors.Is(err, storage.ErrNotFound) {
		return empty, events, nil // the script reports the missing workspace
	}
	if err != nil || len(w.Settings.Roles.GroupRules) == 0 {
		return empty, events, err
	}
	edit, touched, err := prepare()
	if err != nil {
		return nil, nil, err
	}
	ids := make([]string, 0, len(touched))
	for _, id := range dedup(touched) {
		if validID(id) {
			ids = append(ids, id)
		}
	}
	args := []any{s.wsPrefix(ws), edit.version, 0}
	if len(ids) == 0 {
		return args, events, nil
	}
	recs, err := s.rdb.HMGet(ctx, s.wsKey(ws, "users"), ids...).Result()
	if err != nil {
		return nil, nil, s.wrap(err)
	}
	uargs := []any{s.wsPrefix(ws)}
	for _, id := range ids {
		uargs = append(uargs, id)
	}
	groups, err := scriptUserGroups.Run(ctx, s.rdb, []string{s.wsKey(ws, "ix:ug")}, uargs...).Slice()
	if err != nil {
		return nil, nil, s.wrap(err)
	}
	cause := ""
	if len(events) > 0 {
		cause = events[0].Type
	}
	events = slices.Clone(events)
	n := 0
	for i, id := range ids {
		rec, ok := recs[i].(string)
		if !ok || i >= len(groups) {
			continue // not a user (any more): the script refuses an added one
		}
		var seen string
		refs := decodeGroupsOf(groups[i], &seen)
		was := slices.ContainsFunc(refs, func(g storage.GroupRef) bool { return g.ID == edit.group.ID })
		after := slices.DeleteFunc(refs, func(g storage.GroupRef) bool { return g.ID == edit.group.ID })
		if !edit.gone && edit.member(id, was) {
			after = append(after, edit.group)
		}
		u, err := decodeUser(ws, rec)
		if err != nil {
			return nil, nil, err
		}
		d := w.Settings.MemberRoles(u.Explicit(), storage.SCIMGroupNames(after))
		newRec, newFacets := "", ""
		if d.Roles != u.Roles {
			c := u
			c.Roles, c.Version, c.Modified, c.Op = d.Roles, u.Version+1, now(), storage.NewID()
			if newRec, err = encodeUser(c); err != nil {
				return nil, nil, err
			}
			newFacets = facetArg(c)
			detail := d.Detail(map[string]string{"cause": cause, "groupId": edit.group.ID,
				"displayName": edit.group.DisplayName, "from": u.Roles.Detail(), "to": d.Roles.Detail()})
			for e, env := range storage.Environments {
				if g, ok := storage.SCIMGroupOf(after, d.Matches[e].Group); ok && d.Sources[e] == storage.RoleSourceRule {
					detail[env+".scimGroup"], detail[env+".scimGroupName"] = g.ID, g.DisplayName
				}
			}
			events = append(events, storage.Event{Type: storage.RolesChangedEvent, Actor: "scim",
				UserID: u.ID, AccountID: u.AccountID, Detail: detail})
		}
		args = append(args, id, rec, newRec, seen, facetArg(u), newFacets)
		n++
	}
	args[2] = n
	return args, events, nil
}

// withRolePlan runs a group script through run with the role plan of the
// write prepare describes and the events' arguments (eventArgs), planning
// again while the script answers SJ_RETRY.
func (s *Store) withRolePlan(ctx context.Context, ws string, prepare func() (groupEdit, []string, error), events []storage.Event,
	run func(plan, eventArgs []any) (any, error)) (any, error) {
	for i := 0; i < maxRetries; i++ {
		if err := backoff(ctx, i); err != nil {
			return nil, err
		}
		plan, all, err := s.rolePlan(ctx, ws, prepare, events)
		if err != nil {
			return nil, err
		}
		_, pairs, err := s.eventsArgs(ws, all)
		if err != nil {
			return nil, err
		}
		res, err := run(plan, eventArgs(pairs))
		if errors.Is(err, errRetry) {
			continue
		}
		return res, err
	}
	return nil, storage.ErrConflictRetries
}

// readGroupState reads what a plan needs of a stored group: its names,
// version and last op, and, when members, its members. version is "" when
// the group does not exist.
func (s *Store) readGroupState(ctx context.Context, ws, id string, members bool) (ref storage.GroupRef, version, op string, ids []string, err error) {
	f, err := s.rdb.HMGet(ctx, s.wsKey(ws, "g:"+id), "dn", "x", "ver", "op").Result()
	if err != nil {
		return ref, "", "", nil, s.wrap(err)
	}
	str := func(v any) string { x, _ := v.(string); return x }
	ref = storage.GroupRef{ID: id, DisplayName: str(f[0]), ExternalID: str(f[1])}
	version, op = str(f[2]), str(f[3])
	if members && version != "" {
		if ids, err = s.rdb.SMembers(ctx, s.wsKey(ws, "gm:"+id)).Result(); err != nil {
			return ref, "", "", nil, s.wrap(err)
		}
	}
	return ref, version, op, ids, nil
}
