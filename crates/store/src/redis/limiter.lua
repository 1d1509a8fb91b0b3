-- The shared rate limiter: switchyard_core::limits::gcra ported line for
-- line, and LocalLimiter::admit's decision (working copies, all-or-nothing,
-- the longest wait wins, a refusal's quota peeks with nothing consumed).
-- Redis runs a script alone, so one call is one atomic admission across
-- every scope; the clock is Redis's own (TIME), shared by all replicas.
--
-- Keys, per scope: `{prefix}:rl:{scope}` a hash whose fields `req` and `tok`
-- hold the rpm and tpm TATs (µs since the epoch); `{prefix}:rc:{scope}` a
-- sorted set of concurrency leases (member `{lease}#{n}`, n counting the
-- scope's slots in one admission; score = expiry µs). Separate namespaces,
-- not `{scope}:c`: a scope name may itself end in ":c". Both expire on
-- their own once idle.
--
-- mode "admit":  KEYS = hash, lease set per check (2 per check)
--   ARGV = "admit", tokens, lease id, lease µs, then per check rpm, tpm,
--   max_concurrent (-1 = none)
--   returns {allowed (1/0),
--            requests quota: check index (0 = none), remaining, reset µs,
--            tokens quota:   check index (0 = none), remaining, reset µs,
--            refusal: check index (0 when allowed), dimension (1 requests,
--            2 tokens, 3 concurrency), retry after µs (-1 = never)}
--   The quota is after the charge when allowed, as stored when refused.
-- mode "adjust": KEYS = the hashes of the token scopes
--   ARGV = "adjust", reserved, actual, then per key its tpm limit
--   returns the number of keys adjusted.
--
-- Precision: Lua numbers are doubles. Times in µs since the epoch (~1.8e15)
-- are exact below 2^53 (~9.0e15, the year 2255). `cost * W / limit` and
-- `free * limit / W` are computed in floating point and floored: exact (the
-- same integer as gcra.rs's i128 math) while the product stays below 2^53,
-- i.e. for costs and limits below 1.5e8 per minute; above that the result
-- may differ by 1 µs or 1 unit. Numbers written to Redis are formatted with
-- %.0f (tostring would write 1.8e+15).

local W = 60000000
local CONCURRENCY_RETRY = 1000000

if redis.replicate_commands then
  -- Redis < 5 replicates scripts verbatim unless told otherwise; TIME makes
  -- this one non-deterministic.
  redis.replicate_commands()
end

local function int(x)
  return string.format('%.0f', x)
end

-- gcra.rs: span
local function span(cost, limit)
  if limit == 0 then
    return 0
  end
  return math.floor(cost * W / limit)
end

-- gcra.rs: remaining
local function remaining(tat, now, limit)
  local used = math.max(tat, now) - now
  local free = math.max(W - used, 0)
  return math.min(math.floor(free * limit / W), limit)
end

-- gcra.rs: check. Returns allowed, new_tat, remaining, reset, retry_after
-- (-1 = never).
local function check(tat, now, cost, limit)
  local base = math.max(tat, now)
  local function refused(retry)
    return false, tat, remaining(tat, now, limit), math.max(tat - now, 0), retry
  end
  if cost == 0 then
    return true, tat, remaining(tat, now, limit), math.max(tat - now, 0), 0
  end
  if cost > limit then
    return refused(-1)
  end
  local cost_us = span(cost, limit)
  local new_tat = base + cost_us
  if new_tat - now > W then
    return refused(tat + cost_us - W - now)
  end
  return true, new_tat, remaining(new_tat, now, limit), math.max(new_tat - now, 0), 0
end

-- gcra.rs: adjust
local function adjust(tat, now, reserved, actual, limit)
  local d = span(actual, limit) - span(reserved, limit)
  if d > 0 then
    return math.max(tat, now) + d
  elseif d < 0 then
    return math.max(tat + d, math.min(tat, now))
  end
  return tat
end

-- Keeps the hash while a TAT is ahead of now, plus a second of slack.
local function expire(key, req, tok, now)
  local ahead = math.max(req, tok, now) - now
  redis.call('PEXPIRE', key, int(math.floor(ahead / 1000) + 1000))
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

if ARGV[1] == 'adjust' then
  local reserved, actual = tonumber(ARGV[2]), tonumber(ARGV[3])
  -- One key after the other: a scope listed twice is adjusted twice.
  for i = 1, #KEYS do
    local v = redis.call('HMGET', KEYS[i], 'req', 'tok')
    local req, tok = tonumber(v[1]) or 0, tonumber(v[2]) or 0
    tok = adjust(tok, now, reserved, actual, tonumber(ARGV[3 + i]))
    redis.call('HSET', KEYS[i], 'tok', int(tok))
    expire(KEYS[i], req, tok, now)
  end
  return #KEYS
end

local tokens = tonumber(ARGV[2])
local lease = ARGV[3]
local lease_us = tonumber(ARGV[4])
local n = #KEYS / 2

-- Working copies, one per distinct scope, in first-seen order.
local work, order = {}, {}
local function state(i)
  local key = KEYS[2 * i - 1]
  local w = work[key]
  if not w then
    local v = redis.call('HMGET', key, 'req', 'tok')
    local req, tok = tonumber(v[1]) or 0, tonumber(v[2]) or 0
    w = { key = key, leases = KEYS[2 * i], req = req, tok = tok, req0 = req, tok0 = tok, slots = 0 }
    work[key] = w
    order[#order + 1] = w
  end
  return w
end

-- Quota.tighten: keep the window with the lower (remaining, limit).
local quota = { req = { 0, 0, 0, 0 }, tok = { 0, 0, 0, 0 } }
local function tighten(q, i, limit, rem, reset)
  if q[1] == 0 or rem < q[3] or (rem == q[3] and limit < q[2]) then
    q[1], q[2], q[3], q[4] = i, limit, rem, reset
  end
end

-- Refusal.outlasts: never beats any wait, a longer wait beats a shorter.
local refusal = nil
local function refuse(i, dimension, wait)
  if refusal == nil or (wait == -1 and refusal[3] ~= -1) or (wait ~= -1 and refusal[3] ~= -1 and wait > refusal[3]) then
    refusal = { i, dimension, wait }
  end
end

for i = 1, n do
  local base = 4 + 3 * (i - 1)
  local rpm, tpm, max = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local w = state(i)
  if rpm >= 0 then
    local ok, tat, rem, reset, wait = check(w.req, now, 1, rpm)
    if ok then
      w.req = tat
      tighten(quota.req, i, rpm, rem, reset)
    else
      refuse(i, 1, wait)
    end
  end
  if tpm >= 0 then
    local ok, tat, rem, reset, wait = check(w.tok, now, tokens, tpm)
    if ok then
      w.tok = tat
      tighten(quota.tok, i, tpm, rem, reset)
    else
      refuse(i, 2, wait)
    end
  end
  if max >= 0 then
    if w.in_flight == nil then
      -- Leases past their expiry do not count (read only: a refusal
      -- writes nothing; the admit path below removes them).
      w.in_flight = redis.call('ZCOUNT', w.leases, '(' .. int(now), '+inf')
    end
    if w.in_flight < max then
      w.in_flight = w.in_flight + 1
      w.slots = w.slots + 1
    else
      refuse(i, 3, max > 0 and CONCURRENCY_RETRY or -1)
    end
  end
end

if refusal then
  -- What the client is told: the stored state, nothing consumed.
  quota = { req = { 0, 0, 0, 0 }, tok = { 0, 0, 0, 0 } }
  for i = 1, n do
    local base = 4 + 3 * (i - 1)
    local rpm, tpm = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
    local w = state(i)
    if rpm >= 0 then
      local _, _, rem, reset = check(w.req0, now, 0, rpm)
      tighten(quota.req, i, rpm, rem, reset)
    end
    if tpm >= 0 then
      local _, _, rem, reset = check(w.tok0, now, 0, tpm)
      tighten(quota.tok, i, tpm, rem, reset)
    end
  end
else
  local expiry = int(now + lease_us)
  for _, w in ipairs(order) do
    if w.req ~= w.req0 or w.tok ~= w.tok0 then
      redis.call('HSET', w.key, 'req', int(w.req), 'tok', int(w.tok))
      expire(w.key, w.req, w.tok, now)
    end
    if w.slots > 0 then
      redis.call('ZREMRANGEBYSCORE', w.leases, '-inf', int(now))
      for s = 1, w.slots do
        redis.call('ZADD', w.leases, expiry, lease .. '#' .. s)
      end
      -- The newest lease expires last: the set lives exactly as long.
      redis.call('PEXPIRE', w.leases, int(math.floor(lease_us / 1000) + 1))
    end
  end
  refusal = { 0, 0, 0 }
end

return {
  refusal[1] == 0 and 1 or 0,
  quota.req[1], quota.req[3], quota.req[4],
  quota.tok[1], quota.tok[3], quota.tok[4],
  refusal[1], refusal[2], refusal[3],
}
