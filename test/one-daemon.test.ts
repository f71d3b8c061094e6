// One daemon per STATE_DIR and per port: a second one started on either stops
// at start-up, saying why, and the first serves on alone.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { ROOT } from '../daemon/config.js'
import { hierarchyRoots } from '../daemon/sandbox/limits/cgroup-v1.js'
import { post, removeLeftCgroups, startDaemon, stateDir } from './helpers/daemon.js'
import { untapped } from './helpers/processes.js'
import { freePort } from './helpers/redis.js'

const main = fileURLToPath(new URL('../daemon/main.js', import.meta.url))
let n = 0

/** A second daemon run to its exit (or killed after 20 s: it did not stop on its own). */
async function second (t: Test, env: Record<string, string>): Promise<{ code: number | null, stderr: string, cgroupName: string }> {
  const cgroupName = `hearth-test-${process.pid}-second-${++n}`
  t.teardown(async () => await removeLeftCgroups(cgroupName)) // none, unless it started (red)
  return await new Promise((resolve) => {
    const [command, ...args] = untapped([process.execPath, main])
    execFile(command, args, {
      env: { PATH: process.env.PATH, HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', POOL_MIN: '0', LOG_LEVEL: 'warn', CGROUP_NAME: cgroupName, ...env },
      cwd: ROOT,
      timeout: 20_000,
      killSignal: 'SIGKILL' // one stuck in synchronous code never runs its SIGTERM handler
    }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stderr, cgroupName })
    })
  })
}

t.test('a second daemon on the same STATE_DIR stops, saying so, and the first keeps its store', async (t) => {
  const dir = stateDir()
  const first = await startDaemon(t, { STATE_DIR: dir })
  t.equal((await post(`${first.url}/upload`, { path: 'one/dir', language: 'python', code: 'return 1' })).status, 200)
  // Before: the second started a redis-server on the first's socket and data files, and listened.
  const r = await second(t, { STATE_DIR: dir })
  t.equal(r.code, 1, 'the second daemon exits 1')
  t.match(r.stderr, `STATE_DIR ${dir} is in use by another hearth daemon`)
  t.notMatch(r.stderr, /^\s+at /m, 'in one line, without a stack')
  const link = join(mkdtempSync(join(tmpdir(), 'hearth-test-')), 'state')
  symlinkSync(dir, link)
  t.teardown(() => rmSync(join(link, '..'), { recursive: true, force: true }))
  t.match((await second(t, { STATE_DIR: link })).stderr, 'is in use by another hearth daemon', 'whatever path names the directory')
  t.same((await post(`${first.url}/run/one/dir`, {})).body, { data: 1, type: 'number' }, 'the first still serves from its store')
  t.same(await first.stop(), { code: 0, signal: null })
  const after = await startDaemon(t, { STATE_DIR: dir })
  t.same((await post(`${after.url}/run/one/dir`, {})).body, { data: 1, type: 'number' }, 'a daemon started after the first stopped takes the directory')
})

t.test('a STATE_DIR or RUNTIME_DIR that cannot be used stops the start in one line, naming it: a file, a path mkdir refuses', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'hearth-test-')), 'a-file')
  writeFileSync(file, '')
  t.teardown(() => rmSync(join(file, '..'), { recursive: true, force: true }))
  const onFile = await second(t, { STATE_DIR: file })
  t.equal(onFile.code, 1)
  t.match(onFile.stderr, `STATE_DIR ${file} cannot be used: not a directory`)
  t.notMatch(onFile.stderr, /^\s+at /m, 'in one line, without a stack (it was EEXIST from mkdir, with one)')
  // Node's mkdirSync(recursive) never returned here: the daemon hung before it started anything.
  const underProc = await second(t, { STATE_DIR: `/proc/hearth-test-${process.pid}/state` })
  t.equal(underProc.code, 1, 'exits, where it hung')
  t.match(underProc.stderr, /STATE_DIR \/proc\/hearth-test-\d+\/state cannot be used: ENOENT/)
  // RUNTIME_DIR alike (daemon/usable-dir.ts), with a usable STATE_DIR.
  const runtimeOnFile = await second(t, { STATE_DIR: stateDir(), RUNTIME_DIR: file })
  t.equal(runtimeOnFile.code, 1)
  t.match(runtimeOnFile.stderr, `RUNTIME_DIR ${file} cannot be used: not a directory`)
  t.notMatch(runtimeOnFile.stderr, /^\s+at /m, 'in one line')
  const runtimeUnderProc = await second(t, { STATE_DIR: stateDir(), RUNTIME_DIR: `/proc/hearth-test-${process.pid}/run` })
  t.equal(runtimeUnderProc.code, 1, 'exits, where it hung')
  t.match(runtimeUnderProc.stderr, /RUNTIME_DIR \/proc\/hearth-test-\d+\/run cannot be used: ENOENT/)
  const roots = hierarchyRoots()
  if (roots instanceof Map) t.notOk([...roots.values()].some((root) => existsSync(join(root, runtimeOnFile.cgroupName))), 'it made no cgroup: RUNTIME_DIR was checked before')
})

t.test('a second daemon on the same port stops at start-up, saying so, having started nothing, and the first serves on', async (t) => {
  // A port named, as a deployment names it (one bound as port 0 is not shared with SO_REUSEPORT).
  const first = await startDaemon(t, { HTTP_PORT: String(await freePort()) })
  t.equal((await post(`${first.url}/upload`, { path: 'one/port', language: 'python', code: 'return 2' })).status, 200)
  // Before: uWebSockets.js's SO_REUSEPORT let the second bind the port too and take a share of the connections.
  const r = await second(t, { HTTP_PORT: String(first.port), STATE_DIR: stateDir() })
  t.equal(r.code, 1, 'the second daemon exits 1')
  t.match(r.stderr, `cannot listen on 127.0.0.1:${first.port} (HTTP_HOST, HTTP_PORT): the port is in use`)
  t.notMatch(r.stderr, /^\s+at /m, 'in one line, without a stack')
  const roots = hierarchyRoots()
  if (roots instanceof Map) t.notOk([...roots.values()].some((root) => existsSync(join(root, r.cgroupName))), 'it made no cgroup: the port was checked before anything started')
  t.same((await post(`${first.url}/run/one/port`, {})).body, { data: 2, type: 'number' }, 'the first serves on')
})
