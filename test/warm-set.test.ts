// The per-function warm set's policy, on stand-in sandboxes (a pure data structure).
import t from 'tap'
import { waitFor } from './helpers/wait.js'
import { WaitLimit } from '../daemon/pool/wait-limit.js'
import { RetryClaim, WarmSet } from '../daemon/pool/warm-set.js'
import type { Sandbox } from '../daemon/sandbox/sandbox.js'

function fake (uses = 1): Sandbox {
  return { state: 'idle', uses, destroy: async () => {} } as unknown as Sandbox
}

const options = { maxTotal: 8, maxPerFunction: 2, idleMs: 60_000, maxUses: 3, queue: new WaitLimit(10), waitTimeoutMs: 2000, onBackgroundError: (err: Error) => { throw err } }
/** a call's deadline: ACQUIRE_TIMEOUT from now */
const soon = (ms = 2000): number => Date.now() + ms

t.test('binds up to its share, then queues calls for the function\'s own sandboxes', async (t) => {
  const warm = new WarmSet(options)
  t.same(await warm.claim('f@1', soon()), { kind: 'bind' })
  t.same(await warm.claim('f@1', soon()), { kind: 'bind' })
  const waiting = warm.claim('f@1', soon())
  const a = fake()
  t.ok(warm.release('f@1', a))
  t.same(await waiting, { kind: 'sandbox', sandbox: a }, 'handed over directly')
  t.same(await warm.claim('g@1', soon()), { kind: 'bind' }, 'another function has its own share')
})

t.test('a place freed by a retiring sandbox goes to the first waiter at once', async (t) => {
  const warm = new WarmSet(options)
  await warm.claim('f@1', soon())
  await warm.claim('f@1', soon())
  const waiting = warm.claim('f@1', soon())
  t.notOk(warm.release('f@1', fake(3)), 'used up: refused')
  const err = await waiting.catch((e: unknown) => e)
  t.ok(err instanceof RetryClaim, 'the waiter claims again, and gets a fresh sandbox bound')
  t.same(await warm.claim('f@1', soon()), { kind: 'bind' })
})

t.test('a wait ends at its call\'s deadline with queue_timeout', async (t) => {
  const warm = new WarmSet({ ...options, maxPerFunction: 1 })
  await warm.claim('f@1', soon())
  const started = Date.now()
  await t.rejects(warm.claim('f@1', soon(100)), { code: 'queue_timeout' })
  t.ok(Date.now() - started < 1500, `after ${Date.now() - started} ms, by the call's deadline, not ACQUIRE_TIMEOUT (2 s)`)
  t.same(warm.stats().waiting, 0)
})

t.test('waiting calls count against the shared QUEUE_MAX; a full queue is overloaded at once', async (t) => {
  const queue = new WaitLimit(1)
  const warm = new WarmSet({ ...options, maxPerFunction: 1, queue })
  await warm.claim('f@1', soon())
  const first = warm.claim('f@1', soon(200))
  await t.rejects(warm.claim('f@1', soon()), { code: 'overloaded' })
  t.throws(() => queue.enter(), { code: 'overloaded' }, 'the limit is the one the language pools share')
  await t.rejects(first, { code: 'queue_timeout' })
  queue.enter()() // the timed-out wait gave its place back
})

t.test('evicts the least recently used idle sandbox when the total is reached', async (t) => {
  const warm = new WarmSet({ ...options, maxTotal: 2, maxPerFunction: 1 })
  let destroyed = 0
  const old = { ...fake(), destroy: async () => { destroyed++ } } as unknown as Sandbox
  await warm.claim('a@1', soon())
  warm.release('a@1', old)
  await warm.claim('b@1', soon())
  warm.release('b@1', fake())
  t.same(await warm.claim('c@1', soon()), { kind: 'bind' })
  t.equal(destroyed, 1)
  t.same(warm.stats(), { functions: 2, sandboxes: 2, idle: 1, waiting: 0 })
})

t.test('an idle sandbox is destroyed after WARM_IDLE_SECONDS, and its place freed', async (t) => {
  const warm = new WarmSet({ ...options, idleMs: 50 })
  let destroyed = 0
  await warm.claim('f@1', soon())
  t.ok(warm.release('f@1', { ...fake(), destroy: async () => { destroyed++ } } as unknown as Sandbox))
  t.same(warm.stats(), { functions: 1, sandboxes: 1, idle: 1, waiting: 0 })
  await waitFor(() => destroyed === 1, 5000, 'the idle sandbox to be destroyed')
  t.same(warm.stats(), { functions: 0, sandboxes: 0, idle: 0, waiting: 0 })
})

t.test('a teardown that fails off the call path is reported, not swallowed', async (t) => {
  const reported: string[] = []
  const warm = new WarmSet({ ...options, maxTotal: 1, maxPerFunction: 1, onBackgroundError: (err) => { reported.push(err.message) } })
  await warm.claim('a@1', soon())
  warm.release('a@1', { ...fake(), destroy: async () => { throw new Error('cgroup busy') } } as unknown as Sandbox)
  t.same(await warm.claim('b@1', soon()), { kind: 'bind' }, 'a evicted for b')
  await waitFor(() => reported.length === 1, 5000, 'the failed teardown to be reported')
  t.same(reported, ['cgroup busy'])
})
