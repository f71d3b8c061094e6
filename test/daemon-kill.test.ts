// A daemon killed with SIGKILL leaves nothing running, and the next daemon
// sharing its CGROUP_NAME removes what it left on disk — and only that. A
// hangup (SIGHUP) is a stop, not a kill: nothing is left even on disk.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../daemon/config.js'
import { get, post, startDaemon, stateDir, type Daemon } from './helpers/daemon.js'
import { processesMentioning } from './helpers/processes.js'
import { waitFor } from './helpers/wait.js'

const cgroupName = `hearth-kill-${process.pid}`

async function until (check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(check, timeoutMs, what)
}

/** The directories holding this CGROUP_NAME's sandbox cgroups (one per v1 hierarchy, or the v2 one). */
async function parents (d: Daemon): Promise<string[]> {
  return String((await get(`${d.url}/readyz`)).body.limits.detail).split(' ')
}

const sandboxesOf = (dirs: readonly string[], pid: number): string[] =>
  dirs.flatMap((dir) => readdirSync(dir).filter((n) => n.includes(`-${pid}-`)).map((n) => join(dir, n)))

t.test('after SIGKILL nothing of the daemon runs on; the next start removes its cgroups and runtime files, not a live daemon\'s', async (t) => {
  const env = { CGROUP_NAME: cgroupName, POOL_MIN: '1' }
  const aState = stateDir()
  const a = await startDaemon(t, { ...env, STATE_DIR: aState })
  const b = await startDaemon(t, { ...env, STATE_DIR: stateDir() })
  const dirs = await parents(a)
  t.ok(dirs.every((dir) => dir.endsWith(cgroupName)), `sandbox cgroups under ${dirs.join(' ')}`)
  await post(`${a.url}/upload`, { path: 'kill/fn', language: 'python', code: 'return 1' })
  t.same((await post(`${a.url}/run/kill/fn`, {})).body, { data: 1, type: 'number' }, 'a warm sandbox too')
  const aPid = a.proc.pid as number
  const runtimeDir = loadConfig({}).runtimeDir
  await until(() => sandboxesOf(dirs, aPid).length >= 3, 'a\'s sandboxes')
  t.ok(processesMentioning(`${runtimeDir}/${aPid}-`).length > 0, 'a\'s zygote runs')
  t.ok(processesMentioning(aState).length > 0, 'a\'s embedded redis-server runs')

  await a.stop('SIGKILL')
  await until(() => processesMentioning(`${runtimeDir}/${aPid}-`).length === 0, 'a\'s zygote and sandboxes to die with it')
  await until(() => processesMentioning(aState).length === 0, 'a\'s redis-server to end')
  const left = sandboxesOf(dirs, aPid)
  t.ok(left.length > 0, `${left.length} cgroups left behind by the kill`)
  // A process just killed may still be listed until its parent reaps it: await the empty lists.
  await until(() => left.every((dir) => !existsSync(dir) || readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() === ''), 'the cgroups a left to hold no process')
  t.pass('with no process in them')

  const bSandboxes = sandboxesOf(dirs, b.proc.pid as number)
  t.ok(bSandboxes.length > 0, 'b, alive, has sandboxes under the same CGROUP_NAME')
  await startDaemon(t, { ...env, STATE_DIR: stateDir() })
  await until(() => sandboxesOf(dirs, aPid).length === 0, 'the next start to remove a\'s cgroups')
  t.ok(readdirSync(runtimeDir).every((n) => !n.startsWith(`${aPid}-`)), 'and a\'s runtime directory')
  t.ok(bSandboxes.every((dir) => existsSync(dir)), 'b\'s cgroups are untouched')
  t.same((await post(`${b.url}/run-now`, { language: 'python', code: 'return 2' })).body, { data: 2, type: 'number' }, 'b serves on')
})

t.test('SIGHUP (a terminal closed) stops the daemon as SIGTERM does, nothing left behind, and exits 129', async (t) => {
  const d = await startDaemon(t, { POOL_MIN: '1' })
  const dirs = await parents(d)
  const pid = d.proc.pid as number
  const runtimeDir = loadConfig({}).runtimeDir
  await until(() => sandboxesOf(dirs, pid).length >= 3, 'its sandboxes')
  // 128 + SIGHUP, as a shell reports a process the hangup ended: systemd's Restart=on-failure still restarts it.
  t.same(await d.stop('SIGHUP'), { code: 129, signal: null }, 'exits 129 after a stop, not ended by the signal')
  t.ok(d.logs.some((l) => l.msg === 'stopping' && l.signal === 'SIGHUP'), 'the stop names the signal')
  t.ok(dirs.every((dir) => !existsSync(dir)), 'its cgroups removed on the way out (a killed daemon leaves them)')
  await until(() => processesMentioning(`${runtimeDir}/${pid}-`).length === 0, 'no zygote or sandbox of it')
  t.ok(readdirSync(runtimeDir).every((n) => !n.startsWith(`${pid}-`)), 'its runtime directory removed')
})
