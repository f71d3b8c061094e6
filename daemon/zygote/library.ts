// The zygote's C core (runtimes/python/zygote/*.c) as a shared library, built
// at set-up into build/ (make setup), or here into STATE_DIR when missing or
// older than its sources.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

export const LIBRARY = 'libhearth-zygote.so'

function sources (root: string): string[] {
  const dir = join(root, 'runtimes/python/zygote')
  return readdirSync(dir).filter((f) => f.endsWith('.c') || f.endsWith('.h')).map((f) => join(dir, f))
}

function fresh (lib: string, srcs: readonly string[]): boolean {
  if (!existsSync(lib)) return false
  const built = statSync(lib).mtimeMs
  return srcs.every((s) => statSync(s).mtimeMs <= built)
}

export function compileZygoteLibrary (root: string, out: string): void {
  const c = sources(join(root)).filter((f) => f.endsWith('.c'))
  mkdirSync(join(out, '..'), { recursive: true })
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-fPIC', '-shared', '-o', out, ...c], { stdio: ['ignore', 'ignore', 'pipe'] })
}

/** Path of an up-to-date library; throws with the compiler's words when it cannot be built. */
export function zygoteLibrary (root: string, stateDir: string): string {
  const srcs = sources(root)
  const prebuilt = join(root, 'build', LIBRARY)
  if (fresh(prebuilt, srcs)) return prebuilt
  const local = join(stateDir, LIBRARY)
  if (fresh(local, srcs)) return local
  try {
    compileZygoteLibrary(root, local)
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim()
    throw new Error(`cannot build the zygote's C core (install gcc and libc6-dev, or run make setup): ${stderr || (err as Error).message}`)
  }
  return local
}
