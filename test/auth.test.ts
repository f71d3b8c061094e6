// AUTH=on over real HTTP and a real Redis: keys with scopes and path prefixes,
// shared by every daemon on the Redis, revoked everywhere at once (issue 12).
import { createHash } from 'node:crypto'
import t from 'tap'
import { ConfigError, loadConfig } from '../daemon/config.js'
import { startDaemon } from './helpers/daemon.js'
import { checkAnswer } from './helpers/openapi.js'
import { startRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const ADMIN = 'admin-token-for-tests-0123456789'
const redis = await startRedis(t)
// cluster-auth.test.ts runs this file against a Redis Cluster: there, the tests
// in which Redis plays no part of its own are skipped.
const noRedisPart = { skip: process.env.HEARTH_TEST_REDIS === 'cluster' && 'nothing of it depends on the Redis' }
const env = { ...redis.env, AUTH: 'on', ADMIN_TOKEN: ADMIN, POOL_MIN: '1', POOL_MAX: '2' }
const one = await startDaemon(t, env)
const two = await startDaemon(t, env)

interface Answer { status: number, headers: Headers, body: any }
async function call (base: string, method: string, path: string, token: string | null, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token !== null) headers.authorization = `Bearer ${token}`
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch {}
  checkAnswer(method, base + path, res.status, res.headers.get('content-type'), parsed)
  return { status: res.status, headers: res.headers, body: parsed }
}
const on1 = async (method: string, path: string, token: string | null, body?: unknown): Promise<Answer> => await call(one.url, method, path, token, body)

async function newKey (spec: Record<string, unknown>): Promise<{ id: string, key: string }> {
  const r = await on1('POST', '/keys', ADMIN, spec)
  if (r.status !== 201) throw new Error(`key not created: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

t.test('AUTH defaults to off on loopback only; elsewhere it must be chosen', noRedisPart, async (t) => {
  t.equal(loadConfig({}).auth, false)
  t.throws(() => loadConfig({ HTTP_HOST: '0.0.0.0' }), ConfigError)
  t.throws(() => loadConfig({ HTTP_HOST: '0.0.0.0' }), /AUTH must be set when HTTP_HOST \(0\.0\.0\.0\) is not a loopback address/)
  t.match(loadConfig({ HTTP_HOST: '0.0.0.0', AUTH: 'off' }), { auth: false, authExplicit: true })
  t.match(loadConfig({ HTTP_HOST: '0.0.0.0', AUTH: 'on' }), { auth: true, adminToken: null })
  t.throws(() => loadConfig({ AUTH: 'on', ADMIN_TOKEN: 'short' }), /at least 16 characters/)
})

t.test('probes are open; everything else needs a valid bearer key', async (t) => {
  t.equal((await on1('GET', '/healthz', null)).status, 200)
  t.equal((await on1('GET', '/readyz', null)).status, 200)
  const none = await on1('POST', '/run-now', null, { language: 'python', code: 'return 1' })
  t.same([none.status, none.body.error.code], [401, 'unauthorized'])
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="hearth"')
  for (const bad of ['nonsense', `hearth_0123456789abcdef_${'A'.repeat(43)}`]) {
    t.equal((await on1('GET', '/functions', bad)).body.error.code, 'unauthorized', bad)
  }
  t.equal((await on1('GET', '/metrics', null)).status, 401)
})

t.test('scopes and prefixes: 403 names what is missing; listings are filtered', async (t) => {
  const all = await newKey({ name: 'ops', scopes: ['run', 'run-now', 'upload', 'read', 'delete', 'metrics'] })
  const teamA = await newKey({ name: 'team a', scopes: ['run', 'upload', 'read'], prefix: 'team-a/' })
  t.equal((await on1('POST', '/upload', all.key, { path: 'team-b/g', language: 'python', code: 'return "b"' })).status, 200)
  t.equal((await on1('POST', '/upload', teamA.key, { path: 'team-a/f', language: 'python', code: 'return "a"' })).status, 200)

  const other = await on1('POST', '/upload', teamA.key, { path: 'team-b/h', language: 'python', code: 'return 0' })
  t.same([other.status, other.body.error.code, other.body.error.prefix], [403, 'forbidden', 'team-a/'])
  t.equal((await on1('POST', '/run/team-b/g', teamA.key, {})).status, 403)
  t.same((await on1('POST', '/run/team-a/f', teamA.key, {})).body, { data: 'a', type: 'string' })
  const runNow = await on1('POST', '/run-now', teamA.key, { language: 'python', code: 'return 1' })
  t.same([runNow.status, runNow.body.error.scope], [403, 'run-now'], 'run-now is never implied')
  t.same((await on1('DELETE', '/functions/team-a/f', teamA.key)).body.error.scope, 'delete')
  t.same((await on1('GET', '/functions', teamA.key)).body.functions.map((f: { path: string }) => f.path), ['team-a/f'])
  t.same((await on1('GET', '/functions', all.key)).body.functions.map((f: { path: string }) => f.path), ['team-a/f', 'team-b/g'])
  t.equal((await on1('GET', '/functions/team-b/g', teamA.key)).status, 403)
  t.equal((await on1('GET', '/metrics', all.key)).status, 200)
  const admin = await on1('POST', '/run-now', ADMIN, { language: 'python', code: 'return 1' })
  t.same([admin.status, admin.body.error.scope], [403, 'run-now'], 'ADMIN_TOKEN manages keys, nothing else')
  t.equal((await on1('GET', '/keys', all.key)).body.error.scope, 'admin')
})

t.test('every route checks its scope, and every path route the prefix', async (t) => {
  const fn = { path: 'team-b/every', language: 'python', code: 'return 1' }
  const routes: Array<[string, string, string, unknown?]> = [
    ['POST', '/upload', 'upload', fn],
    ['POST', '/run-now', 'run-now', { language: 'python', code: 'return 1' }],
    ['POST', '/run/team-b/every', 'run', {}],
    ['GET', '/functions', 'read'],
    ['GET', '/functions/team-b/every', 'read'],
    ['DELETE', '/functions/team-b/every', 'delete'],
    ['GET', '/metrics', 'metrics'],
    ['POST', '/keys', 'admin', { name: 'n', scopes: ['read'] }],
    ['GET', '/keys', 'admin'],
    ['DELETE', '/keys/0123456789abcdef', 'admin']
  ]
  const none = await newKey({ name: 'nothing useful', scopes: ['run'], prefix: 'nowhere/' })
  for (const [method, path, scope, body] of routes) {
    if (scope === 'run') continue
    const r = await on1(method, path, none.key, body)
    t.same([r.status, r.body.error?.scope], [403, scope], `${method} ${path} needs ${scope}`)
  }
  const everything = await newKey({ name: 'all but elsewhere', scopes: ['run', 'run-now', 'upload', 'read', 'delete', 'metrics'], prefix: 'team-a/' })
  for (const [method, path, , body] of routes.filter(([, p]) => p === '/upload' || /team-b/.test(p))) {
    const r = await on1(method, path, everything.key, body)
    t.same([r.status, r.body.error?.prefix], [403, 'team-a/'], `${method} ${path} is outside the prefix`)
  }
})

t.test('keys are listed without secrets, work on every daemon, and a revocation reaches all of them', async (t) => {
  const k = await newKey({ name: 'shared', scopes: ['run-now'], rate_per_second: 50, max_concurrency: 4 })
  t.match(k.key, /^hearth_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
  const listed = (await on1('GET', '/keys', ADMIN)).body.keys.find((x: { id: string }) => x.id === k.id)
  t.match(listed, { name: 'shared', scopes: ['run-now'], prefix: '', rate_per_second: 50, burst: 50, max_concurrency: 4, expires_at: null })
  t.notOk('key' in listed || 'hash' in listed, 'no secret, no hash')
  const run = { language: 'python', code: 'return 7' }
  t.same((await call(two.url, 'POST', '/run-now', k.key, run)).body, { data: 7, type: 'number' }, 'made on one, accepted by two')
  t.equal((await on1('DELETE', `/keys/${k.id}`, ADMIN)).status, 200)
  t.equal((await call(two.url, 'POST', '/run-now', k.key, run)).status, 401, 'revoked on one, refused by two at once')
  t.equal((await on1('DELETE', `/keys/${k.id}`, ADMIN)).body.error.code, 'key_not_found')
})

t.test('an expired key is refused', async (t) => {
  const k = await newKey({ name: 'brief', scopes: ['read'], expires_at: new Date(Date.now() + 1500).toISOString() })
  t.equal((await on1('GET', '/functions', k.key)).status, 200)
  await waitFor(async () => (await on1('GET', '/functions', k.key)).status === 401, 10_000, 'the key to expire')
  t.match((await on1('GET', '/functions', k.key)).body.error.message, /expired/)
  const past = await on1('POST', '/keys', ADMIN, { name: 'x', scopes: ['read'], expires_at: '2001-01-01T00:00:00Z' })
  t.same([past.status, past.body.error.field], [400, 'expires_at'])
})

t.test('bad key specs name their field', noRedisPart, async (t) => {
  for (const [spec, field] of [
    [{ scopes: ['read'] }, 'name'],
    [{ name: 'n', scopes: [] }, 'scopes'],
    [{ name: 'n', scopes: ['root'] }, 'scopes'],
    [{ name: 'n', scopes: ['read'], prefix: '../x' }, 'prefix'],
    [{ name: 'n', scopes: ['read'], rate_per_second: -1 }, 'rate_per_second'],
    [{ name: 'n', scopes: ['read'], max_concurrency: 1.5 }, 'max_concurrency']
  ] as const) {
    const r = await on1('POST', '/keys', ADMIN, spec)
    t.same([r.status, r.body.error.field], [400, field], JSON.stringify(spec))
  }
})

t.test('the audit log names the key that made each change, and no log line holds a secret', noRedisPart, async (t) => {
  const k = await newKey({ name: 'auditor', scopes: ['upload', 'delete'] })
  t.equal((await on1('POST', '/upload', k.key, { path: 'audit/f', language: 'python', code: 'return 1' })).status, 200)
  t.equal((await on1('DELETE', '/functions/audit/f', k.key)).status, 200)
  await waitFor(() => one.logs.some((l) => l.audit === 'function.delete'), 5000, 'the delete audit line')
  t.match(one.logs.find((l) => l.audit === 'key.create' && l.key_id === k.id), { by_key_id: 'admin', key_name: 'auditor' })
  t.match(one.logs.find((l) => l.audit === 'function.upload' && l.function === 'audit/f'), { by_key_id: k.id, by_key_name: 'auditor', version: Number })
  t.match(one.logs.find((l) => l.audit === 'function.delete' && l.function === 'audit/f'), { by_key_id: k.id, deleted: 1 })
  // base64url has '_' too: the secret is everything after the id
  const secret = k.key.slice(`hearth_${k.id}_`.length)
  t.equal(secret.length, 43)
  t.notOk(JSON.stringify(one.logs).includes(secret), 'the secret is in no log line')
  t.notOk(JSON.stringify(one.logs).includes(ADMIN), 'nor is the admin token')
})

t.test('an unknown key and a wrong secret take the same path (and about the same time)', noRedisPart, async (t) => {
  const k = await newKey({ name: 'timing', scopes: ['read'] })
  const wrong = `hearth_${k.id}_${'B'.repeat(43)}`
  const unknown = `hearth_fedcba9876543210_${'B'.repeat(43)}`
  const time = async (key: string): Promise<number> => {
    const start = process.hrtime.bigint()
    t.equal((await on1('GET', '/functions', key)).status, 401)
    return Number(process.hrtime.bigint() - start)
  }
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
  const a: number[] = []
  const b: number[] = []
  for (let i = 0; i < 40; i++) { a.push(await time(wrong)); b.push(await time(unknown)) }
  const ratio = median(a) / median(b)
  t.ok(ratio > 0.5 && ratio < 2, `median wrong / unknown = ${ratio.toFixed(2)}`)
})

t.test('keys made before the hash-tagged names (one Redis) are moved at start and keep working', { skip: process.env.HEARTH_TEST_REDIS === 'cluster' && 'a cluster never held the old names' }, async (t) => {
  const { Redis } = await import('ioredis')
  const client = new Redis(redis.env.REDIS_URL as string)
  t.teardown(() => { client.disconnect() })
  const id = 'fedcba9876543210'
  const secret = 'S'.repeat(43)
  const spec = { name: 'from before', scopes: ['run-now'], prefix: '', ratePerSecond: null, burst: null, maxConcurrency: null, expiresAt: null, created: 1_700_000_000 }
  await client.hset(`hearth:apikey:${id}`, { id, hash: createHash('sha256').update(secret).digest('hex'), spec: JSON.stringify(spec) })
  await client.sadd('hearth:apikeys', id)
  const later = await startDaemon(t, env)
  const run = await call(later.url, 'POST', '/run-now', `hearth_${id}_${secret}`, { language: 'python', code: 'return "still valid"' })
  t.same([run.status, run.body], [200, { data: 'still valid', type: 'string' }])
  t.same([await client.exists(`hearth:apikey:${id}`), await client.scard('hearth:apikeys')], [0, 0], 'nothing left under the old names')
  t.ok((await call(later.url, 'GET', '/keys', ADMIN)).body.keys.some((k: { id: string }) => k.id === id), 'listed')
})
