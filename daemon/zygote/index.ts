// The zygotes that start every fresh sandbox, chosen at start-up: a python one
// (python sandboxes forked into its preloaded interpreter) and a node one
// (node sandboxes forked into its preloaded node). ZYGOTE=auto tries and falls
// back to spawning with a warning, on insists, off never tries. Where the node
// zygote cannot start (or ZYGOTE_NODE=exec), node sandboxes come from the
// python zygote, which executes node in each after the same isolation.
import { join } from 'node:path'
import type { Config } from '../config.js'
import { CannotStart } from '../errors.js'
import { nodeZygoteSpec, zygoteSpec, type RuntimeFiles, type RuntimeName } from '../sandbox/runtimes.js'
import { zygoteArgv } from './argv.js'
import type { ForkIntoCgroups } from '../sandbox/limits/index.js'
import { Forker, type ForkerOptions } from './forker.js'
import { ZygoteUnavailable } from './zygote.js'
import { addonBeside } from './library.js'
import { zygoteMemlock } from './memlock.js'
import { reachesZygoteRoots, Rendezvous } from './rendezvous.js'

export { Forker } from './forker.js'
export type { ForkerStats } from './stats.js'

export interface Forkers {
  readonly byRuntime: Partial<Record<RuntimeName, Forker>>
  close: () => Promise<void>
}

export interface ForkersOptions {
  readonly config: Config
  readonly hostUid: number | null
  readonly seccompFile: string | null
  /** this daemon's own directory under RUNTIME_DIR */
  readonly instanceDir: string
  /** what sandboxes run, installed for them */
  readonly files: RuntimeFiles
  /** why the zygote's C core is missing, if it is */
  readonly zygoteProblem: string | null
  /** tests force the spawn fallback with false */
  readonly capabilities?: boolean
  /** tests: the zygotes' command line, changed (run under a seccomp filter of the test's) */
  readonly wrapArgv?: (argv: string[]) => string[]
  /** cgroup backends: their way to let zygotes start children in the sandboxes' cgroups */
  readonly forkInto?: ForkIntoCgroups
  readonly warn: (msg: string, fields?: Record<string, unknown>) => void
}

/** The sandboxes' cgroups readied for the zygotes to start children in; where they cannot be, the daemon places each sandbox. */
async function readyCgroups (o: ForkersOptions): Promise<ForkIntoCgroups | undefined> {
  if (o.forkInto === undefined) return undefined
  try {
    await o.forkInto.enable(o.hostUid)
    return o.forkInto
  } catch (err) {
    o.warn('zygotes cannot fork into the sandboxes\' cgroups: the daemon places each sandbox', { reason: (err as Error).message })
    return undefined
  }
}

/**
 * Starts a forker's first zygote; false (and why, on the forker) when it
 * cannot. `retry`: unless the zygote said this host cannot isolate its
 * children, or its C core is missing, one is tried again in the background
 * (Forker.setAside).
 */
async function started (forker: Forker, problem: string | null, retry: boolean): Promise<boolean> {
  try {
    if (problem !== null) throw new Error(problem)
    await forker.start()
    return true
  } catch (err) {
    if (retry && problem === null && !(err instanceof ZygoteUnavailable)) forker.setAside(err as Error, false)
    else forker.unavailable = (err as Error).message
    return false
  }
}

export async function startForkers (o: ForkersOptions): Promise<Forkers> {
  const c = o.config
  if (c.zygote === 'off') return { byRuntime: {}, close: async () => {} }
  const rendezvous = await Rendezvous.open(join(o.instanceDir, 'rendezvous'), o.hostUid)
  const library = o.files.zygoteLibrary ?? '/nonexistent'
  const cgroups = await readyCgroups(o)
  // Children's pipes in a zygote's own tmpfs, which the daemon opens through
  // /proc/<zygote>/root; where it may not, in the rendezvous directory.
  const hostPipes = reachesZygoteRoots(o.hostUid) ? undefined : rendezvous.pipes
  if (hostPipes !== undefined) o.warn('the daemon lacks CAP_SYS_PTRACE: forked sandboxes make their stdout and stderr pipes in RUNTIME_DIR', { dir: hostPipes })
  const common = (name: string): Omit<ForkerOptions, 'runtime' | 'argv' | 'libraryFile'> => ({
    hostPipes,
    seccompFile: o.seccompFile,
    rendezvous,
    maxForks: c.zygoteMaxForks,
    maxAgeMs: c.zygoteMaxAgeMs,
    startTimeoutMs: c.spawnTimeoutMs,
    pretouch: c.zygotePretouch,
    ...(cgroups === undefined ? {} : { cgroups }),
    onStderr: (line) => o.warn(`${name}: stderr`, { line }),
    onTrouble: (err) => o.warn(`${name}: ${err.message}`),
    onBack: () => o.warn(`${name}: a zygote started again: fresh sandboxes are forked from it`)
  })
  const argv = { hostUid: o.hostUid, rendezvousDir: rendezvous.dir, tmpBytes: c.sandboxTmpBytes, capabilities: o.capabilities, cgroups: cgroups?.view, pipesDir: hostPipes, hugeText: c.zygoteHugeText, pinPages: c.zygotePinPages, memlockBytes: zygoteMemlock() }
  const spec = zygoteSpec(o.files)
  const wrap = o.wrapArgv ?? ((a: string[]) => a)
  const python = new Forker({
    ...common('zygote'),
    runtime: 'python',
    argv: wrap(zygoteArgv({ ...argv, runtime: spec, nodeCommand: spec.nodeCommand })),
    libraryFile: library
  })
  const node = c.zygoteNode === 'fork'
    ? new Forker({
      ...common('node zygote'),
      runtime: 'node',
      argv: wrap(zygoteArgv({ ...argv, runtime: nodeZygoteSpec(o.files), nodeCommand: [] })),
      libraryFile: addonBeside(library)
    })
    : null
  const forkers = [python, node].filter((f): f is Forker => f !== null)
  const close = async (): Promise<void> => {
    await Promise.all(forkers.map(async (f) => await f.close()))
    await rendezvous.close()
  }
  // A node zygote that does not start is not tried again: node sandboxes are
  // then executed by the python zygote's children, for this daemon's life.
  const [pythonUp, nodeUp] = await Promise.all([started(python, o.zygoteProblem, c.zygote === 'auto'), node === null ? false : started(node, o.zygoteProblem, false)])
  if (!pythonUp) {
    if (c.zygote === 'on') {
      await close()
      throw new CannotStart(`ZYGOTE=on, but the zygote cannot start: ${python.unavailable ?? ''}`)
    }
    o.warn('NO ZYGOTE: fresh sandboxes are spawned by bwrap, each Python one paying a whole interpreter start', { reason: python.unavailable })
  }
  python.execReason = node === null ? 'ZYGOTE_NODE=exec' : node.unavailable
  if (node !== null && !nodeUp && pythonUp) {
    o.warn('NO NODE ZYGOTE: fresh node sandboxes execute node in the python zygote\'s sandboxes, each paying a whole node start', { reason: node.unavailable })
  }
  return { byRuntime: { python, node: nodeUp && node !== null ? node : python }, close }
}
