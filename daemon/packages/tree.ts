// Directory trees of layers: their size, and their removal (a layer is made
// read-only, so it is given write permission back first).
import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'

/** Runs a command; resolves with its stdout, rejects naming it when it fails. */
export async function run (argv: readonly string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.on('error', reject)
    child.on('exit', (code) => code === 0 ? resolve(out) : reject(new Error(`${argv.join(' ')}: exit ${String(code)}`)))
  })
}

/** Bytes under `dir` (du -sb). */
export async function bytesOf (dir: string): Promise<number> {
  return Number((await run(['du', '-sb', dir])).split('\t')[0])
}

/** Removes a tree, read-only parts included; nothing when it is not there. */
export async function removeTree (dir: string): Promise<void> {
  await run(['chmod', '-R', 'u+w', dir]).catch(() => {})
  await rm(dir, { recursive: true, force: true })
}
