// pip in the build sandbox, in steps: `pip download` resolves the upload's
// requirements and fetches every distribution (from PIP_INDEX_URL,
// PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS: pip's own settings), wheels only unless
// BUILD_ALLOW_SOURCE; the daemon records each file's name, version and sha256
// as the lock; source distributions (when allowed) are made wheels with
// `pip wheel`, offline; then `pip install --no-index --no-deps --target`
// installs exactly those into the layer's site directory. A rebuild from a
// lock downloads with --require-hashes --no-deps: the same files, or a failed build.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { HearthError } from '../errors.js'
import { installerEnv, runInstaller, writeInput, type InstallBuild, type Resolved } from './installer.js'
import { removeTree } from './tree.js'
import type { PythonRequirements } from './spec.js'

/** the interpreter the run sandboxes use (daemon/sandbox/runtimes.ts): packages are built for it */
export const PYTHON = '/usr/bin/python3'

export interface PipOptions {
  /** BUILD_ALLOW_SOURCE: pip may build source distributions (their setup code runs in the build sandbox) */
  readonly allowSource: boolean
}

let cacheTag: Promise<string> | undefined
/** cpython-311: the interpreter and ABI a layer's compiled files and wheels are for (asked once). */
async function pythonTag (): Promise<string> {
  cacheTag ??= promisify(execFile)(PYTHON, ['-I', '-c', 'import sys; print(sys.implementation.cache_tag)']).then(({ stdout }) => stdout.trim())
  return await cacheTag
}

/** pip's own settings for the build (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, proxies), never its command line. */
export function pipEnv (env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return installerEnv(/^pip_/i, { PIP_CACHE_DIR: '/cache', PIP_NO_INPUT: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_PROGRESS_BAR: 'off' }, env)
}

/** Local directories and files pip's settings name (a find-links directory, an index on file://, a CA file): bound read-only at the same place. */
export function pipBinds (env: Readonly<Record<string, string>>): Array<{ src: string, dest: string }> {
  const paths = new Set<string>()
  for (const [k, v] of Object.entries(env)) {
    if (!/^pip_/i.test(k) || k === 'PIP_CACHE_DIR') continue
    for (const word of v.split(/\s+/)) {
      const path = word.startsWith('file://') ? decodeURIComponent(word.slice('file://'.length)) : word
      if (path.startsWith('/') && !path.startsWith('/usr/') && existsSync(path)) paths.add(path)
    }
  }
  return [...paths].map((p) => ({ src: p, dest: p }))
}

/** A distribution's file → its project name (normalized) and version: name-version(-build)?-py-abi-platform.whl, or name-version.tar.gz / .zip. */
function distribution (file: string): { name: string, version: string } {
  let name: string | undefined
  let version: string | undefined
  if (file.endsWith('.whl')) [name, version] = file.split('-')
  else {
    const stem = file.replace(/\.(tar\.gz|zip)$/, '')
    const dash = stem.lastIndexOf('-')
    if (dash > 0) [name, version] = [stem.slice(0, dash), stem.slice(dash + 1)]
  }
  if (name === undefined || version === undefined || version === '') throw new HearthError('dependency_error', `pip fetched a file hearth cannot name: ${file}`)
  return { name: name.toLowerCase().replace(/[-_.]+/g, '-'), version }
}

/** The lock: one pinned line per fetched file, with its sha256 (requirements.txt's hash-checking form). */
async function lockOf (dir: string, files: readonly string[]): Promise<string> {
  const lines: string[] = []
  for (const file of files) {
    const { name, version } = distribution(file)
    const sha = createHash('sha256').update(await readFile(join(dir, file))).digest('hex')
    lines.push(`${name}==${version} --hash=sha256:${sha}`)
  }
  return lines.sort().join('\n') + '\n'
}

/** The exact set of a lock, and the layer's address: the interpreter and every pinned file. */
async function resolvedOfLock (lock: string): Promise<Resolved> {
  const resolved: Record<string, string> = {}
  for (const line of lock.split('\n').filter((l) => l !== '')) {
    const [pin] = line.split(' ')
    const [name, version] = (pin as string).split('==')
    resolved[name as string] = version as string
  }
  const hash = createHash('sha256').update(JSON.stringify({ runtime: 'python', tag: await pythonTag(), lock })).digest('hex')
  return { resolved, lock, hash }
}

/** Installs `requirements` (or, with `lock`, exactly the files of that lock) into buildDir/site. */
export async function pipInstall (b: InstallBuild, o: PipOptions, requirements: PythonRequirements, lock?: string): Promise<Resolved> {
  const env = pipEnv()
  const binds = pipBinds(env)
  const pip = [PYTHON, '-I', '-m', 'pip']
  await writeInput(b, 'requirements.txt', (lock ?? requirements.join('\n')) + '\n')
  const fetched = join(b.buildDir, '.fetched') // made by pip: the build sandbox's uid owns them
  const wheels = join(b.buildDir, '.wheels')
  await runInstaller(b, {
    what: 'pip download',
    command: [...pip, 'download', '--dest', '/build/.fetched', '-r', '/build/requirements.txt',
      ...(o.allowSource ? ['--no-build-isolation'] : ['--only-binary', ':all:']),
      ...(lock === undefined ? [] : ['--require-hashes', '--no-deps'])],
    env,
    binds
  }).catch((err: unknown) => {
    if (!o.allowSource && err instanceof HearthError && /No matching distribution/.test(String(err.details.output))) err.message += ' (wheels only: BUILD_ALLOW_SOURCE=true lets pip build source distributions)'
    throw err
  })
  const files = (await readdir(fetched)).sort()
  const built = await resolvedOfLock(lock ?? await lockOf(fetched, files))
  const sources = files.filter((f) => !f.endsWith('.whl'))
  if (sources.length > 0) { // BUILD_ALLOW_SOURCE: their build runs their code, here, offline
    await runInstaller(b, {
      what: 'pip wheel',
      command: [...pip, 'wheel', '--no-index', '--no-deps', '--no-build-isolation', '--wheel-dir', '/build/.wheels', ...sources.map((f) => `/build/.fetched/${f}`)],
      env,
      binds: []
    })
  }
  const install = [...files.filter((f) => f.endsWith('.whl')).map((f) => `/build/.fetched/${f}`), ...(sources.length === 0 ? [] : await readdir(wheels)).map((f) => `/build/.wheels/${f}`)]
  await runInstaller(b, {
    what: 'pip install',
    command: [...pip, 'install', '--no-index', '--no-deps', '--target', '/build/site', ...install],
    env,
    binds: []
  })
  await removeTree(fetched)
  await removeTree(wheels)
  return built
}
