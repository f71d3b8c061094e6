// The per-function warm set's policy, on stand-in sandboxes (a pure data structure).
import t from 'tap'
import { RetryClaim, WarmSet } from '../daemon/pool/warm-set.js'
import type { Sandbox } from '../daemon/sandbox/sandbox.js'

function fake (uses = 1): Sandbox {
  return { state: 'idle', uses, destroy: async () => {} } as unknown as Sandbox
}

const options = { maxTotal: 8, maxPerFunction: 2, idleMs: 60_000, maxUses: 3, queueMax: 10, waitTimeoutMs: 2000 }

t.test('binds up to its share, then queues calls for the function\'s own sandboxes', async (t) => {
  const warm = new WarmSet(options)
  t.same(await warm.claim('f@1'), { kind: 'bind' })
  t.same(await warm.claim('f@1'), { kind: 'bind' })
  const waiting = warm.claim('f@1')
  const a = fake()
  t.ok(warm.release('f@1', a))
  t.same(await waiting, { kind: 'sandbox', sandbox: a }, 'handed over directly')
  t.same(await warm.claim('g@1'), { kind: 'bind' }, 'another function has its own share')
})

t.test('a place freed by a retiring sandbox goes to the first waiter at once', async (t) => {
  const warm = new WarmSet(options)
  await warm.claim('f@1')
  await warm.claim('f@1')
  const waiting = warm.claim('f@1')
  t.notOk(warm.release('f@1', fake(3)), 'used up: refused')
  const err = await waiting.catch((e: unknown) => e)
  t.ok(err instanceof RetryClaim, 'the waiter claims again, and gets a fresh sandbox bound')
  t.same(await warm.claim('f@1'), { kind: 'bind' })
})

t.test('a full wait queue is overloaded; a long wait is queue_timeout', async (t) => {
  const warm = new WarmSet({ ...options, maxPerFunction: 1, queueMax: 1, waitTimeoutMs: 100 })
  await warm.claim('f@1')
  const first = warm.claim('f@1')
  await t.rejects(warm.claim('f@1'), { code: 'overloaded' })
  await t.rejects(first, { code: 'queue_timeout' })
})

t.test('evicts the least recently used idle sandbox when the total is reached', async (t) => {
  const warm = new WarmSet({ ...options, maxTotal: 2, maxPerFunction: 1 })
  let destroyed = 0
  const old = { ...fake(), destroy: async () => { destroyed++ } } as unknown as Sandbox
  await warm.claim('a@1')
  warm.release('a@1', old)
  await warm.claim('b@1')
  warm.release('b@1', fake())
  t.same(await warm.claim('c@1'), { kind: 'bind' })
  t.equal(destroyed, 1)
  t.same(warm.stats(), { functions: 2, sandboxes: 2, idle: 1, waiting: 0 })
})
