// Versions in Redis: unique under concurrency, shared by several daemons, and
// the daemon's behaviour while Redis is away.
import t from 'tap'
import { get, post, startDaemon } from './helpers/daemon.js'
import { startRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const redis = await startRedis(t)
const [a, b] = await Promise.all([
  startDaemon(t, { ...redis.env, REDIS_TIMEOUT_SECONDS: '1' }),
  startDaemon(t, { ...redis.env, REDIS_TIMEOUT_SECONDS: '1' })
])

t.test('concurrent uploads to one path from two daemons get distinct, increasing versions', async (t) => {
  const uploads = Array.from({ length: 40 }, async (_, i) => await post(`${(i % 2 === 0 ? a : b).url}/upload`, { path: 'race/fn', language: 'javascript', code: `return ${i}` }))
  const replies = await Promise.all(uploads)
  t.ok(replies.every((r) => r.status === 200))
  const versions = replies.map((r) => r.body.version as number)
  t.equal(new Set(versions).size, 40, 'no version handed out twice')
  const listed = (await get(`${a.url}/functions/race/fn`)).body.versions.map((v: { version: number }) => v.version)
  t.same(listed, [...versions].sort((x, y) => x - y), 'every upload is stored, none overwritten')
  // Each version runs its own code.
  const pick = replies[17]
  const run = await post(`${b.url}/run/race/fn?version=${pick?.body.version}`, {})
  t.same(run.body, { data: 17, type: 'number' })
})

t.test('an upload on one daemon is what the other runs on its very next call', async (t) => {
  await post(`${a.url}/upload`, { path: 'shared/fn', language: 'python', code: 'return "v1"' })
  t.same((await post(`${b.url}/run/shared/fn`, {})).body, { data: 'v1', type: 'string' })
  t.same((await post(`${b.url}/run/shared/fn`, {})).body, { data: 'v1', type: 'string' }, 'b now has v1 cached and warm')
  await post(`${a.url}/upload`, { path: 'shared/fn', language: 'python', code: 'return "v2"' })
  t.same((await post(`${b.url}/run/shared/fn`, {})).body, { data: 'v2', type: 'string' })
  await get(`${a.url}/functions/shared/fn`, 'DELETE')
  t.equal((await post(`${b.url}/run/shared/fn`, {})).status, 404, 'a delete on a is seen by b at once')
})

t.test('with Redis down, run-now still works and store endpoints answer 503 quickly; then it recovers', async (t) => {
  await post(`${a.url}/upload`, { path: 'outage/fn', language: 'javascript', code: 'return "stored"' })
  await redis.down()
  // Once the daemon knows (a write sent just as Redis died may have been done:
  // that is store_outcome_unknown, store-outages.test.ts).
  await waitFor(async () => (await get(`${a.url}/readyz`)).body.redis === false, 5000, 'the daemon to see Redis gone')
  const started = Date.now()
  const up = await post(`${a.url}/upload`, { path: 'outage/fn', language: 'javascript', code: 'return 1' })
  t.same([up.status, up.body.error.code], [503, 'store_unavailable'])
  t.equal(up.headers.get('retry-after'), '1')
  const run = await post(`${a.url}/run/outage/fn`, {})
  t.same([run.status, run.body.error.code], [503, 'store_unavailable'])
  t.ok(Date.now() - started < 2500, `answered in ${Date.now() - started} ms`)
  const now = await post(`${a.url}/run-now`, { language: 'python', code: 'return 7' })
  t.same(now.body, { data: 7, type: 'number' })
  const ready = await get(`${a.url}/readyz`)
  t.same([ready.status, ready.body.redis], [503, false])

  await redis.up() // same port, empty: this test Redis keeps nothing on disk
  await waitFor(async () => (await post(`${a.url}/upload`, { path: 'outage/fn', language: 'javascript', code: 'return "after"' })).status === 200,
    10_000, 'the daemon to reconnect by itself and store an upload')
  // b reconnects on its own schedule: wait for it too, not only for a.
  await waitFor(async () => (await get(`${b.url}/readyz`)).body.redis === true, 10_000, 'the other daemon to reconnect by itself')
  t.same((await post(`${b.url}/run/outage/fn`, {})).body, { data: 'after', type: 'string' })
})
