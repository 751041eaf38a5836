package redisstore

import "github.com/redis/go-redis/v9"

// Lua scripts. Each one touches only keys of one hash tag; the keys it
// builds from ARGV[prefix] share the tag of KEYS (see docs/storage.md).
// Scripts check every condition before their first write, because Redis
// does not roll a script back when it fails half-way.
//
// Separator for composite index members ("value\0id"): NUL, which no
// indexed value or id may contain (the Go side filters it out).

const luaPrelude = `local SEP = string.char(0)
local NEXT = string.char(1)
`

// luaCreateUser is the user-create step shared by scriptUserCreate and
// scriptAccountUserCreate: K = userKeys; A = id, record, lower(userName),
// externalId, accountId, lower(emails) other than the userName... It
// checks every condition before its first write and returns 1, or an
// SJ_ error reply.
const luaCreateUser = `local function createUser(K, A)
  if redis.call('EXISTS', K[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
  local id = A[1]
  if redis.call('HEXISTS', K[2], id) == 1 then return redis.error_reply('SJ_CONFLICT id') end
  if redis.call('HEXISTS', K[3], A[3]) == 1 then return redis.error_reply('SJ_CONFLICT userName') end
  if A[4] ~= '' and redis.call('HEXISTS', K[4], A[4]) == 1 then return redis.error_reply('SJ_CONFLICT externalId') end
  if A[5] ~= '' and redis.call('HEXISTS', K[5], A[5]) == 1 then return redis.error_reply('SJ_CONFLICT account') end
  redis.call('HSET', K[2], id, A[2])
  redis.call('HSET', K[3], A[3], id)
  if A[4] ~= '' then redis.call('HSET', K[4], A[4], id) end
  if A[5] ~= '' then redis.call('HSET', K[5], A[5], id) end
  for i = 6, #A do redis.call('ZADD', K[6], 0, A[i] .. SEP .. id) end
  local seq = redis.call('INCR', K[8])
  redis.call('ZADD', K[7], seq, id)
  return 1
end
`

// scriptUserCreate: KEYS = userKeys; ARGV = id, record, lower(userName),
// externalId, accountId, lower(emails) other than the userName...
var scriptUserCreate = redis.NewScript(luaPrelude + luaCreateUser + `return createUser(KEYS, ARGV)
`)

// scriptUserQuery (read-only): KEYS = users, the mode's index (ix:un,
// ix:ux, ix:ua or ix:ue; ix:uo in list and id mode), ix:uo, ix:ug (see
// queryArgs); ARGV = mode, a, b, workspace key prefix, groups ("1" or "0").
// Modes: id, un, ext, acct, email (value a), list (offset a, limit b).
// Returns {total, record1, seq1, record2, seq2, ...} (seq only in the email and
// list modes, which can return several users; "0" otherwise); total only in list
// mode. With groups "1", each user is followed by its group references
// {gid1, dn1, gid2, dn2, ...} (group members are not read):
// {total, record1, seq1, groups1, ...}. Only the four keys a query reads
// are passed (each key is an argument Redis parses and Lua copies).
var scriptUserQuery = redis.NewScript(luaPrelude + `
local mode = ARGV[1]
local ids = {}
local total = 0
if mode == 'id' then
  ids = {ARGV[2]}
elseif mode == 'un' or mode == 'ext' or mode == 'acct' then
  local v = redis.call('HGET', KEYS[2], ARGV[2])
  if v then ids = {v} end
elseif mode == 'email' then
  -- the email equal to a user's userName is found through the userName
  -- index (the caller filters on the record's emails); KEYS[2] is ix:ue
  local v = redis.call('HGET', ARGV[4] .. 'ix:un', ARGV[2])
  if v then ids[#ids + 1] = v end
  local ms = redis.call('ZRANGEBYLEX', KEYS[2], '[' .. ARGV[2] .. SEP, '(' .. ARGV[2] .. NEXT)
  for _, m in ipairs(ms) do
    local id = string.sub(m, #ARGV[2] + 2)
    if id ~= v then ids[#ids + 1] = id end
  end
elseif mode == 'list' then
  total = redis.call('ZCARD', KEYS[3])
  local off = tonumber(ARGV[2])
  local lim = tonumber(ARGV[3])
  if lim > 0 and off < total then ids = redis.call('ZRANGE', KEYS[3], off, off + lim - 1) end
end
local p = ARGV[4]
local groups = ARGV[5] == '1'
local out = {total}
for _, id in ipairs(ids) do
  local rec = redis.call('HGET', KEYS[1], id)
  if rec then
    out[#out + 1] = rec
    -- the creation order sorts what email and list return; a lookup by
    -- id, userName, externalId or account finds at most one user
    if mode == 'email' or mode == 'list' then
      out[#out + 1] = redis.call('ZSCORE', KEYS[3], id) or '0'
    else
      out[#out + 1] = '0'
    end
    if groups then
      -- the user's group references, as scriptUserGroups reads them
      local gs = {}
      for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[4], '[' .. id .. SEP, '(' .. id .. NEXT)) do
        local gid = string.sub(m, #id + 2)
        local dn = redis.call('HGET', p .. 'g:' .. gid, 'dn')
        if dn then
          gs[#gs + 1] = gid
          gs[#gs + 1] = dn
        end
      end
      out[#out + 1] = gs
    end
  end
end
return out
`)

// scriptUserCAS: KEYS = userKeys; ARGV = id, expected record, new record,
// old lower(userName), new lower(userName), old externalId, new externalId,
// n, n old lower(emails)..., new lower(emails)...
var scriptUserCAS = redis.NewScript(luaPrelude + `
local id = ARGV[1]
local cur = redis.call('HGET', KEYS[2], id)
if not cur then return redis.error_reply('SJ_NOTFOUND user') end
if cur ~= ARGV[2] then return redis.error_reply('SJ_RETRY') end
if ARGV[5] ~= ARGV[4] then
  local o = redis.call('HGET', KEYS[3], ARGV[5])
  if o and o ~= id then return redis.error_reply('SJ_CONFLICT userName') end
end
if ARGV[7] ~= ARGV[6] and ARGV[7] ~= '' then
  local o = redis.call('HGET', KEYS[4], ARGV[7])
  if o and o ~= id then return redis.error_reply('SJ_CONFLICT externalId') end
end
if ARGV[5] ~= ARGV[4] then
  if redis.call('HGET', KEYS[3], ARGV[4]) == id then redis.call('HDEL', KEYS[3], ARGV[4]) end
  redis.call('HSET', KEYS[3], ARGV[5], id)
end
if ARGV[7] ~= ARGV[6] then
  if ARGV[6] ~= '' and redis.call('HGET', KEYS[4], ARGV[6]) == id then redis.call('HDEL', KEYS[4], ARGV[6]) end
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[4], ARGV[7], id) end
end
local n = tonumber(ARGV[8])
for i = 9, 8 + n do redis.call('ZREM', KEYS[6], ARGV[i] .. SEP .. id) end
for i = 9 + n, #ARGV do redis.call('ZADD', KEYS[6], 0, ARGV[i] .. SEP .. id) end
redis.call('HSET', KEYS[2], id, ARGV[3])
return 1
`)

// scriptUserDelete: KEYS = userKeys; ARGV = key prefix of the workspace,
// id, expected record, lower(userName), externalId, accountId, now (µs),
// lower(emails)...
var scriptUserDelete = redis.NewScript(luaPrelude + `
local p = ARGV[1]
local id = ARGV[2]
local cur = redis.call('HGET', KEYS[2], id)
if not cur then return redis.error_reply('SJ_NOTFOUND user') end
if cur ~= ARGV[3] then return redis.error_reply('SJ_RETRY') end
redis.call('HDEL', KEYS[2], id)
if redis.call('HGET', KEYS[3], ARGV[4]) == id then redis.call('HDEL', KEYS[3], ARGV[4]) end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[4], ARGV[5]) == id then redis.call('HDEL', KEYS[4], ARGV[5]) end
if ARGV[6] ~= '' and redis.call('HGET', KEYS[5], ARGV[6]) == id then redis.call('HDEL', KEYS[5], ARGV[6]) end
for i = 8, #ARGV do redis.call('ZREM', KEYS[6], ARGV[i] .. SEP .. id) end
redis.call('ZREM', KEYS[7], id)
local lo, hi = '[' .. id .. SEP, '(' .. id .. NEXT
local ms = redis.call('ZRANGEBYLEX', KEYS[9], lo, hi)
for _, m in ipairs(ms) do
  local gid = string.sub(m, #id + 2)
  if redis.call('SREM', p .. 'gm:' .. gid, id) == 1 and redis.call('EXISTS', p .. 'g:' .. gid) == 1 then
    redis.call('HINCRBY', p .. 'g:' .. gid, 'ver', 1)
    redis.call('HSET', p .. 'g:' .. gid, 'm', ARGV[7])
  end
end
redis.call('ZREMRANGEBYLEX', KEYS[9], lo, hi)
return 1
`)

// scriptGroupCreate: KEYS = groupKeys(gid); ARGV = id, displayName,
// lower(displayName), externalId, attributes JSON, now (µs), members...
var scriptGroupCreate = redis.NewScript(luaPrelude + `
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
local id = ARGV[1]
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('SJ_CONFLICT id') end
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then return redis.error_reply('SJ_CONFLICT displayName') end
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[5], ARGV[4]) == 1 then return redis.error_reply('SJ_CONFLICT externalId') end
for i = 7, #ARGV do
  if redis.call('HEXISTS', KEYS[6], ARGV[i]) == 0 then return redis.error_reply('SJ_INVALIDREF member') end
end
local seq = redis.call('INCR', KEYS[9])
redis.call('HSET', KEYS[2], 'v', '1', 'id', id, 'dn', ARGV[2], 'dnl', ARGV[3], 'x', ARGV[4], 'at', ARGV[5],
  'c', ARGV[6], 'm', ARGV[6], 'ver', '1', 'seq', seq)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], ARGV[3], id) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[5], ARGV[4], id) end
for i = 7, #ARGV do
  redis.call('SADD', KEYS[3], ARGV[i])
  redis.call('ZADD', KEYS[7], 0, ARGV[i] .. SEP .. id)
end
redis.call('ZADD', KEYS[8], seq, id)
return 1
`)

// scriptGroupChange: KEYS = groupKeys(gid); ARGV = id, ifVersion, now (µs),
// setName, displayName, lower(displayName), setExt, externalId, setAttrs,
// attributes JSON, replace(0/1), omitMembers(0/1), nReplace, replace...,
// nRemove, remove..., add... Returns the group as {hash fields flat,
// members}; members is empty without being read when omitMembers is 1.
var scriptGroupChange = redis.NewScript(luaPrelude + `
local id = ARGV[1]
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('SJ_NOTFOUND group') end
local ver = redis.call('HGET', KEYS[2], 'ver')
if ARGV[2] ~= '0' and ARGV[2] ~= ver then return redis.error_reply('SJ_PRECOND') end
local oldDnl = redis.call('HGET', KEYS[2], 'dnl') or ''
local oldExt = redis.call('HGET', KEYS[2], 'x') or ''
if ARGV[4] == '1' and ARGV[6] ~= oldDnl and ARGV[6] ~= '' then
  local o = redis.call('HGET', KEYS[4], ARGV[6])
  if o and o ~= id then return redis.error_reply('SJ_CONFLICT displayName') end
end
if ARGV[7] == '1' and ARGV[8] ~= oldExt and ARGV[8] ~= '' then
  local o = redis.call('HGET', KEYS[5], ARGV[8])
  if o and o ~= id then return redis.error_reply('SJ_CONFLICT externalId') end
end
local i = 13
local replace = nil
if ARGV[11] == '1' then
  replace = {}
  local n = tonumber(ARGV[i]); i = i + 1
  for j = i, i + n - 1 do replace[#replace + 1] = ARGV[j] end
  i = i + n
else
  i = i + 1
end
local remove = {}
local n = tonumber(ARGV[i]); i = i + 1
for j = i, i + n - 1 do remove[#remove + 1] = ARGV[j] end
i = i + n
local add = {}
for j = i, #ARGV do add[#add + 1] = ARGV[j] end
if replace then
  for _, m in ipairs(replace) do
    if redis.call('HEXISTS', KEYS[6], m) == 0 then return redis.error_reply('SJ_INVALIDREF member') end
  end
end
for _, m in ipairs(add) do
  if redis.call('HEXISTS', KEYS[6], m) == 0 then return redis.error_reply('SJ_INVALIDREF member') end
end
-- all checks passed: write
if ARGV[4] == '1' then
  if ARGV[6] ~= oldDnl then
    if oldDnl ~= '' and redis.call('HGET', KEYS[4], oldDnl) == id then redis.call('HDEL', KEYS[4], oldDnl) end
    if ARGV[6] ~= '' then redis.call('HSET', KEYS[4], ARGV[6], id) end
  end
  redis.call('HSET', KEYS[2], 'dn', ARGV[5], 'dnl', ARGV[6])
end
if ARGV[7] == '1' then
  if ARGV[8] ~= oldExt then
    if oldExt ~= '' and redis.call('HGET', KEYS[5], oldExt) == id then redis.call('HDEL', KEYS[5], oldExt) end
    if ARGV[8] ~= '' then redis.call('HSET', KEYS[5], ARGV[8], id) end
  end
  redis.call('HSET', KEYS[2], 'x', ARGV[8])
end
if ARGV[9] == '1' then redis.call('HSET', KEYS[2], 'at', ARGV[10]) end
if replace then
  local keep = {}
  for _, m in ipairs(replace) do keep[m] = true end
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if not keep[m] then
      redis.call('SREM', KEYS[3], m)
      redis.call('ZREM', KEYS[7], m .. SEP .. id)
    end
  end
  for _, m in ipairs(replace) do
    redis.call('SADD', KEYS[3], m)
    redis.call('ZADD', KEYS[7], 0, m .. SEP .. id)
  end
end
for _, m in ipairs(remove) do
  redis.call('SREM', KEYS[3], m)
  redis.call('ZREM', KEYS[7], m .. SEP .. id)
end
for _, m in ipairs(add) do
  redis.call('SADD', KEYS[3], m)
  redis.call('ZADD', KEYS[7], 0, m .. SEP .. id)
end
redis.call('HINCRBY', KEYS[2], 'ver', 1)
redis.call('HSET', KEYS[2], 'm', ARGV[3])
if ARGV[12] == '1' then return {redis.call('HGETALL', KEYS[2]), {}} end
return {redis.call('HGETALL', KEYS[2]), redis.call('SMEMBERS', KEYS[3])}
`)

// scriptGroupDelete: KEYS = groupKeys(gid); ARGV = id, ifVersion ("0" =
// any; else it must equal the group's version, checked before any write).
var scriptGroupDelete = redis.NewScript(luaPrelude + `
local id = ARGV[1]
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('SJ_NOTFOUND group') end
if ARGV[2] ~= '0' and ARGV[2] ~= redis.call('HGET', KEYS[2], 'ver') then return redis.error_reply('SJ_PRECOND') end
local dnl = redis.call('HGET', KEYS[2], 'dnl') or ''
local x = redis.call('HGET', KEYS[2], 'x') or ''
if dnl ~= '' and redis.call('HGET', KEYS[4], dnl) == id then redis.call('HDEL', KEYS[4], dnl) end
if x ~= '' and redis.call('HGET', KEYS[5], x) == id then redis.call('HDEL', KEYS[5], x) end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('ZREM', KEYS[7], m .. SEP .. id) end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[8], id)
return 1
`)

// scriptGroupQuery (read-only): KEYS = groupKeys(""); ARGV = prefix, mode,
// a, b. Modes: id, name, ext, member (value a), list (offset a, limit b).
// Returns {total, {fields1, members1}, {fields2, members2}, ...}.
var scriptGroupQuery = redis.NewScript(luaPrelude + `
local p = ARGV[1]
local mode = ARGV[2]
local ids = {}
local total = 0
if mode == 'id' then
  ids = {ARGV[3]}
elseif mode == 'name' or mode == 'ext' then
  local k = KEYS[4]
  if mode == 'ext' then k = KEYS[5] end
  local v = redis.call('HGET', k, ARGV[3])
  if v then ids = {v} end
elseif mode == 'member' then
  local ms = redis.call('ZRANGEBYLEX', KEYS[7], '[' .. ARGV[3] .. SEP, '(' .. ARGV[3] .. NEXT)
  for _, m in ipairs(ms) do ids[#ids + 1] = string.sub(m, #ARGV[3] + 2) end
elseif mode == 'list' then
  total = redis.call('ZCARD', KEYS[8])
  local off = tonumber(ARGV[3])
  local lim = tonumber(ARGV[4])
  if lim > 0 and off < total then ids = redis.call('ZRANGE', KEYS[8], off, off + lim - 1) end
end
local out = {total}
for _, id in ipairs(ids) do
  local f = redis.call('HGETALL', p .. 'g:' .. id)
  if #f > 0 then
    out[#out + 1] = {f, redis.call('SMEMBERS', p .. 'gm:' .. id)}
  end
end
return out
`)

// scriptUserGroups (read-only): KEYS = ix:ug; ARGV = workspace key prefix,
// user ids... Returns, per id in order, n followed by n pairs (group id,
// displayName), group ids in lex order. Index entries whose group hash is
// gone are skipped. Group members (gm:<gid>) are never read.
var scriptUserGroups = redis.NewScript(luaPrelude + `
local p = ARGV[1]
local out = {}
for a = 2, #ARGV do
  local id = ARGV[a]
  local ms = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. id .. SEP, '(' .. id .. NEXT)
  local at = #out + 1
  out[at] = 0
  local n = 0
  for _, m in ipairs(ms) do
    local gid = string.sub(m, #id + 2)
    local dn = redis.call('HGET', p .. 'g:' .. gid, 'dn')
    if dn then
      out[#out + 1] = gid
      out[#out + 1] = dn
      n = n + 1
    end
  end
  out[at] = n
end
return out
`)

// scriptAccountCreate: KEYS = account hash; ARGV = email, name, source,
// origin, created (µs). Returns 1, or 0 when the id is taken.
var scriptAccountCreate = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'v') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', '1', 'e', ARGV[1], 'n', ARGV[2], 's', ARGV[3], 'o', ARGV[4], 'c', ARGV[5])
return 1
`)

// scriptTokenCreate: KEYS = meta, tokens; ARGV = id, record.
var scriptTokenCreate = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return redis.error_reply('SJ_CONFLICT id') end
return 1
`)

// scriptWorkspaceDelete: KEYS = meta; ARGV = prefix. Deletes every indexed
// key of the workspace and returns the account ids of its memberships.
var scriptWorkspaceDelete = redis.NewScript(`
local p = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('SJ_NOTFOUND workspace') end
local accts = redis.call('HKEYS', p .. 'ix:ua')
for _, g in ipairs(redis.call('ZRANGE', p .. 'ix:go', 0, -1)) do
  redis.call('UNLINK', p .. 'g:' .. g, p .. 'gm:' .. g)
end
redis.call('UNLINK', KEYS[1], p .. 'tokens', p .. 'users', p .. 'ix:un', p .. 'ix:ux', p .. 'ix:ua',
  p .. 'ix:ue', p .. 'ix:uo', p .. 'seq:u', p .. 'ix:ug', p .. 'ix:gn', p .. 'ix:gx', p .. 'ix:go',
  p .. 'seq:g', p .. 'events', p .. 'events:login')
return accts
`)

// scriptVerificationCreate: KEYS = current-pointer key, new token key;
// ARGV = account key prefix, token hash, record, expiry (ms since epoch).
// Replaces (deletes) the previous token of the same account and workspace.
var scriptVerificationCreate = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
if old and old ~= ARGV[2] then redis.call('DEL', ARGV[1] .. 'vt:' .. old) end
redis.call('SET', KEYS[2], ARGV[3], 'PXAT', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[4])
return 1
`)

// scriptVerificationGet: KEYS = token key; ARGV = account key prefix, token
// hash, now (ms), consume (0/1). Returns the record when it is live and
// current (and deletes it and the pointer when consuming).
var scriptVerificationGet = redis.NewScript(`
local rec = redis.call('GET', KEYS[1])
if not rec then return redis.error_reply('SJ_NOTFOUND verification') end
local d = cjson.decode(rec)
if tonumber(d.exp) <= tonumber(ARGV[3]) then return redis.error_reply('SJ_NOTFOUND verification') end
local ptr = ARGV[1] .. 'vc:' .. d.ws
if redis.call('GET', ptr) ~= ARGV[2] then return redis.error_reply('SJ_NOTFOUND verification') end
if ARGV[4] == '1' then redis.call('DEL', KEYS[1], ptr) end
return rec
`)

// scriptMailAppend: KEYS = id list, records hash, status hash; ARGV = id,
// record, status, cap. Trims the outbox to cap messages.
var scriptMailAppend = redis.NewScript(`
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('LPUSH', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[4])
while redis.call('LLEN', KEYS[1]) > cap do
  local old = redis.call('RPOP', KEYS[1])
  redis.call('HDEL', KEYS[2], old)
  redis.call('HDEL', KEYS[3], old)
end
return 1
`)

// scriptMailStatus: KEYS = records hash, status hash; ARGV = id, status.
var scriptMailStatus = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return redis.error_reply('SJ_NOTFOUND mail') end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)
