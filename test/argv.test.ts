// The sandbox command line, as a pure function.
import t from 'tap'
import { sandboxArgv } from '../daemon/sandbox/argv.js'
import { probeBwrap } from '../daemon/sandbox/probe.js'
import { nodeZygoteSpec, runtimeSpec, zygoteSpec } from '../daemon/sandbox/runtimes.js'
import { zygoteArgv } from '../daemon/zygote/argv.js'

const files = {
  dir: '/run/hearth/1-a/files',
  pythonBootstrap: '/run/hearth/1-a/files/python/bootstrap.py',
  pythonModules: ['/run/hearth/1-a/files/python/hearth_code.py'],
  nodeBootstrap: '/run/hearth/1-a/files/node/bootstrap.mjs',
  zygote: '/run/hearth/1-a/files/python/zygote.py',
  nodeZygote: '/run/hearth/1-a/files/node/zygote.mjs',
  zygoteLibrary: '/srv/hearth/build/libhearth-zygote.so',
  etc: ['/run/hearth/1-a/files/etc/passwd', '/run/hearth/1-a/files/etc/group']
}
const runtime = runtimeSpec('python', files)
const base = { runtime, limitsPrefix: ['/bin/sh', '-c', 'join'], hostUid: 65534, tmpBytes: 1024, seccompFd: 4 }

t.test('joins the limits first, drops to an unprivileged uid, then bwrap', async (t) => {
  const argv = sandboxArgv(base)
  t.same(argv.slice(0, 3), ['/bin/sh', '-c', 'join'])
  t.same(argv.slice(3, 8), ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'])
  t.equal(argv[8], 'bwrap')
  t.same(argv.slice(-runtime.command.length - 1), ['--', ...runtime.command], 'the bootstrap last')
})

t.test('without root there is no setpriv', async (t) => {
  t.notOk(sandboxArgv({ ...base, hostUid: null }).includes('setpriv'))
})

t.test('carries every hardening flag, in bwrap\'s required order', async (t) => {
  const argv = sandboxArgv(base)
  for (const flag of ['--unshare-all', '--unshare-user', '--disable-userns', '--die-with-parent', '--new-session', '--clearenv']) t.ok(argv.includes(flag), flag)
  t.equal(argv[argv.indexOf('--cap-drop') + 1], 'ALL')
  t.equal(argv[argv.indexOf('--size') + 2], '--tmpfs', '--size right before --tmpfs')
  t.equal(argv[argv.indexOf('--seccomp') + 1], '4')
  const bootstrap = argv.indexOf(files.pythonBootstrap)
  t.same(argv.slice(bootstrap - 1, bootstrap + 2), ['--ro-bind', files.pythonBootstrap, '/hearth/bootstrap.py'], 'the bootstrap as installed for the sandbox uid')
  const module = argv.indexOf(files.pythonModules[0] as string)
  t.same(argv.slice(module - 1, module + 2), ['--ro-bind', files.pythonModules[0], '/hearth/hearth_code.py'], 'its modules beside it')
  t.notOk(argv.some((a) => a === '/root' || a === '/home' || a === '/etc'), 'no host /etc, /home or /root')
})

t.test('everything is read-only but a private /tmp and /dev/shm', async (t) => {
  const argv = sandboxArgv(base)
  const at = (...seq: string[]): number => argv.findIndex((_, i) => seq.every((s, j) => argv[i + j] === s))
  t.ok(at('--size', '1024', '--tmpfs', '/tmp') > 0)
  t.ok(at('--size', '1024', '--tmpfs', '/dev/shm') > at('--dev', '/dev'), '/dev/shm over bwrap\'s /dev')
  t.ok(at('--remount-ro', '/') > at(files.pythonBootstrap), 'the root made read-only after every bind made its mount point')
  t.ok(at('--remount-ro', '/dev') > at('--tmpfs', '/dev/shm'))
})

t.test('the zygote keeps capabilities in its own user namespace, builds /dev without devpts, and knows the node command', async (t) => {
  const spec = zygoteSpec(files)
  const argv = zygoteArgv({ runtime: spec, nodeCommand: spec.nodeCommand, hostUid: 65534, rendezvousDir: '/run/hearth/1-a/rendezvous', tmpBytes: 4096 })
  t.equal(argv[argv.indexOf('--cap-add') + 1], 'ALL')
  t.notOk(argv.includes('--dev'), '--dev would nest a second user namespace')
  t.notOk(argv.includes('--disable-userns'))
  t.same(argv.slice(argv.indexOf('/run/hearth/1-a/rendezvous') - 1, argv.indexOf('/run/hearth/1-a/rendezvous') + 2), ['--ro-bind', '/run/hearth/1-a/rendezvous', '/run/hearth'])
  t.same(argv.slice(argv.lastIndexOf('--') + 1), ['/usr/bin/python3', '-I', '-B', '/hearth/zygote.py', '4096', ...spec.nodeCommand])
  const without = zygoteArgv({ runtime: spec, nodeCommand: spec.nodeCommand, hostUid: null, rendezvousDir: '/r', tmpBytes: 1, capabilities: false })
  t.equal(without[without.indexOf('--cap-drop') + 1], 'ALL', 'the fallback test\'s zygote')
})

t.test('a zygote\'s RLIMIT_MEMLOCK is set where asked (its pinned pages: runtimes/zygote/pin.c); ZYGOTE_PIN_PAGES=off and ZYGOTE_HUGE_TEXT=off reach it', async (t) => {
  const spec = zygoteSpec(files)
  const base = { runtime: spec, nodeCommand: [], rendezvousDir: '/r', tmpBytes: 4096 }
  const root = zygoteArgv({ ...base, hostUid: 65534, memlockBytes: 1 << 26 })
  t.same(root.slice(0, 4), ['prlimit', `--memlock=${1 << 26}:${1 << 26}`, '--', 'setpriv'], 'raised before the uid is dropped')
  t.equal(zygoteArgv({ ...base, hostUid: 65534 })[0], 'setpriv', 'not asked (a daemon that may not raise it): the daemon\'s own')
  t.equal(zygoteArgv({ ...base, hostUid: 65534, memlockBytes: 1 << 26, pinPages: false })[0], 'setpriv', 'nothing pinned: no need')
  t.notOk(root.includes('HEARTH_PIN_PAGES') || root.includes('HEARTH_HUGE_TEXT'), 'both on unless said')
  const off = zygoteArgv({ ...base, hostUid: 65534, pinPages: false, hugeText: false })
  const env = (name: string): string | undefined => off[off.indexOf(name) + 1]
  t.equal(off[off.indexOf('HEARTH_PIN_PAGES') - 1], '--setenv')
  t.equal(env('HEARTH_PIN_PAGES'), '0')
  t.equal(env('HEARTH_HUGE_TEXT'), '0')
  t.ok(off.indexOf('HEARTH_HUGE_TEXT') < off.lastIndexOf('--'), 'in the zygote\'s environment, not its command')
})

t.test('a zygote that forks into the sandboxes\' cgroups (v2) holds their parent and keeps the host\'s cgroup namespace', async (t) => {
  const spec = zygoteSpec(files)
  const plain = zygoteArgv({ runtime: spec, nodeCommand: [], hostUid: 65534, rendezvousDir: '/r', tmpBytes: 4096 })
  t.ok(plain.includes('--unshare-all'), 'otherwise every namespace, the cgroup one included')
  t.notOk(plain.includes('/run/hearth-cgroup'))
  const argv = zygoteArgv({ runtime: spec, nodeCommand: [], hostUid: 65534, rendezvousDir: '/r', tmpBytes: 4096, cgroups: { version: 2, parent: '/sys/fs/cgroup/h.service/hearth' } })
  t.same(argv.slice(argv.indexOf('/sys/fs/cgroup/h.service/hearth') - 1, argv.indexOf('/sys/fs/cgroup/h.service/hearth') + 2), ['--bind', '/sys/fs/cgroup/h.service/hearth', '/run/hearth-cgroup'], 'writable: where clone3 is refused, children join their cgroup')
  t.notOk(argv.includes('HEARTH_CGROUP_CLONE'))
  const joining = zygoteArgv({ runtime: spec, nodeCommand: [], hostUid: 65534, rendezvousDir: '/r', tmpBytes: 4096, cgroups: { version: 2, parent: '/p', clone: false } })
  t.same(joining.slice(joining.indexOf('HEARTH_CGROUP_CLONE') - 1, joining.indexOf('HEARTH_CGROUP_CLONE') + 2), ['--setenv', 'HEARTH_CGROUP_CLONE', '0'], 'tests: as where clone3 is refused')
  t.notOk(argv.some((a) => a === '--unshare-all' || a.startsWith('--unshare-cgroup')), 'with nsdelegate a clone into a cgroup outside its cgroup namespace fails')
  for (const flag of ['--unshare-user', '--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts']) t.ok(argv.includes(flag), flag)
})

t.test('a zygote whose children join their cgroups (v1) holds each hierarchy\'s parent, writable, named after it', async (t) => {
  const spec = zygoteSpec(files)
  const parents = { memory: '/sys/fs/cgroup/memory/hearth', pids: '/sys/fs/cgroup/pids/hearth' }
  const argv = zygoteArgv({ runtime: spec, nodeCommand: [], hostUid: 65534, rendezvousDir: '/r', tmpBytes: 4096, cgroups: { version: 1, parents } })
  for (const [name, dir] of Object.entries(parents)) {
    t.same(argv.slice(argv.indexOf(dir) - 1, argv.indexOf(dir) + 2), ['--bind', dir, `/run/hearth-cgroup/${name}`], name)
  }
  t.notOk(argv.includes('--unshare-all'))
})

t.test('the node zygote runs its bundled script single-threaded, with the bootstrap beside it and nothing to execute', async (t) => {
  const argv = zygoteArgv({ runtime: nodeZygoteSpec(files), nodeCommand: [], hostUid: 65534, rendezvousDir: '/r', tmpBytes: 4096 })
  t.same(argv.slice(argv.lastIndexOf('--') + 1), [process.execPath, '--single-threaded', '--no-memory-reducer', '--disable-warning=ExperimentalWarning', '/hearth/zygote.mjs', '4096'])
  for (const [src, dest] of [['/run/hearth/1-a/files/node/zygote.mjs', '/hearth/zygote.mjs'], ['/run/hearth/1-a/files/node/bootstrap.mjs', '/hearth/bootstrap.mjs']] as const) {
    t.same(argv.slice(argv.indexOf(src) - 1, argv.indexOf(src) + 2), ['--ro-bind', src, dest])
  }
})

t.test('drops only --disable-userns where bwrap cannot apply it', async (t) => {
  const argv = sandboxArgv({ ...base, disableUserns: false })
  t.notOk(argv.includes('--disable-userns'))
  t.ok(argv.includes('--unshare-user'))
  t.notOk(sandboxArgv({ ...base, seccompFd: null }).includes('--seccomp'))
})

t.test('the probe finds --disable-userns working on this host', async (t) => {
  t.equal(probeBwrap(process.getuid?.() === 0 ? 65534 : null).disableUserns, true)
})
