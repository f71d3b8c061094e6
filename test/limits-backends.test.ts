// Choosing the limits backend: a named one that cannot work here stops the
// daemon with the reason, `auto` says why it passed a backend over, and
// `none` runs sandboxes with no limits at all, saying so.
import { spawnSync } from 'node:child_process'
import { chownSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ROOT } from '../daemon/config.js'
import { chooseLimitsBackend } from '../daemon/sandbox/limits/index.js'
import { cgroupV1 } from '../daemon/sandbox/limits/cgroup-v1.js'
import { cgroupV2 } from '../daemon/sandbox/limits/cgroup-v2.js'
import { Unavailable } from '../daemon/sandbox/limits/types.js'
import { get, post, startDaemon } from './helpers/daemon.js'
import { untapped } from './helpers/processes.js'

const limits = { memoryBytes: 64 << 20, cpus: 1, pids: 32 }
const name = `hearth-backends-${process.pid}`
const main = fileURLToPath(new URL('../daemon/main.js', import.meta.url))

t.test('a named backend that cannot work here stops the daemon, saying why', async (t) => {
  // This machine has one cgroup version for its controllers; production hosts the other.
  const v2 = await cgroupV2(limits, name)
  const v1 = await cgroupV1(limits, name)
  const missing = v2 instanceof Unavailable ? { backend: 'cgroup2', why: v2.reason } : v1 instanceof Unavailable ? { backend: 'cgroup1', why: v1.reason } : null
  for (const b of [v2, v1]) if (!(b instanceof Unavailable)) await b.close()
  if (missing === null) {
    t.comment('both cgroup backends work on this host: none to refuse')
    return
  }
  t.match(missing.why, new RegExp(`^${missing.backend}: `), `the reason names the backend: ${missing.why}`)
  const [node, ...argv] = untapped([process.execPath, main])
  const r = spawnSync(node, argv, {
    env: { PATH: process.env.PATH, HTTP_PORT: '0', LIMITS_BACKEND: missing.backend, CGROUP_NAME: name },
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20_000
  })
  t.equal(r.status, 1)
  t.match(r.stderr, `LIMITS_BACKEND=${missing.backend}, but ${missing.why}`)
  t.notMatch(r.stderr, /^\s+at /m, 'in one line, without a stack')
})

t.test('cgroup v1 parents of another user (root\'s): a daemon of another uid is refused its sandboxes\' cgroups at start-up, saying so', async (t) => {
  const other = `${name}-other`
  const v1 = await cgroupV1(limits, other) // made by root, as a daemon run as root leaves them
  if (v1 instanceof Unavailable) return t.comment(`no cgroup v1 here: ${v1.reason}`)
  t.teardown(async () => await v1.close())
  const nobody = untapped(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath])
  const reads = spawnSync(nobody[0], [...nobody.slice(1), '-e', `require('fs').accessSync(${JSON.stringify(main)}, 4)`])
  if (reads.status !== 0) return t.comment('uid 65534 cannot read this checkout')
  const state = mkdtempSync(join(tmpdir(), 'hearth-test-'))
  chownSync(state, 65534, 65534)
  t.teardown(() => rmSync(state, { recursive: true, force: true }))
  const r = spawnSync(nobody[0], [...nobody.slice(1), main], {
    env: { PATH: process.env.PATH, HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', LIMITS_BACKEND: 'cgroup1', CGROUP_NAME: other, STATE_DIR: state },
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20_000
  })
  // Before: the parents were taken as they were, the daemon listened, and every sandbox start failed (EACCES).
  t.equal(r.status, 1, 'the daemon stops')
  t.match(r.stderr, /LIMITS_BACKEND=cgroup1, but cgroup1: cannot make a sandbox's cgroups under \S+ .*EACCES/, 'and says why')
})

t.test('auto keeps the reasons of the backends it passed over', async (t) => {
  const backend = await chooseLimitsBackend('auto', limits, name)
  t.teardown(async () => await backend.close())
  if (backend.name === 'cgroup2') {
    t.same(backend.passedOver, [], 'the first choice worked')
    return
  }
  t.ok((backend.passedOver ?? []).length > 0 && (backend.passedOver ?? []).every((why) => /^cgroup[12]: /.test(why)), `${backend.name}, after: ${(backend.passedOver ?? []).join('; ')}`)
})

t.test('LIMITS_BACKEND=none: sandboxes run, /readyz says there are no limits', async (t) => {
  const d = await startDaemon(t, { LIMITS_BACKEND: 'none' })
  const ready = await get(`${d.url}/readyz`)
  t.match(ready.body.limits, { backend: 'none', detail: /no resource limits/ })
  t.same((await post(`${d.url}/run-now`, { language: 'python', code: 'return 6 * 7' })).body, { data: 42, type: 'number' })
})
