// Which forked children read the pages their first call will write before
// they are ready (runtimes/zygote/touch.c): by default only spares, the
// sandboxes the pools start with no call waiting for them (the minimum, a
// refill); a sandbox forked for a call already waiting would pay the same
// page fills a moment later in that call, and the touch's extra reads cost
// run-now throughput under load. ZYGOTE_PRETOUCH=always|off: every fork, none.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { py, pythonPool, startRunner, waitFor } from './helpers/runner.js'
import { pythonPrograms, pythonRuntime } from './helpers/zygotes.js'

const node = (runner: Parameters<typeof pythonRuntime>[0]): Record<string, any> => runner.stats().runtimes.node as Record<string, any>

t.test('spares read their first call\'s pages before they are ready; a sandbox forked for a waiting call does not', async (t) => {
  const spares = await startRunner(t, { ZYGOTE: 'on', POOL_MIN: '1' })
  await waitFor(() => pythonPool(spares.runner)?.ready === 1, 10_000, 'the python pool spare')
  t.match(pythonRuntime(spares.runner), { forks: 1, pretouchedForks: 1 }, 'the minimum: a spare')
  t.equal(await py(spares.runner, 'return 6 * 7'), 42)
  await waitFor(() => pythonPool(spares.runner)?.ready === 1, 10_000, 'the refill')
  t.match(pythonRuntime(spares.runner), { forks: 2, pretouchedForks: 2 }, 'the refill after a run-now call: a spare')
  await waitFor(() => node(spares.runner).forks >= 2, 10_000, 'the node spares')
  t.equal(node(spares.runner).pretouchedForks, node(spares.runner).forks, 'node\'s spares too')

  const none = await startRunner(t, { ZYGOTE: 'on', POOL_MIN: '0' })
  const answers = await Promise.all([1, 2, 3].map(async (i) => await py(none.runner, `return ${i}`)))
  t.same(answers, [1, 2, 3])
  t.equal(await py(none.runner, 'return 4'), 4)
  t.match(pythonRuntime(none.runner), { forks: 4, pretouchedForks: 0 }, 'POOL_MIN=0: each fork for a call waiting for it, none read ahead')
})

/** Minor faults and resident kB of this test's one python program: a spare, idle since its `ready`. */
async function spareFaultsAndRss (): Promise<{ faults: number, rssKb: number }> {
  await waitFor(() => pythonPrograms().length === 1, 10_000, 'one forked python program')
  const pid = pythonPrograms()[0] as number
  const faults = Number(readFileSync(`/proc/${pid}/stat`, 'latin1').split(')')[1]?.trim().split(/\s+/)[7])
  const rssKb = Number(/^Rss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'))?.[1])
  return { faults, rssKb }
}

// Run one after the other: one forked python program alive at a time, so each is found.
t.test('ZYGOTE_PRETOUCH=always reads ahead in every fork, off in none; what a read-ahead maps shows in the spare', async (t) => {
  let always = { faults: 0, rssKb: 0 }
  await t.test('always', async (t) => {
    const { runner } = await startRunner(t, { ZYGOTE: 'on', POOL_MIN: '1', POOL_MAX: '1', ZYGOTE_PRETOUCH: 'always' })
    await waitFor(() => pythonPool(runner)?.ready === 1, 10_000, 'the spare')
    always = await spareFaultsAndRss()
    t.equal(await py(runner, 'return 1'), 1)
    await waitFor(() => pythonRuntime(runner).forks === 2, 10_000, 'the refill')
    t.equal(pythonRuntime(runner).pretouchedForks, 2)
  })
  await t.test('off', async (t) => {
    const { runner } = await startRunner(t, { ZYGOTE: 'on', POOL_MIN: '1', POOL_MAX: '1', ZYGOTE_PRETOUCH: 'off' })
    await waitFor(() => pythonPool(runner)?.ready === 1, 10_000, 'the spare')
    const off = await spareFaultsAndRss()
    t.equal(pythonRuntime(runner).pretouchedForks, 0, 'no fork read ahead')
    // Most pages the probe saw a call write, fork copied or the child
    // prefaulted; the rest only a read maps, with the file's pages around
    // each fault (here 250-310 kB more resident for a few faults more;
    // either way within 4 kB without the read-ahead).
    t.ok(always.rssKb > off.rssKb + 64, `a spare that read ahead: ${always.rssKb} kB resident (${always.faults} faults); one that did not: ${off.rssKb} kB (${off.faults})`)
  })
})
