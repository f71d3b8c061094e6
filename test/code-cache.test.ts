// The daemon's caches, bounded by bytes (daemon/lru.ts): stored functions'
// code (a path's versions dropped together; against a real Redis, more
// functions in rotation than the old 1,024-entry cap held are fetched once,
// not on every call), which version of a path is current (likewise past the
// old 16,384 entries) and compiled code (daemon/compile/).
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { prepare } from '../daemon/compile/index.js'
import { ByteLru } from '../daemon/lru.js'
import { CodeCache } from '../daemon/store/code-cache.js'
import { FunctionStore } from '../daemon/store/function-store.js'
import { TestRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const fn = (code: string): { code: string } => ({ code })

t.test('bounded by bytes: the least recently used go first, a read counts as a use', async (t) => {
  const cache = new CodeCache<{ code: string }>(3 * (2 * 100 + 512)) // three entries of 100 characters
  for (const name of ['a', 'b', 'c']) cache.set(name, `${name}@1`, fn('x'.repeat(100)))
  t.equal(cache.size, 3)
  t.ok(cache.get('a@1') !== undefined, 'a read: a is the most recently used now')
  cache.set('d', 'd@1', fn('x'.repeat(100)))
  t.same(['a@1', 'b@1', 'c@1', 'd@1'].map((id) => cache.get(id) !== undefined), [true, false, true, true], 'b, the least recently used, made room')
  t.equal(cache.bytes, 3 * (2 * 100 + 512))
  cache.set('c', 'c@1', fn('y'.repeat(100)))
  t.equal(cache.bytes, 3 * (2 * 100 + 512), 'set again: charged once')
  t.equal(cache.get('c@1')?.code, 'y'.repeat(100))
})

t.test('an entry larger than the whole cache is not kept, and pushes nothing out', async (t) => {
  const cache = new CodeCache<{ code: string }>(4096)
  cache.set('a', 'a@1', fn('small'))
  cache.set('big', 'big@1', fn('x'.repeat(4096)))
  t.equal(cache.get('big@1'), undefined)
  t.equal(cache.get('a@1')?.code, 'small')
})

t.test('dropPath drops every version of that path and nothing else', async (t) => {
  const cache = new CodeCache<{ code: string }>(1 << 20)
  cache.set('p', 'p@1', fn('1'))
  cache.set('p', 'p@2', fn('2'))
  cache.set('p/q', 'p/q@1', fn('3')) // a path that starts like it
  cache.dropPath('p')
  t.same([cache.get('p@1'), cache.get('p@2'), cache.get('p/q@1')?.code], [undefined, undefined, '3'])
  t.equal(cache.bytes, 2 * 1 + 512)
})

async function calls (redis: Redis, command: string): Promise<number> {
  const info = await redis.info('commandstats')
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)
  return m === null ? 0 : Number(m[1])
}

/** A function store on a real Redis, its invalidation subscription confirmed (its cache trusted). */
async function trustedStore (t: Test): Promise<{ redis: Redis, store: FunctionStore }> {
  const server = await TestRedis.start(t)
  const redis = new Redis({ host: '127.0.0.1', port: server.port })
  const subscriber = new Redis({ host: '127.0.0.1', port: server.port })
  t.teardown(() => { redis.disconnect(); subscriber.disconnect() })
  await Promise.all([redis, subscriber].map(async (c) => { if (c.status !== 'ready') await new Promise((resolve) => c.once('ready', resolve)) }))
  const store = new FunctionStore(redis, subscriber)
  // Trusted once an upload's invalidation has come back to it (before that,
  // a late one would land in the test's first round, and whatever was being
  // resolved then would not be cached: found as 500 versions asked again
  // under a loaded machine) and a resolve is then answered from the cache.
  let heard = 0
  store.onChange((path) => { if (path === 'probe/f') heard++ })
  await waitFor(async () => {
    const before = heard
    await store.upload('probe/f', 'python', 'return 0')
    const came = await waitFor(() => heard > before, 1000, 'the upload\'s invalidation').then(() => true, () => false)
    if (!came) return false // not subscribed yet: the message went to no one
    const asked = await calls(redis, 'zrange')
    await store.resolve('probe/f')
    await store.resolve('probe/f')
    return await calls(redis, 'zrange') === asked + 1
  }, 10_000, 'the function store to trust its cache')
  return { redis, store }
}

/** `n` functions rr/f<i> uploaded; resolving them all, `batch` at a time, answers how many came back with the wrong code. */
async function rotation (store: FunctionStore, n: number, batch: number): Promise<() => Promise<number>> {
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async (_, j) => await store.upload(`rr/f${i + j}`, 'python', `return ${i + j}`)))
  }
  return async () => {
    let wrong = 0
    for (let i = 0; i < n; i += batch) {
      const got = await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async (_, j) => (await store.resolve(`rr/f${i + j}`)).code))
      got.forEach((code, j) => { if (code !== `return ${i + j}`) wrong++ })
    }
    return wrong
  }
}

t.test('1,100 functions called round-robin: each one\'s code comes from Redis once', async (t) => {
  const { redis, store } = await trustedStore(t)
  const n = 1100
  const round = await rotation(store, n, 1)
  const before = await calls(redis, 'hget')
  t.equal(await round(), 0, 'first round: every function\'s own code')
  t.equal(await calls(redis, 'hget') - before, 2 * n, 'first round: code and metadata fetched for each')
  t.equal(await round(), 0, 'second round: every function\'s own code')
  t.equal(await calls(redis, 'hget') - before, 2 * n, 'second round: nothing fetched again (with 1,024 entries at most, all of it was)')
  // an upload still reaches the next call
  await store.upload('rr/f7', 'python', 'return "new"')
  await waitFor(async () => (await store.resolve('rr/f7')).code === 'return "new"', 5000, 'the new version of rr/f7')
})

t.test('16,500 functions called round-robin: which version is current is asked of Redis once each', async (t) => {
  const { redis, store } = await trustedStore(t)
  const n = 16_500
  const round = await rotation(store, n, 500)
  t.equal(await round(), 0, 'first round: every function\'s own code')
  const asked = await calls(redis, 'zrange')
  t.equal(await round(), 0, 'second round: every function\'s own code')
  t.equal(await calls(redis, 'zrange') - asked, 0, 'second round: no version asked again (with 16,384 entries at most, every one was)')
})

t.test('ByteLru: told of what made room, not of deletes; an entry over the bound alone is refused', async (t) => {
  const evicted: string[] = []
  const lru = new ByteLru<string, number>(10, (key) => evicted.push(key))
  t.ok(lru.set('a', 1, 4))
  t.ok(lru.set('b', 2, 4))
  lru.delete('a')
  t.ok(lru.set('c', 3, 4))
  t.ok(lru.set('d', 4, 4), 'over 10 bytes: b, the least recently used, goes')
  t.same(evicted, ['b'])
  t.same([lru.get('c'), lru.get('d'), lru.bytes], [3, 4, 8])
  t.notOk(lru.set('e', 5, 11))
  t.same([lru.size, lru.get('e')], [2, undefined])
})

t.test('1,100 codes prepared in rotation: the second round is all cache hits', async (t) => {
  const codes = Array.from({ length: 1100 }, (_, i) => `return ${i} // rotation`)
  const first = []
  for (const code of codes) first.push(await prepare('python', code))
  let hits = 0
  for (const [i, code] of codes.entries()) if (await prepare('python', code) === first[i]) hits++
  t.equal(hits, codes.length, 'the same prepared code, not prepared again (with 1,024 entries at most, none were)')
})
