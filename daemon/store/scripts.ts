// Lua scripts that keep one function's keys consistent in one atomic step.
// KEYS are always a function's seq, versions, code and meta keys (one slot).

/**
 * Upload: version = the server's unix time in seconds (go-faas's shape), but
 * strictly above the last version ever handed out for this path, so two uploads
 * in one second, or from two daemons at once, never share a version.
 * KEYS[5]: the upload's Idempotency-Key record, KEYS[6]: the locks (same slot).
 * ARGV: code, language, size, sha256, invalidation channel, path, the
 * request's fingerprint ('' without an Idempotency-Key), the record's TTL,
 * the dependencies' JSON for the meta ('' for none) and their lock.
 * Returns {version, created, replayed (0/1), fingerprint of the first request}:
 * a key already used answers the first upload's outcome and changes nothing.
 * The PUBLISH is part of the same atomic step, so every daemon's subscriber
 * has the invalidation before this upload's reply is sent.
 */
export const UPLOAD = `
if ARGV[7] ~= '' then
  local prior = redis.call('GET', KEYS[5])
  if prior then
    local p = cjson.decode(prior)
    return {p.version, p.created, 1, p.request}
  end
end
local now = tonumber(redis.call('TIME')[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = now
if v <= last then v = last + 1 end
redis.call('SET', KEYS[1], v)
redis.call('ZADD', KEYS[2], v, v)
redis.call('HSET', KEYS[3], v, ARGV[1])
local meta = {language = ARGV[2], size = tonumber(ARGV[3]), sha256 = ARGV[4], created = now}
if ARGV[9] ~= '' then
  meta.dependencies = cjson.decode(ARGV[9])
  redis.call('HSET', KEYS[6], v, ARGV[10])
end
redis.call('HSET', KEYS[4], v, cjson.encode(meta))
redis.call('PUBLISH', ARGV[5], ARGV[6])
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[5], cjson.encode({version = v, created = now, request = ARGV[7]}), 'EX', tonumber(ARGV[8]))
end
return {v, now, 0, ''}
`

/**
 * Delete one version (ARGV[3]) or, without it, all (KEYS: seq, versions, code,
 * meta, locks); publishes the path on the
 * invalidation channel (ARGV[1], ARGV[2]). Returns {deleted, remaining}.
 */
export const DELETE = `
redis.call('PUBLISH', ARGV[1], ARGV[2])
if ARGV[3] then
  local removed = redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
  redis.call('HDEL', KEYS[4], ARGV[3])
  redis.call('HDEL', KEYS[5], ARGV[3])
  return {removed, redis.call('ZCARD', KEYS[2])}
end
local n = redis.call('ZCARD', KEYS[2])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return {n, 0}
`
