package quota

import "github.com/redis/go-redis/v9"

// redisRatePrefix is the prefix github.com/go-redis/redis_rate/v10 puts in
// front of every key; pushTATScript edits the same key.
const redisRatePrefix = "rate:"

// pushTATScript moves a redis_rate GCRA key's theoretical arrival time (TAT,
// stored by redis_rate as seconds since 2017-01-01 from Redis TIME) to at
// least now + ARGV[1] seconds. It never moves it back.
var pushTATScript = redis.NewScript(`
local ahead = tonumber(ARGV[1])
local t = redis.call("TIME")
local now = (t[1] - 1483228800) + (t[2] / 1000000)
local target = now + ahead
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
if tat < target then
  redis.call("SET", KEYS[1], target, "EX", math.max(1, math.ceil(ahead)))
  return 1
end
return 0
`)

// takeDailyScript increments the daily counter KEYS[1] unless it already
// reached ARGV[1]; ARGV[2] is the key's TTL in ms. It returns the new count,
// or -1 when the quota is spent.
var takeDailyScript = redis.NewScript(`
local used = tonumber(redis.call("GET", KEYS[1]) or "0")
if used >= tonumber(ARGV[1]) then
  return -1
end
used = redis.call("INCR", KEYS[1])
if used == 1 then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return used
`)

// setMaxScript sets KEYS[1] to ARGV[1] when that is larger than the current
// value, with a TTL of ARGV[2] ms.
var setMaxScript = redis.NewScript(`
local cur = tonumber(redis.call("GET", KEYS[1]) or "0")
local v = tonumber(ARGV[1])
if v > cur then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0
`)
