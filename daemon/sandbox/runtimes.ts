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

export function runtimeSpec (name: RuntimeName, root: string): RuntimeSpec {
  if (name === 'python') {
    return {
      name,
      // Debian's python3-msgpack lives in /usr/lib/python3/dist-packages, which only
      // /usr/bin/python3 sees. -I: no environment, no user site; -B: no .pyc writes.
      command: ['/usr/bin/python3', '-I', '-B', '/hearth/bootstrap.py'],
      binds: [{ src: join(root, 'runtimes/python/bootstrap.py'), dest: '/hearth/bootstrap.py' }]
    }
  }
  const node = process.execPath
  const binds: Bind[] = [
    { src: join(root, 'runtimes/node/bootstrap.mjs'), dest: '/hearth/bootstrap.mjs' },
    { src: join(root, 'node_modules/msgpackr'), dest: '/hearth/node_modules/msgpackr' }
  ]
  // A node outside /usr (nvm, /opt) needs its own install tree in the sandbox.
  if (!node.startsWith('/usr/')) binds.push({ src: dirname(dirname(node)), dest: dirname(dirname(node)) })
  return { name, command: [node, '/hearth/bootstrap.mjs'], binds }
}
