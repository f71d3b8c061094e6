// A zygote's life and its failures: replaced after its fork budget, when it
// dies, when it stops answering (current or retiring), and what happens when
// none can work (the fallback to spawning) or none could start for now
// (spawned meanwhile, no call failing for it, forked again once one starts).
// The start failures are real: the zygotes' command line goes through a shell
// that exits while a file of the test's is missing, before bwrap.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Metrics } from '../daemon/metrics/index.js'
import { pidAlive } from '../daemon/pid-alive.js'
import type { Runner } from '../daemon/pool/runner.js'
import { call, py, pythonPool, startRunner, waitFor } from './helpers/runner.js'
import { pythonPrograms, pythonRuntime, pythonZygotes } from './helpers/zygotes.js'

t.test('a zygote is replaced after its fork budget, with no failed call and no warm sandbox lost', async (t) => {
  const { runner } = await startRunner(t, { ZYGOTE_MAX_FORKS: '3', POOL_MIN: '1' })
  const counter = 'import builtins\nbuiltins.n = getattr(builtins, "n", 0) + 1\nreturn builtins.n'
  t.equal(await py(runner, counter, 'budget/warm@1'), 1)
  const results = await Promise.all(Array.from({ length: 12 }, async (_, i) => await py(runner, `return ${i}`)))
  t.same(results, Array.from({ length: 12 }, (_, i) => i), 'every call answered')
  t.ok(pythonRuntime(runner).started >= 4, `${pythonRuntime(runner).started as number} zygotes started for ${pythonRuntime(runner).forks as number} forks`)
  t.equal(await py(runner, counter, 'budget/warm@1'), 2, 'the warm sandbox of a retired zygote still serves its function')
  await waitFor(() => pythonRuntime(runner).zygotes <= 2, 10_000, 'retired zygotes without children exit')
})

t.test('a zygote that dies is replaced, and its sandboxes are reported, not hung', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '1' })
  const slow = call(runner, { language: 'python', code: 'import time\ntime.sleep(30)', input: '{}', timeoutMs: 20_000 })
  await waitFor(() => pythonPool(runner)?.borrowed === 1, 10_000, 'the slow call to start')
  const mine = pythonZygotes()
  t.equal(mine.length, 1, 'one zygote')
  const started = Date.now()
  for (const pid of mine) process.kill(pid, 'SIGKILL')
  const r = await slow
  t.equal(r.error?.code, 'sandbox_crashed', 'the call in flight ends at once')
  t.ok(Date.now() - started < 5000)
  t.same(await py(runner, 'return "again"'), 'again', 'a new zygote serves the next call')
})

t.test('the starts a dying zygote takes with it count as one failure: the pool backs off 100 ms, not seconds', async (t) => {
  const failures: number[] = []
  const { runner } = await startRunner(t, { POOL_MIN: '4' }, {
    onSpawnError: (language, _err, n) => { if (language === 'python') failures.push(n) }
  })
  const python = (): Record<string, any> => pythonPool(runner) ?? {}
  await waitFor(() => python().ready === 4, 15_000, 'prewarm')
  const [zygote] = pythonZygotes()
  process.kill(zygote as number, 'SIGSTOP')
  // Four one-shot calls take the four ready sandboxes; their refills wait on the stopped zygote.
  for (let i = 0; i < 4; i++) t.same(await py(runner, 'return 1'), 1)
  await waitFor(() => python().starting === 4, 10_000, 'four starts waiting on the stopped zygote')
  process.kill(zygote as number, 'SIGKILL')
  const killed = Date.now()
  t.same(await py(runner, 'return "again"'), 'again', 'a new zygote serves the next call')
  t.ok(Date.now() - killed < 5000, `served ${Date.now() - killed} ms after the zygote died`)
  t.equal(failures.length, 4, 'the four starts failed')
  t.same(failures, [1, 1, 1, 1], 'as one failure: starts in flight together fail together')
  await waitFor(() => python().ready === 4 && python().consecutiveFailures === 0, 10_000, 'the pool full again')
})

t.test('a zygote that stops answering is killed after the start timeout, and a successor serves', async (t) => {
  const { runner, warnings } = await startRunner(t, { SPAWN_TIMEOUT: '1', ACQUIRE_TIMEOUT: '8' })
  t.same(await py(runner, 'return 1'), 1)
  const zygote = await stopThenServe(t, runner, 5000, 'the call waits out one start, not its own deadline')
  t.match(pythonRuntime(runner), { mode: 'zygote', started: 2 })
  t.ok(warnings.some((w) => /did not answer a fork in 1000 ms: killed/.test(String(w.msg))), 'said')
  await waitFor(() => !pidAlive(zygote), 5000, 'the stopped zygote gone')
})

/** Stops this test's python zygote (SIGSTOP; SIGKILL at the test's end), then makes a call, served within `withinMs`. */
async function stopThenServe (t: Test, runner: Runner, withinMs: number, what: string): Promise<number> {
  const [zygote] = pythonZygotes() as [number]
  process.kill(zygote, 'SIGSTOP')
  t.teardown(() => { try { process.kill(zygote, 'SIGKILL') } catch {} })
  const asked = Date.now()
  t.same(await py(runner, 'return "served"'), 'served', what)
  t.ok(Date.now() - asked < withinMs, `served ${Date.now() - asked} ms after asking`)
  return zygote
}

// The fork lands on a zygote that a successor, started early (at 90 % of its
// budget), replaces while the fork waits. The fork was watched only while
// its zygote was the current one: the call was served after its start timed
// out, but the stopped zygote stayed, retiring with a child it never forked,
// for the daemon's life.
t.test('a zygote that stops answering a fork and retires meanwhile is killed after the start timeout; the call is served', async (t) => {
  const { runner, warnings } = await startRunner(t, { SPAWN_TIMEOUT: '3', ACQUIRE_TIMEOUT: '8', ZYGOTE_MAX_FORKS: '10' })
  for (let i = 1; i <= 9; i++) t.same(await py(runner, `return ${i}`), i)
  const first = await stopThenServe(t, runner, 7000, 'the tenth fork, asked of the stopped zygote as its successor starts')
  t.ok(warnings.some((w) => /did not answer a fork in 3000 ms: killed/.test(String(w.msg))), 'said')
  await waitFor(() => !pidAlive(first), 5000, 'the stopped zygote gone')
  t.match(pythonRuntime(runner), { mode: 'zygote', retiring: 0 })
})

const HANGS = 'import time\nif event.get("hang"):\n    time.sleep(60)\nreturn 1'
/** A call that times out in `fn@1`'s warm sandbox, so that its zygote is asked to kill it. */
async function timeOutIn (t: Test, runner: Runner): Promise<void> {
  const r = await call(runner, { language: 'python', code: HANGS, input: '{"hang": true}', functionKey: 'fn@1', timeoutMs: 300 })
  t.equal(r.error?.code, 'timeout', 'the warm sandbox is to be killed')
}

t.test('a retiring zygote that stops answering is killed when a sandbox of its is to end, and the sandbox ends', async (t) => {
  const { runner, warnings } = await startRunner(t, { SPAWN_TIMEOUT: '1', ZYGOTE_MAX_FORKS: '2' })
  t.same(await py(runner, HANGS, 'fn@1'), 1, 'a warm sandbox of the first zygote')
  const [first] = pythonZygotes()
  t.same(await py(runner, 'return 2'), 2)
  t.same(await py(runner, 'return 3'), 3, 'forked by a successor: the first zygote retires, its warm sandbox alive')
  t.match(pythonRuntime(runner), { started: 2, retiring: 1 })
  process.kill(first as number, 'SIGSTOP')
  t.teardown(() => { try { process.kill(first as number, 'SIGKILL') } catch {} })
  await timeOutIn(t, runner)
  await waitFor(() => pythonRuntime(runner).retiring === 0 && runner.stats().sandboxes === 0, 6000, 'the stopped zygote killed and the sandbox ended')
  t.ok(warnings.some((w) => /a retiring zygote did not end a sandbox in 1000 ms nor answer a ping in 1000 ms: killed/.test(String(w.msg))), 'said')
})

t.test('the current zygote that stops answering is killed when a sandbox of its is to end, with no fork asked of it', async (t) => {
  const { runner, warnings } = await startRunner(t, { SPAWN_TIMEOUT: '1' })
  t.same(await py(runner, HANGS, 'fn@1'), 1, 'a warm sandbox of the zygote')
  const [zygote] = pythonZygotes()
  process.kill(zygote as number, 'SIGSTOP')
  t.teardown(() => { try { process.kill(zygote as number, 'SIGKILL') } catch {} })
  await timeOutIn(t, runner)
  await waitFor(() => !pidAlive(zygote as number) && runner.stats().sandboxes === 0, 6000, 'the stopped zygote killed and the sandbox ended')
  t.ok(warnings.some((w) => /the current zygote did not end a sandbox in 1000 ms nor answer a ping in 1000 ms: killed/.test(String(w.msg))), 'said')
  t.same(await py(runner, 'return "served"'), 'served', 'a successor serves the next call')
  t.match(pythonRuntime(runner), { mode: 'zygote', started: 2 })
})

// cgroup v1's freezer holds a SIGKILLed process until it is thawed: a child that
// is slow to end (as one in uninterruptible sleep), its zygote still answering.
const FREEZER = '/sys/fs/cgroup/freezer'
const noFreezer = existsSync(join(FREEZER, 'cgroup.procs')) && process.getuid?.() === 0 ? false : 'needs a writable cgroup v1 freezer'

/** Freezes `pid` alone in a freezer cgroup of the test's; the returned thaw() lets it go (teardown too, moving it and its children back out). */
async function freeze (t: Test, pid: number): Promise<() => void> {
  const frozen = join(FREEZER, `hearth-test-${process.pid}-${pid}`)
  mkdirSync(frozen)
  const state = (s: string): void => writeFileSync(join(frozen, 'freezer.state'), s)
  t.teardown(async () => {
    state('THAWED')
    // Moved back out with what it forked in here (a zygote's children are born
    // in its cgroup: left behind, one failed the rmdir with EBUSY).
    await waitFor(() => {
      const left = readFileSync(join(frozen, 'cgroup.procs'), 'latin1').split('\n').filter((p) => p !== '')
      for (const p of left) try { writeFileSync(join(FREEZER, 'cgroup.procs'), p) } catch {} // gone already
      return left.length === 0
    }, 5000, 'the freezer cgroup emptied')
    rmdirSync(frozen)
  })
  writeFileSync(join(frozen, 'cgroup.procs'), String(pid))
  state('FROZEN')
  await waitFor(() => readFileSync(join(frozen, 'freezer.state'), 'latin1').trim() === 'FROZEN', 5000, `${pid} frozen`)
  return () => state('THAWED')
}

t.test('a zygote that answers its ping is not killed while a sandbox of its is slow to end; the sandbox ends when it can', { skip: noFreezer }, async (t) => {
  const { runner, warnings } = await startRunner(t, { SPAWN_TIMEOUT: '1' })
  t.same(await py(runner, HANGS, 'fn@1'), 1, 'a warm sandbox of the zygote')
  const [zygote] = pythonZygotes()
  const [program] = pythonPrograms()
  const thaw = await freeze(t, program as number)
  await timeOutIn(t, runner)
  // frozen for three start timeouts: a ping unanswered would have killed the zygote after two
  await new Promise((resolve) => setTimeout(resolve, 3000))
  t.equal(runner.stats().sandboxes, 1, 'the sandbox has not ended')
  t.ok(pidAlive(zygote as number), 'the zygote lives on')
  thaw()
  await waitFor(() => runner.stats().sandboxes === 0, 5000, 'the sandbox ended once its program could')
  t.notOk(warnings.some((w) => /did not end a sandbox/.test(String(w.msg))), 'no zygote said stuck')
  t.equal(warnings.filter((w) => /a sandbox has not ended 1000 ms after it was killed, and its zygote answers/.test(String(w.msg))).length, 1, 'the held sandbox said, once')
  t.same(await py(runner, 'return "served"'), 'served')
  t.match(pythonRuntime(runner), { started: 1 }, 'by the same zygote')
})

t.test('a zygote whose fork the kernel holds past the start timeout is waited for, not killed: its sandboxes live on', { skip: noFreezer }, async (t) => {
  const { runner, warnings } = await startRunner(t, { SPAWN_TIMEOUT: '1', POOL_MIN: '0' })
  const counter = 'import builtins\nbuiltins.n = getattr(builtins, "n", 0) + 1\nreturn builtins.n'
  t.equal(await py(runner, counter, 'held/warm@1'), 1, 'a warm sandbox of the zygote')
  const [zygote] = pythonZygotes()
  // A frozen task waits in the kernel (state D), as a fork queued on a cgroup lock does.
  const thaw = await freeze(t, zygote as number)
  const asked = py(runner, 'return "forked"') // no ready sandbox: a fork is asked of the frozen zygote
  await waitFor(() => warnings.some((w) => /has not answered a fork in 1000 ms and is not stopped/.test(String(w.msg))), 5000, 'the held fork said')
  thaw()
  t.same(await asked, 'forked', 'the call served')
  t.ok(pidAlive(zygote as number), 'the zygote lives on')
  t.match(pythonRuntime(runner), { started: 1 }, 'no successor')
  t.equal(await py(runner, counter, 'held/warm@1'), 2, 'its warm sandbox lives on')
  t.notOk(warnings.some((w) => /did not answer a fork/.test(String(w.msg))), 'no zygote killed')
})

t.test('where a zygote cannot isolate children, python sandboxes are spawned instead', async (t) => {
  const { runner, warnings } = await startRunner(t, {}, { zygoteCapabilities: false })
  t.match(warnings, [{ msg: /NO ZYGOTE/, reason: /EPERM|Operation not permitted/ }])
  t.match(pythonRuntime(runner), { mode: 'spawn', reason: /Operation not permitted/ })
  t.notMatch(pythonRuntime(runner).reason, /tried again/, 'a host that cannot: no zygote tried again (below: one that failed otherwise)')
  t.same(await py(runner, 'import os\nreturn os.getpid()'), 2, 'spawned by bwrap, served all the same')
  t.equal(pythonRuntime(runner).forks, 0)
  const js = await call(runner, { language: 'javascript', code: 'return 2', input: '{}' })
  t.equal(js.result?.data, '2')
  t.match(runner.stats().runtimes.node, { mode: 'spawn' })
})

t.test('ZYGOTE=on refuses to start without a working zygote', async (t) => {
  await t.rejects(startRunner(t, { ZYGOTE: 'on' }, { zygoteCapabilities: false }), /ZYGOTE=on, but the zygote cannot start/)
})

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

/** hearth_zygote_up for python, as /metrics says it (metrics.test.ts scrapes a daemon's) */
async function zygoteUp (runner: Runner): Promise<string | undefined> {
  const metrics = new Metrics({ pools: () => runner.stats(), redisUp: () => true, build: {} })
  return /^hearth_zygote_up\{runtime="python"\} (\S+)$/m.exec(await metrics.text())?.[1]
}

t.test('a zygote that fails to start: sandboxes are spawned, then forked once one starts', async (t) => {
  const zygotes = startSwitch(t)
  const { runner, warnings } = await startRunner(t, {}, { wrapZygoteArgv: zygotes.wrap })
  t.match(pythonRuntime(runner), { mode: 'spawn', reason: /no zygote could start \(the zygote exited before ready \(exit code 3\)\).*tried again/ })
  t.same(await py(runner, 'return 6 * 7'), 42, 'served by a spawned sandbox')
  t.equal(pythonRuntime(runner).forks, 0)
  t.ok(warnings.some((w) => /NO ZYGOTE/.test(String(w.msg))), 'the fallback said once at start')
  t.equal(await zygoteUp(runner), '0', 'hearth_zygote_up 0')
  zygotes.on()
  await waitFor(() => pythonRuntime(runner).mode === 'zygote', 10_000, 'a zygote started on a later try')
  t.same(await py(runner, 'return 6 * 7'), 42)
  t.equal(pythonRuntime(runner).forks, 1, 'the call ran in a forked sandbox')
  t.equal(await zygoteUp(runner), '1', 'hearth_zygote_up 1 again')
  t.ok(warnings.some((w) => /a zygote started again/.test(String(w.msg))), 'the return said')
})

t.test('a worn zygote whose successor fails: no call fails, sandboxes are spawned until a zygote starts', async (t) => {
  const zygotes = startSwitch(t)
  zygotes.on()
  const { runner, warnings } = await startRunner(t, { ZYGOTE_MAX_FORKS: '2' }, { wrapZygoteArgv: zygotes.wrap })
  t.match(pythonRuntime(runner), { mode: 'zygote', started: 1 })
  zygotes.off()
  for (let i = 0; i < 5; i++) t.same(await py(runner, `return ${i}`), i, `call ${i} answered`)
  t.match(pythonRuntime(runner), { mode: 'spawn', reason: /no zygote could start/, forks: 2 })
  t.ok(warnings.some((w) => /no zygote could start/.test(String(w.msg))), 'said as a warning')
  zygotes.on()
  await waitFor(() => pythonRuntime(runner).mode === 'zygote', 10_000, 'a successor started on a later try')
  t.same(await py(runner, 'return 7'), 7)
  t.match(pythonRuntime(runner), { forks: 3, started: 2 }, 'forked from the successor')
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
  t.match(pythonRuntime(runner), { mode: 'zygote', forks: 99 }, 'the worn-out zygote still forks')
  t.equal(zygotes.tries() - before, 1, 'one early try in the ten starts (then 1 s, 2 s... apart)')
  t.equal(warnings.filter((w) => /the zygote exited before ready/.test(String(w.msg))).length, 1, 'said once')
})

t.test('ZYGOTE=on refuses to start when the zygote does not, whatever the failure', async (t) => {
  const zygotes = startSwitch(t)
  await t.rejects(startRunner(t, { ZYGOTE: 'on' }, { wrapZygoteArgv: zygotes.wrap }), /ZYGOTE=on, but the zygote cannot start: the zygote exited before ready \(exit code 3\)/)
})
