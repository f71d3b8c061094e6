// Per-key quotas over real HTTP, shared by two daemons on one real Redis, and
// their per-daemon fallback while Redis is away (issue 12).
import t from 'tap'
import { startDaemon } from './helpers/daemon.js'
import { checkAnswer } from './helpers/openapi.js'
import { startRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const ADMIN = 'admin-token-for-quota-tests-0123'
const redis = await startRedis(t)
const env = { ...redis.env, AUTH: 'on', ADMIN_TOKEN: ADMIN, POOL_MIN: '1', POOL_MAX: '3', REDIS_TIMEOUT_SECONDS: '1' }
const one = await startDaemon(t, env)
const two = await startDaemon(t, env)

async function post (base: string, path: string, token: string, body: unknown): Promise<{ status: number, retryAfter: string | null, body: any }> {
  const res = await fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const answer = { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() }
  checkAnswer('POST', base + path, res.status, res.headers.get('content-type'), answer.body)
  return answer
}

async function newKey (spec: Record<string, unknown>): Promise<string> {
  const r = await post(one.url, '/keys', ADMIN, spec)
  if (r.status !== 201) throw new Error(`key not created: ${JSON.stringify(r.body)}`)
  return r.body.key
}

const quick = { language: 'python', code: 'return 1' }

t.test('a request rate: its burst, then 429 rate_limited with Retry-After, counted across daemons', async (t) => {
  // One token a minute and a bucket of two: three requests fit, the fourth does not.
  const key = await newKey({ name: 'slow', scopes: ['run-now'], rate_per_second: 1 / 60, burst: 2 })
  const statuses = [
    (await post(one.url, '/run-now', key, quick)).status,
    (await post(two.url, '/run-now', key, quick)).status,
    (await post(one.url, '/run-now', key, quick)).status
  ]
  t.same(statuses, [200, 200, 200], 'the rate and the burst')
  const over = await post(two.url, '/run-now', key, quick)
  t.same([over.status, over.body.error.code], [429, 'rate_limited'], 'the other daemon counts the same bucket')
  t.ok(Number(over.retryAfter) >= 1, `Retry-After: ${over.retryAfter}`)
  const free = await newKey({ name: 'unlimited', scopes: ['run-now'] })
  for (let i = 0; i < 5; i++) t.equal((await post(one.url, '/run-now', free, quick)).status, 200, 'a key without a rate is not limited')
})

t.test('calls in flight: 429 concurrency_limited on any daemon while the key\'s one call runs', async (t) => {
  const key = await newKey({ name: 'one at a time', scopes: ['run-now'], max_concurrency: 1 })
  // A streamed call's first log line arrives once it runs: from then on it holds the key's one place.
  const long = await fetch(`${one.url}/run-now`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ language: 'python', code: 'import time\nprint("running")\ntime.sleep(2)\nreturn "slept"', stream: true })
  })
  t.equal(long.headers.get('content-type'), 'text/event-stream')
  const reader = (long.body as ReadableStream<Uint8Array>).getReader()
  let text = ''
  while (!text.includes('running')) {
    const chunk = await reader.read()
    if (chunk.done) break
    text += new TextDecoder().decode(chunk.value)
  }
  t.match(text, /"data":"running"/)
  const refused = await post(two.url, '/run-now', key, quick)
  t.match(refused, { status: 429, retryAfter: '1', body: { error: { code: 'concurrency_limited' } } })
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value)
  t.match(text, /"event":"result","data":"slept"/)
  // Given back as the answer ends: the next call may reach Redis a moment before the release.
  await waitFor(async () => (await post(two.url, '/run-now', key, quick)).status === 200, 5000, 'the place to be given back when the call ends')
})

t.test('with Redis away, keys seen before keep working and quotas hold per daemon, said in the logs', async (t) => {
  const key = await newKey({ name: 'resilient', scopes: ['run-now'], rate_per_second: 1 / 60, burst: 1 })
  t.equal((await post(one.url, '/run-now', key, quick)).status, 200)
  await redis.down()
  t.teardown(async () => await redis.up())
  const during = []
  for (let i = 0; i < 3; i++) during.push((await post(one.url, '/run-now', key, quick)).status)
  t.same(during, [200, 200, 429], 'a per-daemon bucket of the same size, starting full: its rate and burst')
  await waitFor(() => one.logs.some((l) => /per-key quotas are enforced per daemon/.test(String(l.msg))), 5000, 'the degraded-quotas warning')
  t.ok(one.logs.some((l) => /API keys are checked against the ones this daemon last saw valid/.test(String(l.msg))))
  const unseen = await post(two.url, '/run-now', `hearth_0123456789abcdef_${'C'.repeat(43)}`, quick)
  t.same([unseen.status, unseen.body.error.code], [503, 'store_unavailable'], 'a key never seen cannot be checked')
})
