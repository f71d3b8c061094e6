// Each zygote pins the pages its probe saw a child write (runtimes/zygote/pin.c),
// so that fork copies them into every child itself instead of each child
// copying them on write-protect faults: /readyz says how many; a child's own
// faults drop by as many; no child holds the zygote's ring; where the pins
// are refused (here: RLIMIT_MEMLOCK 0), children prefault them as before.
import t from 'tap'
import { call, py, startRunner } from './helpers/runner.js'
import { pythonRuntime } from './helpers/zygotes.js'

/** A python child's minor faults so far (its prefault's pages count as faults), and what its fds are. */
const PYTHON_SEEN = `import os
faults = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[7])
fds = [os.readlink("/proc/self/fd/" + fd) for fd in os.listdir("/proc/self/fd") if os.path.exists("/proc/self/fd/" + fd)]
return [faults, fds]`

const NODE_FDS = `const fs = require('fs')
return fs.readdirSync('/proc/self/fd').flatMap((fd) => { try { return [fs.readlinkSync('/proc/self/fd/' + fd)] } catch { return [] } })`

// The pins count against RLIMIT_MEMLOCK per uid (daemon/zygote/memlock.ts):
// a uid of this test's own, so that the zygotes of tests running beside it
// (8 MB in all where the daemon may not raise the limit) leave it room.
const OWN_UID = String(61000 + (process.pid % 4000))

t.test('the zygotes pin the pages a child writes: fork copies them, the child faults them in no more, and keeps no ring', async (t) => {
  const on = await startRunner(t, { ZYGOTE: 'on', SANDBOX_UID: OWN_UID })
  const python = pythonRuntime(on.runner)
  const node = on.runner.stats().runtimes.node as Record<string, any>
  for (const [name, runtime] of [['python', python], ['node', node]] as const) {
    t.ok(runtime.pinnedPages > 0 && runtime.pinnedPages <= runtime.prefaultPages, `${name}: ${runtime.pinnedPages} of its ${runtime.prefaultPages} prefaulted pages pinned (${runtime.pinReason ?? 'no reason given'})`)
    t.notOk('pinReason' in runtime, `${name}: no reason given when pinned`)
  }
  const [pinnedFaults, fds] = await py(on.runner, PYTHON_SEEN) as [number, string[]]
  t.notOk(fds.some((fd) => fd.includes('io_uring')), `no io_uring fd in a python child (${fds.join(' ')})`)
  const nodeFds = JSON.parse((await call(on.runner, { language: 'javascript', code: NODE_FDS, input: '{}' })).result?.data ?? 'null') as string[]
  t.notOk(nodeFds.some((fd) => fd.includes('io_uring')), `no io_uring fd in a node child (${nodeFds.join(' ')})`)

  const off = await startRunner(t, { ZYGOTE: 'on', ZYGOTE_PIN_PAGES: 'off' })
  t.match(pythonRuntime(off.runner), { pinnedPages: 0, pinReason: 'off (ZYGOTE_PIN_PAGES=off)' })
  const [prefaultFaults] = await py(off.runner, PYTHON_SEEN) as [number, string[]]
  // with the pins off, a child copies those pages itself, each counted as a fault
  t.ok(prefaultFaults - pinnedFaults > python.pinnedPages / 2, `${pinnedFaults} faults in a child by its first call with ${python.pinnedPages} pages pinned, ${prefaultFaults} without`)
})

t.test('where the pins are refused (RLIMIT_MEMLOCK 0), the zygotes say why and their children prefault those pages', async (t) => {
  // after the daemon's own raise (a prlimit before setpriv), before the uid is dropped
  const noMemlock = (argv: string[]): string[] => {
    const at = argv.indexOf('setpriv')
    return at < 0 ? ['prlimit', '--memlock=0:0', '--', ...argv] : [...argv.slice(0, at), 'prlimit', '--memlock=0:0', '--', ...argv.slice(at)]
  }
  const { runner } = await startRunner(t, { ZYGOTE: 'on' }, { wrapZygoteArgv: noMemlock })
  const python = pythonRuntime(runner)
  t.match(python, { mode: 'zygote', pinnedPages: 0, pinReason: /^io_uring_(setup|register): Cannot allocate memory$/ })
  t.ok(python.prefaultPages > 0, 'the learned pages, prefaulted')
  t.match(runner.stats().runtimes.node, { pinnedPages: 0, pinReason: /^io_uring_(setup|register): Cannot allocate memory$/ })
  const [faults] = await py(runner, PYTHON_SEEN) as [number, string[]]
  t.ok(faults >= python.prefaultPages, `${faults} faults by a child's first call, its ${python.prefaultPages} prefaulted pages included`)
  t.equal((await call(runner, { language: 'javascript', code: 'return 6 * 7', input: '{}' })).result?.data, '42')
})
