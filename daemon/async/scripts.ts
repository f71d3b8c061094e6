// Lua scripts over a call's record and the queue (one slot: keys.ts). Each is
// one atomic step, so no daemon ever sees a call half-queued or half-finished.
// Records are hashes of strings; times are unix milliseconds.

/** finish(record, status, fields...): the end state of a call, acknowledged and gone from the queue. */
const FINISH_FN = `
local function finish (record, queue, group, entry, ttl, fields)
  redis.call('HSET', record, unpack(fields))
  redis.call('EXPIRE', record, ttl)
  if entry and entry ~= '' then
    redis.call('XACK', queue, group, entry)
    redis.call('XDEL', queue, entry)
  end
end
`

/**
 * Queue a call. KEYS: queue, record. ARGV: ASYNC_QUEUE_MAX, the call id, then
 * the record's fields as name, value pairs. Returns the stream entry's id, or
 * false when the queue is full (calls queued or running, every daemon's).
 */
export const ENQUEUE = `
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[2])
redis.call('HSET', KEYS[2], 'entry', entry)
return entry
`

/**
 * A daemon takes a delivered (or claimed) entry. KEYS: record, queue. ARGV:
 * group, entry, worker, now, ASYNC_MAX_ATTEMPTS, ASYNC_RESULT_TTL, the
 * abandoned error's JSON, the cancelled error's JSON.
 * Returns {'run', attempts, the record's fields...}, or {what happened instead}:
 * 'gone' (no record), 'finished', 'cancelled', 'abandoned'.
 */
export const START = FINISH_FN + `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
  return {'gone'}
end
if status == 'done' or status == 'failed' then
  finish(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[6], {'status', status})
  return {'finished'}
end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  finish(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[6], {'status', 'failed', 'finished', ARGV[4], 'error', ARGV[8]})
  return {'cancelled'}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[5]) then
  finish(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[6], {'status', 'failed', 'finished', ARGV[4], 'error', ARGV[7]})
  return {'abandoned'}
end
redis.call('HSET', KEYS[1], 'status', 'running', 'started', ARGV[4], 'worker', ARGV[3], 'attempts', attempts + 1)
local out = {'run', attempts + 1}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do out[#out + 1] = all[i] end
return out
`

/**
 * A call's end, stored, then acknowledged. KEYS: record, queue, logs. ARGV:
 * group, entry, worker, ASYNC_RESULT_TTL, the logs ('' for none), then the
 * record's fields. Only the daemon that holds the call may finish it (after a
 * takeover the first one's late answer is dropped): returns 1, or 0.
 */
export const COMPLETE = FINISH_FN + `
if redis.call('HGET', KEYS[1], 'worker') ~= ARGV[3] or redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
finish(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[4], fields)
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[4]) end
return 1
`

/**
 * Cancel. KEYS: record, queue. ARGV: group, now, ASYNC_RESULT_TTL, the
 * cancelled error's JSON. A queued call ends here ('cancelled'); a running one
 * is marked, and its daemon, told on the cancel channel, kills it ('running');
 * a finished one is left as it is (its status); no record: 'none'.
 */
export const CANCEL = FINISH_FN + `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'none' end
if status == 'queued' then
  finish(KEYS[1], KEYS[2], ARGV[1], redis.call('HGET', KEYS[1], 'entry'), ARGV[3], {'status', 'failed', 'finished', ARGV[2], 'error', ARGV[4], 'cancel', '1'})
  return 'cancelled'
end
if status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 'running'
end
return status
`
