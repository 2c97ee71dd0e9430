// The Redis Lua script behind every take: refill by elapsed time, grant, debit, expire, atomically
// (Redis runs a script without interleaving). It mirrors takeTokens() in token-bucket.ts.
import { createHash } from "node:crypto";

/**
 * KEYS[1]: the bucket, a hash {v = tokens, t = updatedAt in ms}.
 * ARGV: capacity, refillPerSecond, want, mode (`partial` | `all`), now in ms (`""` = Redis TIME, so
 * every authz-server replica shares the Redis clock), idle TTL in ms for buckets that never refill.
 * Returns {granted, tokens left (string, %.17g), ms until full (0 full, -1 never)}. A full bucket is
 * deleted (a missing bucket is a full one); otherwise it expires when it would be full again.
 */
export const TAKE_TOKENS_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local now
if ARGV[5] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[5])
end
local eps = 1e-9
local s = redis.call('HMGET', KEYS[1], 'v', 't')
local tokens = cap
local updated = now
if s[1] then
  tokens = math.min(tonumber(s[1]), cap)
  updated = tonumber(s[2])
  if now > updated then
    tokens = math.min(cap, tokens + ((now - updated) * rate) / 1000)
    updated = now
  end
end
local whole = math.floor(tokens + eps)
local granted
if ARGV[4] == 'all' then
  if whole >= want then granted = want else granted = 0 end
else
  granted = math.min(want, whole)
end
tokens = math.max(0, tokens - granted)
local reset
if tokens + eps >= cap then
  reset = 0
elseif rate <= 0 then
  reset = -1
else
  reset = math.ceil(((cap - tokens) * 1000) / rate)
end
if reset == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'v', string.format('%.17g', tokens), 't', string.format('%.17g', updated))
  local ttl = reset
  if reset < 0 then ttl = tonumber(ARGV[6]) end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {granted, string.format('%.17g', tokens), reset}
`;

export const TAKE_TOKENS_SHA1 = createHash("sha1").update(TAKE_TOKENS_LUA).digest("hex");
