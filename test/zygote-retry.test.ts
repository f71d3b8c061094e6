// A zygote that cannot start for now (its start failed, or a crashed or worn
// one's successor failed): fresh sandboxes are spawned meanwhile, no call
// fails for it, and once a zygote starts again they are forked from it. The
// failure is real: the zygotes' command line goes through a shell that exits
// while a file of the test's is missing, before bwrap.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Metrics } from '../daemon/metrics/index.js'
import type { Runner } from '../daemon/pool/runner.js'
import { py, startRunner, waitFor } from './helpers/runner.js'

/** A switch for the zygotes' start: off, every zygote start exits 3 before bwrap. `tries`: zygote starts so far. */
function startSwitch (t: Test): { on: () => void, off: () => void, tries: () => number, wrap: (argv: string[]) => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-zygote-retry-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const flag = join(dir, 'may-start')
  const log = `${flag}.tries`
  return {
    on: () => writeFileSync(flag, ''),
    off: () => rmSync(flag, { force: true }),
    tries: () => existsSync(log) ? readFileSync(log, 'latin1').length : 0,
    wrap: (argv) => ['/bin/sh', '-c', 'printf x >> "$0.tries"; test -e "$0" || exit 3; exec "$@"', flag, ...argv]
  }
}

const python = (runner: Runner): Record<string, any> => runner.stats().runtimes.python as Record<string, any>

/** hearth_zygote_up for python, as /metrics says it (metrics.test.ts scrapes a daemon's) */
async function zygoteUp (runner: Runner): Promise<string | undefined> {
  const metrics = new Metrics({ pools: () => runner.stats(), redisUp: () => true, build: {} })
  return /^hearth_zygote_up\{runtime="python"\} (\S+)$/m.exec(await metrics.text())?.[1]
}

t.test('a zygote that fails to start: sandboxes are spawned, then forked once one starts', async (t) => {
  const zygotes = startSwitch(t)
  const { runner, warnings } = await startRunner(t, {}, { wrapZygoteArgv: zygotes.wrap })
  t.match(python(runner), { mode: 'spawn', reason: /no zygote could start \(the zygote exited before ready \(exit code 3\)\).*tried again/ })
  t.same(await py(runner, 'return 6 * 7'), 42, 'served by a spawned sandbox')
  t.equal(python(runner).forks, 0)
  t.ok(warnings.some((w) => /NO ZYGOTE/.test(String(w.msg))), 'the fallback said once at start')
  t.equal(await zygoteUp(runner), '0', 'hearth_zygote_up 0')
  zygotes.on()
  await waitFor(() => python(runner).mode === 'zygote', 10_000, 'a zygote started on a later try')
  t.same(await py(runner, 'return 6 * 7'), 42)
  t.equal(python(runner).forks, 1, 'the call ran in a forked sandbox')
  t.equal(await zygoteUp(runner), '1', 'hearth_zygote_up 1 again')
  t.ok(warnings.some((w) => /a zygote started again/.test(String(w.msg))), 'the return said')
})

t.test('a worn zygote whose successor fails: no call fails, sandboxes are spawned until a zygote starts', async (t) => {
  const zygotes = startSwitch(t)
  zygotes.on()
  const { runner, warnings } = await startRunner(t, { ZYGOTE_MAX_FORKS: '2' }, { wrapZygoteArgv: zygotes.wrap })
  t.match(python(runner), { mode: 'zygote', started: 1 })
  zygotes.off()
  for (let i = 0; i < 5; i++) t.same(await py(runner, `return ${i}`), i, `call ${i} answered`)
  t.match(python(runner), { mode: 'spawn', reason: /no zygote could start/, forks: 2 })
  t.ok(warnings.some((w) => /no zygote could start/.test(String(w.msg))), 'said as a warning')
  zygotes.on()
  await waitFor(() => python(runner).mode === 'zygote', 10_000, 'a successor started on a later try')
  t.same(await py(runner, 'return 7'), 7)
  t.match(python(runner), { forks: 3, started: 2 }, 'forked from the successor')
})

t.test('a successor started early that fails is not tried again at every start until the budget runs out', async (t) => {
  const zygotes = startSwitch(t)
  zygotes.on()
  // successors start early from the 90th fork: ten starts before the budget
  const { runner, warnings } = await startRunner(t, { ZYGOTE_MAX_FORKS: '100' }, { wrapZygoteArgv: zygotes.wrap })
  for (let i = 0; i < 89; i++) await py(runner, 'return 1')
  zygotes.off()
  const before = zygotes.tries()
  for (let i = 89; i < 99; i++) t.same(await py(runner, 'return 1'), 1, `call ${i} answered`)
  t.match(python(runner), { mode: 'zygote', forks: 99 }, 'the worn-out zygote still forks')
  t.equal(zygotes.tries() - before, 1, 'one early try in the ten starts (then 1 s, 2 s... apart)')
  t.equal(warnings.filter((w) => /the zygote exited before ready/.test(String(w.msg))).length, 1, 'said once')
})

t.test('ZYGOTE=on refuses to start when the zygote does not, whatever the failure', async (t) => {
  const zygotes = startSwitch(t)
  await t.rejects(startRunner(t, { ZYGOTE: 'on' }, { wrapZygoteArgv: zygotes.wrap }), /ZYGOTE=on, but the zygote cannot start: the zygote exited before ready \(exit code 3\)/)
})
