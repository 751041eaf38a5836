package redisstore

import "github.com/redis/go-redis/v9"

// Lua scripts. Each one touches only keys of one hash tag, except
// scriptJITCreate, which runs only where the whole keyspace is one server
// (see CreateJITUser); the keys a script builds from a prefix argument
// share the tag of its KEYS (docs/storage.md).
//
// Conventions:
//   - Scripts check every condition before their first write, because
//     Redis does not roll a script back when it fails half-way.
//   - KEYS and ARGV are read into named locals at the top; the Go side
//     builds them with the functions next to each script.
//   - Every write is safe to re-send: a create whose record already
//     exists exactly as this call would write it, a compare-and-set whose
//     stored value is already the new one, or a change whose operation id
//     is already recorded, succeeds without writing again. Nothing deletes
//     a record that an index still points to.
//   - Errors are replies "SJ_<KIND> <detail>" (wrap maps them).
//
// Composite index members are "value\0id": NUL, which no indexed value or
// id may contain (the Go side filters it out), separates them, so a lex
// range finds every id of one value; moveEntry(key, id, old, new) moves
// id's entry in such an index from value old to value new ("" = none).

const luaPrelude = `local SEP = string.char(0)
local NEXT = string.char(1)
local function zrangeIDs(key, value)
  local out = {}
  for _, m in ipairs(redis.call('ZRANGEBYLEX', key, '[' .. value .. SEP, '(' .. value .. NEXT)) do
    out[#out + 1] = string.sub(m, #value + 2)
  end
  return out
end
local function moveEntry(key, id, old, new)
  if old == new then return end
  if old ~= '' then redis.call('ZREM', key, old .. SEP .. id) end
  if new ~= '' then redis.call('ZADD', key, 0, new .. SEP .. id) end
end
`

// User keys: the KEYS of every user script, in this order (userKeys).
const luaUserKeys = `local function userKeys(K)
  return {meta = K[1], users = K[2], userName = K[3], externalId = K[4], account = K[5],
    emails = K[6], order = K[7], seq = K[8], groupsOf = K[9], facets = K[10], names = K[11]}
end
`

// luaFacets maintains the member filter indexes (filters.go): registry
// is the facet list key (ix:uf), whose name plus ":" plus a facet is that
// facet's sorted set; order is ix:uo. moveFacets moves user id's entries
// from the facets old to the facets new (facetArg strings: joined with
// NUL), scored by the user's position in order (score, when the caller
// has it already). Every script that writes
// a user record calls it in the same step.
const luaFacets = `local function splitFacets(s)
  local out, i = {}, 1
  if s == '' then return out end
  while true do
    local j = string.find(s, SEP, i, true)
    if not j then
      out[#out + 1] = string.sub(s, i)
      return out
    end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end
local function moveFacets(registry, order, id, old, new, score)
  if old == new then return end
  local newList, keep, had, added = splitFacets(new), {}, {}, {}
  for _, f in ipairs(newList) do keep[f] = true end
  for _, f in ipairs(splitFacets(old)) do
    had[f] = true
    if not keep[f] then redis.call('ZREM', registry .. ':' .. f, id) end
  end
  for _, f in ipairs(newList) do
    if not had[f] then added[#added + 1] = f end
  end
  if #added == 0 then return end
  score = score or redis.call('ZSCORE', order, id)
  if not score then return end
  for _, f in ipairs(added) do redis.call('ZADD', registry .. ':' .. f, score, id) end
  redis.call('SADD', registry, unpack(added))
end
`

// luaUserArgs reads the arguments of a user create (userArgs) starting
// at ARGV[from]: id, record, folded userName, externalId, account id,
// facets (facetArg), name index value (nameKey), then the folded emails
// to index.
const luaUserArgs = `local function userArgs(A, from)
  local u = {id = A[from], record = A[from + 1], userName = A[from + 2], externalId = A[from + 3],
    account = A[from + 4], facets = A[from + 5], name = A[from + 6], emails = {}}
  for i = from + 7, #A do u.emails[#u.emails + 1] = A[i] end
  return u
end
`

// luaCreateUser creates a membership: the record and every index entry
// (the filter indexes too: needs luaFacets),
// after checking the workspace exists and userName (unique per workspace)
// and account (one membership per account and workspace) are free.
// externalId is indexed, not unique (RFC 7643 §3.1: the client keeps it
// unique). A record already stored under the id that is byte-identical
// to this one is this very create, re-sent: it succeeds, writing nothing.
// Returns 1 or an SJ_ error reply.
const luaCreateUser = `local function createUser(U, u)
  if redis.call('EXISTS', U.meta) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
  local cur = redis.call('HGET', U.users, u.id)
  if cur then
    if cur == u.record then return 1 end
    return redis.error_reply('SJ_CONFLICT id')
  end
  if redis.call('HEXISTS', U.userName, u.userName) == 1 then return redis.error_reply('SJ_CONFLICT userName') end
  if u.account ~= '' and redis.call('HEXISTS', U.account, u.account) == 1 then
    return redis.error_reply('SJ_CONFLICT account')
  end
  redis.call('HSET', U.users, u.id, u.record)
  redis.call('HSET', U.userName, u.userName, u.id)
  moveEntry(U.externalId, u.id, '', u.externalId)
  if u.account ~= '' then redis.call('HSET', U.account, u.account, u.id) end
  for _, e in ipairs(u.emails) do redis.call('ZADD', U.emails, 0, e .. SEP .. u.id) end
  moveEntry(U.names, u.id, '', u.name)
  local seq = redis.call('INCR', U.seq)
  redis.call('ZADD', U.order, seq, u.id)
  moveFacets(U.facets, U.order, u.id, '', u.facets, seq)
  return 1
end
`

// luaAppendEvents appends the events of ARGV from index from on
// (eventArgs: the main and the sign-in stream's caps, n, then n pairs of
// stream "m"/"l" and record) to the main or the sign-in stream, and
// returns {1, their entry ids...}, and the index after them. K[k] and
// K[k+1] are the two streams, K[k+2] the workspace's webhook endpoint set,
// K[k+3] its webhook outbox, K[k+4] the outbox's dropped counter and
// K[k+5] the hour's provisioning counts (eventKeys): while the workspace
// has endpoints each event is also added to the outbox, with its event id
// (a dispatcher deletes each entry once it has queued its deliveries); an
// event that finds the outbox holding outboxMax entries (no dispatcher has
// run for a long while) is counted in the dropped counter instead. A
// stream marker "m<type>" (a SCIM event, eventsArgs) also counts the type
// in the provisioning counts (SCIMActivity).
const luaAppendEvents = `local function appendEvents(K, k, A, from)
  local main, login, hooks, outbox, dropped, counts = K[k], K[k + 1], K[k + 2], K[k + 3], K[k + 4], K[k + 5]
  local mainCap, loginCap, n = A[from], A[from + 1], tonumber(A[from + 2])
  local toOutbox = redis.call('EXISTS', hooks) == 1
  local out = {1}
  for i = from + 3, from + 2 + 2 * n, 2 do
    local stream, cap, suffix = main, mainCap, ''
    if A[i] == 'l' then stream, cap, suffix = login, loginCap, '` + loginIDSuffix + `' end
    if #A[i] > 1 and redis.call('HINCRBY', counts, string.sub(A[i], 2), 1) == 1 then
      redis.call('EXPIRE', counts, ` + activityTTLSeconds + `)
    end
    local id = redis.call('XADD', stream, 'MAXLEN', '~', cap, '*', 'd', A[i + 1])
    out[#out + 1] = id
    if toOutbox then
      if redis.call('XLEN', outbox) < ` + outboxMaxLua + ` then
        redis.call('XADD', outbox, '*', 'e', id .. suffix, 'd', A[i + 1])
      else
        redis.call('INCR', dropped)
      end
    end
  end
  return out, from + 3 + 2 * n
end
`

// luaPushCapped: pushCapped(meta, list, record, cap) pushes record onto
// the head of a workspace's capped list and trims it to the newest cap
// entries; it answers an SJ_NOTFOUND error reply, writing nothing, when
// the workspace (its meta key) does not exist, and 1 otherwise.
const luaPushCapped = `local function pushCapped(meta, list, record, cap)
  if redis.call('EXISTS', meta) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
  redis.call('LPUSH', list, record)
  redis.call('LTRIM', list, 0, tonumber(cap) - 1)
  return 1
end
`

// luaGroupsOf lists the groups that have the user id as a direct member
// (index: the groupsOf zset, prefix: the workspace key prefix) as a flat
// list of (group id, displayName, externalId, version), by group id.
// Index entries whose group hash is gone are skipped. groupsHold is true
// when the user's groups are still seen (the list joined with NUL, as
// decodeGroupsOf reads it).
const luaGroupsOf = `local function groupsOf(index, prefix, id)
  local out = {}
  for _, gid in ipairs(zrangeIDs(index, id)) do
    local f = redis.call('HMGET', prefix .. 'g:' .. gid, 'dn', 'x', 'ver')
    if f[1] then
      out[#out + 1] = gid
      out[#out + 1] = f[1]
      out[#out + 1] = f[2] or ''
      out[#out + 1] = f[3] or ''
    end
  end
  return out
end
local function groupsHold(index, prefix, id, seen)
  return table.concat(groupsOf(index, prefix, id), SEP) == seen
end
`

// luaRolePlan reads and applies the role re-evaluation a group change
// carries (rolePlan, grouproles.go), from ARGV index from: workspace key
// prefix, the changed group's version as read ("" = not checked), n, then
// n times (user id, record as read, new record or "" for none, the user's
// groups as read: groupsOf joined with NUL, the facets (facetArg) of the
// record as read and of the new one). rolePlanHolds is true when
// everything the plan was computed from is unchanged; the scripts check it
// before their first write and answer SJ_RETRY otherwise, so the roles
// written are those of a serial evaluation. Needs luaGroupsOf and
// luaFacets.
const luaRolePlan = `local function rolePlan(A, from)
  local p = {prefix = A[from], groupVer = A[from + 1], users = {}}
  for i = from + 3, from + 2 + 6 * tonumber(A[from + 2]), 6 do
    p.users[#p.users + 1] = {id = A[i], expected = A[i + 1], record = A[i + 2], groups = A[i + 3],
      oldFacets = A[i + 4], newFacets = A[i + 5]}
  end
  return p
end
local function rolePlanHolds(p, group, users, index)
  if p.groupVer ~= '' and redis.call('HGET', group, 'ver') ~= p.groupVer then return false end
  for _, u in ipairs(p.users) do
    if redis.call('HGET', users, u.id) ~= u.expected then return false end
    if not groupsHold(index, p.prefix, u.id, u.groups) then return false end
  end
  return true
end
local function writeRolePlan(p, users)
  for _, u in ipairs(p.users) do
    if u.record ~= '' then
      redis.call('HSET', users, u.id, u.record)
      moveFacets(p.prefix .. 'ix:uf', p.prefix .. 'ix:uo', u.id, u.oldFacets, u.newFacets)
    end
  end
end
`

// scriptUserCreate: KEYS = userKeys, the event keys (eventKeys);
// ARGV = eventArgs, then userArgs. Creates the membership and, with it,
// appends the events (same slot). Returns {1, event ids...}, {2} for a
// re-send of a create that already happened (nothing written), or an SJ_
// error reply.
var scriptUserCreate = redis.NewScript(luaPrelude + luaUserKeys + luaUserArgs + luaFacets + luaCreateUser + luaAppendEvents + `
local U = userKeys(KEYS)
local user = userArgs(ARGV, 4 + 2 * tonumber(ARGV[3]))
if redis.call('HGET', U.users, user.id) == user.record then return {2} end
local r = createUser(U, user)
if r ~= 1 then return r end
return (appendEvents(KEYS, 12, ARGV, 1))
`)

// scriptUserQuery (read-only): KEYS = users, the mode's index (userName,
// externalId, account or emails; order in the list and id modes), order,
// groupsOf (queryArgs); ARGV = mode, a, b, workspace key prefix, groups
// ("1" or "0"). Modes: id, un, ext, acct, email (value a), name (prefix
// a, limit b), list (offset a, limit b). Returns {total, record1, seq1,
// record2, seq2, ...}; total only in list mode (-1 in name mode when the
// name index was never built: the ix:ufv marker is below indexesBuilt), seq (the
// creation order) in the modes that can find several users and are read
// in creation order ("0" otherwise: name mode keeps name order). With groups "1", each user is followed by
// its group references {gid1, dn1, gid2, dn2, ...} (group members are not
// read).
var scriptUserQuery = redis.NewScript(luaPrelude + luaGroupsOf + `
local users, index, order, groupsIndex = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, a, b, prefix, withGroups = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1'
local ids = {}
local total = 0
local several = mode == 'email' or mode == 'list' or mode == 'ext'
if mode == 'id' then
  ids = {a}
elseif mode == 'un' or mode == 'acct' then
  local v = redis.call('HGET', index, a)
  if v then ids = {v} end
elseif mode == 'ext' then
  ids = zrangeIDs(index, a)
elseif mode == 'email' then
  -- an email equal to the user's userName is found through the userName
  -- index (the caller keeps users whose emails hold the value)
  local v = redis.call('HGET', prefix .. 'ix:un', a)
  if v then ids[#ids + 1] = v end
  for _, id in ipairs(zrangeIDs(index, a)) do
    if id ~= v then ids[#ids + 1] = id end
  end
elseif mode == 'name' then
  if (tonumber(redis.call('GET', prefix .. 'ix:ufv')) or 0) < ` + indexesBuilt + ` then return {-1} end
  for _, m in ipairs(redis.call('ZRANGEBYLEX', index, '[' .. a, '(' .. a .. '\255', 'LIMIT', 0, tonumber(b))) do
    local j = string.find(m, SEP, #a + 1, true)
    if j then ids[#ids + 1] = string.sub(m, j + 1) end -- else malformed: check removes it
  end
elseif mode == 'list' then
  total = redis.call('ZCARD', order)
  local off, lim = tonumber(a), tonumber(b)
  if lim > 0 and off < total then ids = redis.call('ZRANGE', order, off, off + lim - 1) end
end
local out = {total}
for _, id in ipairs(ids) do
  local rec = redis.call('HGET', users, id)
  if rec then
    out[#out + 1] = rec
    if several then
      out[#out + 1] = redis.call('ZSCORE', order, id) or '0'
    else
      out[#out + 1] = '0'
    end
    if withGroups then out[#out + 1] = groupsOf(groupsIndex, prefix, id) end
  end
end
return out
`)

// scriptUserCAS: KEYS = userKeys; ARGV = id, expected record, new record,
// old folded userName, new folded userName, old externalId, new
// externalId, workspace key prefix ("" = the user's groups are not
// checked), the user's groups as read (groupsOf joined with NUL), the old
// and the new facets (facetArg), the old and the new name index value
// (nameKey), n, n old folded emails..., new folded emails... Replaces the record when it is
// still the expected one and, when a prefix is given, the user's groups
// are still the ones read (the roles in the record were decided from
// them), moving the changed index entries and re-checking userName's
// uniqueness; a record that already is the new one is this very write,
// re-sent (1, nothing written).
var scriptUserCAS = redis.NewScript(luaPrelude + luaUserKeys + luaGroupsOf + luaFacets + `
local U = userKeys(KEYS)
local id, expected, record = ARGV[1], ARGV[2], ARGV[3]
local oldName, newName, oldExt, newExt = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local prefix, groups, oldFacets, newFacets = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local oldDN, newDN, n = ARGV[12], ARGV[13], tonumber(ARGV[14])
local cur = redis.call('HGET', U.users, id)
if not cur then return redis.error_reply('SJ_NOTFOUND user') end
if cur == record then return 1 end
if cur ~= expected then return redis.error_reply('SJ_RETRY') end
if prefix ~= '' and not groupsHold(U.groupsOf, prefix, id, groups) then return redis.error_reply('SJ_RETRY') end
if newName ~= oldName then
  local o = redis.call('HGET', U.userName, newName)
  if o and o ~= id then return redis.error_reply('SJ_CONFLICT userName') end
  if redis.call('HGET', U.userName, oldName) == id then redis.call('HDEL', U.userName, oldName) end
  redis.call('HSET', U.userName, newName, id)
end
moveEntry(U.externalId, id, oldExt, newExt)
for i = 15, 14 + n do redis.call('ZREM', U.emails, ARGV[i] .. SEP .. id) end
for i = 15 + n, #ARGV do redis.call('ZADD', U.emails, 0, ARGV[i] .. SEP .. id) end
moveEntry(U.names, id, oldDN, newDN)
redis.call('HSET', U.users, id, record)
moveFacets(U.facets, U.order, id, oldFacets, newFacets)
return 1
`)

// scriptUserDelete: KEYS = userKeys; ARGV = workspace key prefix, id,
// expected record, folded userName, externalId, account id, now (µs),
// facets (facetArg), name index value (nameKey), folded emails... Removes the record (when still the
// expected one), its index entries and its group memberships.
var scriptUserDelete = redis.NewScript(luaPrelude + luaUserKeys + luaFacets + `
local U = userKeys(KEYS)
local prefix, id, expected, userName, ext, account, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local facets, dn = ARGV[8], ARGV[9]
local cur = redis.call('HGET', U.users, id)
if not cur then return redis.error_reply('SJ_NOTFOUND user') end
if cur ~= expected then return redis.error_reply('SJ_RETRY') end
redis.call('HDEL', U.users, id)
if redis.call('HGET', U.userName, userName) == id then redis.call('HDEL', U.userName, userName) end
moveEntry(U.externalId, id, ext, '')
if account ~= '' and redis.call('HGET', U.account, account) == id then redis.call('HDEL', U.account, account) end
for i = 10, #ARGV do redis.call('ZREM', U.emails, ARGV[i] .. SEP .. id) end
moveEntry(U.names, id, dn, '')
moveFacets(U.facets, U.order, id, facets, '')
redis.call('ZREM', U.order, id)
for _, gid in ipairs(zrangeIDs(U.groupsOf, id)) do
  if redis.call('SREM', prefix .. 'gm:' .. gid, id) == 1 and redis.call('EXISTS', prefix .. 'g:' .. gid) == 1 then
    redis.call('HINCRBY', prefix .. 'g:' .. gid, 'ver', 1)
    redis.call('HSET', prefix .. 'g:' .. gid, 'm', now)
  end
end
redis.call('ZREMRANGEBYLEX', U.groupsOf, '[' .. id .. SEP, '(' .. id .. NEXT)
return 1
`)

// Group keys: the KEYS of every group script, in this order (groupKeys).
const luaGroupKeys = `local function groupKeys(K)
  return {meta = K[1], group = K[2], members = K[3], name = K[4], externalId = K[5], users = K[6],
    groupsOf = K[7], order = K[8], seq = K[9]}
end
`

// scriptGroupCreate: KEYS = groupKeys(gid), the event keys
// (eventKeys); ARGV = id, displayName, folded displayName, externalId,
// attributes JSON, now (µs), op, eventArgs, n, n members, the role plan
// (luaRolePlan). Appends the events with the group. A group already stored
// under the id with the same creation time and name is this very create,
// re-sent (1, nothing written).
var scriptGroupCreate = redis.NewScript(luaPrelude + luaGroupKeys + luaAppendEvents + luaGroupsOf + luaFacets + luaRolePlan + `
local G = groupKeys(KEYS)
local id, dn, dnl, ext, attrs, now, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local firstMember = 12 + 2 * tonumber(ARGV[10])
local lastMember = firstMember - 1 + tonumber(ARGV[firstMember - 1])
local plan = rolePlan(ARGV, lastMember + 1)
if redis.call('EXISTS', G.meta) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
if redis.call('EXISTS', G.group) == 1 then
  local c, n = unpack(redis.call('HMGET', G.group, 'c', 'dn'))
  if c == now and n == dn then return 1 end
  return redis.error_reply('SJ_CONFLICT id')
end
if dnl ~= '' and redis.call('HEXISTS', G.name, dnl) == 1 then return redis.error_reply('SJ_CONFLICT displayName') end
for i = firstMember, lastMember do
  if redis.call('HEXISTS', G.users, ARGV[i]) == 0 then return redis.error_reply('SJ_INVALIDREF member') end
end
if not rolePlanHolds(plan, G.group, G.users, G.groupsOf) then return redis.error_reply('SJ_RETRY') end
local seq = redis.call('INCR', G.seq)
redis.call('HSET', G.group, 'v', '1', 'id', id, 'dn', dn, 'dnl', dnl, 'x', ext, 'at', attrs,
  'c', now, 'm', now, 'ver', '1', 'seq', seq, 'op', op)
if dnl ~= '' then redis.call('HSET', G.name, dnl, id) end
moveEntry(G.externalId, id, '', ext)
for i = firstMember, lastMember do
  redis.call('SADD', G.members, ARGV[i])
  redis.call('ZADD', G.groupsOf, 0, ARGV[i] .. SEP .. id)
end
redis.call('ZADD', G.order, seq, id)
writeRolePlan(plan, G.users)
appendEvents(KEYS, 10, ARGV, 8)
return 1
`)

// scriptGroupChange: KEYS = groupKeys(gid), the event keys
// (eventKeys); ARGV = id, ifVersion, now (µs), op, setName, displayName,
// folded displayName, setExternalId, externalId, setAttrs, attributes
// JSON, replace (0/1), omitMembers (0/1), eventArgs, nReplace,
// replace..., nRemove, remove..., nAdd, add..., the role plan
// (luaRolePlan). Returns the group as {hash fields
// flat, members}; members is empty without being read when omitMembers
// is 1. The events are appended with the change. A change whose op (not
// empty) equals the group's recorded op was applied before: nothing is
// checked or written.
var scriptGroupChange = redis.NewScript(luaPrelude + luaGroupKeys + luaAppendEvents + luaGroupsOf + luaFacets + luaRolePlan + `
local G = groupKeys(KEYS)
local id, ifVersion, now, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local setName, dn, dnl = ARGV[5] == '1', ARGV[6], ARGV[7]
local setExt, ext = ARGV[8] == '1', ARGV[9]
local setAttrs, attrs = ARGV[10] == '1', ARGV[11]
local replacing, omitMembers = ARGV[12] == '1', ARGV[13] == '1'
local function reply()
  if omitMembers then return {redis.call('HGETALL', G.group), {}} end
  return {redis.call('HGETALL', G.group), redis.call('SMEMBERS', G.members)}
end
if redis.call('EXISTS', G.group) == 0 then return redis.error_reply('SJ_NOTFOUND group') end
if op ~= '' and redis.call('HGET', G.group, 'op') == op then return reply() end
if ifVersion ~= '0' and ifVersion ~= redis.call('HGET', G.group, 'ver') then return redis.error_reply('SJ_PRECOND') end
local oldDnl = redis.call('HGET', G.group, 'dnl') or ''
local oldExt = redis.call('HGET', G.group, 'x') or ''
if setName and dnl ~= oldDnl and dnl ~= '' then
  local o = redis.call('HGET', G.name, dnl)
  if o and o ~= id then return redis.error_reply('SJ_CONFLICT displayName') end
end
local i = 17 + 2 * tonumber(ARGV[16])
local function list()
  local n = tonumber(ARGV[i])
  local out = {}
  for j = i + 1, i + n do out[#out + 1] = ARGV[j] end
  i = i + n + 1
  return out
end
local replace = list()
local remove = list()
local add = list()
local plan = rolePlan(ARGV, i)
if replacing then
  for _, m in ipairs(replace) do
    if redis.call('HEXISTS', G.users, m) == 0 then return redis.error_reply('SJ_INVALIDREF member') end
  end
end
for _, m in ipairs(add) do
  if redis.call('HEXISTS', G.users, m) == 0 then return redis.error_reply('SJ_INVALIDREF member') end
end
if not rolePlanHolds(plan, G.group, G.users, G.groupsOf) then return redis.error_reply('SJ_RETRY') end
-- every check passed: write
if setName then
  if dnl ~= oldDnl then
    if oldDnl ~= '' and redis.call('HGET', G.name, oldDnl) == id then redis.call('HDEL', G.name, oldDnl) end
    if dnl ~= '' then redis.call('HSET', G.name, dnl, id) end
  end
  redis.call('HSET', G.group, 'dn', dn, 'dnl', dnl)
end
if setExt then
  moveEntry(G.externalId, id, oldExt, ext)
  redis.call('HSET', G.group, 'x', ext)
end
if setAttrs then redis.call('HSET', G.group, 'at', attrs) end
local function addMember(m)
  redis.call('SADD', G.members, m)
  redis.call('ZADD', G.groupsOf, 0, m .. SEP .. id)
end
local function removeMember(m)
  redis.call('SREM', G.members, m)
  redis.call('ZREM', G.groupsOf, m .. SEP .. id)
end
if replacing then
  local keep = {}
  for _, m in ipairs(replace) do keep[m] = true end
  for _, m in ipairs(redis.call('SMEMBERS', G.members)) do
    if not keep[m] then removeMember(m) end
  end
  for _, m in ipairs(replace) do addMember(m) end
end
for _, m in ipairs(remove) do removeMember(m) end
for _, m in ipairs(add) do addMember(m) end
redis.call('HINCRBY', G.group, 'ver', 1)
redis.call('HSET', G.group, 'm', now, 'op', op)
writeRolePlan(plan, G.users)
appendEvents(KEYS, 10, ARGV, 14)
return reply()
`)

// scriptGroupDelete: KEYS = groupKeys(gid), the event keys
// (eventKeys); ARGV = id, ifVersion ("0" = any; else it must equal the
// group's version, checked before any write), eventArgs, the role plan
// (luaRolePlan). Appends the events with the delete.
var scriptGroupDelete = redis.NewScript(luaPrelude + luaGroupKeys + luaAppendEvents + luaGroupsOf + luaFacets + luaRolePlan + `
local G = groupKeys(KEYS)
local id, ifVersion = ARGV[1], ARGV[2]
local plan = rolePlan(ARGV, 6 + 2 * tonumber(ARGV[5]))
if redis.call('EXISTS', G.group) == 0 then return redis.error_reply('SJ_NOTFOUND group') end
if ifVersion ~= '0' and ifVersion ~= redis.call('HGET', G.group, 'ver') then return redis.error_reply('SJ_PRECOND') end
if not rolePlanHolds(plan, G.group, G.users, G.groupsOf) then return redis.error_reply('SJ_RETRY') end
local dnl = redis.call('HGET', G.group, 'dnl') or ''
local ext = redis.call('HGET', G.group, 'x') or ''
if dnl ~= '' and redis.call('HGET', G.name, dnl) == id then redis.call('HDEL', G.name, dnl) end
moveEntry(G.externalId, id, ext, '')
for _, m in ipairs(redis.call('SMEMBERS', G.members)) do redis.call('ZREM', G.groupsOf, m .. SEP .. id) end
redis.call('DEL', G.group, G.members)
redis.call('ZREM', G.order, id)
writeRolePlan(plan, G.users)
appendEvents(KEYS, 10, ARGV, 3)
return 1
`)

// scriptGroupQuery (read-only): KEYS = groupKeys(""); ARGV = prefix, mode,
// a, b. Modes: id, name, ext, member (value a), list (offset a, limit b).
// Returns {total, {fields1, members1}, {fields2, members2}, ...}.
var scriptGroupQuery = redis.NewScript(luaPrelude + luaGroupKeys + `
local G = groupKeys(KEYS)
local prefix, mode, a, b = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ids = {}
local total = 0
if mode == 'id' then
  ids = {a}
elseif mode == 'name' then
  local v = redis.call('HGET', G.name, a)
  if v then ids = {v} end
elseif mode == 'ext' then
  ids = zrangeIDs(G.externalId, a)
elseif mode == 'member' then
  ids = zrangeIDs(G.groupsOf, a)
elseif mode == 'list' then
  total = redis.call('ZCARD', G.order)
  local off, lim = tonumber(a), tonumber(b)
  if lim > 0 and off < total then ids = redis.call('ZRANGE', G.order, off, off + lim - 1) end
end
local out = {total}
for _, id in ipairs(ids) do
  local f = redis.call('HGETALL', prefix .. 'g:' .. id)
  if #f > 0 then
    out[#out + 1] = {f, redis.call('SMEMBERS', prefix .. 'gm:' .. id)}
  end
end
return out
`)

// scriptUserGroups (read-only): KEYS = groupsOf; ARGV = workspace key
// prefix, user ids... Returns, per id in order, its groups as luaGroupsOf
// lists them. Group members are never read.
var scriptUserGroups = redis.NewScript(luaPrelude + luaGroupsOf + `
local index, prefix = KEYS[1], ARGV[1]
local out = {}
for a = 2, #ARGV do out[#out + 1] = groupsOf(index, prefix, ARGV[a]) end
return out
`)

// luaWriteAccount writes an account record (the one place that does):
// key is the account hash, a the fields (accountArgs). It returns 'new'
// when it wrote the record, 'same' when the record already holds exactly
// these email and creation time (this very write, re-sent: ids are new
// and random), and 'taken' when another record has the id.
const luaWriteAccount = `local function accountArgs(A, from)
  return {email = A[from], name = A[from + 1], source = A[from + 2], origin = A[from + 3],
    created = A[from + 4], backPointer = A[from + 5]}
end
local function writeAccount(key, a)
  if redis.call('HEXISTS', key, 'v') == 1 then
    local e, c = unpack(redis.call('HMGET', key, 'e', 'c'))
    if e == a.email and c == a.created then return 'same' end
    return 'taken'
  end
  redis.call('HSET', key, 'v', '1', 'e', a.email, 'n', a.name, 's', a.source, 'o', a.origin, 'c', a.created)
  if a.backPointer ~= '' then redis.call('HSET', key, a.backPointer, '1') end
  return 'new'
end
`

// scriptAccountWrite: KEYS = account hash; ARGV = accountArgs (email,
// name, source, origin, created µs, back-pointer field or ""). Returns
// writeAccount's answer.
var scriptAccountWrite = redis.NewScript(luaWriteAccount + `
return writeAccount(KEYS[1], accountArgs(ARGV, 1))
`)

// scriptJITCreate: KEYS = userKeys, account hash, email index, session
// key, the event keys (eventKeys); ARGV = accountArgs (6, with the
// back-pointer), the email index field (folded email), account id,
// session record, session expiry (ms since the epoch), eventArgs, then
// userArgs. A JIT first sign-in in one atomic script, for a deployment
// where all keys are on one server (not a Cluster): returns {-1} when
// another account has the email and {0} when another record has the
// account id (nothing written in either case); otherwise it writes the
// account and publishes it in the email index, then creates the
// membership (an error reply for a refused membership: the account
// stays), then writes the session and the events and returns {1, event
// ids...}. A re-send of a sign-in it completed returns {2} and writes
// nothing.
var scriptJITCreate = redis.NewScript(luaPrelude + luaUserKeys + luaUserArgs + luaFacets + luaCreateUser + luaAppendEvents +
	luaWriteAccount + `
local U = userKeys(KEYS)
local accountKey, emailIndex, sessionKey = KEYS[12], KEYS[13], KEYS[14]
local account = accountArgs(ARGV, 1)
local emailField, accountID, session, sessionExpiry = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local user = userArgs(ARGV, 14 + 2 * tonumber(ARGV[13]))
if redis.call('EXISTS', U.meta) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
local owner = redis.call('HGET', emailIndex, emailField)
if owner and owner ~= accountID then return {-1} end
if writeAccount(accountKey, account) == 'taken' then return {0} end
if not owner then redis.call('HSET', emailIndex, emailField, accountID) end
if redis.call('HGET', U.users, user.id) == user.record then return {2} end
local r = createUser(U, user)
if r ~= 1 then return r end
redis.call('SET', sessionKey, session, 'PXAT', sessionExpiry)
return (appendEvents(KEYS, 15, ARGV, 11))
`)

// scriptTokenCreate: KEYS = meta, tokens; ARGV = id, record. A token
// already stored as this record is this create, re-sent.
var scriptTokenCreate = redis.NewScript(`
local meta, tokens, id, record = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', meta) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
local cur = redis.call('HGET', tokens, id)
if cur == record then return 1 end
if cur then return redis.error_reply('SJ_CONFLICT id') end
redis.call('HSET', tokens, id, record)
return 1
`)

// scriptTokenTouch: KEYS = tokens, tokens:used; ARGV = id, time (µs).
// Keeps the later of the stored time and this one, for a live token only.
var scriptTokenTouch = redis.NewScript(`
local tokens, used, id, at = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('HEXISTS', tokens, id) == 0 then return redis.error_reply('SJ_NOTFOUND token') end
local cur = redis.call('HGET', used, id)
if not cur or tonumber(cur) < tonumber(at) then redis.call('HSET', used, id, at) end
return 1
`)

// scriptWorkspaceDelete: KEYS = meta; ARGV = prefix, the hour now (Unix
// seconds / 3600). Deletes every indexed
// key of the workspace (its webhook endpoints, with their secrets, attempts
// and outbox, included) and returns the account ids of its memberships.
var scriptWorkspaceDelete = redis.NewScript(`
local meta, prefix = KEYS[1], ARGV[1]
if redis.call('EXISTS', meta) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
local accounts = redis.call('HKEYS', prefix .. 'ix:ua')
for _, g in ipairs(redis.call('ZRANGE', prefix .. 'ix:go', 0, -1)) do
  redis.call('UNLINK', prefix .. 'g:' .. g, prefix .. 'gm:' .. g)
end
for _, f in ipairs(redis.call('SMEMBERS', prefix .. 'ix:uf')) do redis.call('UNLINK', prefix .. 'ix:uf:' .. f) end
for _, w in ipairs(redis.call('SMEMBERS', prefix .. 'webhooks')) do
  redis.call('UNLINK', prefix .. 'webhook:' .. w, prefix .. 'webhook:' .. w .. ':attempts')
end
for _, k in ipairs({'tokens', 'tokens:used', 'scim:errors', 'users', 'ix:un', 'ix:ux', 'ix:uxz', 'ix:ua', 'ix:ue', 'ix:uo', 'seq:u',
    'ix:ug', 'ix:uf', 'ix:ufv', 'ix:udn', 'ix:gn', 'ix:gx', 'ix:gxz', 'ix:go', 'seq:g', 'events', 'events:login', 'demo:received',
    'webhooks', 'outbox', 'outbox:dropped'}) do
  redis.call('UNLINK', prefix .. k)
end
-- The provisioning counts are one key per hour (scim:counts:<hour>),
-- each expiring after the window: the window's keys around ARGV[2], the
-- hour now.
local hour = tonumber(ARGV[2])
for h = hour - 26, hour + 1 do redis.call('UNLINK', prefix .. 'scim:counts:' .. h) end
redis.call('UNLINK', meta)
return accounts
`)

// scriptVerificationCreate: KEYS = current-pointer key, new token key;
// ARGV = account key prefix, token hash, record, expiry (ms since epoch).
// Replaces (deletes) the previous token of the same account and workspace.
var scriptVerificationCreate = redis.NewScript(`
local current, tokenKey = KEYS[1], KEYS[2]
local prefix, hash, record, expiry = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local old = redis.call('GET', current)
if old and old ~= hash then redis.call('DEL', prefix .. 'vt:' .. old) end
redis.call('SET', tokenKey, record, 'PXAT', expiry)
redis.call('SET', current, hash, 'PXAT', expiry)
return 1
`)

// scriptVerificationGet: KEYS = token key; ARGV = account key prefix,
// token hash, now (ms), consume op ("" = only read). Returns the record
// when it is live and current. Consuming marks it used by the op ("U", op,
// NUL, then the record, until it would have expired) and clears the
// current pointer: a later consume with the same op (a re-sent
// confirmation) gets the record again, every other call SJ_NOTFOUND.
var scriptVerificationGet = redis.NewScript(luaPrelude + `
local tokenKey = KEYS[1]
local prefix, hash, now, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rec = redis.call('GET', tokenKey)
if not rec then return redis.error_reply('SJ_NOTFOUND verification') end
local usedBy = nil
if string.sub(rec, 1, 1) == 'U' then
  local sep = string.find(rec, SEP, 2, true)
  if not sep then return redis.error_reply('SJ_NOTFOUND verification') end
  usedBy, rec = string.sub(rec, 2, sep - 1), string.sub(rec, sep + 1)
end
local d = cjson.decode(rec)
if tonumber(d.exp) <= tonumber(now) then return redis.error_reply('SJ_NOTFOUND verification') end
if usedBy then
  if op ~= '' and usedBy == op then return rec end
  return redis.error_reply('SJ_NOTFOUND verification')
end
local current = prefix .. 'vc:' .. d.ws
if redis.call('GET', current) ~= hash then return redis.error_reply('SJ_NOTFOUND verification') end
if op ~= '' then
  redis.call('SET', tokenKey, 'U' .. op .. SEP .. rec, 'KEEPTTL')
  redis.call('DEL', current)
end
return rec
`)

// scriptConsumeOnce: KEYS = once key; ARGV = token (unique per call),
// expiry (ms since the epoch). Returns 1 for the first consumer, or when
// the key already holds this token (the same call, re-sent); 0 otherwise.
// scriptRate is GCRA (generic cell rate algorithm, the arithmetic of
// github.com/go-redis/redis_rate, which takes one key per call) over
// every limit in KEYS, all or none: each key holds its theoretical
// arrival time (TAT); an event is within a limit when the TAT after it is
// at most the burst offset ahead of now. The clock is the server's
// (TIME), so every process agrees. ARGV[1] is the number of events (1,
// or 0 to only look); then, per key, the emission interval (period over
// limit) and the burst offset (burst times the interval), in seconds.
// Times are seconds since 2017-01-01 (as redis_rate's: tostring keeps 10
// µs steps until 2048). Returns {0, 0} when every limit allows (and then
// counts the events against each; a key expires once it is back at a full
// burst), else {i, µs} for the first limit that refuses: how long until
// it would allow one event.
var scriptRate = redis.NewScript(`
local cost = tonumber(ARGV[1])
local t = redis.call("TIME")
local now = (tonumber(t[1]) - 1483228800) + tonumber(t[2]) / 1000000
local tats = {}
for i = 1, #KEYS do
  local interval, offset = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local tat = math.max(tonumber(redis.call("GET", KEYS[i]) or now), now)
  local wait = tat + interval - offset - now
  if wait > 0 then
    return {i, math.ceil(wait * 1000000)}
  end
  tats[i] = tat + interval * cost
end
if cost > 0 then
  for i = 1, #KEYS do
    redis.call("SET", KEYS[i], tostring(tats[i]), "PX", math.ceil((tats[i] - now) * 1000))
  end
end
return {0, 0}
`)

var scriptConsumeOnce = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == ARGV[1] then return 1 end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return 1
`)

// scriptMailAppend: KEYS = id list, records hash, status hash, attempts
// hash; ARGV = id, record, status, cap, attempts (may be empty). Trims the outbox to cap messages. A
// message already recorded under the id is this append, re-sent.
var scriptMailAppend = redis.NewScript(`
local ids, records, statuses, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, record, status, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('HEXISTS', records, id) == 1 then return 1 end
redis.call('HSET', records, id, record)
redis.call('HSET', statuses, id, status)
if ARGV[5] ~= '' then redis.call('HSET', attempts, id, ARGV[5]) end
redis.call('LPUSH', ids, id)
while redis.call('LLEN', ids) > cap do
  local old = redis.call('RPOP', ids)
  redis.call('HDEL', records, old)
  redis.call('HDEL', statuses, old)
  redis.call('HDEL', attempts, old)
end
return 1
`)

// scriptMailAttempt: KEYS = records hash, status hash, attempts hash; ARGV
// = id, status, attempt. The attempts field is the attempts' JSON objects
// joined by commas (appending needs no decoding).
var scriptMailAttempt = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return redis.error_reply('SJ_NOTFOUND mail') end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local prev = redis.call('HGET', KEYS[3], ARGV[1])
if prev then
  redis.call('HSET', KEYS[3], ARGV[1], prev .. ',' .. ARGV[3])
else
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
end
return 1
`)
