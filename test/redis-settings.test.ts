// REDIS_HOST, REDIS_PORT, REDIS_PASSWORD and REDIS_DB reach the server as
// given, and a connection that fails says why in the log.
import { Redis } from 'ioredis'
import t from 'tap'
import { get, post, startDaemon } from './helpers/daemon.js'
import { TestRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const redis = await TestRedis.start(t, ['--requirepass', 'open-sesame'])
const raw = new Redis({ port: redis.port, password: 'open-sesame', db: 3, lazyConnect: true })
t.teardown(() => raw.disconnect())

t.test('host, port, password and database are the ones set', async (t) => {
  const d = await startDaemon(t, { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_PASSWORD: 'open-sesame', REDIS_DB: '3' })
  t.equal((await post(`${d.url}/upload`, { path: 'settings/fn', language: 'python', code: 'return 3' })).status, 200)
  t.same((await post(`${d.url}/run/settings/fn`, {})).body, { data: 3, type: 'number' })
  const keys = await raw.keys('*settings/fn*')
  t.ok(keys.length > 0, `stored in database 3: ${keys.join(' ')}`)
  await raw.select(0)
  t.same(await raw.keys('*settings/fn*'), [], 'and not in database 0')
  await raw.select(3)
})

t.test('a wrong password: store calls answer 503, and the log says why', async (t) => {
  const d = await startDaemon(t, { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_PASSWORD: 'wrong', REDIS_TIMEOUT_SECONDS: '1' })
  const r = await post(`${d.url}/upload`, { path: 'settings/nope', language: 'python', code: 'return 1' })
  t.same([r.status, r.body.error.code], [503, 'store_unavailable'])
  t.same((await get(`${d.url}/readyz`)).body.redis, false)
  const said = (): Array<Record<string, unknown>> => d.logs.filter((l) => l.msg === 'Redis connection error')
  await waitFor(() => said().length > 0, 10_000, 'the connection error in the log')
  t.match(said()[0]?.err, /WRONGPASS|invalid username-password|NOAUTH/)
})
