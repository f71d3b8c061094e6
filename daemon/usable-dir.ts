// A directory the daemon keeps its files in (STATE_DIR, RUNTIME_DIR): made if
// missing, one level at a time (Node's recursive mkdirSync loops for ever
// where mkdir answers ENOENT, as under /proc), and checked to be a directory
// this process may write. Otherwise the start stops in one line, saying why
// (CannotStart), before anything else has started: a file there gave EEXIST
// from mkdir with a stack, a read-only filesystem a stack from deep in the
// start, a path under /proc no answer at all.
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { CannotStart } from './errors.js'

/** Makes `dir` (the value of `setting`) usable, new levels with `mode`, or throws CannotStart. */
export function makeUsableDir (dir: string, setting: string, mode = 0o777): void {
  const missing: string[] = []
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) missing.unshift(d)
  try {
    for (const d of missing) mkdirSync(d, { mode })
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch (err) {
    throw new CannotStart(`${setting} ${dir} cannot be used: ${(err as Error).message}`)
  }
}
