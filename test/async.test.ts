// Asynchronous calls on a real Redis stream, run by real daemons (issue 13):
// queued durably, spread over daemons, taken over when a daemon is SIGKILLed,
// cancelled, expired, bounded.
import t from 'tap'
import { get, post, startDaemon, type Daemon } from './helpers/daemon.js'
import { startRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const redis = await startRedis(t)
// POOL_MIN=0: sandboxes start for calls only (a daemon's start costs less CPU: make test runs many).
const base = { ...redis.env, POOL_MIN: '0', POOL_MAX: '4', ASYNC_CLAIM_IDLE: '1' }
// cluster-async.test.ts runs this file against a Redis Cluster: there, the
// tests whose Redis steps the others already take are skipped.
const sameOnCluster = process.env.HEARTH_TEST_REDIS === 'cluster' && 'the same Redis steps as the tests above'

const sleeper = (seconds: number, result = 'slept'): Record<string, unknown> =>
  ({ language: 'python', code: `import time\nprint("going to sleep")\ntime.sleep(${seconds})\nreturn ${JSON.stringify(result)}` })

async function queue (d: Daemon, body: Record<string, unknown>, route = '/run-now-async'): Promise<string> {
  const r = await post(d.url + route, body)
  if (r.status !== 202) throw new Error(`not queued: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.id
}

async function call (d: Daemon, id: string): Promise<any> {
  const r = await get(`${d.url}/calls/${id}`)
  if (r.status !== 200) throw new Error(`GET /calls/${id}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

async function ended (d: Daemon, id: string, timeoutMs = 20_000): Promise<any> {
  let doc: any
  await waitFor(async () => ['done', 'failed'].includes((doc = await call(d, id)).status), timeoutMs, `call ${id} to end`)
  return doc
}

async function metric (d: Daemon, name: string): Promise<number> {
  const text = (await get(`${d.url}/metrics`)).body as string
  let sum = 0
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').at(-1))
  return sum
}

t.test('a queued call: 202 at once, then its status document, result and logs', async (t) => {
  const d = await startDaemon(t, base)
  const began = Date.now()
  const r = await post(`${d.url}/run-now-async`, { ...sleeper(0.5, 'late'), input: { n: 1 } })
  const acceptedAt = Date.now()
  t.equal(r.status, 202)
  t.equal(r.body.status_url, `/calls/${r.body.id as string}`)
  t.equal(r.headers.get('location'), r.body.status_url)
  const doc = await ended(d, r.body.id)
  t.ok(began <= Date.parse(doc.created) + 1 && acceptedAt < Date.parse(doc.finished), '202 before the call ended')
  t.match(doc, { id: r.body.id, status: 'done', language: 'python', attempts: 1, result: { data: 'late', type: 'string' } })
  t.ok(Date.parse(doc.created) <= Date.parse(doc.started) && Date.parse(doc.started) < Date.parse(doc.finished), 'created ≤ started < finished')
  const logs = await get(`${d.url}/calls/${r.body.id as string}/logs`)
  t.equal(logs.body, 'going to sleep')
  t.same(d.logs.filter((l) => Number(l.level) >= 40).map((l) => l.msg), [], 'a clean start and call: no warning (the queue is read once its connection is up)')

  const failed = await ended(d, await queue(d, { language: 'javascript', code: 'throw new RangeError("nope")' }))
  t.match(failed, { status: 'failed', error: { code: 'script_error', message: /nope/ } }, 'a failing call fails with the error a synchronous one answers')

  const missing = await get(`${d.url}/calls/${'0'.repeat(32)}`)
  t.same([missing.status, missing.body.error.code], [404, 'call_not_found'])
  t.equal((await get(`${d.url}/calls/not-an-id`)).status, 404)
  const streamed = await post(`${d.url}/run-now-async`, { ...sleeper(0), stream: true })
  t.same([streamed.status, streamed.body.error.field], [400, 'stream'], 'stream is refused, naming the logs route')
  const stopping = Date.now()
  await d.stop()
  t.ok(Date.now() - stopping < 1000, `an idle daemon stops at once (${Date.now() - stopping} ms): a read of the queue does not hold it`)
})

t.test('a stored function: the version current when queued, and 404 for a missing one', { skip: sameOnCluster }, async (t) => {
  const d = await startDaemon(t, base)
  const up = await post(`${d.url}/upload`, { path: 'async/double', language: 'typescript', code: 'const x: number = input.n\nreturn x * 2' })
  const id = await queue(d, { input: { n: 21 } }, '/run-async/async/double')
  t.match(await ended(d, id), { status: 'done', function: 'async/double', version: up.body.version, result: { data: 42, type: 'number' } })
  const nope = await post(`${d.url}/run-async/async/missing`, {})
  t.same([nope.status, nope.body.error.code], [404, 'function_not_found'], 'refused when queued, not when run')
})

t.test('a burst spreads over two daemons: both take work, each at most ASYNC_CONCURRENCY at once', async (t) => {
  const env = { ...base, ASYNC_CONCURRENCY: '2' }
  const a = await startDaemon(t, env)
  const b = await startDaemon(t, env)
  const ids = await Promise.all(Array.from({ length: 12 }, async (_, i) => await queue(i % 2 === 0 ? a : b, sleeper(0.3, `r${i}`))))
  const docs = await Promise.all(ids.map(async (id) => await ended(a, id, 30_000)))
  t.same(docs.map((d) => d.result.data), ids.map((_, i) => `r${i}`), 'every call done, each with its own result')
  const [na, nb] = [await metric(a, 'hearth_async_started_total'), await metric(b, 'hearth_async_started_total')]
  t.ok(na > 0 && nb > 0, `both daemons ran calls (${na} and ${nb})`)
  t.equal(na + nb, 12, 'each call ran once')
})

t.test('a daemon SIGKILLed mid-call: the other claims its calls and finishes them; nothing lost', async (t) => {
  const env = { ...base, ASYNC_CONCURRENCY: '3', ASYNC_MAX_ATTEMPTS: '2' }
  const a = await startDaemon(t, env)
  const ids = await Promise.all([0, 1, 2].map(async (i) => await queue(a, sleeper(2, `survived ${i}`))))
  await waitFor(async () => (await Promise.all(ids.map(async (id) => (await call(a, id)).status))).every((s) => s === 'running'), 10_000, 'a to run all three')
  // Killed before the other starts: its calls cannot have ended, whatever the machine's load.
  await a.stop('SIGKILL')
  const b = await startDaemon(t, env)
  const docs = await Promise.all(ids.map(async (id) => await ended(b, id, 30_000)))
  t.same(docs.map((d) => [d.status, d.attempts, d.result?.data]), [0, 1, 2].map((i) => ['done', 2, `survived ${i}`]), 'each done on its second attempt')
  t.equal(await metric(b, 'hearth_async_started_total{claimed="true"}'), 3, 'b says it took three over')
})

t.test('a call longer than ASYNC_CLAIM_IDLE stays with its live daemon (it confirms its calls)', async (t) => {
  const a = await startDaemon(t, { ...base, ASYNC_CONCURRENCY: '1' })
  const b = await startDaemon(t, base)
  const id = await queue(a, sleeper(2.5, 'once'))
  t.match(await ended(b, id), { status: 'done', attempts: 1, result: { data: 'once' } }, 'run once, though 2.5 s > ASYNC_CLAIM_IDLE=1')
  t.equal(await metric(a, 'hearth_async_started_total{claimed="true"}') + await metric(b, 'hearth_async_started_total{claimed="true"}'), 0, 'nobody took it over')
})

t.test('ASYNC_MAX_ATTEMPTS: a call whose daemons keep dying fails as abandoned', { skip: sameOnCluster }, async (t) => {
  const env = { ...base, ASYNC_CONCURRENCY: '1', ASYNC_MAX_ATTEMPTS: '1' }
  const a = await startDaemon(t, env)
  const id = await queue(a, sleeper(30))
  await waitFor(async () => (await call(a, id)).status === 'running', 10_000, 'the call to run')
  await a.stop('SIGKILL')
  const b = await startDaemon(t, env)
  t.match(await ended(b, id), { status: 'failed', attempts: 1, error: { code: 'abandoned' } })
})

t.test('cancel: a queued call at once, a running one killed', async (t) => {
  const d = await startDaemon(t, { ...base, ASYNC_CONCURRENCY: '1' })
  const running = await queue(d, sleeper(60))
  await waitFor(async () => (await call(d, running)).status === 'running', 10_000, 'the first call to run')
  const queued = await queue(d, sleeper(0))
  const c1 = await get(`${d.url}/calls/${queued}`, 'DELETE')
  t.match(c1.body, { status: 'failed', attempts: 0, error: { code: 'cancelled' } }, 'the queued call never runs')
  const began = Date.now()
  const c2 = await get(`${d.url}/calls/${running}`, 'DELETE')
  t.match(c2.body, { status: 'failed', attempts: 1, error: { code: 'cancelled' } }, 'the running call is killed, and its end stored')
  t.ok(Date.now() - began < 5000, `answered in ${Date.now() - began} ms, not after the 60 s sleep`)
  const again = await get(`${d.url}/calls/${running}`, 'DELETE')
  t.match(again.body, { status: 'failed', error: { code: 'cancelled' } }, 'cancelling an ended call changes nothing')
  t.match(await ended(d, await queue(d, sleeper(0, 'next'))), { status: 'done', result: { data: 'next' } }, 'the daemon goes on taking calls')
})

t.test('ASYNC_RESULT_TTL: a finished call is forgotten after it', { skip: sameOnCluster }, async (t) => {
  const d = await startDaemon(t, { ...base, ASYNC_RESULT_TTL: '1' })
  const id = await queue(d, { language: 'python', code: 'print("x")\nreturn 1' })
  await ended(d, id)
  await waitFor(async () => (await get(`${d.url}/calls/${id}`)).status === 404, 5000, 'the call to expire')
  t.equal((await get(`${d.url}/calls/${id}/logs`)).status, 404, 'its logs with it')
})

t.test('ASYNC_QUEUE_MAX: past it, 503 overloaded with Retry-After; ASYNC_CONCURRENCY=0 only queues', async (t) => {
  const d = await startDaemon(t, { ...base, ASYNC_QUEUE_MAX: '2', ASYNC_CONCURRENCY: '0' })
  // Other tests' calls are done and acknowledged: acknowledged entries leave the stream.
  await waitFor(async () => await metric(d, 'hearth_async_queued') === 0, 10_000, 'the stream to be empty')
  const ids = [await queue(d, sleeper(0)), await queue(d, sleeper(0))]
  const over = await post(`${d.url}/run-now-async`, sleeper(0))
  t.same([over.status, over.body.error.code], [503, 'overloaded'])
  t.equal(over.headers.get('retry-after'), '1')
  t.same(await Promise.all(ids.map(async (id) => (await call(d, id)).status)), ['queued', 'queued'], 'nothing runs on a daemon with ASYNC_CONCURRENCY=0')
  const worker = await startDaemon(t, base)
  for (const id of ids) t.equal((await ended(worker, id)).status, 'done', 'another daemon runs them')
  t.equal((await post(`${d.url}/run-now-async`, sleeper(0))).status, 202, 'room again once they are done')
})

t.test('synchronous calls keep their sandboxes: async work takes at most ASYNC_CONCURRENCY of them', { skip: sameOnCluster }, async (t) => {
  const d = await startDaemon(t, { ...base, POOL_MAX: '2', ASYNC_CONCURRENCY: '1' })
  const ids = await Promise.all([0, 1, 2, 3].map(async () => await queue(d, sleeper(3))))
  await waitFor(async () => (await Promise.all(ids.map(async (id) => (await call(d, id)).status))).includes('running'), 10_000, 'async work to run')
  const began = Date.now()
  const sync = await post(`${d.url}/run-now`, { language: 'python', code: 'return "first"' })
  t.same(sync.body, { data: 'first', type: 'string' })
  t.ok(Date.now() - began < 2500, `the synchronous call answered in ${Date.now() - began} ms, while 4 × 3 s of async work waited`)
  t.same((await Promise.all(ids.map(async (id) => (await call(d, id)).status))).filter((s) => s === 'running').length, 1, 'one async call at a time')
})
