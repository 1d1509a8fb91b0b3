-- The shared budget ledger: switchyard_core::budget::Ledger::reserve's
-- decision (every account checked against committed + reserved + this,
-- all-or-nothing) and Hold's settle, run atomically by Redis for every
-- replica. Each reservation is a hold with a lease, so a replica that dies
-- holding one frees it when the lease expires.
--
-- Keys, per account (a scope's period window):
--   `{prefix}:bg:{scope}:{period}:{window start ms}` a hash: `cn` / `ct`
--   committed nano-dollars / tokens, `rn` / `rt` reserved by holds alive;
--   `{prefix}:bh:{scope}:{period}:{window start ms}` a sorted set of holds,
--   member `{id}|{nanos}|{tokens}`, score = lease expiry (ms, Redis clock).
-- Both expire at the expiry the caller gives (a period after the window
-- ends).
--
-- mode "reserve": KEYS = hash, holds per account (2 per account)
--   ARGV = "reserve", member, nanos, tokens, lease ms, then per account
--   max nanos (-1 = none), max tokens (-1 = none), enforce (1/0),
--   expire at (ms)
--   returns {1} when reserved, else {0, account index (1-based),
--   dimension (1 cost, 2 tokens), cn, rn, ct, rt} as they stood.
-- mode "settle": KEYS as for reserve
--   ARGV = "settle", member, nanos, tokens (as reserved), commit (1/0),
--   actual nanos, actual tokens, then per account expire at (ms)
--   returns per account cn before, cn after, ct before, ct after.
-- mode "seed": KEYS = one hash
--   ARGV = "seed", nanos, tokens, expire at (ms): sets cn / ct only when
--   the hash does not exist (Redis does not count the window yet).
-- mode "spend": KEYS = hash, holds; ARGV = "spend"
--   returns {cn, rn, ct, rt} after dropping expired holds.
--
-- Precision: amounts are stored with HINCRBY (exact 64-bit integers); the
-- comparison reads them as Lua doubles, exact below 2^53 (9.0e15
-- nano-dollars, about $9 million, or 9.0e15 tokens per window).

if redis.replicate_commands then
  redis.replicate_commands()
end

local mode = ARGV[1]

-- Numbers go back to Redis as integer text: Redis would write a Lua
-- number like 1e9 as "1e9", and %.0f writes -0 as "-0"; HINCRBY refuses
-- both.
local function int(x)
  if x == 0 then
    return '0'
  end
  return string.format('%.0f', x)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function num(hash, field)
  return tonumber(redis.call('HGET', hash, field) or '0') or 0
end

-- Drops holds whose lease ended, giving back what they reserved.
local function expire_holds(hash, holds, now)
  local stale = redis.call('ZRANGEBYSCORE', holds, '-inf', int(now))
  for _, member in ipairs(stale) do
    local n, t = string.match(member, '|(%-?%d+)|(%-?%d+)$')
    if n then
      redis.call('HINCRBY', hash, 'rn', int(-tonumber(n)))
      redis.call('HINCRBY', hash, 'rt', int(-tonumber(t)))
    end
  end
  if #stale > 0 then
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', int(now))
  end
end

if mode == 'seed' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'cn', ARGV[2], 'ct', ARGV[3], 'rn', 0, 'rt', 0)
    redis.call('PEXPIREAT', KEYS[1], ARGV[4])
    return 1
  end
  return 0
end

if mode == 'spend' then
  expire_holds(KEYS[1], KEYS[2], now_ms())
  return {num(KEYS[1], 'cn'), num(KEYS[1], 'rn'), num(KEYS[1], 'ct'), num(KEYS[1], 'rt')}
end

local member = ARGV[2]
local nanos = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local accounts = #KEYS / 2

if mode == 'reserve' then
  local lease = tonumber(ARGV[5])
  local now = now_ms()
  -- Check every account first: nothing is written unless all pass.
  for i = 1, accounts do
    local hash, holds = KEYS[2 * i - 1], KEYS[2 * i]
    expire_holds(hash, holds, now)
    local base = 5 + (i - 1) * 4
    local max_n, max_t, enforce = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), ARGV[base + 3]
    if enforce == '1' then
      local cn, rn, ct, rt = num(hash, 'cn'), num(hash, 'rn'), num(hash, 'ct'), num(hash, 'rt')
      if max_n >= 0 and cn + rn + nanos > max_n then
        return {0, i, 1, cn, rn, ct, rt}
      end
      if max_t >= 0 and ct + rt + tokens > max_t then
        return {0, i, 2, cn, rn, ct, rt}
      end
    end
  end
  for i = 1, accounts do
    local hash, holds = KEYS[2 * i - 1], KEYS[2 * i]
    local expire_at = ARGV[5 + (i - 1) * 4 + 4]
    redis.call('HINCRBY', hash, 'rn', ARGV[3])
    redis.call('HINCRBY', hash, 'rt', ARGV[4])
    redis.call('ZADD', holds, int(now + lease), member)
    redis.call('PEXPIREAT', hash, expire_at)
    redis.call('PEXPIREAT', holds, expire_at)
  end
  return {1}
end

if mode == 'settle' then
  local commit = ARGV[5] == '1'
  local out = {}
  for i = 1, accounts do
    local hash, holds = KEYS[2 * i - 1], KEYS[2 * i]
    local expire_at = ARGV[7 + i]
    local cn, ct = num(hash, 'cn'), num(hash, 'ct')
    -- A hold whose lease expired was given back already.
    if redis.call('ZREM', holds, member) == 1 then
      redis.call('HINCRBY', hash, 'rn', int(-nanos))
      redis.call('HINCRBY', hash, 'rt', int(-tokens))
    end
    if commit then
      redis.call('HINCRBY', hash, 'cn', ARGV[6])
      redis.call('HINCRBY', hash, 'ct', ARGV[7])
      redis.call('PEXPIREAT', hash, expire_at)
    end
    table.insert(out, cn)
    table.insert(out, num(hash, 'cn'))
    table.insert(out, ct)
    table.insert(out, num(hash, 'ct'))
  end
  return out
end

return redis.error_reply('budgets.lua: unknown mode ' .. tostring(mode))
