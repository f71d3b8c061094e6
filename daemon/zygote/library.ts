// The zygotes' C core (runtimes/zygote/): a shared library for the python
// zygote, the same core as a Node-API addon for the node zygote, and beside
// them the reaper each sandbox's pid 1 executes (zygote/reaper/). Built at
// set-up into build/ (make setup), or here into STATE_DIR when missing or
// older than their sources, both by runtimes/zygote/build.sh.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'

export const LIBRARY = 'libhearth-zygote.so'
export const ADDON = 'hearth-zygote.node'
export const REAPER = 'hearth-reaper'

function sourcesIn (dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.c') || f.endsWith('.h')).map((f) => join(dir, f))
}

/** Each file built, and the source directories it is made of (as build.sh decides). */
function targets (core: string): Array<[string, string[]]> {
  return [[LIBRARY, [core]], [ADDON, [core, join(core, 'node')]], [REAPER, [join(core, 'reaper')]]]
}

function fresh (dir: string, core: string): boolean {
  return targets(core).every(([file, dirs]) => {
    const out = join(dir, file)
    return existsSync(out) && statSync(out).mtimeMs >= Math.max(...dirs.flatMap(sourcesIn).map((src) => statSync(src).mtimeMs))
  })
}

/** The reaper executed by the sandbox's init (isolate.h, become_reaper), beside the library. */
export function reaperBeside (library: string): string {
  return join(dirname(library), REAPER)
}

/** The core as the node zygote loads it (runtimes/zygote/node/addon.c), beside the library. */
export function addonBeside (library: string): string {
  return join(dirname(library), ADDON)
}

/** Path of an up-to-date library (the addon and the reaper beside it); throws with the compiler's words when they cannot be built. */
export function zygoteLibrary (root: string, stateDir: string): string {
  const core = join(root, 'runtimes/zygote')
  for (const dir of [join(root, 'build'), stateDir]) {
    if (fresh(dir, core)) return join(dir, LIBRARY)
  }
  try {
    execFileSync('/bin/sh', [join(core, 'build.sh'), stateDir], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim()
    throw new Error(`cannot build the zygote's C core (install gcc and libc6-dev, or run make setup): ${stderr || (err as Error).message}`)
  }
  return join(stateDir, LIBRARY)
}
