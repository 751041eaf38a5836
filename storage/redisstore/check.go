package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// CheckOptions selects what Store.Check walks and whether it repairs.
type CheckOptions struct {
	// Workspace limits the walk to one workspace; "" walks every
	// workspace and the global records (workspace registry, email index,
	// accounts).
	Workspace string
	// Fix repairs what is safe to repair; otherwise nothing is written.
	Fix bool
	// Grace: account records younger than this that look unfinished are
	// left alone, since a create may still be in flight (0 means
	// DefaultCheckGrace).
	Grace time.Duration
	// Logger receives progress at info level (nil: none). It never
	// receives personal data: counts and ids only.
	Logger *slog.Logger
}

// Problem is one inconsistency Check found.
type Problem struct {
	// Kind is a stable identifier (the Kind* constants; docs/storage.md
	// explains each).
	Kind string `json:"kind"`
	// Key and Field locate it: the Redis key and the hash field, set or
	// sorted-set member ("" for a whole key).
	Key   string `json:"key"`
	Field string `json:"field,omitempty"`
	// Detail says what is wrong and what a fix does, in words, with ids
	// only (no emails, names or tokens).
	Detail string `json:"detail"`
	// Fixed tells whether Check repaired it.
	Fixed bool `json:"fixed"`
}

// CheckReport is what Check walked and found.
type CheckReport struct {
	Workspaces int       `json:"workspaces"`
	Users      int       `json:"users"`
	Groups     int       `json:"groups"`
	Accounts   int       `json:"accounts"`
	Problems   []Problem `json:"problems"`
}

// Left counts the problems that were not fixed.
func (r CheckReport) Left() int {
	n := 0
	for _, p := range r.Problems {
		if !p.Fixed {
			n++
		}
	}
	return n
}

// Problem kinds. Every kind not listed as report-only is repaired by Fix.
const (
	// KindUserIndexDangling: an entry of a user index (ix:un, ix:uxz,
	// ix:ua, ix:ue, ix:udn, ix:uo, the member filter indexes
	// ix:uf:<facet>) names a user that has no record. Fix removes the
	// entry.
	KindUserIndexDangling = "user-index-dangling"
	// KindUserIndexStale: an entry of a user index names a user whose
	// record says something else (another userName, externalId, account,
	// email, name or filter value; or, in a member filter index, another
	// position than the user's creation), or is malformed. Fix removes the
	// entry (and adds it at the right position).
	KindUserIndexStale = "user-index-stale"
	// KindUserIndexMissing: a user record is missing from one of its
	// indexes. Fix adds the entry.
	KindUserIndexMissing = "user-index-missing"
	// KindFilterIndexUnbuilt: the workspace lacks the marker that its
	// member filter indexes (ix:uf:<facet>) are complete: its members were
	// written by an earlier version, and member filters refuse to answer
	// (storage.ErrNotIndexed). Fix builds the entries (the record walk
	// adds every missing one) and sets the marker.
	KindFilterIndexUnbuilt = "filter-index-unbuilt"
	// KindNameIndexUnbuilt: the workspace's marker says its member filter
	// indexes are complete but not its name index (ix:udn): it was marked
	// by a version without one, and name searches refuse to answer
	// (storage.ErrNotIndexed). Fix builds the entries (the record walk
	// adds every missing one) and updates the marker.
	KindNameIndexUnbuilt = "name-index-unbuilt"
	// KindUserUniqueConflict: two users of a workspace claim one userName,
	// or one account. Report-only.
	KindUserUniqueConflict = "user-unique-conflict"
	// KindUserRecordInvalid: a user record cannot be decoded, or its id is
	// not the one it is stored under. Report-only.
	KindUserRecordInvalid = "user-record-invalid"
	// KindUserAccountMissing: a membership belongs to an account that has
	// no record, and no email of the membership is indexed to that
	// account (when one is, the problem is KindEmailIndexDangling).
	// Report-only.
	KindUserAccountMissing = "user-account-missing"
	// KindIndexKeyNotFolded: a userName or email index key (ix:un, ix:ue,
	// the email index) is not in the folded form lookups use (written
	// before Unicode folding). Fix moves the entry to the folded key.
	KindIndexKeyNotFolded = "index-key-not-folded"
	// KindAccountBackPointerMissing: a membership's account lacks the
	// w:<workspace> field. Fix adds it.
	KindAccountBackPointerMissing = "account-backpointer-missing"
	// KindAccountBackPointerStale: an account's w:<workspace> field has no
	// membership behind it. Fix removes it.
	KindAccountBackPointerStale = "account-backpointer-stale"
	// KindSequenceBehind: a creation counter (seq:u, seq:g) is below the
	// highest position in its order index, so new records would sort
	// before old ones. Fix raises it.
	KindSequenceBehind = "sequence-behind"
	// KindLegacyIndex: a unique externalId index of an earlier version
	// (ix:ux, ix:gx), no longer read or written. Fix deletes it (after
	// the record walk has indexed every externalId in ix:uxz / ix:gxz).
	KindLegacyIndex = "legacy-index"
	// KindGroupRecordInvalid: a group hash has an unknown version or
	// another id. Report-only.
	KindGroupRecordInvalid = "group-record-invalid"
	// KindGroupIndexDangling: an entry of a group index (ix:gn, ix:gxz,
	// ix:go) names a group that does not exist. Fix removes it.
	KindGroupIndexDangling = "group-index-dangling"
	// KindGroupIndexStale: an entry of a group index names a group whose
	// displayName or externalId is another. Fix removes it.
	KindGroupIndexStale = "group-index-stale"
	// KindGroupIndexMissing: a group is missing from one of its indexes.
	// Fix adds the entry.
	KindGroupIndexMissing = "group-index-missing"
	// KindGroupUniqueConflict: two groups of a workspace claim one
	// displayName. Report-only.
	KindGroupUniqueConflict = "group-unique-conflict"
	// KindGroupMemberDangling: a group's member set names a user that has
	// no record. Fix removes the member (and bumps the group's version).
	KindGroupMemberDangling = "group-member-dangling"
	// KindGroupMemberIndexMissing: a member of a group is missing from the
	// reverse index ix:ug. Fix adds the entry.
	KindGroupMemberIndexMissing = "group-member-index-missing"
	// KindGroupMemberIndexStale: an ix:ug entry whose group, user or
	// member-set entry does not exist. Fix removes it.
	KindGroupMemberIndexStale = "group-member-index-stale"
	// KindGroupMembersOrphan: a member set of a group that does not
	// exist. Fix deletes the set.
	KindGroupMembersOrphan = "group-members-orphan"
	// KindWorkspaceUnregistered: a workspace that exists but is missing
	// from the registry (not listed). Fix adds it.
	KindWorkspaceUnregistered = "workspace-unregistered"
	// KindWorkspaceRegistryDangling: a registry entry of a workspace that
	// does not exist. Fix removes it.
	KindWorkspaceRegistryDangling = "workspace-registry-dangling"
	// KindDomainIndexMissing: a workspace's login.emailDomains lists a
	// domain that the email-domain index lacks (the home page does not
	// find the workspace by it). Fix adds it.
	KindDomainIndexMissing = "domain-index-missing"
	// KindDomainIndexStale: an email-domain index entry whose workspace
	// does not exist or no longer lists the domain (readers ignore it).
	// Fix removes it.
	KindDomainIndexStale = "domain-index-stale"
	// KindEmailIndexDangling: the email index names an account that has
	// no record. Fix rebuilds the record from the account's memberships,
	// or removes the entry when it has none.
	KindEmailIndexDangling = "email-index-dangling"
	// KindEmailIndexWrongAccount: the email index names an account whose
	// email is another. Report-only.
	KindEmailIndexWrongAccount = "email-index-wrong-account"
	// KindAccountUnpublished: an account record that the email index does
	// not name and that has no membership, older than the grace period:
	// the leftover of a crash or of a lost race. Fix deletes it.
	KindAccountUnpublished = "account-unpublished"
	// KindAccountUnindexed: an account record with memberships whose email
	// has no index entry. Fix publishes it in the email index.
	KindAccountUnindexed = "account-unindexed"
	// KindAccountEmailConflict: an account with memberships whose email is
	// indexed to another account. Report-only.
	KindAccountEmailConflict = "account-email-conflict"
	// KindAccountRecordInvalid: an account record with an unknown version
	// or no email. Report-only.
	KindAccountRecordInvalid = "account-record-invalid"
)

// DefaultCheckGrace is CheckOptions.Grace's default: far longer than any
// request takes (a create in flight finishes or fails within seconds).
const DefaultCheckGrace = 10 * time.Minute

// checkBatch is how many entries one SCAN, HSCAN, SSCAN or ZSCAN step asks
// for, and so about how many records Check reads in one pipeline.
const checkBatch = 500

// checkProgressEvery is how many walked entries separate two progress log
// lines.
const checkProgressEvery = 100_000

// Index descriptions for details, by key name.
var indexDesc = map[string]string{
	"ix:un": "userName index", "ix:uxz": "externalId index", "ix:ua": "account index",
	"ix:ue": "email index", "ix:udn": "name index", "ix:uo": "user order index", "ix:gn": "displayName index",
	"ix:gxz": "group externalId index", "ix:go": "group order index", "ix:ug": "group membership index",
}

// Check walks the records and indexes of one workspace, or of every
// workspace and the global records (the workspace registry, the email
// index, the accounts), and reports every inconsistency between them
// (docs/storage.md, "Checking and repairing"). With Fix it also repairs
// what is safe to repair on a live server: every repair is a small Lua
// script in one hash slot that re-checks the exact condition it acts on,
// so a concurrent request is never undone; what needs a person is only
// reported. A problem is reported only once such a script (run without
// writing when not fixing) has confirmed it, so a record that changes
// while the walk reads it is not reported. Big hashes and sets are read
// in batches (SCAN, HSCAN, SSCAN, ZSCAN). The report holds what was found
// before an error.
func (s *Store) Check(ctx context.Context, o CheckOptions) (CheckReport, error) {
	if o.Grace <= 0 {
		o.Grace = DefaultCheckGrace
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &checker{s: s, o: o, log: log, now: time.Now(), seen: map[string]bool{}, handled: map[string]bool{},
		unindexed: map[string]bool{}}
	c.rep.Problems = []Problem{}
	err := c.check(ctx)
	log.Info("check: done", "workspaces", c.rep.Workspaces, "users", c.rep.Users, "groups", c.rep.Groups,
		"accounts", c.rep.Accounts, "problems", len(c.rep.Problems), "left", c.rep.Left())
	return c.rep, err
}

// checker is one run of Check.
type checker struct {
	s   *Store
	o   CheckOptions
	log *slog.Logger
	now time.Time
	rep CheckReport
	// seen holds the problems reported (kind, key, field), so that one
	// found by two walks is reported once.
	seen map[string]bool
	// handled holds the accounts whose missing record was dealt with.
	handled map[string]bool
	// unindexed holds "<workspace>\x00<account>" for the memberships
	// found missing from their account index and not added (without
	// Fix): their back-pointers are not stale.
	unindexed map[string]bool
	// wsIDs is every workspace id, for finding an account's memberships.
	wsIDs  []string
	walked int
}

func (c *checker) check(ctx context.Context) error {
	if ws := c.o.Workspace; ws != "" {
		if !validWS(ws) {
			return fmt.Errorf("redisstore: invalid workspace id %q", ws)
		}
		n, err := c.s.rdb.Exists(ctx, c.s.wsKey(ws, "meta")).Result()
		if err != nil {
			return c.s.wrap(err)
		}
		if n == 0 {
			return fmt.Errorf("redisstore: workspace %q: %w", ws, storage.ErrNotFound)
		}
		_, groups, err := c.scanWorkspaceKeys(ctx, ws)
		if err != nil {
			return err
		}
		return c.checkWorkspace(ctx, ws, groups[ws])
	}
	metas, groups, err := c.scanWorkspaceKeys(ctx, "")
	if err != nil {
		return err
	}
	c.wsIDs = slices.Sorted(maps.Keys(metas))
	if err := c.checkRegistry(ctx, metas); err != nil {
		return err
	}
	if err := c.checkDomainIndex(ctx); err != nil {
		return err
	}
	for _, ws := range c.wsIDs {
		if err := c.checkWorkspace(ctx, ws, groups[ws]); err != nil {
			return err
		}
	}
	if err := c.checkEmailIndex(ctx); err != nil {
		return err
	}
	return c.checkAccounts(ctx)
}

// add records a problem once.
func (c *checker) add(p Problem) {
	k := p.Kind + "\x00" + p.Key + "\x00" + p.Field
	if c.seen[k] {
		return
	}
	c.seen[k] = true
	c.rep.Problems = append(c.rep.Problems, p)
}

// found records a problem that a check script confirmed: fixed when Check
// repairs.
func (c *checker) found(kind, key, field, detail string) {
	c.add(Problem{Kind: kind, Key: key, Field: field, Detail: detail, Fixed: c.o.Fix})
}

// needsPerson records a problem Check never repairs.
func (c *checker) needsPerson(kind, key, field, detail string) {
	c.add(Problem{Kind: kind, Key: key, Field: field, Detail: detail})
}

// tick counts n walked entries and logs progress now and then.
func (c *checker) tick(n int) {
	before := c.walked / checkProgressEvery
	c.walked += n
	if c.walked/checkProgressEvery != before {
		c.log.Info("check: progress", "entries", c.walked, "problems", len(c.rep.Problems))
	}
}

func (c *checker) fixArg() string {
	if c.o.Fix {
		return "1"
	}
	return "0"
}

// Walking.

// scanEach runs a SCAN-family command from cursor 0 to the end and calls
// fn with each non-empty batch. Entries may come twice (Redis guarantees
// every entry at least once); the check scripts make a second look
// harmless.
func (c *checker) scanEach(ctx context.Context, step func(cursor uint64) *redis.ScanCmd, fn func([]string) error) error {
	var cursor uint64
	for {
		batch, next, err := step(cursor).Result()
		if err != nil {
			return c.s.wrap(err)
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// scanKeys calls fn with the keys matching pattern, on every master of a
// Cluster.
func (c *checker) scanKeys(ctx context.Context, pattern string, fn func([]string) error) error {
	nodes := []redis.Cmdable{c.s.rdb}
	if cc, ok := c.s.rdb.(*redis.ClusterClient); ok {
		nodes = nil
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			nodes = append(nodes, n)
			return nil
		})
		if err != nil {
			return c.s.wrap(err)
		}
	}
	for _, n := range nodes {
		if err := c.scanEach(ctx, func(cur uint64) *redis.ScanCmd { return n.Scan(ctx, cur, pattern, checkBatch) }, fn); err != nil {
			return err
		}
	}
	return nil
}

// globEscape escapes the characters SCAN's MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scanWorkspaceKeys finds the workspaces that exist (ws "") and the group
// ids that have a hash or a member set, per workspace.
func (c *checker) scanWorkspaceKeys(ctx context.Context, ws string) (map[string]bool, map[string]map[string]bool, error) {
	head := c.s.prefix + ":{ws:"
	pattern := globEscape(head) + "*"
	if ws != "" {
		pattern = globEscape(c.s.wsPrefix(ws)) + "g*"
	}
	metas := map[string]bool{}
	groups := map[string]map[string]bool{}
	err := c.scanKeys(ctx, pattern, func(keys []string) error {
		for _, k := range keys {
			id, rest, ok := strings.Cut(strings.TrimPrefix(k, head), "}:")
			if !ok || !validWS(id) {
				continue
			}
			var gid string
			switch {
			case rest == "meta":
				metas[id] = true
				continue
			case strings.HasPrefix(rest, "g:"):
				gid = rest[2:]
			case strings.HasPrefix(rest, "gm:"):
				gid = rest[3:]
			default:
				continue
			}
			if groups[id] == nil {
				groups[id] = map[string]bool{}
			}
			groups[id][gid] = true
		}
		c.tick(len(keys))
		return nil
	})
	return metas, groups, err
}

// pipe runs fn's commands in one pipeline; a command's redis.Nil is not an
// error (each command's result is read by the caller).
func (c *checker) pipe(ctx context.Context, fn func(p redis.Pipeliner)) error {
	_, err := c.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fn(p)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return c.s.wrap(err)
	}
	return nil
}

// run runs a check script and returns its code and, for a table reply,
// the id it names.
func (c *checker) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) (int64, string, error) {
	v, err := sc.Run(ctx, c.s.rdb, keys, args...).Result()
	if err != nil {
		return 0, "", c.s.wrap(err)
	}
	switch x := v.(type) {
	case int64:
		return x, "", nil
	case []any:
		if len(x) == 2 {
			code, _ := x[0].(int64)
			other, _ := x[1].(string)
			return code, other, nil
		}
	}
	return 0, "", fmt.Errorf("redisstore: unexpected check script reply %T", v)
}

// Check scripts. Each touches the keys of one hash tag, re-checks the
// exact condition it acts on, and writes only when its fix argument is
// "1", so the same script confirms a problem before it is reported and
// repairs it.

// luaRecordHolds is the condition on the record an index entry belongs
// to: KEYS[2] is its hash; mode "missing" (field absent), "nokey" (the
// hash does not exist), "equals" (field holds value) or "any".
const luaRecordHolds = `local function recordHolds(key, field, mode, value)
  if mode == 'missing' then return redis.call('HEXISTS', key, field) == 0 end
  if mode == 'nokey' then return redis.call('EXISTS', key) == 0 end
  if mode == 'equals' then return redis.call('HGET', key, field) == value end
  return true
end
`

// scriptCheckDel: KEYS = index, record hash; ARGV = type (hash: field ->
// id; zset: member), member, id, record field, mode, value, fix. Removes
// the entry when it is still there (naming id) and the record condition
// holds. Returns 1 when both held.
var scriptCheckDel = redis.NewScript(luaRecordHolds + `
local index, rk = KEYS[1], KEYS[2]
local typ, member, id, rf, mode, rv, fix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7] == '1'
local present
if typ == 'hash' then present = redis.call('HGET', index, member) == id
else present = redis.call('ZSCORE', index, member) ~= false end
if not present or not recordHolds(rk, rf, mode, rv) then return 0 end
if fix then
  if typ == 'hash' then redis.call('HDEL', index, member) else redis.call('ZREM', index, member) end
end
return 1
`)

// scriptCheckAdd: KEYS = index, record hash, sequence counter; ARGV =
// type (hash, zset, order), member, value (hash: the id the field must
// name; order: the score, "" for the next sequence number), record
// field, record value, fix, old member ("" for none). When the record
// field still holds the value and the entry is missing, it adds the
// entry and removes the old one (the same entry under an earlier key
// form) if that is there. Returns {0, ""} when nothing is missing, {1,
// ""} for a missing entry, {3, ""} for one found under the old key, and
// {2, other} when a unique field names another id.
var scriptCheckAdd = redis.NewScript(`
local index, rk, seq = KEYS[1], KEYS[2], KEYS[3]
local typ, member, value, rf, rv, fix, old = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6] == '1', ARGV[7]
if redis.call('HGET', rk, rf) ~= rv then return {0, ''} end
local moved = false
if typ == 'hash' then
  local cur = redis.call('HGET', index, member)
  if cur == value then return {0, ''} end
  if cur then return {2, cur} end
  moved = old ~= '' and redis.call('HGET', index, old) == value
  if fix then
    redis.call('HSET', index, member, value)
    if moved then redis.call('HDEL', index, old) end
  end
else
  if redis.call('ZSCORE', index, member) then return {0, ''} end
  moved = old ~= '' and redis.call('ZSCORE', index, old) ~= false
  if fix then
    if typ == 'order' then
      local score = value
      if score == '' then score = redis.call('INCR', seq) end
      redis.call('ZADD', index, score, member)
    else
      redis.call('ZADD', index, 0, member)
    end
    if moved then redis.call('ZREM', index, old) end
  end
end
if moved then return {3, ''} end
return {1, ''}
`)

// scriptCheckMember: KEYS = member set, ix:ug, users, group hash; ARGV =
// op, user id, group id, now (µs), fix. Ops: "dangling" (the set names a
// user without record: remove it, bump the group's version), "reverse"
// (a member missing from ix:ug: add it), "stale" (an ix:ug entry whose
// set entry, user or group is gone: remove it), "orphan" (a member set
// without its group: delete it). Returns 1 when the condition held.
var scriptCheckMember = redis.NewScript(`
local gm, ug, users, g = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, uid, gid, now, fix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1'
local m = uid .. string.char(0) .. gid
if op == 'dangling' then
  if redis.call('SISMEMBER', gm, uid) == 0 or redis.call('HEXISTS', users, uid) == 1 then return 0 end
  if fix then
    redis.call('SREM', gm, uid)
    redis.call('ZREM', ug, m)
    if redis.call('EXISTS', g) == 1 then
      redis.call('HINCRBY', g, 'ver', 1)
      redis.call('HSET', g, 'm', now)
    end
  end
elseif op == 'reverse' then
  if redis.call('SISMEMBER', gm, uid) == 0 or redis.call('HEXISTS', users, uid) == 0 or
    redis.call('EXISTS', g) == 0 or redis.call('ZSCORE', ug, m) then return 0 end
  if fix then redis.call('ZADD', ug, 0, m) end
elseif op == 'stale' then
  if not redis.call('ZSCORE', ug, m) then return 0 end
  if redis.call('SISMEMBER', gm, uid) == 1 and redis.call('HEXISTS', users, uid) == 1 and
    redis.call('EXISTS', g) == 1 then return 0 end
  if fix then redis.call('ZREM', ug, m) end
elseif op == 'orphan' then
  if redis.call('EXISTS', g) == 1 or redis.call('EXISTS', gm) == 0 then return 0 end
  if fix then redis.call('DEL', gm) end
else
  return redis.error_reply('unknown op')
end
return 1
`)

// scriptCheckSeq: KEYS = counter, order index; ARGV = fix. Raises the
// counter to the highest score of the index when it is below. Returns 1
// when it was.
var scriptCheckSeq = redis.NewScript(`
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #top == 0 then return 0 end
local max = tonumber(top[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if cur >= max then return 0 end
if ARGV[1] == '1' then redis.call('SET', KEYS[1], string.format('%d', max)) end
return 1
`)

// scriptCheckAccount: KEYS = account hash; ARGV = op, fix, then per op:
// "bp-add" field (the record exists and lacks the back-pointer: add it),
// "bp-del" field (the back-pointer exists: remove it), "rebuild" email,
// name, source, origin, created, back-pointer fields... (no record:
// write it), "drop" email, created, ignored fields... (the record is
// still this one and has no back-pointer other than the ignored ones:
// delete it). Returns 1 when the condition held.
var scriptCheckAccount = redis.NewScript(`
local key, op, fix = KEYS[1], ARGV[1], ARGV[2] == '1'
if op == 'bp-add' then
  if redis.call('HEXISTS', key, 'v') == 0 or redis.call('HEXISTS', key, ARGV[3]) == 1 then return 0 end
  if fix then redis.call('HSET', key, ARGV[3], '1') end
elseif op == 'bp-del' then
  if redis.call('HEXISTS', key, ARGV[3]) == 0 then return 0 end
  if fix then redis.call('HDEL', key, ARGV[3]) end
elseif op == 'rebuild' then
  if redis.call('HEXISTS', key, 'v') == 1 then return 0 end
  if fix then
    redis.call('HSET', key, 'v', '1', 'e', ARGV[3], 'n', ARGV[4], 's', ARGV[5], 'o', ARGV[6], 'c', ARGV[7])
    for i = 8, #ARGV do redis.call('HSET', key, ARGV[i], '1') end
  end
elseif op == 'drop' then
  local v, e, c = unpack(redis.call('HMGET', key, 'v', 'e', 'c'))
  if v ~= '1' or e ~= ARGV[3] or c ~= ARGV[4] then return 0 end
  local ignored = {}
  for i = 5, #ARGV do ignored[ARGV[i]] = true end
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == 'w:' and not ignored[f] then return 0 end
  end
  if fix then redis.call('DEL', key) end
else
  return redis.error_reply('unknown op')
end
return 1
`)

// scriptCheckEmail: KEYS = email index; ARGV = op, field, account id,
// fix, new field. Ops: "del" (the field still names the account: remove
// it), "publish" (the field is free: name the account), "move" (the
// field names the account and the new field is free or names it too:
// move it). Returns {0, ""} when the condition no longer held, {1, ""}
// when it did, {2, other} when the field to write names another account.
var scriptCheckEmail = redis.NewScript(`
local index, op, field, id, fix, new = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
if op == 'del' then
  if redis.call('HGET', index, field) ~= id then return {0, ''} end
  if fix then redis.call('HDEL', index, field) end
elseif op == 'publish' then
  local cur = redis.call('HGET', index, field)
  if cur == id then return {0, ''} end
  if cur then return {2, cur} end
  if fix then redis.call('HSET', index, field, id) end
elseif op == 'move' then
  if redis.call('HGET', index, field) ~= id then return {0, ''} end
  local cur = redis.call('HGET', index, new)
  if cur and cur ~= id then return {2, cur} end
  if fix then
    redis.call('HSET', index, new, id)
    redis.call('HDEL', index, field)
  end
else
  return redis.error_reply('unknown op')
end
return {1, ''}
`)

// recCond is the state of the record an index entry belongs to that a
// check script requires (luaRecordHolds).
type recCond struct{ key, field, mode, value string }

// delEntry removes (when fixing) the index entry member (naming id) if it
// is still there and cond still holds; it reports whether they did.
func (c *checker) delEntry(ctx context.Context, index, typ, member, id string, cond recCond) (bool, error) {
	if typ == "order" {
		typ = "zset"
	}
	code, _, err := c.run(ctx, scriptCheckDel, []string{index, cond.key},
		typ, member, id, cond.field, cond.mode, cond.value, c.fixArg())
	return code == 1, err
}

// Workspaces.

// checkRegistry compares the registry with the workspaces that exist.
func (c *checker) checkRegistry(ctx context.Context, metas map[string]bool) error {
	reg := c.s.registryKey()
	listed := map[string]bool{}
	err := c.scanEach(ctx, func(cur uint64) *redis.ScanCmd { return c.s.rdb.ZScan(ctx, reg, cur, "", checkBatch) },
		func(batch []string) error {
			for i := 0; i < len(batch); i += 2 {
				listed[batch[i]] = true
			}
			return nil
		})
	if err != nil {
		return err
	}
	for _, ws := range c.wsIDs {
		if listed[ws] {
			continue
		}
		// A create between its two steps is listed a moment later.
		if err := c.s.rdb.ZScore(ctx, reg, ws).Err(); err == nil {
			continue
		} else if !errors.Is(err, redis.Nil) {
			return c.s.wrap(err)
		}
		if gone, err := c.workspaceGone(ctx, ws); err != nil {
			return err
		} else if gone {
			continue // deleted since the scan
		}
		// CreateWorkspace's own second step: harmless to repeat.
		if c.o.Fix {
			if err := c.s.rdb.ZAdd(ctx, reg, redis.Z{Member: ws}).Err(); err != nil {
				return c.s.wrap(err)
			}
		}
		c.found(KindWorkspaceUnregistered, reg, ws, "workspace "+ws+" exists but is not in the registry (not listed); it is added")
	}
	for _, ws := range slices.Sorted(maps.Keys(listed)) {
		if metas[ws] {
			continue
		}
		gone, err := c.workspaceGone(ctx, ws)
		if err != nil {
			return err
		}
		if !gone {
			continue // created since the scan
		}
		if c.o.Fix {
			if err := c.s.rdb.ZRem(ctx, reg, ws).Err(); err != nil {
				return c.s.wrap(err)
			}
			// A create of the same id meanwhile: put its entry back.
			if gone, err = c.workspaceGone(ctx, ws); err != nil {
				return err
			}
			if !gone {
				if err := c.s.rdb.ZAdd(ctx, reg, redis.Z{Member: ws}).Err(); err != nil {
					return c.s.wrap(err)
				}
				continue
			}
		}
		c.found(KindWorkspaceRegistryDangling, reg, ws, "the registry lists workspace "+ws+", which does not exist; the entry is removed")
	}
	return nil
}

// checkDomainIndex compares the email-domain index with the domains the
// workspace records list. Both repairs are syncDomainIndex, the step every
// workspace write ends with: it re-reads the record, so a concurrent
// change of the setting is never undone.
func (c *checker) checkDomainIndex(ctx context.Context) error {
	key := c.s.domainIndexKey()
	indexed := map[string]bool{} // index members
	err := c.scanEach(ctx, func(cur uint64) *redis.ScanCmd { return c.s.rdb.ZScan(ctx, key, cur, "", checkBatch) },
		func(batch []string) error {
			for i := 0; i < len(batch); i += 2 {
				indexed[batch[i]] = true
			}
			return nil
		})
	if err != nil {
		return err
	}
	listed := map[string]bool{} // members the records call for
	for _, ws := range c.wsIDs {
		domains, _, err := c.s.currentDomains(ctx, ws)
		if err != nil {
			return err
		}
		for _, d := range domains {
			m := domainMember(d, ws)
			listed[m] = true
			if indexed[m] {
				continue
			}
			if c.o.Fix {
				if err := c.s.syncDomainIndex(ctx, ws, nil); err != nil {
					return err
				}
			} else if err := c.s.rdb.ZScore(ctx, key, m).Err(); err == nil {
				continue // written since the scan
			} else if !errors.Is(err, redis.Nil) {
				return c.s.wrap(err)
			}
			c.found(KindDomainIndexMissing, key, m, "workspace "+ws+" lists email domain "+d+", which the index lacks; it is added")
		}
	}
	for _, m := range slices.Sorted(maps.Keys(indexed)) {
		if listed[m] {
			continue
		}
		d, ws, _ := strings.Cut(m, " ")
		if validWS(ws) {
			// Confirm against the record as it is now.
			domains, _, err := c.s.currentDomains(ctx, ws)
			if err != nil {
				return err
			}
			if slices.Contains(domains, d) {
				continue
			}
		}
		if c.o.Fix {
			var err error
			if validWS(ws) {
				err = c.s.syncDomainIndex(ctx, ws, []string{d})
			} else {
				err = c.s.wrap(c.s.rdb.ZRem(ctx, key, m).Err())
			}
			if err != nil {
				return err
			}
		}
		c.found(KindDomainIndexStale, key, m, "the email-domain index maps "+d+" to workspace "+ws+", which does not list it; the entry is removed")
	}
	return nil
}

func (c *checker) workspaceGone(ctx context.Context, ws string) (bool, error) {
	n, err := c.s.rdb.Exists(ctx, c.s.wsKey(ws, "meta")).Result()
	return n == 0, c.s.wrap(err)
}

// checkWorkspace walks one workspace: first the records (adding missing
// index entries), then the indexes (removing entries no record backs), so
// that a moved entry is never missing in between.
func (c *checker) checkWorkspace(ctx context.Context, ws string, groups map[string]bool) error {
	c.rep.Workspaces++
	users, grps, problems := c.rep.Users, c.rep.Groups, len(c.rep.Problems)
	for _, sq := range [][2]string{{"seq:u", "ix:uo"}, {"seq:g", "ix:go"}} {
		code, _, err := c.run(ctx, scriptCheckSeq, []string{c.s.wsKey(ws, sq[0]), c.s.wsKey(ws, sq[1])}, c.fixArg())
		if err != nil {
			return err
		}
		if code == 1 {
			c.found(KindSequenceBehind, c.s.wsKey(ws, sq[0]), "",
				"the creation counter is below the highest position in "+sq[1]+"; it is raised")
		}
	}
	if err := c.checkUsers(ctx, ws); err != nil {
		return err
	}
	for _, ix := range userIndexes {
		if err := c.walkUserIndex(ctx, ws, ix); err != nil {
			return err
		}
	}
	if err := c.walkFacetIndexes(ctx, ws); err != nil {
		return err
	}
	gids := slices.Sorted(maps.Keys(groups))
	for i := 0; i < len(gids); i += checkBatch {
		if err := c.checkGroups(ctx, ws, gids[i:min(i+checkBatch, len(gids))]); err != nil {
			return err
		}
	}
	for _, ix := range groupIndexes {
		if err := c.walkGroupIndex(ctx, ws, ix); err != nil {
			return err
		}
	}
	if err := c.walkMemberIndex(ctx, ws); err != nil {
		return err
	}
	// Last: the walks above have indexed every externalId in the new
	// indexes.
	for _, name := range []string{"ix:ux", "ix:gx"} {
		key := c.s.wsKey(ws, name)
		n, err := c.s.rdb.Exists(ctx, key).Result()
		if err != nil {
			return c.s.wrap(err)
		}
		if n == 0 {
			continue
		}
		if c.o.Fix {
			if err := c.s.rdb.Unlink(ctx, key).Err(); err != nil {
				return c.s.wrap(err)
			}
		}
		c.found(KindLegacyIndex, key, "", "the unique externalId index of an earlier version, no longer used "+
			"(externalId is indexed in "+name+"z); it is deleted")
	}
	c.log.Info("check: workspace", "workspace", ws, "users", c.rep.Users-users, "groups", c.rep.Groups-grps,
		"problems", len(c.rep.Problems)-problems)
	return nil
}

// Users.

// entry is an index entry a record needs (checkEntries).
type entry struct {
	name, typ     string // index key name (ix:un) and type: hash, zset, order
	member, value string // the hash field or member; for hash the id it names, for order the score
	old           string // the same entry under an earlier key form, or ""
	cond          recCond
	owner         string // "user <id>" or "group <id>", for details
	// holder tells, for a unique index whose field names another record,
	// whether that record claims the field too, and the condition under
	// which its entry may be removed when it does not.
	holder func(ctx context.Context, other string) (claims bool, cond recCond, err error)
}

// checkEntries makes sure the records' index entries exist: one pipelined
// read, then a check script for each entry that looked missing.
func (c *checker) checkEntries(ctx context.Context, ws string, es []entry, group bool) error {
	hashes := make([]*redis.StringCmd, len(es))
	scores := make([]*redis.FloatCmd, len(es))
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i, e := range es {
			if e.typ == "hash" {
				hashes[i] = p.HGet(ctx, c.s.wsKey(ws, e.name), e.member)
			} else {
				scores[i] = p.ZScore(ctx, c.s.wsKey(ws, e.name), e.member)
			}
		}
	}); err != nil {
		return err
	}
	for i, e := range es {
		if e.typ == "hash" {
			if v, err := hashes[i].Result(); err == nil && v == e.value {
				continue
			}
		} else if _, err := scores[i].Result(); err == nil {
			continue
		}
		if err := c.ensure(ctx, ws, e, group); err != nil {
			return err
		}
	}
	return nil
}

// ensure adds a missing index entry (or moves it from its old key form);
// a unique field that names another record is cleared first when that
// record does not claim it, and reported when it does.
func (c *checker) ensure(ctx context.Context, ws string, e entry, group bool) error {
	noun, seqName := "user", "seq:u"
	kindMissing, kindConflict, kindDangling, kindStale := KindUserIndexMissing, KindUserUniqueConflict,
		KindUserIndexDangling, KindUserIndexStale
	if group {
		noun, seqName = "group", "seq:g"
		kindMissing, kindConflict, kindDangling, kindStale = KindGroupIndexMissing, KindGroupUniqueConflict,
			KindGroupIndexDangling, KindGroupIndexStale
	}
	index, seq := c.s.wsKey(ws, e.name), c.s.wsKey(ws, seqName)
	desc := indexDesc[e.name]
	add := func() (int64, string, error) {
		return c.run(ctx, scriptCheckAdd, []string{index, e.cond.key, seq},
			e.typ, e.member, e.value, e.cond.field, e.cond.value, c.fixArg(), e.old)
	}
	conflict := func(other string) {
		c.needsPerson(kindConflict, index, e.member, fmt.Sprintf("%s and %s %s both claim this entry of the %s, "+
			"which names %s %s; one of them must be changed", e.owner, noun, other, desc, noun, other))
	}
	code, other, err := add()
	if err != nil {
		return err
	}
	if code == 2 {
		claims, cond, err := e.holder(ctx, other)
		if err != nil {
			return err
		}
		if claims {
			conflict(other)
			return nil
		}
		// The entry's holder does not claim it: clear it first.
		ok, err := c.delEntry(ctx, index, e.typ, e.member, other, cond)
		if err != nil || !ok {
			return err
		}
		if cond.mode == "equals" {
			c.found(kindStale, index, e.member, fmt.Sprintf("the entry names %s %s, whose value is another; it is removed", noun, other))
		} else {
			c.found(kindDangling, index, e.member, fmt.Sprintf("the entry names %s %s, which does not exist; it is removed", noun, other))
		}
		if !c.o.Fix {
			code = 1 // it would be added once the entry is cleared
		} else if code, other, err = add(); err != nil {
			return err
		} else if code == 2 {
			conflict(other)
			return nil
		}
	}
	switch code {
	case 1:
		if e.name == "ix:ua" && !c.o.Fix {
			c.unindexed[ws+"\x00"+e.member] = true
		}
		c.found(kindMissing, index, e.member, fmt.Sprintf("%s is missing from the %s; it is added", e.owner, desc))
	case 3:
		c.found(KindIndexKeyNotFolded, index, e.old, fmt.Sprintf("the entry of %s in the %s is not in folded form "+
			"(written before Unicode folding); it moves to the folded key", e.owner, desc))
	}
	return nil
}

// legacyFold is how userName keys were folded before Unicode
// normalisation; legacyEmailFold the same for emails.
func legacyFold(s string) string      { return strings.ToLower(s) }
func legacyEmailFold(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// checkUsers walks the user records of ws in batches.
func (c *checker) checkUsers(ctx context.Context, ws string) error {
	users := c.s.wsKey(ws, "users")
	return c.scanEach(ctx, func(cur uint64) *redis.ScanCmd { return c.s.rdb.HScan(ctx, users, cur, "", checkBatch) },
		func(fv []string) error {
			var batch []userRec
			for i := 0; i+1 < len(fv); i += 2 {
				id, rec := fv[i], fv[i+1]
				u, err := decodeUser(ws, rec)
				if err != nil || u.ID != id {
					if ok, err := c.stillRecord(ctx, users, id, rec); err != nil {
						return err
					} else if !ok {
						continue
					}
					c.needsPerson(KindUserRecordInvalid, users, id, "the record of user "+id+
						" cannot be decoded or names another id")
					continue
				}
				batch = append(batch, userRec{id: id, rec: rec, u: u})
			}
			c.rep.Users += len(batch)
			c.tick(len(fv) / 2)
			return c.checkUserBatch(ctx, ws, batch)
		})
}

// stillRecord re-reads a hash field and reports whether it still holds
// rec.
func (c *checker) stillRecord(ctx context.Context, key, field, rec string) (bool, error) {
	v, err := c.s.rdb.HGet(ctx, key, field).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return v == rec, c.s.wrap(err)
}

type userRec struct {
	id, rec string
	u       storage.User
}

// checkUserBatch checks the index entries and the account of each user.
func (c *checker) checkUserBatch(ctx context.Context, ws string, batch []userRec) error {
	users := c.s.wsKey(ws, "users")
	var es []entry
	for _, r := range batch {
		u := r.u
		cond := recCond{key: users, field: r.id, mode: "equals", value: r.rec}
		owner := "user " + r.id
		un := storage.FoldKey(u.UserName)
		e := entry{name: "ix:un", typ: "hash", member: un, value: r.id, cond: cond, owner: owner,
			holder: c.userHolder(ws, func(o storage.User) bool { return storage.FoldKey(o.UserName) == un })}
		if old := legacyFold(u.UserName); old != un {
			e.old = old
		}
		es = append(es, e)
		if u.ExternalID != "" {
			es = append(es, entry{name: "ix:uxz", typ: "zset", member: u.ExternalID + "\x00" + r.id, cond: cond, owner: owner})
		}
		if a := u.AccountID; a != "" {
			es = append(es, entry{name: "ix:ua", typ: "hash", member: a, value: r.id, cond: cond, owner: owner,
				holder: c.userHolder(ws, func(o storage.User) bool { return o.AccountID == a })})
		}
		raw := map[string]string{}
		for _, v := range u.Emails {
			if k := storage.FoldKey(v); raw[k] == "" {
				raw[k] = v
			}
		}
		for _, k := range emailIndexKeys(u.UserName, u.Emails) {
			e := entry{name: "ix:ue", typ: "zset", member: k + "\x00" + r.id, cond: cond, owner: owner}
			if old := legacyEmailFold(raw[k]); old != k && old != "" {
				e.old = old + "\x00" + r.id
			}
			es = append(es, e)
		}
		if k := nameKey(u); k != "" {
			es = append(es, entry{name: "ix:udn", typ: "zset", member: k + "\x00" + r.id, cond: cond, owner: owner})
		}
		es = append(es, entry{name: "ix:uo", typ: "order", member: r.id, cond: cond, owner: owner})
	}
	if err := c.checkEntries(ctx, ws, es, false); err != nil {
		return err
	}
	if err := c.checkUserFacets(ctx, ws, batch); err != nil {
		return err
	}
	return c.checkUserAccounts(ctx, ws, batch)
}

// userHolder returns entry.holder for a unique user index: the other
// user claims the field when its record exists and claims says so.
func (c *checker) userHolder(ws string, claims func(storage.User) bool) func(context.Context, string) (bool, recCond, error) {
	users := c.s.wsKey(ws, "users")
	return func(ctx context.Context, other string) (bool, recCond, error) {
		rec, err := c.s.rdb.HGet(ctx, users, other).Result()
		if errors.Is(err, redis.Nil) {
			return false, recCond{key: users, field: other, mode: "missing"}, nil
		}
		if err != nil {
			return false, recCond{}, c.s.wrap(err)
		}
		o, err := decodeUser(ws, rec)
		if err != nil || claims(o) {
			return true, recCond{}, nil // an unreadable record is left to a person
		}
		return false, recCond{key: users, field: other, mode: "equals", value: rec}, nil
	}
}

// checkUserAccounts checks that each membership's account exists and has
// the workspace's back-pointer.
func (c *checker) checkUserAccounts(ctx context.Context, ws string, batch []userRec) error {
	cmds := make([]*redis.SliceCmd, len(batch))
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i, r := range batch {
			if a := r.u.AccountID; a != "" && validID(a) {
				cmds[i] = p.HMGet(ctx, c.s.acctKey(a, "a"), acctFieldVersion, acctWSPrefix+ws)
			}
		}
	}); err != nil {
		return err
	}
	for i, r := range batch {
		if cmds[i] == nil {
			continue
		}
		f, err := cmds[i].Result()
		if err != nil {
			return c.s.wrap(err)
		}
		switch {
		case f[0] == nil:
			if err := c.missingAccount(ctx, ws, r); err != nil {
				return err
			}
		case f[1] == nil:
			if err := c.missingBackPointer(ctx, ws, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// missingBackPointer adds the back-pointer of membership r, read missing.
// The membership is read again first: a DeleteUser that ran since the
// record was read removes the back-pointer after the membership, which is
// no problem. A DeleteUser that runs between that read and the repair
// would leave the added back-pointer stale: it is removed again.
func (c *checker) missingBackPointer(ctx context.Context, ws string, r userRec) error {
	users := c.s.wsKey(ws, "users")
	if ok, err := c.stillRecord(ctx, users, r.id, r.rec); err != nil || !ok {
		return err
	}
	a := r.u.AccountID
	key, field := c.s.acctKey(a, "a"), acctWSPrefix+ws
	code, _, err := c.run(ctx, scriptCheckAccount, []string{key}, "bp-add", c.fixArg(), field)
	if err != nil || code != 1 {
		return err
	}
	if c.o.Fix {
		if ok, err := c.stillRecord(ctx, users, r.id, r.rec); err != nil {
			return err
		} else if !ok {
			return c.staleBackPointer(ctx, a, ws, false)
		}
	}
	c.found(KindAccountBackPointerMissing, key, field, "account "+a+" lacks the back-pointer to its membership "+
		r.id+" in workspace "+ws+"; it is added")
	return nil
}

// missingAccount deals with a membership whose account has no record:
// when one of its emails is indexed to the account, as the email index's
// dangling entry; otherwise it is reported.
func (c *checker) missingAccount(ctx context.Context, ws string, r userRec) error {
	a := r.u.AccountID
	if c.handled[a] {
		return nil
	}
	keys := []string{storage.FoldKey(r.u.UserName), legacyEmailFold(r.u.UserName)}
	for _, e := range r.u.Emails {
		keys = append(keys, storage.FoldKey(e), legacyEmailFold(e))
	}
	owners := make([]*redis.StringCmd, len(keys))
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i, k := range keys {
			owners[i] = p.HGet(ctx, c.s.emailIndexKey(), k)
		}
	}); err != nil {
		return err
	}
	for i, k := range keys {
		if owner, err := owners[i].Result(); err == nil && owner == a {
			return c.danglingEmail(ctx, k, a)
		}
	}
	// Confirm: the account still has no record, the membership is unchanged.
	n, err := c.s.rdb.HExists(ctx, c.s.acctKey(a, "a"), acctFieldVersion).Result()
	if err != nil || n {
		return c.s.wrap(err)
	}
	users := c.s.wsKey(ws, "users")
	if ok, err := c.stillRecord(ctx, users, r.id, r.rec); err != nil || !ok {
		return err
	}
	c.needsPerson(KindUserAccountMissing, users, r.id, "user "+r.id+" belongs to account "+a+
		", which has no record, and none of the user's emails is indexed to that account")
	return nil
}

// userIndex is a user index and what its entries claim of the record
// they name.
type userIndex struct {
	name, typ string
	// claims: the record backs the entry's value (nil: any record does).
	claims func(u storage.User, value string) bool
	// respelled: the value is another spelling of one the record claims.
	respelled func(u storage.User, value string) bool
}

var userIndexes = []userIndex{
	{name: "ix:un", typ: "hash",
		claims:    func(u storage.User, v string) bool { return storage.FoldKey(u.UserName) == v },
		respelled: func(u storage.User, v string) bool { return storage.FoldKey(v) == storage.FoldKey(u.UserName) }},
	{name: "ix:uxz", typ: "zset", claims: func(u storage.User, v string) bool { return u.ExternalID == v }},
	{name: "ix:ua", typ: "hash", claims: func(u storage.User, v string) bool { return u.AccountID == v }},
	{name: "ix:ue", typ: "zset",
		claims: func(u storage.User, v string) bool {
			return slices.Contains(emailIndexKeys(u.UserName, u.Emails), v)
		},
		respelled: func(u storage.User, v string) bool {
			return slices.Contains(emailIndexKeys(u.UserName, u.Emails), storage.FoldKey(v))
		}},
	{name: "ix:udn", typ: "zset", claims: func(u storage.User, v string) bool { return nameKey(u) == v }},
	{name: "ix:uo", typ: "order"},
}

// indexEntry is one entry of an index as a walk reads it.
type indexEntry struct {
	member, value, id string
	ok                bool // false: a malformed composite member
}

// scanIndex walks an index of type typ (hash: field -> id; zset: members
// "value\0id"; order: members id) in batches.
func (c *checker) scanIndex(ctx context.Context, key, typ string, fn func([]indexEntry) error) error {
	step := func(cur uint64) *redis.ScanCmd { return c.s.rdb.ZScan(ctx, key, cur, "", checkBatch) }
	if typ == "hash" {
		step = func(cur uint64) *redis.ScanCmd { return c.s.rdb.HScan(ctx, key, cur, "", checkBatch) }
	}
	return c.scanEach(ctx, step, func(pairs []string) error {
		es := make([]indexEntry, 0, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			m := pairs[i]
			switch typ {
			case "hash":
				es = append(es, indexEntry{member: m, value: m, id: pairs[i+1], ok: true})
			case "order":
				es = append(es, indexEntry{member: m, id: m, ok: true})
			default:
				v, id, ok := strings.Cut(m, "\x00")
				es = append(es, indexEntry{member: m, value: v, id: id, ok: ok && id != ""})
			}
		}
		c.tick(len(es))
		return fn(es)
	})
}

// walkUserIndex removes the entries of a user index that no record backs.
func (c *checker) walkUserIndex(ctx context.Context, ws string, ix userIndex) error {
	key, users := c.s.wsKey(ws, ix.name), c.s.wsKey(ws, "users")
	desc := indexDesc[ix.name]
	return c.scanIndex(ctx, key, ix.typ, func(es []indexEntry) error {
		recs := make([]*redis.StringCmd, len(es))
		if err := c.pipe(ctx, func(p redis.Pipeliner) {
			for i, e := range es {
				if e.ok {
					recs[i] = p.HGet(ctx, users, e.id)
				}
			}
		}); err != nil {
			return err
		}
		for i, e := range es {
			var kind, detail string
			var cond recCond
			if !e.ok {
				kind, cond, detail = KindUserIndexStale, recCond{key: users, mode: "any"}, "the entry is malformed; it is removed"
			} else {
				v, err := recs[i].Result()
				switch {
				case errors.Is(err, redis.Nil):
					kind, cond = KindUserIndexDangling, recCond{key: users, field: e.id, mode: "missing"}
					detail = "the entry names user " + e.id + ", which does not exist; it is removed"
				case err != nil:
					return c.s.wrap(err)
				default:
					u, err := decodeUser(ws, v)
					if err != nil || ix.claims == nil || ix.claims(u, e.value) {
						continue // an unreadable record is reported by the record walk
					}
					kind, cond = KindUserIndexStale, recCond{key: users, field: e.id, mode: "equals", value: v}
					detail = "the entry names user " + e.id + ", whose record says otherwise; it is removed"
					if ix.respelled != nil && ix.respelled(u, e.value) {
						kind = KindIndexKeyNotFolded
						detail = "the entry of user " + e.id + " in the " + desc + " is not in folded form " +
							"(written before Unicode folding); it is removed, the folded entry exists"
					}
				}
			}
			ok, err := c.delEntry(ctx, key, ix.typ, e.member, e.id, cond)
			if err != nil {
				return err
			}
			if ok {
				c.found(kind, key, e.member, detail)
			}
		}
		return nil
	})
}

// Groups.

// checkGroups checks a batch of groups (ids with a hash or a member set).
func (c *checker) checkGroups(ctx context.Context, ws string, gids []string) error {
	hashes := make([]*redis.MapStringStringCmd, len(gids))
	sets := make([]*redis.IntCmd, len(gids))
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i, gid := range gids {
			hashes[i] = p.HGetAll(ctx, c.s.wsKey(ws, "g:"+gid))
			sets[i] = p.Exists(ctx, c.s.wsKey(ws, "gm:"+gid))
		}
	}); err != nil {
		return err
	}
	var es []entry
	var live []string
	for i, gid := range gids {
		f, err := hashes[i].Result()
		if err != nil {
			return c.s.wrap(err)
		}
		gkey := c.s.wsKey(ws, "g:"+gid)
		if len(f) == 0 {
			if n, _ := sets[i].Result(); n == 1 {
				if err := c.member(ctx, ws, "orphan", "", gid, KindGroupMembersOrphan, c.s.wsKey(ws, "gm:"+gid), "",
					"the member set of group "+gid+", which does not exist; it is deleted"); err != nil {
					return err
				}
			}
			continue
		}
		if f["v"] != "1" || f["id"] != gid {
			c.needsPerson(KindGroupRecordInvalid, gkey, "", "the hash of group "+gid+" has an unknown version or names another id")
			continue
		}
		c.rep.Groups++
		live = append(live, gid)
		owner := "group " + gid
		if dnl := f["dnl"]; dnl != "" {
			es = append(es, entry{name: "ix:gn", typ: "hash", member: dnl, value: gid, owner: owner,
				cond: recCond{key: gkey, field: "dnl", mode: "equals", value: dnl}, holder: c.groupHolder(ws, dnl)})
		}
		if x := f["x"]; x != "" {
			es = append(es, entry{name: "ix:gxz", typ: "zset", member: x + "\x00" + gid, owner: owner,
				cond: recCond{key: gkey, field: "x", mode: "equals", value: x}})
		}
		order := entry{name: "ix:go", typ: "order", member: gid, owner: owner,
			cond: recCond{key: gkey, field: "v", mode: "equals", value: "1"}}
		if _, err := strconv.ParseInt(f["seq"], 10, 64); err == nil {
			order.value, order.cond = f["seq"], recCond{key: gkey, field: "seq", mode: "equals", value: f["seq"]}
		}
		es = append(es, order)
	}
	c.tick(len(gids))
	if err := c.checkEntries(ctx, ws, es, true); err != nil {
		return err
	}
	for _, gid := range live {
		if err := c.checkMembers(ctx, ws, gid); err != nil {
			return err
		}
	}
	return nil
}

// groupHolder returns entry.holder for the displayName index: the other
// group claims the name when its hash exists with that folded name.
func (c *checker) groupHolder(ws, dnl string) func(context.Context, string) (bool, recCond, error) {
	return func(ctx context.Context, other string) (bool, recCond, error) {
		gkey := c.s.wsKey(ws, "g:"+other)
		f, err := c.s.rdb.HMGet(ctx, gkey, "v", "dnl").Result()
		if err != nil {
			return false, recCond{}, c.s.wrap(err)
		}
		if f[0] == nil {
			return false, recCond{key: gkey, mode: "nokey"}, nil
		}
		if cur, _ := f[1].(string); cur != dnl && f[1] != nil {
			return false, recCond{key: gkey, field: "dnl", mode: "equals", value: cur}, nil
		}
		return true, recCond{}, nil
	}
}

// member runs scriptCheckMember's op and reports the problem it confirms.
func (c *checker) member(ctx context.Context, ws, op, uid, gid, kind, key, field, detail string) error {
	keys := []string{c.s.wsKey(ws, "gm:"+gid), c.s.wsKey(ws, "ix:ug"), c.s.wsKey(ws, "users"), c.s.wsKey(ws, "g:"+gid)}
	code, _, err := c.run(ctx, scriptCheckMember, keys, op, uid, gid, toMicro(now()), c.fixArg())
	if err == nil && code == 1 {
		c.found(kind, key, field, detail)
	}
	return err
}

// checkMembers checks the member set of one group against the users and
// the reverse index.
func (c *checker) checkMembers(ctx context.Context, ws, gid string) error {
	gm, ug, users := c.s.wsKey(ws, "gm:"+gid), c.s.wsKey(ws, "ix:ug"), c.s.wsKey(ws, "users")
	return c.scanEach(ctx, func(cur uint64) *redis.ScanCmd { return c.s.rdb.SScan(ctx, gm, cur, "", checkBatch) },
		func(uids []string) error {
			exists := make([]*redis.BoolCmd, len(uids))
			rev := make([]*redis.FloatCmd, len(uids))
			if err := c.pipe(ctx, func(p redis.Pipeliner) {
				for i, uid := range uids {
					exists[i] = p.HExists(ctx, users, uid)
					rev[i] = p.ZScore(ctx, ug, uid+"\x00"+gid)
				}
			}); err != nil {
				return err
			}
			c.tick(len(uids))
			for i, uid := range uids {
				var err error
				if ok, _ := exists[i].Result(); !ok {
					err = c.member(ctx, ws, "dangling", uid, gid, KindGroupMemberDangling, gm, uid,
						"group "+gid+" has member "+uid+", which is not a user; the member is removed")
				} else if _, rerr := rev[i].Result(); errors.Is(rerr, redis.Nil) {
					err = c.member(ctx, ws, "reverse", uid, gid, KindGroupMemberIndexMissing, ug, uid+"\x00"+gid,
						"member "+uid+" of group "+gid+" is missing from the group membership index; it is added")
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
}

// groupIndexes are the group indexes and the hash field their entries
// claim ("" for the order index: existence only).
var groupIndexes = []struct{ name, typ, attr string }{
	{"ix:gn", "hash", "dnl"}, {"ix:gxz", "zset", "x"}, {"ix:go", "order", ""},
}

// walkGroupIndex removes the entries of a group index that no group
// backs.
func (c *checker) walkGroupIndex(ctx context.Context, ws string, ix struct{ name, typ, attr string }) error {
	key := c.s.wsKey(ws, ix.name)
	return c.scanIndex(ctx, key, ix.typ, func(es []indexEntry) error {
		fields := make([]*redis.SliceCmd, len(es))
		if err := c.pipe(ctx, func(p redis.Pipeliner) {
			for i, e := range es {
				if e.ok {
					fields[i] = p.HMGet(ctx, c.s.wsKey(ws, "g:"+e.id), "v", cmp.Or(ix.attr, "v"))
				}
			}
		}); err != nil {
			return err
		}
		for i, e := range es {
			gkey := c.s.wsKey(ws, "g:"+e.id)
			var kind, detail string
			var cond recCond
			if !e.ok {
				kind, cond, detail = KindGroupIndexStale, recCond{key: key, mode: "any"}, "the entry is malformed; it is removed"
			} else {
				f, err := fields[i].Result()
				if err != nil {
					return c.s.wrap(err)
				}
				cur, _ := f[1].(string)
				switch {
				case f[0] == nil:
					kind, cond = KindGroupIndexDangling, recCond{key: gkey, mode: "nokey"}
					detail = "the entry names group " + e.id + ", which does not exist; it is removed"
				case ix.attr == "" || cur == e.value:
					continue
				default:
					kind, cond = KindGroupIndexStale, recCond{key: gkey, field: ix.attr, mode: "equals", value: cur}
					if f[1] == nil {
						cond.mode = "missing"
					}
					detail = "the entry names group " + e.id + ", whose value is another; it is removed"
				}
			}
			ok, err := c.delEntry(ctx, key, ix.typ, e.member, e.id, cond)
			if err != nil {
				return err
			}
			if ok {
				c.found(kind, key, e.member, detail)
			}
		}
		return nil
	})
}

// walkMemberIndex removes the ix:ug entries that no member set backs.
func (c *checker) walkMemberIndex(ctx context.Context, ws string) error {
	ug, users := c.s.wsKey(ws, "ix:ug"), c.s.wsKey(ws, "users")
	return c.scanIndex(ctx, ug, "zset", func(es []indexEntry) error {
		type reads struct {
			member, user *redis.BoolCmd
			group        *redis.IntCmd
		}
		rs := make([]reads, len(es))
		if err := c.pipe(ctx, func(p redis.Pipeliner) {
			for i, e := range es {
				if e.ok {
					// e.value is the user id, e.id the group id.
					rs[i] = reads{p.SIsMember(ctx, c.s.wsKey(ws, "gm:"+e.id), e.value), p.HExists(ctx, users, e.value),
						p.Exists(ctx, c.s.wsKey(ws, "g:"+e.id))}
				}
			}
		}); err != nil {
			return err
		}
		for i, e := range es {
			if !e.ok || e.value == "" {
				ok, err := c.delEntry(ctx, ug, "zset", e.member, "", recCond{key: ug, mode: "any"})
				if err != nil {
					return err
				}
				if ok {
					c.found(KindGroupMemberIndexStale, ug, e.member, "the entry is malformed; it is removed")
				}
				continue
			}
			m, _ := rs[i].member.Result()
			u, _ := rs[i].user.Result()
			g, _ := rs[i].group.Result()
			if m && u && g == 1 {
				continue
			}
			if err := c.member(ctx, ws, "stale", e.value, e.id, KindGroupMemberIndexStale, ug, e.member,
				"the entry says user "+e.value+" is a member of group "+e.id+", but the group, the user or the "+
					"membership does not exist; it is removed"); err != nil {
				return err
			}
		}
		return nil
	})
}

// Accounts and the email index.

// workspaceIDs returns every workspace id: those that exist when Check
// walks all of them, else the registry's.
func (c *checker) workspaceIDs(ctx context.Context) ([]string, error) {
	if c.wsIDs != nil {
		return c.wsIDs, nil
	}
	ids, err := c.s.rdb.ZRange(ctx, c.s.registryKey(), 0, -1).Result()
	if err != nil {
		return nil, c.s.wrap(err)
	}
	if ws := c.o.Workspace; ws != "" && !slices.Contains(ids, ws) {
		ids = append(ids, ws)
	}
	c.wsIDs = ids
	return ids, nil
}

// membership is one membership of an account.
type membership struct {
	ws string
	u  storage.User
}

// memberships finds an account's memberships through every workspace's
// account index (one pipelined read, then the records).
func (c *checker) memberships(ctx context.Context, acct string) ([]membership, error) {
	wss, err := c.workspaceIDs(ctx)
	if err != nil {
		return nil, err
	}
	uids := make([]*redis.StringCmd, len(wss))
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i, ws := range wss {
			uids[i] = p.HGet(ctx, c.s.wsKey(ws, "ix:ua"), acct)
		}
	}); err != nil {
		return nil, err
	}
	recs := make([]*redis.StringCmd, len(wss))
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i, ws := range wss {
			if uid, err := uids[i].Result(); err == nil {
				recs[i] = p.HGet(ctx, c.s.wsKey(ws, "users"), uid)
			}
		}
	}); err != nil {
		return nil, err
	}
	var out []membership
	for i, ws := range wss {
		if recs[i] == nil {
			continue
		}
		rec, err := recs[i].Result()
		if err != nil {
			continue
		}
		if u, err := decodeUser(ws, rec); err == nil && u.AccountID == acct {
			out = append(out, membership{ws: ws, u: u})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].u.Created.Equal(out[j].u.Created) {
			return out[i].u.Created.Before(out[j].u.Created)
		}
		return out[i].ws < out[j].ws
	})
	return out, nil
}

// danglingEmail repairs the email index entry k that names account acct,
// which has no record: the record is rebuilt from the account's oldest
// membership, or the entry removed when there is none.
func (c *checker) danglingEmail(ctx context.Context, k, acct string) error {
	if c.handled[acct] {
		return nil
	}
	c.handled[acct] = true
	index, key := c.s.emailIndexKey(), c.s.acctKey(acct, "a")
	ms, err := c.memberships(ctx, acct)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		code, _, err := c.run(ctx, scriptCheckEmail, []string{index}, "del", k, acct, c.fixArg(), "")
		if err != nil || code != 1 {
			return err
		}
		if c.o.Fix {
			// A record written meanwhile must stay reachable.
			if n, err := c.s.rdb.HExists(ctx, key, acctFieldVersion).Result(); err != nil {
				return c.s.wrap(err)
			} else if n {
				if err := c.s.rdb.HSetNX(ctx, index, k, acct).Err(); err != nil {
					return c.s.wrap(err)
				}
				return nil
			}
		}
		c.found(KindEmailIndexDangling, index, k, "the entry names account "+acct+
			", which has no record and no membership; the entry is removed")
		return nil
	}
	first := ms[0]
	email := k
	for _, v := range append(slices.Clone(first.u.Emails), first.u.UserName) {
		if storage.FoldKey(v) == storage.FoldKey(k) {
			email = strings.TrimSpace(v)
			break
		}
	}
	args := []any{"rebuild", c.fixArg(), email, first.u.FullName(), first.u.Source, first.ws,
		toMicro(first.u.Created)}
	for _, m := range ms {
		args = append(args, acctWSPrefix+m.ws)
	}
	code, _, err := c.run(ctx, scriptCheckAccount, []string{key}, args...)
	if err != nil || code != 1 {
		return err
	}
	c.found(KindEmailIndexDangling, index, k, fmt.Sprintf("the entry names account %s, which has no record; "+
		"it is rebuilt from its %d membership(s), the oldest being user %s in workspace %s", acct, len(ms), first.u.ID, first.ws))
	if fold := storage.FoldKey(k); fold != k {
		// An entry written before Unicode folding: lookups use the folded key.
		code, _, err := c.run(ctx, scriptCheckEmail, []string{index}, "move", k, acct, c.fixArg(), fold)
		if err != nil {
			return err
		}
		if code == 1 {
			c.found(KindIndexKeyNotFolded, index, k, "the entry of account "+acct+" is not in folded form "+
				"(written before Unicode folding); it moves to the folded key")
		}
	}
	return nil
}

// checkEmailIndex walks the email index: every entry must name an account
// whose record has that email.
func (c *checker) checkEmailIndex(ctx context.Context) error {
	index := c.s.emailIndexKey()
	return c.scanIndex(ctx, index, "hash", func(es []indexEntry) error {
		recs := make([]*redis.SliceCmd, len(es))
		if err := c.pipe(ctx, func(p redis.Pipeliner) {
			for i, e := range es {
				if validID(e.id) {
					recs[i] = p.HMGet(ctx, c.s.acctKey(e.id, "a"), acctFieldVersion, acctFieldEmail)
				}
			}
		}); err != nil {
			return err
		}
		for i, e := range es {
			if recs[i] == nil {
				c.needsPerson(KindEmailIndexWrongAccount, index, e.member, "the entry names an invalid account id")
				continue
			}
			f, err := recs[i].Result()
			if err != nil {
				return c.s.wrap(err)
			}
			email, _ := f[1].(string)
			want := storage.FoldKey(email)
			switch {
			case f[0] == nil:
				if err := c.danglingEmail(ctx, e.member, e.id); err != nil {
					return err
				}
			case want == e.member:
			case storage.FoldKey(e.member) == want:
				code, other, err := c.run(ctx, scriptCheckEmail, []string{index}, "move", e.member, e.id, c.fixArg(), want)
				if err != nil {
					return err
				}
				switch code {
				case 1:
					c.found(KindIndexKeyNotFolded, index, e.member, "the entry of account "+e.id+" is not in folded form "+
						"(written before Unicode folding); it moves to the folded key")
				case 2:
					c.needsPerson(KindAccountEmailConflict, c.s.acctKey(e.id, "a"), "", "account "+e.id+
						" is indexed under an earlier spelling of its email, whose folded form names account "+other)
				}
			default:
				if ok, err := c.stillEntry(ctx, e.member, e.id); err != nil {
					return err
				} else if !ok {
					continue
				}
				c.needsPerson(KindEmailIndexWrongAccount, index, e.member, "the entry names account "+e.id+
					", whose email is another")
			}
		}
		return nil
	})
}

// stillEntry re-reads an email index entry.
func (c *checker) stillEntry(ctx context.Context, k, acct string) (bool, error) {
	return c.stillRecord(ctx, c.s.emailIndexKey(), k, acct)
}

// checkAccounts walks every account hash: back-pointers against the
// account indexes, the record against the email index. Each SCAN batch
// takes four pipelined round trips; only accounts with a problem take
// more.
func (c *checker) checkAccounts(ctx context.Context) error {
	head := c.s.prefix + ":{acct:"
	index := c.s.emailIndexKey()
	return c.scanKeys(ctx, globEscape(head)+"*}:a", func(keys []string) error {
		var ids []string
		for _, k := range keys {
			if id, ok := strings.CutSuffix(strings.TrimPrefix(k, head), "}:a"); ok && validID(id) {
				ids = append(ids, id)
			}
		}
		hashes := make([]*redis.MapStringStringCmd, len(ids))
		if err := c.pipe(ctx, func(p redis.Pipeliner) {
			for i, id := range ids {
				hashes[i] = p.HGetAll(ctx, c.s.acctKey(id, "a"))
			}
		}); err != nil {
			return err
		}
		accts := make([]account, len(ids))
		var bps []backPointer
		for i, id := range ids {
			f, err := hashes[i].Result()
			if err != nil {
				return c.s.wrap(err)
			}
			accts[i] = account{id: id, f: f}
			for field := range f {
				if ws, ok := strings.CutPrefix(field, acctWSPrefix); ok {
					bps = append(bps, backPointer{acct: i, ws: ws})
				}
			}
		}
		has, err := c.hasMemberships(ctx, ids, bps)
		if err != nil {
			return err
		}
		for i, bp := range bps {
			a := &accts[bp.acct]
			if has[i] {
				a.live = append(a.live, bp.ws)
			} else {
				a.stale = append(a.stale, bp.ws)
			}
		}
		owners := make([]*redis.SliceCmd, len(ids))
		if err := c.pipe(ctx, func(p redis.Pipeliner) {
			for i, a := range accts {
				if e := a.f[acctFieldEmail]; a.f[acctFieldVersion] == "1" && storage.FoldKey(e) != "" {
					owners[i] = p.HMGet(ctx, index, storage.FoldKey(e), legacyEmailFold(e))
				}
			}
		}); err != nil {
			return err
		}
		c.tick(len(ids))
		for i := range accts {
			if owners[i] != nil {
				o, err := owners[i].Result()
				if err != nil {
					return c.s.wrap(err)
				}
				accts[i].owner, _ = o[0].(string)
				accts[i].oldOwner, _ = o[1].(string)
			}
			if err := c.checkAccount(ctx, accts[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// account is an account hash as the account walk read it.
type account struct {
	id          string
	f           map[string]string
	live, stale []string // workspaces of its back-pointers with and without a membership
	// owner is the account the email index names for the folded email,
	// oldOwner the one it names for the email folded as before Unicode
	// folding.
	owner, oldOwner string
}

// backPointer is the back-pointer to workspace ws of account number acct.
type backPointer struct {
	acct int
	ws   string
}

// checkAccount checks one account.
func (c *checker) checkAccount(ctx context.Context, a account) error {
	key, id, f := c.s.acctKey(a.id, "a"), a.id, a.f
	created, _ := strconv.ParseInt(f[acctFieldCreated], 10, 64)
	young := f[acctFieldVersion] != "" && c.now.Sub(fromMicro(created)) < c.o.Grace
	if f[acctFieldVersion] != "" {
		c.rep.Accounts++
	}
	// A young record's back-pointers may precede a membership in flight.
	if !young {
		for _, ws := range a.stale {
			if err := c.staleBackPointer(ctx, id, ws, true); err != nil {
				return err
			}
		}
	}
	switch v := f[acctFieldVersion]; {
	case v == "":
		return nil // back-pointers only: the memberships report a missing account
	case v != "1" || storage.FoldKey(f[acctFieldEmail]) == "":
		c.needsPerson(KindAccountRecordInvalid, key, "", "account "+id+" has an unknown record version or no email")
		return nil
	}
	if a.owner == id || a.oldOwner == id {
		return nil // indexed (an old spelling is the email index walk's)
	}
	email, owner, live := f[acctFieldEmail], a.owner, a.live
	k := storage.FoldKey(email)
	index := c.s.emailIndexKey()
	if len(live) == 0 {
		ms, err := c.memberships(ctx, id)
		if err != nil {
			return err
		}
		for _, m := range ms {
			live = append(live, m.ws)
		}
	}
	if len(live) > 0 && owner == "" {
		code, other, err := c.run(ctx, scriptCheckEmail, []string{index}, "publish", k, id, c.fixArg(), "")
		if err != nil {
			return err
		}
		switch code {
		case 1:
			c.found(KindAccountUnindexed, key, "", fmt.Sprintf("account %s has memberships in %d workspace(s) "+
				"but its email is not indexed; it is published", id, len(live)))
		case 2:
			owner = other
		}
	}
	switch {
	case len(live) > 0 && owner != "" && owner != id:
		if ok, err := c.stillEntry(ctx, k, owner); err != nil || !ok {
			return err
		}
		c.needsPerson(KindAccountEmailConflict, key, "", fmt.Sprintf("account %s has memberships in %d "+
			"workspace(s) but its email is indexed to account %s", id, len(live), owner))
		return nil
	case len(live) > 0 || young:
		return nil
	}
	args := []any{"drop", c.fixArg(), email, f[acctFieldCreated]}
	if !c.o.Fix {
		for _, ws := range a.stale {
			args = append(args, acctWSPrefix+ws) // removed first when fixing
		}
	}
	code, _, err := c.run(ctx, scriptCheckAccount, []string{key}, args...)
	if err != nil || code != 1 {
		return err
	}
	why := "its email is not indexed"
	if owner != "" {
		why = "its email is indexed to account " + owner
	}
	c.found(KindAccountUnpublished, key, "", "account "+id+" was never published ("+why+") and has no membership; "+
		"it is deleted")
	return nil
}

// hasMemberships tells for each back-pointer (to an account of ids)
// whether the account has a membership in its workspace: the account
// index names a user whose record exists, or the walk found a membership
// missing from the account index (and did not add it: without Fix).
func (c *checker) hasMemberships(ctx context.Context, ids []string, bps []backPointer) ([]bool, error) {
	uids := make([]*redis.StringCmd, len(bps))
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i, bp := range bps {
			if validWS(bp.ws) {
				uids[i] = p.HGet(ctx, c.s.wsKey(bp.ws, "ix:ua"), ids[bp.acct])
			}
		}
	}); err != nil {
		return nil, err
	}
	recs := make([]*redis.BoolCmd, len(bps))
	if err := c.pipe(ctx, func(p redis.Pipeliner) {
		for i, bp := range bps {
			if uids[i] != nil {
				if uid, err := uids[i].Result(); err == nil {
					recs[i] = p.HExists(ctx, c.s.wsKey(bp.ws, "users"), uid)
				}
			}
		}
	}); err != nil {
		return nil, err
	}
	has := make([]bool, len(bps))
	for i, bp := range bps {
		if recs[i] != nil {
			has[i], _ = recs[i].Result()
		}
		has[i] = has[i] || c.unindexed[bp.ws+"\x00"+ids[bp.acct]]
	}
	return has, nil
}

// staleBackPointer removes the back-pointer w:<ws> of an account that
// has no membership in ws, then reads the account index again and puts
// it back if a membership was created meanwhile (as DeleteUser does).
// report says whether a removal is a problem found.
func (c *checker) staleBackPointer(ctx context.Context, id, ws string, report bool) error {
	key, field := c.s.acctKey(id, "a"), acctWSPrefix+ws
	code, _, err := c.run(ctx, scriptCheckAccount, []string{key}, "bp-del", c.fixArg(), field)
	if err != nil || code != 1 {
		return err
	}
	if validWS(ws) {
		again, err := c.hasMemberships(ctx, []string{id}, []backPointer{{acct: 0, ws: ws}})
		if err != nil {
			return err
		}
		if again[0] {
			if c.o.Fix {
				return c.s.wrap(c.s.rdb.HSet(ctx, key, field, "1").Err())
			}
			return nil
		}
	}
	if report {
		c.found(KindAccountBackPointerStale, key, field, "account "+id+" points to a membership in workspace "+ws+
			" that does not exist; the back-pointer is removed")
	}
	return nil
}
