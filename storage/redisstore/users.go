package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// userWire is the stored form of a membership (field <id> of the hash
// {ws:<id>}:users). Short names keep Redis memory per user small.
type userWire struct {
	V        int       `json:"v"`
	ID       string    `json:"id"`
	Account  string    `json:"a,omitempty"`
	UserName string    `json:"un"`
	External string    `json:"x,omitempty"`
	Emails   []string  `json:"em,omitempty"`
	Active   bool      `json:"ac,omitempty"`
	Verified bool      `json:"vf,omitempty"`
	Source   string    `json:"s,omitempty"`
	Roles    rolesWire `json:"r"`
	// Explicit are the explicit role values (storage.User.ExplicitRoles),
	// stored only when they differ from Roles: absent means equal, which
	// a nil ExplicitRoles also means.
	Explicit   *rolesWire     `json:"e,omitempty"`
	RoleSchema string         `json:"rs,omitempty"`
	Attrs      map[string]any `json:"at,omitempty"`
	Created    int64          `json:"c"`
	Modified   int64          `json:"m"`
	Version    int64          `json:"ver"`
	Op         string         `json:"op,omitempty"`
}

type rolesWire struct {
	Dev  string `json:"d,omitempty"`
	Test string `json:"t,omitempty"`
	Prod string `json:"p,omitempty"`
}

// sameExplicit drops u's ExplicitRoles when they equal its Roles, as a
// stored record does (userWire.Explicit), so that what a write returns
// equals what a read of it returns.
func sameExplicit(u *storage.User) {
	if u.ExplicitRoles != nil && *u.ExplicitRoles == u.Roles {
		u.ExplicitRoles = nil
	}
}

func encodeUser(u storage.User) (string, error) {
	var explicit *rolesWire
	if u.ExplicitRoles != nil && *u.ExplicitRoles != u.Roles {
		explicit = &rolesWire{Dev: u.ExplicitRoles.Dev, Test: u.ExplicitRoles.Test, Prod: u.ExplicitRoles.Prod}
	}
	b, err := json.Marshal(userWire{V: 1, Explicit: explicit, ID: u.ID, Account: u.AccountID, UserName: u.UserName,
		External: u.ExternalID, Emails: u.Emails, Active: u.Active, Verified: u.Verified, Source: u.Source,
		Roles: rolesWire{Dev: u.Roles.Dev, Test: u.Roles.Test, Prod: u.Roles.Prod}, RoleSchema: u.RoleSchema,
		Attrs: u.Attributes, Created: toMicro(u.Created), Modified: toMicro(u.Modified), Version: u.Version, Op: u.Op})
	if err != nil {
		return "", err
	}
	return pack(b)
}

// jsonBufs holds the inflated JSON of a record while it is decoded.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// decodeUser decodes a stored user record (unpack, then the JSON).
func decodeUser(ws, s string) (storage.User, error) {
	bp := jsonBufs.Get().(*[]byte)
	defer jsonBufs.Put(bp)
	js, err := unpackTo((*bp)[:0], s)
	if err != nil {
		return storage.User{}, err
	}
	if cap(js) <= 64<<10 {
		*bp = js[:0] // json.Unmarshal and fastDecodeUserWire copy what they keep
	}
	w, ok := fastDecodeUserWire(js)
	if !ok {
		w = userWire{}
		if err := json.Unmarshal(js, &w); err != nil {
			return storage.User{}, fmt.Errorf("redisstore: decode user: %w", err)
		}
	}
	if w.V != 1 {
		return storage.User{}, fmt.Errorf("redisstore: user record version %d unknown", w.V)
	}
	roles := storage.Roles{Dev: w.Roles.Dev, Test: w.Roles.Test, Prod: w.Roles.Prod}
	var explicit *storage.Roles // absent: equal to roles
	if e := w.Explicit; e != nil {
		explicit = &storage.Roles{Dev: e.Dev, Test: e.Test, Prod: e.Prod}
	}
	return storage.User{ID: w.ID, WorkspaceID: ws, AccountID: w.Account, UserName: w.UserName,
		ExternalID: w.External, Emails: w.Emails, Active: w.Active, Verified: w.Verified, Source: w.Source,
		Roles: roles, ExplicitRoles: explicit, RoleSchema: w.RoleSchema,
		Attributes: w.Attrs, Created: fromMicro(w.Created), Modified: fromMicro(w.Modified), Version: w.Version,
		Op: w.Op}, nil
}

// emailIndexKeys returns the email values that get an entry in the email
// index: all but the one equal to the folded userName, which the userName
// index already finds (typical IdP users have userName = email; this saves
// one index entry per user, see FindUsers).
func emailIndexKeys(userName string, emails []string) []string {
	un := storage.FoldKey(userName)
	out := []string{}
	for _, e := range emailKeys(emails) {
		if e != un {
			out = append(out, e)
		}
	}
	return out
}

// emailKeys returns the distinct folded email values (storage.FoldKey).
func emailKeys(emails []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, e := range emails {
		k := storage.FoldKey(e)
		if k == "" || seen[k] || strings.Contains(k, "\x00") {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	return out
}

// userKeys are the keys of the user scripts, all in the workspace's slot.
func (s *Store) userKeys(ws string) []string {
	return []string{
		s.wsKey(ws, "meta"),   // meta: the workspace record
		s.wsKey(ws, "users"),  // users: hash id -> record
		s.wsKey(ws, "ix:un"),  // userName: hash folded userName -> id
		s.wsKey(ws, "ix:uxz"), // externalId: zset "externalId\0id"
		s.wsKey(ws, "ix:ua"),  // account: hash account id -> id
		s.wsKey(ws, "ix:ue"),  // emails: zset "folded email\0id"
		s.wsKey(ws, "ix:uo"),  // order: zset creation seq -> id
		s.wsKey(ws, "seq:u"),  // seq: counter
		s.wsKey(ws, "ix:ug"),  // groupsOf: zset "userId\0groupId"
		s.wsKey(ws, "ix:uf"),  // facets: set of facet names; ix:uf:<facet> zsets (filters.go)
		s.wsKey(ws, "ix:udn"), // names: zset "folded full name\0id" (filters.go)
	}
}

// userArgs are luaUserArgs' arguments for creating u (its record rec).
func userArgs(u storage.User, rec string) []any {
	args := []any{u.ID, rec, storage.FoldKey(u.UserName), u.ExternalID, u.AccountID, facetArg(u), nameKey(u)}
	for _, e := range emailIndexKeys(u.UserName, u.Emails) {
		args = append(args, e)
	}
	return args
}

// CreateUser writes the account back-pointer first (harmless: readers
// verify it), then the membership, all its index entries and the events
// in one Lua script that checks every unique index before writing
// anything.
func (s *Store) CreateUser(ctx context.Context, ws string, u storage.User, events ...storage.Event) (storage.User, error) {
	if !validWS(ws) {
		return storage.User{}, storage.ErrNotFound
	}
	if u.ID == "" {
		u.ID = storage.NewID()
	}
	if !validID(u.ID) {
		return storage.User{}, fmt.Errorf("redisstore: invalid user id %q", u.ID)
	}
	if u.AccountID != "" && !validID(u.AccountID) {
		return storage.User{}, fmt.Errorf("redisstore: invalid account id %q", u.AccountID)
	}
	u.WorkspaceID = ws
	sameExplicit(&u)
	t := now()
	u.Created, u.Modified, u.Version = t, t, 1
	rec, err := encodeUser(u)
	if err != nil {
		return storage.User{}, err
	}
	if u.AccountID != "" {
		if err := s.rdb.HSet(ctx, s.acctKey(u.AccountID, "a"), acctWSPrefix+ws, "1").Err(); err != nil {
			return storage.User{}, s.wrap(err)
		}
	}
	for i := range events {
		if events[i].UserID == "" {
			events[i].UserID = u.ID
		}
		if events[i].AccountID == "" {
			events[i].AccountID = u.AccountID
		}
	}
	_, pairs, err := s.eventsArgs(ws, events)
	if err != nil {
		return storage.User{}, err
	}
	if _, err := s.createUser(ctx, ws, u, rec, pairs); err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// createUser runs scriptUserCreate for u (its record rec) with the
// events to append (pairs from eventsArgs). It returns the script's reply
// for eventsResult: no ids when the create was a re-send of one that
// already happened.
func (s *Store) createUser(ctx context.Context, ws string, u storage.User, rec string, pairs []any) ([]any, error) {
	res, err := scriptUserCreate.Run(ctx, s.rdb, append(s.userKeys(ws), s.eventKeys(ws)...),
		append(eventArgs(pairs), userArgs(u, rec)...)...).Slice()
	if err != nil {
		return nil, s.wrap(err)
	}
	return res, nil
}

// queryArgs builds scriptUserQuery's KEYS and ARGV: mode, its one or two
// values, the workspace prefix and whether to read group references.
func (s *Store) queryArgs(ws string, groups bool, mode string, args ...any) ([]string, []any) {
	p := s.wsPrefix(ws)
	var index string
	switch mode {
	case "un":
		index = p + "ix:un"
	case "ext":
		index = p + "ix:uxz"
	case "acct":
		index = p + "ix:ua"
	case "email":
		index = p + "ix:ue"
	case "name":
		index = p + "ix:udn"
	default: // id, list: no index of their own
		index = p + "ix:uo"
	}
	argv := make([]any, 0, 5)
	argv = append(append(argv, mode), args...)
	for len(argv) < 3 {
		argv = append(argv, "")
	}
	g := "0"
	if groups {
		g = "1"
	}
	return []string{p + "users", index, p + "ix:uo", p + "ix:ug"}, append(argv, p, g)
}

// queryUsers runs the read-only user query script and decodes the result:
// the users in creation order (name mode: in the script's name order), the total (list mode) and, with groups, each
// found user's group references from the same script run.
func (s *Store) queryUsers(ctx context.Context, ws string, groups bool, mode string, args ...any) ([]storage.User, int, map[string][]storage.GroupRef, error) {
	if !validWS(ws) {
		return []storage.User{}, 0, map[string][]storage.GroupRef{}, nil
	}
	stride := 2
	var refs map[string][]storage.GroupRef
	if groups {
		stride = 3
		refs = map[string][]storage.GroupRef{}
	}
	keys, argv := s.queryArgs(ws, groups, mode, args...)
	res, err := scriptUserQuery.Run(ctx, s.rdb, keys, argv...).Slice()
	if err != nil {
		return nil, 0, nil, s.wrap(err)
	}
	total, _ := res[0].(int64)
	if total < 0 {
		return nil, 0, nil, storage.ErrNotIndexed
	}
	type seqUser struct {
		seq float64
		u   storage.User
	}
	list := make([]seqUser, 0, (len(res)-1)/stride)
	for i := 1; i+stride-1 < len(res); i += stride {
		rec, _ := res[i].(string)
		seqStr, _ := res[i+1].(string)
		u, err := decodeUser(ws, rec)
		if err != nil {
			return nil, 0, nil, err
		}
		seq, _ := strconv.ParseFloat(seqStr, 64)
		list = append(list, seqUser{seq, u})
		if groups {
			refs[u.ID] = decodeGroupsOf(res[i+2], nil)
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	out := make([]storage.User, len(list))
	for i, x := range list {
		out[i] = x.u
	}
	return out, int(total), refs, nil
}

// GetUser reads one membership.
func (s *Store) GetUser(ctx context.Context, ws, id string) (storage.User, error) {
	return s.oneUser(ctx, ws, storage.UserByID, id)
}

// GetUserByAccount reads the account's membership in ws via the account
// index.
func (s *Store) GetUserByAccount(ctx context.Context, ws, accountID string) (storage.User, error) {
	return s.oneUser(ctx, ws, userByAccount, accountID)
}

// userByAccount is the account index, for GetUserByAccount.
const userByAccount storage.UserIndex = "account"

// oneUser is the user an index that finds at most one names.
func (s *Store) oneUser(ctx context.Context, ws string, by storage.UserIndex, value string) (storage.User, error) {
	found, err := s.FindUsers(ctx, ws, by, value, storage.FindOptions{})
	if err != nil {
		return storage.User{}, err
	}
	if len(found.Users) == 0 {
		return storage.User{}, storage.ErrNotFound
	}
	return found.Users[0], nil
}

// FindUsers is an index hit on id, userName, externalId, email or the
// start of a name, with the found users' group references read by the
// same script when asked (one round trip either way). A name search asks
// for one entry more than it returns, to tell whether there are more.
func (s *Store) FindUsers(ctx context.Context, ws string, by storage.UserIndex, value string, opts storage.FindOptions) (storage.UsersFound, error) {
	var mode string
	switch by {
	case storage.UserByID:
		mode = "id"
		if !validID(value) {
			value = ""
		}
	case storage.UserByUserName:
		mode, value = "un", storage.FoldKey(value)
	case storage.UserByExternalID:
		mode = "ext"
	case storage.UserByEmail:
		mode, value = "email", storage.FoldKey(value)
	case storage.UserByName:
		mode, value = "name", storage.FoldKey(value)
	case userByAccount:
		mode = "acct"
	default:
		return storage.UsersFound{}, fmt.Errorf("redisstore: user index %q unknown", by)
	}
	found := storage.UsersFound{Users: []storage.User{}}
	if opts.Groups {
		found.Groups = map[string][]storage.GroupRef{}
	}
	if value == "" || strings.Contains(value, "\x00") {
		return found, nil
	}
	args := []any{value}
	if mode == "name" {
		args = append(args, storage.NameSearchLimit+1)
	}
	us, _, refs, err := s.queryUsers(ctx, ws, opts.Groups, mode, args...)
	if err != nil {
		return storage.UsersFound{}, err
	}
	if opts.Groups {
		found.Groups = refs
	}
	if mode == "name" && len(us) > storage.NameSearchLimit {
		for _, u := range us[storage.NameSearchLimit:] {
			delete(found.Groups, u.ID)
		}
		us, found.More = us[:storage.NameSearchLimit], true
	}
	if mode != "email" {
		found.Users = us
		return found, nil
	}
	// The email query also returns the user whose userName equals the
	// value (its email is not in the email index); keep it only when the
	// value is one of its emails.
	for _, u := range us {
		if slices.Contains(emailKeys(u.Emails), value) {
			found.Users = append(found.Users, u)
		} else if opts.Groups {
			delete(found.Groups, u.ID)
		}
	}
	return found, nil
}

// ListUsers pages through the ordered index (ZRANGE by rank).
func (s *Store) ListUsers(ctx context.Context, ws string, offset, limit int) ([]storage.User, int, error) {
	if offset < 0 {
		offset = 0
	}
	if limit < 0 {
		limit = 0
	}
	us, total, _, err := s.queryUsers(ctx, ws, false, "list", offset, limit)
	return us, total, err
}

// UpdateUser reads the record and the workspace's settings (one round
// trip) and, where the workspace has group rules, the user's groups; calls
// fn on a copy; decides the roles fn left to it (userRoles); and writes
// with a Lua compare-and-set on the exact stored record, and on the groups
// read, that also moves the changed index entries and re-checks
// uniqueness. When another writer got there first the loop starts again,
// so fn may run more than once.
func (s *Store) UpdateUser(ctx context.Context, ws, id string, ifVersion int64, fn func(*storage.User) error) (storage.User, error) {
	if !validWS(ws) || !validID(id) {
		return storage.User{}, storage.ErrNotFound
	}
	for i := 0; i < maxRetries; i++ {
		if err := backoff(ctx, i); err != nil {
			return storage.User{}, err
		}
		var recCmd *redis.StringCmd
		var metaCmd *redis.StringCmd
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			recCmd = p.HGet(ctx, s.wsKey(ws, "users"), id)
			metaCmd = p.Get(ctx, s.wsKey(ws, "meta"))
			return nil
		})
		oldRec, err := recCmd.Result()
		if err != nil {
			return storage.User{}, s.wrap(err)
		}
		old, err := decodeUser(ws, oldRec)
		if err != nil {
			return storage.User{}, err
		}
		if ifVersion != 0 && old.Version != ifVersion {
			return storage.User{}, storage.ErrPreconditionFailed
		}
		r, err := s.readUserRoles(ctx, ws, id, metaCmd)
		if err != nil {
			return storage.User{}, err
		}
		u := cloneUser(old)
		if err := fn(&u); err != nil {
			return storage.User{}, err
		}
		u.ID, u.WorkspaceID, u.AccountID, u.Created = old.ID, ws, old.AccountID, old.Created
		if u.Op == old.Op {
			// fn did not name this write: name it, so that its record can
			// never equal another writer's (the script takes a stored
			// record equal to the new one for this write, re-sent).
			u.Op = storage.NewID()
		}
		u.Version = old.Version + 1
		u.Modified = now()
		groupsChecked := r.decide(&u)
		sameExplicit(&u)
		rec, err := encodeUser(u)
		if err != nil {
			return storage.User{}, err
		}
		oldEmails, newEmails := emailIndexKeys(old.UserName, old.Emails), emailIndexKeys(u.UserName, u.Emails)
		prefix := ""
		if groupsChecked {
			prefix = s.wsPrefix(ws)
		}
		args := []any{id, oldRec, rec, storage.FoldKey(old.UserName), storage.FoldKey(u.UserName),
			old.ExternalID, u.ExternalID, prefix, r.seen, facetArg(old), facetArg(u), nameKey(old), nameKey(u), len(oldEmails)}
		for _, e := range oldEmails {
			args = append(args, e)
		}
		for _, e := range newEmails {
			args = append(args, e)
		}
		err = s.wrap(scriptUserCAS.Run(ctx, s.rdb, s.userKeys(ws), args...).Err())
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return storage.User{}, err
		}
		return u, nil
	}
	return storage.User{}, storage.ErrConflictRetries
}

// userRoles is what UpdateUser decides a user's roles from: the
// workspace's settings and, where it has group rules, the user's SCIM
// groups as read (seen: what the compare-and-set checks).
type userRoles struct {
	settings storage.Settings
	rules    bool
	groups   []storage.GroupRef
	seen     string
}

// readUserRoles decodes the workspace record meta (read with the user's
// record) and, where the workspace has group rules, reads the user's
// groups.
func (s *Store) readUserRoles(ctx context.Context, ws, id string, meta *redis.StringCmd) (userRoles, error) {
	rec, err := meta.Result()
	if err != nil {
		return userRoles{}, s.wrap(err)
	}
	w, err := decodeWorkspaceCached(rec)
	if err != nil {
		return userRoles{}, err
	}
	r := userRoles{settings: w.Settings, rules: len(w.Settings.Roles.GroupRules) > 0}
	if !r.rules {
		return r, nil
	}
	res, err := scriptUserGroups.Run(ctx, s.rdb, []string{s.wsKey(ws, "ix:ug")}, s.wsPrefix(ws), id).Slice()
	if err != nil {
		return userRoles{}, s.wrap(err)
	}
	if len(res) > 0 {
		r.groups = decodeGroupsOf(res[0], &r.seen)
	}
	return r, nil
}

// decide sets the roles of a user whose write left them to the store
// (storage.Store.UpdateUser: ExplicitRoles set, Roles zero) to
// Settings.MemberRoles of its explicit values and its groups as read. It
// reports whether the roles depend on those groups, so that the
// compare-and-set must check them.
func (r userRoles) decide(u *storage.User) bool {
	if u.ExplicitRoles == nil || u.Roles != (storage.Roles{}) {
		return false
	}
	u.Roles = r.settings.MemberRoles(*u.ExplicitRoles, storage.SCIMGroupNames(r.groups)).Roles
	return r.rules
}

// cloneUser deep-copies the slices and maps fn may mutate, so that a retry
// starts from a clean record.
func cloneUser(u storage.User) storage.User {
	c := u
	c.Emails = append([]string(nil), u.Emails...)
	if u.ExplicitRoles != nil {
		e := *u.ExplicitRoles
		c.ExplicitRoles = &e
	}
	if u.Attributes != nil {
		b, _ := json.Marshal(u.Attributes)
		c.Attributes = map[string]any{}
		_ = json.Unmarshal(b, &c.Attributes)
	}
	return c
}

// DeleteUser removes the record, its index entries and its group
// memberships in one compare-and-set script, then the workspace from the
// account's back-pointer field (re-added if a new membership raced in).
func (s *Store) DeleteUser(ctx context.Context, ws, id string, ifVersion int64) error {
	if !validWS(ws) || !validID(id) {
		return storage.ErrNotFound
	}
	for i := 0; i < maxRetries; i++ {
		if err := backoff(ctx, i); err != nil {
			return err
		}
		oldRec, err := s.rdb.HGet(ctx, s.wsKey(ws, "users"), id).Result()
		if err != nil {
			return s.wrap(err)
		}
		old, err := decodeUser(ws, oldRec)
		if err != nil {
			return err
		}
		// The delete script runs only if the record is still byte-identical
		// to oldRec, so this check and the delete are one atomic step.
		if ifVersion != 0 && old.Version != ifVersion {
			return storage.ErrPreconditionFailed
		}
		args := []any{s.wsPrefix(ws), id, oldRec, storage.FoldKey(old.UserName), old.ExternalID, old.AccountID,
			toMicro(now()), facetArg(old), nameKey(old)}
		for _, e := range emailIndexKeys(old.UserName, old.Emails) {
			args = append(args, e)
		}
		err = s.wrap(scriptUserDelete.Run(ctx, s.rdb, s.userKeys(ws), args...).Err())
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return err
		}
		if old.AccountID != "" {
			if err := s.rdb.HDel(ctx, s.acctKey(old.AccountID, "a"), acctWSPrefix+ws).Err(); err != nil {
				return s.wrap(err)
			}
			// A membership created for the same account after our script
			// ran has already written its back-pointer; put it back.
			again, err := s.rdb.HExists(ctx, s.wsKey(ws, "ix:ua"), old.AccountID).Result()
			if err != nil {
				return s.wrap(err)
			}
			if again {
				if err := s.rdb.HSet(ctx, s.acctKey(old.AccountID, "a"), acctWSPrefix+ws, "1").Err(); err != nil {
					return s.wrap(err)
				}
			}
		}
		return nil
	}
	return storage.ErrConflictRetries
}
