// Where the daemon finds the zygotes' C core (daemon/zygote/library.ts): set-up's
// build/ when each file there is newer than its own sources, otherwise built
// into STATE_DIR by runtimes/zygote/build.sh. A daemon that compiled at every
// start would pay ~2 s of gcc each time (measured: every test daemon did, when
// the reaper, built from its own sources only, was older than the addon's).
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig } from '../daemon/config.js'
import { ADDON, LIBRARY, REAPER, zygoteLibrary } from '../daemon/zygote/library.js'

const real = loadConfig({}).root

/** A checkout with the core's sources and a build/ of it, every file dated as given (seconds). */
function checkout (t: Test, dates: { core: number, node: number, reaper: number, built: Record<string, number> }): { root: string, state: string } {
  const root = mkdtempSync(join(tmpdir(), 'hearth-library-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const core = join(root, 'runtimes/zygote')
  cpSync(join(real, 'runtimes/zygote'), core, { recursive: true })
  const date = (dir: string, seconds: number): void => {
    for (const f of readdirSync(dir).filter((f) => /\.[ch]$/.test(f))) utimesSync(join(dir, f), seconds, seconds)
  }
  date(core, dates.core)
  date(join(core, 'node'), dates.node)
  date(join(core, 'reaper'), dates.reaper)
  mkdirSync(join(root, 'build'))
  for (const file of [LIBRARY, ADDON, REAPER]) {
    cpSync(join(real, 'build', file), join(root, 'build', file))
    utimesSync(join(root, 'build', file), dates.built[file] as number, dates.built[file] as number)
  }
  return { root, state: join(root, 'state') }
}

t.test('build/ is used when each file is newer than its own sources, though older than others', async (t) => {
  const { root, state } = checkout(t, { core: 1000, node: 3000, reaper: 500, built: { [LIBRARY]: 2000, [ADDON]: 4000, [REAPER]: 600 } })
  t.equal(zygoteLibrary(root, state), join(root, 'build', LIBRARY))
  t.notOk(existsSync(state), 'nothing was built into STATE_DIR')
})

t.test('a source newer than its file: all of it is built into STATE_DIR', async (t) => {
  const { root, state } = checkout(t, { core: 1000, node: 3000, reaper: 5000, built: { [LIBRARY]: 2000, [ADDON]: 4000, [REAPER]: 4500 } })
  t.equal(zygoteLibrary(root, state), join(state, LIBRARY))
  t.same(readdirSync(state).sort(), [REAPER, ADDON, LIBRARY].sort())
  t.equal(zygoteLibrary(root, state), join(state, LIBRARY), 'and found there next time')
})
