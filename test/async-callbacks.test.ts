// Callbacks of asynchronous calls to a real local receiver (issue 13): signed,
// retried after a 500, every attempt on the call; hosts refused unless
// CALLBACK_ALLOW lists them; a call seen only by the key that queued it.
import { createHmac } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import { get, post, startDaemon } from './helpers/daemon.js'
import { checkAnswer } from './helpers/openapi.js'
import { startRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const SECRET = 'callback-secret-for-tests'
const redis = await startRedis(t)

interface Received { headers: IncomingHttpHeaders, body: string }
const received: Received[] = []
let answers: number[] = [] // statuses to answer, in order; then 200
const receiver = createServer((req, res) => {
  let body = ''
  req.on('data', (c: Buffer) => { body += c.toString() })
  req.on('end', () => {
    received.push({ headers: req.headers, body })
    res.statusCode = answers.shift() ?? 200
    res.end()
  })
})
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
t.teardown(() => { receiver.close() })
const hook = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`

const env = { ...redis.env, POOL_MIN: '0', POOL_MAX: '2', CALLBACK_SECRET: SECRET }
// cluster-async-callbacks.test.ts: on a cluster, the tests that do not depend on Redis are skipped.
const noRedisPart = process.env.HEARTH_TEST_REDIS === 'cluster' && 'nothing of it depends on the Redis'

t.test('the status document is POSTed signed, retried after a 500, each attempt recorded', async (t) => {
  const d = await startDaemon(t, { ...env, CALLBACK_ALLOW: '127.0.0.0/8' })
  received.length = 0
  answers = [500]
  const r = await post(`${d.url}/run-now-async`, { language: 'python', code: 'return {"sum": input["a"] + input["b"]}', input: { a: 2, b: 3 }, callback_url: hook })
  t.equal(r.status, 202)
  await waitFor(() => received.length === 2, 15_000, 'the callback and its retry')
  for (const { headers, body } of received) {
    t.equal(headers['x-hearth-call-id'], r.body.id)
    t.equal(headers['x-hearth-signature'], 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex'), 'HMAC-SHA256 of the body')
    t.equal(headers['content-type'], 'application/json')
    t.match(JSON.parse(body), { id: r.body.id, status: 'done', attempts: 1, result: { data: { sum: 5 }, type: 'json' } })
    checkAnswer('GET', `${d.url}/calls/${r.body.id as string}`, 200, 'application/json', JSON.parse(body))
  }
  let doc: any
  await waitFor(async () => (doc = (await get(`${d.url}/calls/${r.body.id as string}`)).body).callback?.delivered === true, 5000, 'the delivery to be recorded')
  t.match(doc.callback.attempts, [{ status: 500 }, { status: 200 }], 'both attempts, on the call')
  t.equal(received[0]?.body, received[1]?.body, 'the same document each time')
})

// A queued call that DELETE cancels ends in Redis (the CANCEL script), not in
// a worker, which is where callbacks were sent from: its receiver heard nothing.
t.test('a call cancelled while still queued is sent to its callback too', async (t) => {
  const d = await startDaemon(t, { ...env, CALLBACK_ALLOW: '127.0.0.1', ASYNC_CONCURRENCY: '0' }) // queues, runs none
  received.length = 0
  answers = []
  const r = await post(`${d.url}/run-now-async`, { language: 'python', code: 'return 1', callback_url: hook })
  t.equal(r.status, 202)
  const cancelled = await get(`${d.url}/calls/${r.body.id as string}`, 'DELETE')
  t.match(cancelled.body, { status: 'failed', error: { code: 'cancelled' } })
  await waitFor(() => received.length === 1, 10_000, 'the callback of the cancelled call')
  t.match(JSON.parse(received[0]?.body ?? '{}'), { id: r.body.id, status: 'failed', error: { code: 'cancelled' } }, 'its document, as the DELETE answered it')
  t.equal(received[0]?.headers['x-hearth-signature'], 'sha256=' + createHmac('sha256', SECRET).update(received[0]?.body ?? '').digest('hex'))
})

t.test('a receiver that keeps failing: CALLBACK_MAX_ATTEMPTS attempts, then no more', { skip: noRedisPart }, async (t) => {
  const d = await startDaemon(t, { ...env, CALLBACK_ALLOW: '127.0.0.1', CALLBACK_MAX_ATTEMPTS: '2' })
  received.length = 0
  answers = [503, 503, 503]
  const r = await post(`${d.url}/run-now-async`, { language: 'javascript', code: 'return 1', callback_url: hook })
  let doc: any
  await waitFor(async () => (doc = (await get(`${d.url}/calls/${r.body.id as string}`)).body).callback?.attempts.length === 2, 15_000, 'two attempts')
  t.equal(doc.callback.delivered, false)
  t.equal(received.length, 2, 'exactly CALLBACK_MAX_ATTEMPTS requests')
  answers = []
})

t.test('callback hosts: loopback and private addresses refused unless CALLBACK_ALLOW lists them', { skip: noRedisPart }, async (t) => {
  const d = await startDaemon(t, env)
  const code = { language: 'python', code: 'return 1' }
  const cases: Array<[string, RegExp]> = [
    [hook, /127\.0\.0\.1 is 127\.0\.0\.1, a loopback, private or reserved address/],
    ['http://10.1.2.3/x', /private or reserved/],
    ['http://169.254.169.254/latest/meta-data', /private or reserved/],
    ['http://[::1]:9/x', /private or reserved/],
    ['ftp://example.com/x', /must be http or https/],
    ['not a url', /is not a URL/]
  ]
  for (const [url, message] of cases) {
    const r = await post(`${d.url}/run-now-async`, { ...code, callback_url: url })
    t.match([r.status, r.body.error], [400, { code: 'invalid_field', field: 'callback_url', message }], url)
  }
  const unsigned = await startDaemon(t, { ...env, CALLBACK_SECRET: '', CALLBACK_ALLOW: '127.0.0.1' })
  const r = await post(`${unsigned.url}/run-now-async`, { ...code, callback_url: hook })
  t.match([r.status, r.body.error], [400, { field: 'callback_url', message: /CALLBACK_SECRET/ }], 'no secret, no callbacks')
})

t.test('AUTH=on: a call is seen and cancelled only by the key that queued it, or an admin', async (t) => {
  const ADMIN = 'admin-token-for-async-tests-0123'
  const d = await startDaemon(t, { ...env, AUTH: 'on', ADMIN_TOKEN: ADMIN })
  const req = async (method: string, path: string, token: string, body?: unknown): Promise<{ status: number, body: any }> => {
    const res = await fetch(d.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await res.text()
    let parsed: unknown = text
    try { parsed = JSON.parse(text) } catch {}
    checkAnswer(method, d.url + path, res.status, res.headers.get('content-type'), parsed)
    return { status: res.status, body: parsed }
  }
  const key = async (name: string, scopes: string[]): Promise<string> => (await req('POST', '/keys', ADMIN, { name, scopes })).body.key
  const mine = await key('mine', ['run-now'])
  const theirs = await key('theirs', ['run-now'])
  const reader = await key('reader', ['read'])
  const queued = await req('POST', '/run-now-async', mine, { language: 'python', code: 'return "mine"' })
  t.equal(queued.status, 202)
  const path = `/calls/${queued.body.id as string}`
  t.match((await req('GET', path, mine)).body, { id: queued.body.id })
  t.same([(await req('GET', path, theirs)).status, (await req('DELETE', path, theirs)).status], [404, 404], 'another key: no such call')
  t.equal((await req('GET', path, reader)).status, 403, 'a key without run, run-now or admin')
  t.equal((await req('GET', path, ADMIN)).status, 200, 'the admin sees it')
  t.equal((await req('POST', '/run-async/x/y', mine, {})).status, 403, 'queueing a stored function needs run')
})
