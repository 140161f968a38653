"""The Lua scripts of ``state.redis``. Each runs atomically in Redis, so a check and the
update it decides on cannot interleave with another instance's; every key they write
gets an expiry. Times come from Redis (``TIME``), so the instances' clocks do not matter.
"""

from __future__ import annotations

# KEYS[1] the entry (a hash: fp, owner, waiters, answer)
# ARGV: fingerprint, owner token, lease in ms
# -> {'owned'} | {'reused'} | {'answer', encoded, ms left} | {'pending', ms left on the lease}
CLAIM = """
local fp = redis.call('HGET', KEYS[1], 'fp')
if not fp then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'owner', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'owned'}
end
if fp ~= ARGV[1] then return {'reused'} end
local answer = redis.call('HGET', KEYS[1], 'answer')
if answer then return {'answer', answer, redis.call('PTTL', KEYS[1])} end
if redis.call('HGET', KEYS[1], 'owner') == ARGV[2] then return {'owned'} end
redis.call('HINCRBY', KEYS[1], 'waiters', 1)
return {'pending', redis.call('PTTL', KEYS[1])}
"""

# KEYS[1] the entry, KEYS[2] the list its waiters block on
# ARGV: owner token, encoded answer ('' releases the key), window in ms, wake-up expiry ms
# -> 1 if this owner finished it, 0 if it was no longer the owner (its lease ran out)
FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local waiters = tonumber(redis.call('HGET', KEYS[1], 'waiters') or '0')
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HDEL', KEYS[1], 'owner', 'waiters')
  redis.call('HSET', KEYS[1], 'answer', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
for i = 1, math.min(waiters, 1000) do redis.call('RPUSH', KEYS[2], '1') end
if waiters > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 1
"""

# The login throttle's keys, the same for both scripts:
#   KEYS[1..3]  failures (sorted sets, score = time in ms) of the pair, address, account
#   KEYS[4]     the account's known-good proof (a password the server accepted)
#   KEYS[5..7]  logins in flight (hashes: proof -> attempts) of the pair, address, account
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
"""

# ARGV: window ms, pair limit, address limit, account limit, proof, in-flight lease ms
# -> 0 (go on; counted in flight unless the password is the account's accepted one) or
#    the ms until an attempt may be made. Attempts in flight with other passwords count
#    as failures: concurrent guesses cannot all get through before the first fails.
BEGIN = _NOW + """
local accepted = redis.call('GET', KEYS[4]) == ARGV[5]
local function wait(i, limit)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local failed = redis.call('ZCARD', KEYS[i])
  local busy = 0
  if not accepted then
    busy = redis.call('HLEN', KEYS[i + 4]) - redis.call('HEXISTS', KEYS[i + 4], ARGV[5])
  end
  if failed + busy < limit then return 0 end
  if failed < limit then return 1000 end
  local nth = redis.call('ZRANGE', KEYS[i], failed - limit, failed - limit, 'WITHSCORES')
  return tonumber(nth[2]) + window - now
end
local longest = math.max(wait(1, tonumber(ARGV[2])), wait(2, tonumber(ARGV[3])))
if not accepted then longest = math.max(longest, wait(3, tonumber(ARGV[4]))) end
if longest > 0 then return longest end
if not accepted then
  for i = 5, 7 do
    redis.call('HINCRBY', KEYS[i], ARGV[5], 1)
    redis.call('PEXPIRE', KEYS[i], ARGV[6])
  end
end
return 0
"""

# ARGV: window ms, pair limit, address limit, account limit, proof,
#       outcome ('failed', 'succeeded', 'unknown'), known-good expiry ms, unique member
END = _NOW + """
for i = 5, 7 do
  if redis.call('HEXISTS', KEYS[i], ARGV[5]) == 1 then
    if redis.call('HINCRBY', KEYS[i], ARGV[5], -1) <= 0 then
      redis.call('HDEL', KEYS[i], ARGV[5])
    end
  end
end
if ARGV[6] == 'failed' then
  for i = 1, 3 do
    redis.call('ZADD', KEYS[i], now, ARGV[8])
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(tonumber(ARGV[i + 1]) + 1))
    redis.call('PEXPIRE', KEYS[i], window)
  end
elseif ARGV[6] == 'succeeded' then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[7])
end
return 0
"""
