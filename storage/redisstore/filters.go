package redisstore

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/scimjit/scimjit/storage"
)

// Member filter indexes (storage.Store.ListUsersFiltered). Each facet
// value a user has is a sorted set {ws:<id>}:ix:uf:<facet> whose members
// are the user ids, scored by the creation sequence (the score in ix:uo),
// so that a filtered page is a range by score in creation order. The set
// {ws:<id>}:ix:uf lists the facets that have one (for the check and the
// workspace delete). The Go side computes a record's facets (records are
// packed, Lua cannot read them) and every script that writes a user
// record moves its entries in the same step (luaFacets).
//
// Facets: r<env>:<role> for each environment's role ("rd", "rt", "rp");
// and, sparse, only for the less common value: a:0 (deactivated), v:0
// (pending verification) and s:jit (created by JIT). "Active" is "not in
// a:0", and so on: the filter walks a set and checks the others both
// ways.

// userFacets are the facets of u (see above), without any that contains
// NUL (the separator of facetArg; such a role is not found by a filter).
func userFacets(u storage.User) []string {
	out := make([]string, 0, 6)
	for i, r := range []string{u.Roles.Dev, u.Roles.Test, u.Roles.Prod} {
		if r != "" {
			out = append(out, roleFacet(i, r))
		}
	}
	if !u.Active {
		out = append(out, "a:0")
	}
	if !u.Verified {
		out = append(out, "v:0")
	}
	if u.Source == storage.SourceJIT {
		out = append(out, "s:jit")
	}
	return slices.DeleteFunc(out, func(f string) bool { return strings.Contains(f, "\x00") })
}

// roleFacet is the facet of role r in environment i (0 DEV, 1 TEST, 2
// PROD).
func roleFacet(i int, r string) string {
	return "r" + string("dtp"[i]) + ":" + r
}

// indexesBuilt is the value of the marker {ws:<id>}:ix:ufv when the
// workspace's member filter indexes and its name index (ix:udn) are
// complete (a number: a later version's index may raise it, and a higher
// value includes these). A marker "1" (written by the version that had no
// name index) says only the filter indexes are: filters answer, a name
// search answers storage.ErrNotIndexed until check --fix has built the
// name index.
const indexesBuilt = "2"

// nameKey is u's value in the name index (UserByName): its folded full
// name, scored 0 in the zset ix:udn as "value\0id" so that a lex range
// finds a prefix; "" (no entry) when u has no name or one with NUL.
func nameKey(u storage.User) string {
	k := storage.FoldKey(u.FullName())
	if strings.Contains(k, "\x00") {
		return ""
	}
	return k
}

// facetArg is the script argument for u's facets: joined with NUL
// (luaFacets splits it).
func facetArg(u storage.User) string {
	return strings.Join(userFacets(u), "\x00")
}

// Bounds of one ListUsersFiltered call: how many index entries its page
// walk and its count examine at most.
const (
	filterScanBound  = 5_000
	filterCountBound = 2_000
)

// filterChecks are f's conditions as (facet, "1" member must be in it /
// "0" must not) pairs; ok is false when f cannot match anything (a value
// with NUL, an unknown source).
func filterChecks(f storage.UserFilter) (checks []any, ok bool) {
	bad := false
	for i, r := range []string{f.Roles.Dev, f.Roles.Test, f.Roles.Prod} {
		if r != "" {
			checks = append(checks, roleFacet(i, r), "1")
			bad = bad || strings.Contains(r, "\x00")
		}
	}
	flag := func(facet string, v *bool) {
		if v != nil {
			want := "1"
			if *v {
				want = "0"
			}
			checks = append(checks, facet, want)
		}
	}
	flag("a:0", f.Active)
	flag("v:0", f.Verified)
	switch f.Source {
	case "":
	case storage.SourceJIT:
		checks = append(checks, "s:jit", "1")
	case storage.SourceSCIM:
		checks = append(checks, "s:jit", "0")
	default:
		bad = true
	}
	return checks, !bad
}

// ListUsersFiltered walks the smallest set the filter requires (or the
// order index when it requires none) from the cursor and checks the
// others, in one read-only script with bounded work (scriptUserFilter).
func (s *Store) ListUsersFiltered(ctx context.Context, ws string, f storage.UserFilter, after string, limit int) (storage.UserPage, error) {
	page := storage.UserPage{Users: []storage.User{}, TotalExact: true}
	if !validWS(ws) {
		return page, nil
	}
	checks, ok := filterChecks(f)
	if !ok {
		return page, nil
	}
	from := "-inf"
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			return page, nil // not a cursor this store gave: nothing after it
		}
		from = strconv.FormatInt(n, 10)
	}
	keys := []string{s.wsKey(ws, "users"), s.wsKey(ws, "ix:uo"), s.wsKey(ws, "ix:uf"), s.wsKey(ws, "ix:ufv")}
	argv := append([]any{from, max(limit, 0), filterScanBound, filterCountBound}, checks...)
	res, err := scriptUserFilter.Run(ctx, s.rdb, keys, argv...).Slice()
	if err != nil {
		return storage.UserPage{}, s.wrap(err)
	}
	if ready, _ := res[0].(int64); ready == 0 {
		return storage.UserPage{}, storage.ErrNotIndexed
	}
	total, _ := res[1].(int64)
	exact, _ := res[2].(int64)
	page.Total, page.TotalExact = int(total), exact == 1
	page.Next, _ = res[3].(string)
	for _, v := range res[4:] {
		rec, _ := v.(string)
		u, err := decodeUser(ws, rec)
		if err != nil {
			return storage.UserPage{}, err
		}
		page.Users = append(page.Users, u)
	}
	return page, nil
}

// scriptUserFilter (read-only): KEYS = users, order (ix:uo), facet list
// (ix:uf), built marker (ix:ufv); ARGV = after (a score, exclusive, or
// "-inf"), limit, scan bound, count bound, then pairs (facet, "1" the user
// must be in its set, "0" must not). Answers {0} when conditions are
// given and the marker is absent; else {1, total, exact (1/0), next,
// records...}. The walk goes through the smallest set a condition
// requires (the order index when none does) in creation order and checks
// the other conditions per id (ZSCORE); the page walk and the count each
// examine at most their bound of entries. A count that reached its bound
// is an estimate (exact 0): the share of matches among the entries it
// examined, times the size of the set it walks. next is the score after which
// the next page starts ("" when the walk reached the end).
var scriptUserFilter = redis.NewScript(`
local users, order, registry, built = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local after, limit, scanBound, countBound = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if #ARGV > 4 and redis.call('EXISTS', built) == 0 then return {0} end
local checks, driver = {}, nil
for i = 5, #ARGV, 2 do
  local c = {key = registry .. ':' .. ARGV[i], want = ARGV[i + 1] == '1'}
  c.n = redis.call('ZCARD', c.key)
  if c.want and (not driver or c.n < driver.n) then
    if driver then checks[#checks + 1] = driver end
    driver = c
  else
    checks[#checks + 1] = c
  end
end
local source = order
if driver then source = driver.key end
local function matches(id)
  for _, c in ipairs(checks) do
    if (redis.call('ZSCORE', c.key, id) ~= false) ~= c.want then return false end
  end
  return true
end
-- walk calls fn(id, score) for each match after from, examining at most
-- bound entries (step at a time), until fn returns false; it returns
-- whether it reached the end of the source, the last score it examined
-- and how many entries it examined.
local function walk(from, bound, step, fn)
  local cursor, last, seen = from, nil, 0
  if from ~= '-inf' then cursor = '(' .. from end
  while seen < bound do
    local chunk = redis.call('ZRANGEBYSCORE', source, cursor, '+inf', 'WITHSCORES', 'LIMIT', 0, math.min(step, bound - seen))
    if #chunk == 0 then return true, last, seen end
    for i = 1, #chunk, 2 do
      seen = seen + 1
      last = chunk[i + 1]
      if matches(chunk[i]) and fn(chunk[i], last) == false then return false, last, seen end
    end
    cursor = '(' .. last
  end
  return false, last, seen
end
local total, exact = 0, 1
if #checks == 0 then
  total = redis.call('ZCARD', source)
elseif not driver and #checks == 1 then
  total = redis.call('ZCARD', order) - checks[1].n
else
  local done, _, seen = walk('-inf', countBound, 500, function() total = total + 1 end)
  if not done and seen > 0 then
    -- an estimate: the share of matches among the entries examined
    exact = 0
    total = math.floor(total * redis.call('ZCARD', source) / seen + 0.5)
  end
end
local out = {1, total, exact, ''}
if limit <= 0 then return out end
local found, shown = 0, nil
local step = 500
if #checks == 0 then step = limit + 1 end
local done, last = walk(after, scanBound, step, function(id, score)
  if found == limit then return false end
  local rec = redis.call('HGET', users, id)
  if rec then
    out[#out + 1] = rec
    found = found + 1
  end
  shown = score
end)
if not done then
  -- stopped at a match after a full page (the next page starts after the
  -- last one shown) or at the bound (after the last entry examined)
  if found == limit then out[4] = shown else out[4] = last end
end
return out
`)
