// The store while Redis hangs or dies: an upload whose outcome is unknown says
// so, Idempotency-Key makes its retry safe, errors speak hearth's words, and
// cached functions may be served stale (STALE_IF_REDIS_DOWN_SECONDS).
import t from 'tap'
import { get, post, startDaemon } from './helpers/daemon.js'
import { TestRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

async function until (check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(check, timeoutMs, what)
}

t.test('an upload to a frozen Redis answers outcome unknown; its retry with the same Idempotency-Key answers the first outcome', async (t) => {
  const redis = await TestRedis.start(t)
  const d = await startDaemon(t, { REDIS_URL: redis.url, REDIS_TIMEOUT_SECONDS: '1' })
  const body = { path: 'idem/fn', language: 'python', code: 'return "once"' }
  const headers = { 'content-type': 'application/json', 'idempotency-key': 'upload-7c1f' }
  redis.freeze()
  const started = Date.now()
  const lost = await post(`${d.url}/upload`, body, { headers })
  t.same([lost.status, lost.body.error.code], [504, 'store_outcome_unknown'])
  t.match(lost.body.error.message, /may or may not have been done\. Retry with the same Idempotency-Key/)
  t.equal(lost.headers.get('retry-after'), null, 'no blanket invitation to retry')
  t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`)
  redis.thaw() // Redis now runs the upload it had received
  await until(async () => (await get(`${d.url}/functions/idem/fn`)).status === 200, 'the frozen upload to land')
  const retry = await post(`${d.url}/upload`, body, { headers })
  t.equal(retry.status, 200)
  t.equal(retry.headers.get('idempotent-replayed'), 'true')
  const versions = (await get(`${d.url}/functions/idem/fn`)).body.versions
  t.equal(versions.length, 1, 'the retry stored nothing new')
  t.equal(retry.body.version, versions[0].version, 'and answered the version the first upload stored')
  const again = await post(`${d.url}/upload`, body, { headers })
  t.same([again.status, again.body.version], [200, retry.body.version], 'every later retry too')
  const other = await post(`${d.url}/upload`, { ...body, code: 'return "twice"' }, { headers })
  t.same([other.status, other.body.error.code], [422, 'idempotency_key_reused'])
  const fresh = await post(`${d.url}/upload`, body, { headers: { ...headers, 'idempotency-key': 'upload-8d2a' } })
  t.ok(fresh.body.version > retry.body.version, 'another key is another upload')
  const bad = await post(`${d.url}/upload`, body, { headers: { ...headers, 'idempotency-key': 'has space' } })
  t.same([bad.status, bad.body.error.field], [400, 'Idempotency-Key'])
})

t.test('with Redis gone, nothing was done: 503 in hearth\'s own words', async (t) => {
  const redis = await TestRedis.start(t)
  const d = await startDaemon(t, { REDIS_URL: redis.url, REDIS_TIMEOUT_SECONDS: '1' })
  await post(`${d.url}/upload`, { path: 'gone/fn', language: 'javascript', code: 'return 1' })
  await redis.down()
  for (const reply of [
    await post(`${d.url}/upload`, { path: 'gone/fn', language: 'javascript', code: 'return 2' }),
    await post(`${d.url}/run/gone/fn`, {}),
    await get(`${d.url}/functions`)
  ]) {
    t.same([reply.status, reply.body.error.code], [503, 'store_unavailable'])
    t.match(reply.body.error.message, /^the function store is unavailable: Redis is not reachable/)
    t.notMatch(reply.body.error.message, /enableOfflineQueue|Stream isn't writeable|ioredis/)
  }
})

t.test('STALE_IF_REDIS_DOWN_SECONDS serves the last known version of cached functions, marked', async (t) => {
  const redis = await TestRedis.start(t)
  const d = await startDaemon(t, { REDIS_URL: redis.url, REDIS_TIMEOUT_SECONDS: '1', STALE_IF_REDIS_DOWN_SECONDS: '60' })
  const up = await post(`${d.url}/upload`, { path: 'stale/fn', language: 'python', code: 'return "cached"' })
  await post(`${d.url}/upload`, { path: 'stale/never-run', language: 'python', code: 'return 0' })
  t.same((await post(`${d.url}/run/stale/fn`, {})).body, { data: 'cached', type: 'string' })
  await redis.down()
  await until(async () => (await get(`${d.url}/readyz`)).body.redis === false, 'the daemon to see Redis gone')
  const r = await post(`${d.url}/run/stale/fn`, {})
  t.same([r.status, r.body], [200, { data: 'cached', type: 'string' }])
  t.match(r.headers.get('x-hearth-stale'), /^\d+$/, 'marked stale, with its age in seconds')
  const pinned = await post(`${d.url}/run/stale/fn?version=${up.body.version}`, {})
  t.equal(pinned.status, 200, 'a cached pinned version too')
  const never = await post(`${d.url}/run/stale/never-run`, {})
  t.same([never.status, never.body.error.code], [503, 'store_unavailable'], 'nothing cached, nothing served')
})
