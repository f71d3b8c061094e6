// A sandbox or a zygote killed while its bwrap is still starting leaves no
// process behind. bwrap clones its sandbox's first process, which then waits
// for bwrap's word: bwrap killed in between left it waiting forever, unless
// its process group is killed too (daemon/sandbox/process.ts, killGroup).
// Killed a little later, before the sandbox armed --die-with-parent, the
// sandbox runs on until its channel (fd 3) ends, as hearth's bootstraps and
// zygotes do. Real bwrap, killed at a random moment of its first
// milliseconds, many times over.
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { loadConfig } from '../daemon/config.js'
import { sandboxArgv } from '../daemon/sandbox/argv.js'
import { spawnProcess } from '../daemon/sandbox/process.js'
import { LIBRARY } from '../daemon/zygote/library.js'
import { Zygote } from '../daemon/zygote/zygote.js'
import { processesMentioning as holding } from './helpers/processes.js'
import { waitFor } from './helpers/wait.js'

const KILLS = 60
/** measured: bwrap's first process waits for its word within its first ~8 ms here */
const WINDOW_MS = 8

/** A marker for this test's processes in /proc. */
const markerOf = (n: number): string => `hearth-kill-test-${process.pid}-${n}`

/** bwrap running a program that ends when fd 3 does (sh, named `marker`, reading it). */
function argv (marker: string): string[] {
  return sandboxArgv({
    runtime: { name: 'python', command: ['/bin/sh', '-c', 'cat <&3 >/dev/null', marker], binds: [] },
    limitsPrefix: [],
    hostUid: process.getuid?.() === 0 ? 65534 : null,
    tmpBytes: 1 << 20,
    seccompFd: null
  })
}

const gone = async (marker: string): Promise<void> => await waitFor(() => holding(marker).length === 0, 5000, `every process of ${marker} gone (left: ${holding(marker).join(' ')})`)

t.test('a spawned sandbox killed while bwrap starts leaves nothing behind', async (t) => {
  const marker = markerOf(1)
  t.teardown(() => { for (const pid of holding(marker)) process.kill(pid, 'SIGKILL') })
  for (let i = 0; i < KILLS; i++) {
    const p = spawnProcess(argv(marker), null)
    await sleep(Math.random() * WINDOW_MS)
    p.kill()
    await p.exited
    p.chan.destroy() // as Sandbox.end() does
  }
  await gone(marker)
  t.same(holding(marker), [], `${KILLS} sandboxes killed in their first ${WINDOW_MS} ms`)
})

t.test('a zygote that does not start in time is killed with everything it started', async (t) => {
  const marker = markerOf(2)
  t.teardown(() => { for (const pid of holding(marker)) process.kill(pid, 'SIGKILL') })
  const libraryFile = join(loadConfig({}).root, 'build', LIBRARY)
  for (let i = 0; i < KILLS; i++) {
    await t.rejects(Zygote.start({ argv: argv(marker), seccompFile: null, libraryFile, startTimeoutMs: 1 + Math.random() * WINDOW_MS }), /not ready after/)
  }
  await gone(marker)
  t.same(holding(marker), [], `${KILLS} zygotes killed in their first ${WINDOW_MS + 1} ms`)
})
