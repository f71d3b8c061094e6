// The resident bootstraps under runtimes/, and which languages each one serves.
import { dirname, join } from 'node:path'
import type { Language } from '../config.js'

export type RuntimeName = 'python' | 'node'

export const RUNTIME_OF: Readonly<Record<Language, RuntimeName>> = {
  python: 'python',
  javascript: 'node',
  typescript: 'node'
}

export interface Bind { readonly src: string, readonly dest: string }

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
  return { name, command: [node, script.dest], binds }
}

export function runtimeSpec (name: RuntimeName, root: string): RuntimeSpec {
  if (name === 'python') return scriptSpec(name, { src: join(root, 'runtimes/python/bootstrap.py'), dest: '/hearth/bootstrap.py' })
  return scriptSpec(name, { src: join(root, 'runtimes/node/bootstrap.mjs'), dest: '/hearth/bootstrap.mjs' }, [
    { src: join(root, 'node_modules/msgpackr'), dest: '/hearth/node_modules/msgpackr' }
  ])
}

/**
 * The zygote (runtimes/python/zygote.py): the python bootstrap it preloads,
 * its C core, and what its node children execute (the node runtime's binds).
 */
export function zygoteSpec (root: string, library: string): RuntimeSpec & { readonly nodeCommand: readonly string[] } {
  const py = (file: string): Bind => ({ src: join(root, 'runtimes/python', file), dest: `/hearth/${file}` })
  const node = runtimeSpec('node', root)
  const spec = scriptSpec('python', py('zygote.py'), [py('bootstrap.py'), { src: library, dest: '/hearth/libhearth-zygote.so' }, ...node.binds])
  return { ...spec, nodeCommand: node.command }
}
