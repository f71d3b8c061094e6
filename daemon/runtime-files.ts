// What sandboxes run (bootstraps, the zygotes and their C core), installed at
// start into this daemon's runtime directory: bwrap binds them as the sandbox
// uid, which may not be able to read the checkout (a clone under /root, mode
// 700, is the common case). The node bootstrap and zygote are each bundled
// with msgpackr into one file, so user code's require() finds nothing of hearth's.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { Config } from './config.js'
import { CannotStart } from './errors.js'
import { dropToHostUid, INSIDE_UID } from './sandbox/argv.js'
import type { RuntimeFiles } from './sandbox/runtimes.js'
import { zygoteLibrary } from './zygote/library.js'

export type { RuntimeFiles } from './sandbox/runtimes.js'

/** What bootstrap.py imports from beside it. */
const PYTHON_MODULES = ['hearth_caps.py', 'hearth_code.py', 'hearth_errors.py', 'hearth_result.py', 'hearth_streams.py']

/** What sandboxes and the node zygote run of runtimes/node, each bundled into one file. */
const NODE_ENTRIES = ['bootstrap.mjs', 'zygote.mjs']

/** Copies one file where the sandbox uid can read it: 0644, its directory 0755 whatever the umask. */
export function install (src: string, dest: string): string {
  mkdirSync(dirname(dest), { recursive: true })
  chmodSync(dirname(dest), 0o755)
  copyFileSync(src, dest)
  chmodSync(dest, 0o644)
  return dest
}

/**
 * Builds the zygote's C core if needed and installs everything into
 * `<instanceDir>/files`. A zygote core that cannot be built is not fatal:
 * `zygoteProblem` says why, and sandboxes are spawned instead.
 */
export async function prepareRuntimeFiles (config: Config, instanceDir: string): Promise<{ files: RuntimeFiles, zygoteProblem: string | null }> {
  let library: string | null = null
  let zygoteProblem: string | null = null
  try {
    library = zygoteLibrary(config.root, config.stateDir)
  } catch (err) {
    zygoteProblem = (err as Error).message
  }
  return { files: await installRuntimeFiles(config.root, join(instanceDir, 'files'), library), zygoteProblem }
}

/**
 * The node bootstrap and the node zygote, each bundled with msgpackr: made by
 * the build (`npm run build:runtimes`), or here when the build's are missing
 * or older than a source of them (an edited runtime is never run stale).
 * Bundling at each start cost ~0.1 s natively and seconds in an emulated guest.
 */
async function nodeRuntimeTo (root: string, dir: string): Promise<void> {
  const entries = NODE_ENTRIES.map((name) => join(root, 'runtimes/node', name))
  const prebuilt = NODE_ENTRIES.map((name) => join(root, 'dist/runtimes/node', name))
  const sources = readdirSync(join(root, 'runtimes/node')).map((f) => statSync(join(root, 'runtimes/node', f)).mtimeMs)
  if (prebuilt.every((f) => existsSync(f) && statSync(f).mtimeMs >= Math.max(...sources))) {
    for (const f of prebuilt) copyFileSync(f, join(dir, basename(f)))
  } else {
    const { build } = await import('esbuild')
    await build({ entryPoints: entries, outdir: dir, outExtension: { '.js': '.mjs' }, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent' })
  }
  for (const name of NODE_ENTRIES) chmodSync(join(dir, name), 0o644)
}

export async function installRuntimeFiles (root: string, dir: string, zygoteLibrary: string | null): Promise<RuntimeFiles> {
  const nodeDir = join(dir, 'node')
  mkdirSync(nodeDir, { recursive: true, mode: 0o755 })
  await nodeRuntimeTo(root, nodeDir)
  const files = {
    dir,
    pythonBootstrap: install(join(root, 'runtimes/python/bootstrap.py'), join(dir, 'python/bootstrap.py')),
    pythonModules: PYTHON_MODULES.map((name) => install(join(root, 'runtimes/python', name), join(dir, 'python', name))),
    nodeBootstrap: join(nodeDir, 'bootstrap.mjs'),
    zygote: install(join(root, 'runtimes/python/zygote.py'), join(dir, 'python/zygote.py')),
    nodeZygote: join(nodeDir, 'zygote.mjs'),
    zygoteLibrary, // read by the daemon, where it was built
    etc: etcFiles(join(dir, 'etc'))
  }
  // whatever the umask (hearth.service: UMask=0077); python/ is install()'s
  for (const d of [dir, nodeDir]) chmodSync(d, 0o755)
  return files
}

/**
 * A sandbox's /etc/passwd and /etc/group: who the sandbox uid is (Debian's
 * nobody / nogroup, at home in /tmp as HOME says). Without them getpwuid()
 * found no entry: python's getpass.getuser() raised KeyError, node's
 * os.userInfo() ENOENT.
 */
function etcFiles (dir: string): string[] {
  mkdirSync(dir, { recursive: true })
  chmodSync(dir, 0o755)
  const files: Array<[string, string]> = [
    ['passwd', `nobody:x:${INSIDE_UID}:${INSIDE_UID}:nobody:/tmp:/usr/sbin/nologin\n`],
    ['group', `nogroup:x:${INSIDE_UID}:\n`]
  ]
  return files.map(([name, text]) => {
    const file = join(dir, name)
    writeFileSync(file, text)
    chmodSync(file, 0o644)
    return file
  })
}

/**
 * The paths a sandbox binds from outside /usr and RUNTIME_DIR must be readable
 * by the uid bwrap runs as: checked once at start, with that uid, so a daemon
 * that cannot start sandboxes says why instead of answering 503 to every call.
 */
export function checkReadable (paths: readonly string[], hostUid: number | null): void {
  if (hostUid === null || paths.length === 0) return // the daemon's own uid binds what it can read
  const argv = [...dropToHostUid(hostUid), '/bin/sh', '-c', 'for p; do [ -r "$p" ] || { echo "$p"; exit 1; }; done', 'check', ...paths]
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', timeout: 10_000 })
  if (r.status !== 0) {
    const path = r.stdout.trim() || paths.join(', ')
    throw new CannotStart(`${path} is not readable by SANDBOX_UID ${hostUid}, which sandboxes run as: ` +
      'every directory above it must let others in (chmod o+rx), or install it under /usr (Node.js: Debian\'s nodejs, or NodeSource)')
  }
}
