// The zygote's C core (runtimes/python/zygote/*.c) as a shared library, and
// beside it the reaper each sandbox's pid 1 executes (zygote/reaper/), built
// at set-up into build/ (make setup), or here into STATE_DIR when missing or
// older than their sources.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'

export const LIBRARY = 'libhearth-zygote.so'
export const REAPER = 'hearth-reaper'

const FLAGS = ['-O2', '-Wall', '-Wextra', '-Werror']
/** Static: executed from a memfd inside the sandbox, it needs nothing of its file system; on x86-64 without libc (reaper.c says why). */
const REAPER_FLAGS = process.arch === 'x64' ? ['-static', '-nostdlib', '-ffreestanding', '-fno-stack-protector'] : ['-static']

function sourcesIn (dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.c') || f.endsWith('.h')).map((f) => join(dir, f))
}

function fresh (out: string, srcs: readonly string[]): boolean {
  if (!existsSync(out)) return false
  const built = statSync(out).mtimeMs
  return srcs.every((s) => statSync(s).mtimeMs <= built)
}

/** The reaper executed by the sandbox's init (isolate.h, become_reaper), beside the library. */
export function reaperBeside (library: string): string {
  return join(dirname(library), REAPER)
}

function build (dir: string, library: readonly string[], reaper: readonly string[]): void {
  mkdirSync(dir, { recursive: true })
  const cc = (args: string[]): void => { execFileSync('cc', [...FLAGS, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }) }
  cc(['-fPIC', '-shared', '-o', join(dir, LIBRARY), ...library.filter((f) => f.endsWith('.c'))])
  cc([...REAPER_FLAGS, '-o', join(dir, REAPER), ...reaper.filter((f) => f.endsWith('.c'))])
}

/** Path of an up-to-date library (the reaper beside it); throws with the compiler's words when they cannot be built. */
export function zygoteLibrary (root: string, stateDir: string): string {
  const library = sourcesIn(join(root, 'runtimes/python/zygote'))
  const reaper = sourcesIn(join(root, 'runtimes/python/zygote/reaper'))
  for (const dir of [join(root, 'build'), stateDir]) {
    if (fresh(join(dir, LIBRARY), library) && fresh(join(dir, REAPER), reaper)) return join(dir, LIBRARY)
  }
  try {
    build(stateDir, library, reaper)
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim()
    throw new Error(`cannot build the zygote's C core (install gcc and libc6-dev, or run make setup): ${stderr || (err as Error).message}`)
  }
  return join(stateDir, LIBRARY)
}
