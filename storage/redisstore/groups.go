package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/scimjit/scimjit/storage"
)

// A group is a hash {ws:<id>}:g:<gid> with the fields v (wire version), id,
// dn (displayName), dnl (lower-cased), x (externalId), at (attributes JSON),
// c, m (µs), ver, seq, op (the write that made this version); its members
// are the set {ws:<id>}:gm:<gid>.

// groupKeys are the keys of the group scripts, all in the workspace's slot.
func (s *Store) groupKeys(ws, gid string) []string {
	return []string{
		s.wsKey(ws, "meta"),    // meta: the workspace record
		s.wsKey(ws, "g:"+gid),  // group: hash
		s.wsKey(ws, "gm:"+gid), // members: set of member user ids
		s.wsKey(ws, "ix:gn"),   // name: hash lower(displayName) -> gid
		s.wsKey(ws, "ix:gxz"),  // externalId: zset "externalId\0gid"
		s.wsKey(ws, "users"),   // users: the users hash (reference check)
		s.wsKey(ws, "ix:ug"),   // groupsOf: zset "userId\0groupId"
		s.wsKey(ws, "ix:go"),   // order: zset seq -> gid
		s.wsKey(ws, "seq:g"),   // seq: counter
	}
}

func attrsJSON(m map[string]any) (string, error) {
	if m == nil {
		return "", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func validMembers(ms []string) bool {
	for _, m := range ms {
		if !validID(m) {
			return false
		}
	}
	return true
}

// CreateGroup writes the group, its indexes and members in one script that
// checks uniqueness and member references first.
func (s *Store) CreateGroup(ctx context.Context, ws string, g storage.Group, events ...storage.Event) (storage.Group, error) {
	if !validWS(ws) {
		return storage.Group{}, storage.ErrNotFound
	}
	if g.ID == "" {
		g.ID = storage.NewID()
	}
	if !validID(g.ID) {
		return storage.Group{}, fmt.Errorf("redisstore: invalid group id %q", g.ID)
	}
	if !validMembers(g.Members) {
		return storage.Group{}, storage.ErrInvalidReference
	}
	at, err := attrsJSON(g.Attributes)
	if err != nil {
		return storage.Group{}, err
	}
	t := now()
	members := dedup(g.Members)
	// Every member is new to the group; a re-sent create is answered by
	// the script before the plan is looked at.
	edit := groupEdit{group: storage.GroupRef{ID: g.ID, DisplayName: g.DisplayName, ExternalID: g.ExternalID},
		member: func(string, bool) bool { return true }}
	_, err = s.withRolePlan(ctx, ws, func() (groupEdit, []string, error) { return edit, members, nil }, events,
		func(plan, evArgs []any) (any, error) {
			args := []any{g.ID, g.DisplayName, strings.ToLower(g.DisplayName), g.ExternalID, at, toMicro(t), g.Op}
			args = append(append(args, evArgs...), len(members))
			for _, m := range members {
				args = append(args, m)
			}
			args = append(args, plan...)
			return nil, s.wrap(scriptGroupCreate.Run(ctx, s.rdb, append(s.groupKeys(ws, g.ID), s.eventKeys(ws)...), args...).Err())
		})
	if err != nil {
		return storage.Group{}, err
	}
	return s.GetGroup(ctx, ws, g.ID)
}

func dedup(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// decodeGroup builds a group from the script reply {fields flat, members}.
func decodeGroup(ws string, v any) (storage.Group, error) {
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		return storage.Group{}, fmt.Errorf("redisstore: unexpected group reply %T", v)
	}
	flat, _ := pair[0].([]any)
	f := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		val, _ := flat[i+1].(string)
		f[k] = val
	}
	if f["v"] != "1" {
		return storage.Group{}, fmt.Errorf("redisstore: group record version %q unknown", f["v"])
	}
	g := storage.Group{ID: f["id"], WorkspaceID: ws, DisplayName: f["dn"], ExternalID: f["x"], Op: f["op"],
		Members: []string{}}
	if f["at"] != "" {
		if err := json.Unmarshal([]byte(f["at"]), &g.Attributes); err != nil {
			return storage.Group{}, fmt.Errorf("redisstore: decode group attributes: %w", err)
		}
	}
	c, _ := strconv.ParseInt(f["c"], 10, 64)
	m, _ := strconv.ParseInt(f["m"], 10, 64)
	g.Created, g.Modified = fromMicro(c), fromMicro(m)
	g.Version, _ = strconv.ParseInt(f["ver"], 10, 64)
	members, _ := pair[1].([]any)
	for _, x := range members {
		if id, ok := x.(string); ok {
			g.Members = append(g.Members, id)
		}
	}
	sort.Strings(g.Members)
	return g, nil
}

func (s *Store) queryGroups(ctx context.Context, ws, mode string, args ...any) ([]storage.Group, int, error) {
	if !validWS(ws) {
		return []storage.Group{}, 0, nil
	}
	res, err := scriptGroupQuery.Run(ctx, s.rdb, s.groupKeys(ws, ""), append([]any{s.wsPrefix(ws), mode}, args...)...).Slice()
	if err != nil {
		return nil, 0, s.wrap(err)
	}
	total, _ := res[0].(int64)
	type seqGroup struct {
		seq int64
		g   storage.Group
	}
	list := make([]seqGroup, 0, len(res)-1)
	for _, v := range res[1:] {
		g, err := decodeGroup(ws, v)
		if err != nil {
			return nil, 0, err
		}
		var seq int64
		if pair, ok := v.([]any); ok {
			flat, _ := pair[0].([]any)
			for i := 0; i+1 < len(flat); i += 2 {
				if flat[i] == "seq" {
					seq, _ = strconv.ParseInt(fmt.Sprint(flat[i+1]), 10, 64)
				}
			}
		}
		list = append(list, seqGroup{seq, g})
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	out := make([]storage.Group, len(list))
	for i, x := range list {
		out[i] = x.g
	}
	return out, int(total), nil
}

// GetGroup reads one group with its members (one atomic script).
func (s *Store) GetGroup(ctx context.Context, ws, id string) (storage.Group, error) {
	if !validID(id) {
		return storage.Group{}, storage.ErrNotFound
	}
	gs, _, err := s.queryGroups(ctx, ws, "id", id)
	if err != nil {
		return storage.Group{}, err
	}
	if len(gs) == 0 {
		return storage.Group{}, storage.ErrNotFound
	}
	return gs[0], nil
}

// FindGroups is an index hit on displayName, externalId or member.
func (s *Store) FindGroups(ctx context.Context, ws string, by storage.GroupIndex, value string) ([]storage.Group, error) {
	var mode string
	switch by {
	case storage.GroupByName:
		mode, value = "name", strings.ToLower(value)
	case storage.GroupByExternal:
		mode = "ext"
	case storage.GroupByMember:
		mode = "member"
	default:
		return nil, fmt.Errorf("redisstore: group index %q unknown", by)
	}
	if value == "" || strings.Contains(value, "\x00") {
		return []storage.Group{}, nil
	}
	gs, _, err := s.queryGroups(ctx, ws, mode, value)
	return gs, err
}

// ListGroups pages through the ordered group index.
func (s *Store) ListGroups(ctx context.Context, ws string, offset, limit int) ([]storage.Group, int, error) {
	if offset < 0 {
		offset = 0
	}
	if limit < 0 {
		limit = 0
	}
	return s.queryGroups(ctx, ws, "list", offset, limit)
}

// ChangeGroup applies ch in one Lua script: version check, uniqueness of a
// new displayName/externalId, member reference checks, then the member set
// and reverse index deltas and the version bump. No optimistic retry, so
// concurrent member changes never lose each other.
func (s *Store) ChangeGroup(ctx context.Context, ws, id string, ch storage.GroupChange) (storage.Group, error) {
	if !validWS(ws) || !validID(id) {
		return storage.Group{}, storage.ErrNotFound
	}
	if (ch.ReplaceMembers != nil && !validMembers(*ch.ReplaceMembers)) || !validMembers(ch.AddMembers) {
		return storage.Group{}, storage.ErrInvalidReference
	}
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	args := []any{id, ch.IfVersion, toMicro(now()), ch.Op}
	if ch.DisplayName != nil {
		args = append(args, "1", *ch.DisplayName, strings.ToLower(*ch.DisplayName))
	} else {
		args = append(args, "0", "", "")
	}
	if ch.ExternalID != nil {
		args = append(args, "1", *ch.ExternalID)
	} else {
		args = append(args, "0", "")
	}
	at, err := attrsJSON(ch.Attributes)
	if err != nil {
		return storage.Group{}, err
	}
	args = append(args, flag(ch.Attributes != nil), at, flag(ch.ReplaceMembers != nil), flag(ch.OmitMembers))
	var replace []string
	if ch.ReplaceMembers != nil {
		replace = dedup(*ch.ReplaceMembers)
	}
	var remove []string
	for _, m := range dedup(ch.RemoveMembers) {
		if validID(m) {
			remove = append(remove, m)
		}
	}
	add := dedup(ch.AddMembers)
	res, err := s.withRolePlan(ctx, ws, func() (groupEdit, []string, error) { return s.changeEdit(ctx, ws, id, ch) }, ch.Events,
		func(plan, evArgs []any) (any, error) {
			args := append(slices.Clone(args), evArgs...)
			for _, list := range [][]string{replace, remove, add} {
				args = append(args, len(list))
				for _, m := range list {
					args = append(args, m)
				}
			}
			args = append(args, plan...)
			res, err := scriptGroupChange.Run(ctx, s.rdb, append(s.groupKeys(ws, id), s.eventKeys(ws)...), args...).Result()
			return res, s.wrap(err)
		})
	if err != nil {
		return storage.Group{}, err
	}
	g, err := decodeGroup(ws, res)
	if err == nil && ch.OmitMembers {
		g.Members = nil
	}
	return g, err
}

// DeleteGroup removes the group, its members' reverse index entries and its
// own index entries, re-evaluates its members' roles and appends the
// events, in one script.
func (s *Store) DeleteGroup(ctx context.Context, ws, id string, ifVersion int64, events ...storage.Event) error {
	if !validWS(ws) || !validID(id) {
		return storage.ErrNotFound
	}
	prepare := func() (groupEdit, []string, error) {
		ref, version, _, members, err := s.readGroupState(ctx, ws, id, true)
		return groupEdit{group: ref, gone: true, version: version}, members, err
	}
	_, err := s.withRolePlan(ctx, ws, prepare, events, func(plan, evArgs []any) (any, error) {
		args := append([]any{id, strconv.FormatInt(ifVersion, 10)}, evArgs...)
		args = append(args, plan...)
		return nil, s.wrap(scriptGroupDelete.Run(ctx, s.rdb, append(s.groupKeys(ws, id), s.eventKeys(ws)...), args...).Err())
	})
	return err
}

// changeEdit describes ch to the role plan: the members it touches are
// those it adds, removes or lists as the new members, and, when it
// replaces the members or sets displayName or externalId (both of which
// rules match), every current member too.
func (s *Store) changeEdit(ctx context.Context, ws, id string, ch storage.GroupChange) (groupEdit, []string, error) {
	all := ch.ReplaceMembers != nil || ch.DisplayName != nil || ch.ExternalID != nil
	before, version, op, members, err := s.readGroupState(ctx, ws, id, all)
	if err != nil || version == "" || (ch.Op != "" && op == ch.Op) {
		// Missing (the script says so) or this very change, re-sent (the
		// script writes nothing).
		return groupEdit{}, nil, err
	}
	after := before
	if ch.DisplayName != nil {
		after.DisplayName = *ch.DisplayName
	}
	if ch.ExternalID != nil {
		after.ExternalID = *ch.ExternalID
	}
	touched := slices.Concat(members, ch.RemoveMembers, ch.AddMembers)
	var replace map[string]bool
	if ch.ReplaceMembers != nil {
		replace = map[string]bool{}
		for _, m := range *ch.ReplaceMembers {
			replace[m] = true
		}
		touched = append(touched, *ch.ReplaceMembers...)
	}
	removed, added := map[string]bool{}, map[string]bool{}
	for _, m := range ch.RemoveMembers {
		removed[m] = true
	}
	for _, m := range ch.AddMembers {
		added[m] = true
	}
	member := func(uid string, was bool) bool {
		in := was
		if replace != nil {
			in = replace[uid]
		}
		return (in && !removed[uid]) || added[uid]
	}
	return groupEdit{group: after, version: version, member: member}, touched, nil
}

// UserGroups reads the reverse member index ix:ug by lex range for every
// id and only the names and version of each group found (luaGroupsOf), in one
// read-only script: one round trip per call, no SMEMBERS, so the cost does
// not depend on how many members the groups have.
func (s *Store) UserGroups(ctx context.Context, ws string, userIDs []string) (map[string][]storage.GroupRef, error) {
	out := make(map[string][]storage.GroupRef, len(userIDs))
	args := []any{s.wsPrefix(ws)}
	for _, id := range userIDs {
		if _, dup := out[id]; dup {
			continue
		}
		out[id] = []storage.GroupRef{}
		if validID(id) {
			args = append(args, id)
		}
	}
	if !validWS(ws) || len(args) == 1 {
		return out, nil
	}
	res, err := scriptUserGroups.Run(ctx, s.rdb, []string{s.wsKey(ws, "ix:ug")}, args...).Slice()
	if err != nil {
		return nil, s.wrap(err)
	}
	if len(res) != len(args)-1 {
		return nil, fmt.Errorf("redisstore: short user groups reply")
	}
	for i, id := range args[1:] {
		out[id.(string)] = decodeGroupsOf(res[i], nil)
	}
	return out, nil
}
