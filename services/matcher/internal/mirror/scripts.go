package mirror

import "github.com/redis/go-redis/v9"

// Record values stored in the record hashes look like
//
//	<modified ms> RS <entries> RS <payload>
//
// where RS is \x1e, entries are "<key> US <kind>" joined by GS (\x1d), US is \x1f. Keys are
// normalised domains, emails or company ids, none of which can hold a control character.
// Each entry is mirrored as the member "<id>|<kind>" of the set "<prefix><index>:<key>".
//
// The scripts touch keys they build from the portal prefix ("sb:{portal}:"). Every such
// key carries the portal's hash tag, so in Redis Cluster they all live in the slot of
// KEYS[1]; scripts are per portal and never mix portals.
//
// Every write that changes what a look-up answers bumps a field of the portal's generation
// hash "<prefix>gen" in the same script call: "c" for companies and deals (a deal changes
// its companies' open-deal counts), "p" for contacts. A copy of look-up answers kept
// outside Redis is current while the generation it was read under is unchanged.

// putScript writes records with their index entries, atomically per call:
//
//	KEYS[1]  record hash
//	ARGV     prefix, index kind, tombstone kind, miss kind ("" = none), generation field,
//	         then (id, modified, value)*
//
// A record is skipped when the stored one is newer, or when a tombstone at least as new
// says it was deleted. Entries that appear or disappear invalidate the negative cache of
// their key. It returns {written, unchanged, skipped}.
var putScript = redis.NewScript(`
local h = KEYS[1]
local prefix, ik, gk, mk, gen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local written, unchanged, skipped = 0, 0, 0
local function entries(v)
  local out = {}
  local s = string.match(v, '^[^\030]*\030([^\030]*)')
  if s then
    for e in string.gmatch(s, '[^\029]+') do
      local key, k = string.match(e, '^(.*)\031(.)$')
      if key then out[key .. '|' .. k] = {key, k} end
    end
  end
  return out
end
for i = 6, #ARGV, 3 do
  local id, mod, val = ARGV[i], tonumber(ARGV[i+1]), ARGV[i+2]
  local gkey = prefix .. 'gone:' .. gk .. ':' .. id
  local gone = redis.call('GET', gkey)
  local old = redis.call('HGET', h, id)
  local skip = false
  if gone and tonumber(gone) >= mod then skip = true end
  if not skip and old then
    local om = tonumber(string.match(old, '^(%d+)'))
    if om and om > mod then skip = true end
  end
  if skip then
    skipped = skipped + 1
  elseif old == val then
    unchanged = unchanged + 1
  else
    local before, after = {}, entries(val)
    if old then before = entries(old) end
    for m, e in pairs(before) do
      if not after[m] then
        redis.call('SREM', prefix .. ik .. ':' .. e[1], id .. '|' .. e[2])
        if mk ~= '' then redis.call('DEL', prefix .. 'miss:' .. mk .. ':' .. e[1]) end
      end
    end
    for m, e in pairs(after) do
      if not before[m] then
        redis.call('SADD', prefix .. ik .. ':' .. e[1], id .. '|' .. e[2])
        if mk ~= '' then redis.call('DEL', prefix .. 'miss:' .. mk .. ':' .. e[1]) end
      end
    end
    if gone then redis.call('DEL', gkey) end
    redis.call('HSET', h, id, val)
    written = written + 1
  end
end
if written > 0 then redis.call('HINCRBY', prefix .. 'gen', gen, 1) end
return {written, unchanged, skipped}
`)

// deleteScript removes records and their index entries and leaves tombstones:
//
//	KEYS[1]  record hash
//	ARGV     prefix, index kind, tombstone kind, miss kind, extra kind ("" = none),
//	         tombstone TTL seconds, deleted-at ms, generation field, then ids
//
// The extra kind names a set keyed by the deleted id that goes with it (a company's
// open deals). A tombstone newer than deleted-at is kept. It returns how many records
// existed.
var deleteScript = redis.NewScript(`
local h = KEYS[1]
local prefix, ik, gk, mk, xk = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ttl, at, gen = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local removed = 0
for i = 9, #ARGV do
  local id = ARGV[i]
  local old = redis.call('HGET', h, id)
  if old then
    local s = string.match(old, '^[^\030]*\030([^\030]*)')
    if s then
      for e in string.gmatch(s, '[^\029]+') do
        local key, k = string.match(e, '^(.*)\031(.)$')
        if key then
          redis.call('SREM', prefix .. ik .. ':' .. key, id .. '|' .. k)
          if mk ~= '' then redis.call('DEL', prefix .. 'miss:' .. mk .. ':' .. key) end
        end
      end
    end
    redis.call('HDEL', h, id)
    removed = removed + 1
  end
  if xk ~= '' then redis.call('DEL', prefix .. xk .. ':' .. id) end
  local gkey = prefix .. 'gone:' .. gk .. ':' .. id
  local gone = tonumber(redis.call('GET', gkey) or '0')
  if gone < at then redis.call('SET', gkey, at, 'EX', ttl) end
end
if removed > 0 then redis.call('HINCRBY', prefix .. 'gen', gen, 1) end
return removed
`)

// lookupScript answers index lookups in one round trip:
//
//	KEYS[1]  record hash
//	ARGV     prefix, index kind, miss kind, count kind ("" = none), then keys
//
// It returns {ready, row per key}. A row is {"m", member, record, count, ...} for keys
// with index entries (count: SCARD of "<count kind>:<id>", 0 without a count kind),
// {"n"} for a key with a cached negative answer, and {} otherwise. A member whose
// record is missing (written concurrently) comes with a nil record.
var lookupScript = redis.NewScript(`
local h = KEYS[1]
local prefix, ik, mk, ck = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {redis.call('HGET', prefix .. 'mirror', 'ready') or ''}
for i = 5, #ARGV do
  local key = ARGV[i]
  local ms = redis.call('SMEMBERS', prefix .. ik .. ':' .. key)
  local row = {}
  if #ms > 0 then
    row[1] = 'm'
    for _, m in ipairs(ms) do
      local id = string.match(m, '^(.*)|')
      row[#row+1] = m
      row[#row+1] = redis.call('HGET', h, id) or false
      if ck ~= '' then
        row[#row+1] = redis.call('SCARD', prefix .. ck .. ':' .. id)
      else
        row[#row+1] = 0
      end
    end
  elseif redis.call('EXISTS', prefix .. 'miss:' .. mk .. ':' .. key) == 1 then
    row[1] = 'n'
  end
  out[#out+1] = row
end
return out
`)

// recordsScript reads records by id with their counts:
//
//	KEYS[1]  record hash
//	ARGV     prefix, count kind ("" = none), then ids
//
// It returns {record, count}* (record nil when absent).
var recordsScript = redis.NewScript(`
local h = KEYS[1]
local prefix, ck = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  out[#out+1] = redis.call('HGET', h, id) or false
  if ck ~= '' then
    out[#out+1] = redis.call('SCARD', prefix .. ck .. ':' .. id)
  else
    out[#out+1] = 0
  end
end
return out
`)
