// The zygote that starts every fresh sandbox (python ones forked into the
// preloaded interpreter, node ones executed after the same isolation), chosen
// at start-up: ZYGOTE=auto tries and falls back to spawning with a warning, on
// insists, off never tries.
import { join } from 'node:path'
import type { Config } from '../config.js'
import { zygoteSpec, type RuntimeFiles, type RuntimeName } from '../sandbox/runtimes.js'
import { zygoteArgv } from './argv.js'
import { Forker } from './forker.js'
import { Rendezvous } from './rendezvous.js'

export { Forker, type ForkerStats } from './forker.js'

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
  readonly warn: (msg: string, fields?: Record<string, unknown>) => void
}

export async function startForkers (o: ForkersOptions): Promise<Forkers> {
  const c = o.config
  if (c.zygote === 'off') return { byRuntime: {}, close: async () => {} }
  const rendezvous = await Rendezvous.open(join(o.instanceDir, 'rendezvous'), o.hostUid)
  const spec = zygoteSpec(o.files)
  const forker = new Forker({
    argv: zygoteArgv({
      runtime: spec,
      nodeCommand: spec.nodeCommand,
      hostUid: o.hostUid,
      rendezvousDir: rendezvous.dir,
      tmpBytes: c.sandboxTmpBytes,
      capabilities: o.capabilities
    }),
    seccompFile: o.seccompFile,
    libraryFile: o.files.zygoteLibrary ?? '/nonexistent',
    rendezvous,
    maxForks: c.zygoteMaxForks,
    maxAgeMs: c.zygoteMaxAgeMs,
    startTimeoutMs: c.spawnTimeoutMs,
    onStderr: (line) => o.warn('zygote: stderr', { line }),
    onTrouble: (err) => o.warn(`zygote: ${err.message}`)
  })
  const close = async (): Promise<void> => {
    await forker.close()
    await rendezvous.close()
  }
  try {
    if (o.zygoteProblem !== null) throw new Error(o.zygoteProblem)
    await forker.start()
  } catch (err) {
    const reason = (err as Error).message
    if (c.zygote === 'on') {
      await close()
      throw new Error(`ZYGOTE=on, but the zygote cannot start: ${reason}`)
    }
    forker.unavailable = reason
    o.warn('NO ZYGOTE: fresh sandboxes are spawned by bwrap, each Python one paying a whole interpreter start', { reason })
  }
  return { byRuntime: { python: forker, node: forker }, close }
}
