import { readdirSync, readFileSync } from 'node:fs'

/** Processes whose command line mentions `text` (a daemon's state or runtime directory). */
export function processesMentioning (text: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(text)
    } catch {
      return false
    }
  })
}

/**
 * `argv` run so that it gets SIGTERM when the test process ends, however it
 * ends: a file that tap times out is killed without its teardowns, and the
 * daemons and Redis servers it started ran on, orphans, beside the rest of the
 * run (seen: four daemons after two timed-out files). The signal is set on
 * the process itself (PR_SET_PDEATHSIG, kept across the exec), so its pid is
 * the one spawn() returns.
 */
export function diesWithTest (argv: readonly string[]): string[] {
  return ['setpriv', '--pdeathsig', 'TERM', '--', ...argv]
}

/**
 * `argv` (a node program of this repository: the daemon, the CLI, the bench)
 * run as in production, without tap's process-info hooks. tap adds them to
 * every process a test spawns (an --import in NODE_OPTIONS, put into whatever
 * env the spawn is given): in a daemon they are a module-loader thread, a
 * wrapped child_process and a walk of the bundle's source map at exit, and
 * cost ~0.75 s more CPU per start and ~0.3 s per stop on a slow machine
 * (2.0 s against 1.3 s measured; a run starts ~110 daemons).
 */
export function untapped (argv: readonly string[]): [string, ...string[]] {
  return ['env', '-u', 'NODE_OPTIONS', ...argv]
}
