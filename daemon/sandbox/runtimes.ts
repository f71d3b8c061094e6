// The resident bootstraps, which languages each one serves, and what a sandbox
// of each runtime binds and runs.
import { basename, dirname } from 'node:path'
import type { Language } from '../config.js'

export type RuntimeName = 'python' | 'node'

export const RUNTIME_OF: Readonly<Record<Language, RuntimeName>> = {
  python: 'python',
  javascript: 'node',
  typescript: 'node'
}

export interface Bind { readonly src: string, readonly dest: string }

/** What sandboxes run, as installed for them at start (daemon/runtime-files.ts). */
export interface RuntimeFiles {
  readonly dir: string
  readonly pythonBootstrap: string
  /** the python bootstrap's own modules (hearth_*.py), bound beside it in /hearth */
  readonly pythonModules: readonly string[]
  /** bundled with msgpackr: one file */
  readonly nodeBootstrap: string
  readonly zygote: string
  /** the node zygote, bundled with what it preloads (the node bootstrap's serve.mjs) */
  readonly nodeZygote: string
  /** the zygote's C core (read by the daemon, handed to the zygote as an fd), or null when it could not be built */
  readonly zygoteLibrary: string | null
  /** the sandbox's /etc: passwd and group, naming the sandbox uid (getpwuid(), os.userInfo()) */
  readonly etc: readonly string[]
}

export interface RuntimeSpec {
  readonly name: RuntimeName
  /** argv inside the sandbox, before the fds the bootstrap must close */
  readonly command: readonly string[]
  /** read-only binds beyond /usr: the bootstrap and the runtime's own libraries */
  readonly binds: readonly Bind[]
}

/**
 * A runtime's interpreter running one script bound read-only at `script.dest`,
 * with `extra` binds beside it: the resident bootstraps, and the bench's
 * one-shot wrappers of the cold model.
 */
export function scriptSpec (name: RuntimeName, script: Bind, extra: readonly Bind[] = []): RuntimeSpec {
  if (name === 'python') {
    // Debian's python3-msgpack lives in /usr/lib/python3/dist-packages, which only
    // /usr/bin/python3 sees. -I: no environment, no user site; -B: no .pyc writes.
    return { name, command: ['/usr/bin/python3', '-I', '-B', script.dest], binds: [script, ...extra] }
  }
  const node = process.execPath
  const binds: Bind[] = [script, ...extra]
  // A node outside /usr (nvm, /opt) needs its own install tree in the sandbox.
  if (!node.startsWith('/usr/')) binds.push({ src: dirname(dirname(node)), dest: dirname(dirname(node)) })
  // The bootstrap gives user code dynamic import() through vm's main-context
  // loader, experimental in Node 20: its one-time warning would be the user's first log line.
  return { name, command: [node, '--disable-warning=ExperimentalWarning', script.dest], binds }
}

/**
 * Where a layer of packages (daemon/packages) is bound, read-only, in the
 * sandboxes of a function that has one: Node resolves /node_modules from both
 * /hearth/function.js (require) and the working directory (import); the Python
 * bootstrap puts /packages on sys.path when it is there.
 */
export function layerBind (name: RuntimeName, layer: string): Bind {
  return name === 'python' ? { src: `${layer}/site`, dest: '/packages' } : { src: `${layer}/node_modules`, dest: '/node_modules' }
}

/** The python bootstrap at /hearth/bootstrap.py; `modules`: its modules beside it. */
function pythonBinds (files: RuntimeFiles): { bootstrap: Bind, modules: Bind[] } {
  return {
    bootstrap: { src: files.pythonBootstrap, dest: '/hearth/bootstrap.py' },
    modules: files.pythonModules.map((src) => ({ src, dest: `/hearth/${basename(src)}` }))
  }
}

/** /etc/passwd and /etc/group of hearth's own (no /etc of the host is bound). */
function etcBinds (files: RuntimeFiles): Bind[] {
  return files.etc.map((src) => ({ src, dest: `/etc/${basename(src)}` }))
}

export function runtimeSpec (name: RuntimeName, files: RuntimeFiles): RuntimeSpec {
  if (name === 'python') {
    const { bootstrap, modules } = pythonBinds(files)
    return scriptSpec(name, bootstrap, [...modules, ...etcBinds(files)])
  }
  return scriptSpec(name, { src: files.nodeBootstrap, dest: '/hearth/bootstrap.mjs' }, etcBinds(files))
}

/**
 * The python zygote (runtimes/python/zygote.py): the python bootstrap it
 * preloads and what its node children execute when there is no node zygote
 * (the node runtime's binds). Its C core is not bound: it is handed over as an fd.
 */
export function zygoteSpec (files: RuntimeFiles): RuntimeSpec & { readonly nodeCommand: readonly string[] } {
  const node = runtimeSpec('node', files)
  const python = pythonBinds(files)
  const binds: Bind[] = [python.bootstrap, ...python.modules, ...node.binds]
  const spec = scriptSpec('python', { src: files.zygote, dest: '/hearth/zygote.py' }, binds)
  return { ...spec, nodeCommand: node.command }
}

/**
 * The node zygote (runtimes/node/zygote.mjs), one bundled file, under V8's
 * --single-threaded: the programs it forks have its main thread only, so
 * nothing V8 does may wait on a worker thread.
 */
export function nodeZygoteSpec (files: RuntimeFiles): RuntimeSpec {
  // the bootstrap beside it, as a node sandbox executed by bwrap sees /hearth
  const spec = scriptSpec('node', { src: files.nodeZygote, dest: '/hearth/zygote.mjs' }, [{ src: files.nodeBootstrap, dest: '/hearth/bootstrap.mjs' }, ...etcBinds(files)])
  const [node, ...rest] = spec.command
  return { ...spec, command: [node as string, '--single-threaded', '--no-memory-reducer', ...rest] }
}

/** Host paths the runtimes bind from outside /usr and the runtime directory (node installed elsewhere). */
export function foreignBinds (files: RuntimeFiles): string[] {
  const specs = [runtimeSpec('python', files), runtimeSpec('node', files)]
  return [...new Set(specs.flatMap((s) => s.binds.map((b) => b.src)))].filter((p) => !p.startsWith('/usr/') && !p.startsWith(files.dir))
}
