// The sandbox command line, as a pure function.
import t from 'tap'
import { sandboxArgv } from '../daemon/sandbox/argv.js'
import { probeBwrap } from '../daemon/sandbox/probe.js'
import { runtimeSpec } from '../daemon/sandbox/runtimes.js'

const runtime = runtimeSpec('python', '/srv/hearth')
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
  t.same(argv.slice(argv.indexOf('/srv/hearth/runtimes/python/bootstrap.py') - 1, argv.indexOf('/srv/hearth/runtimes/python/bootstrap.py') + 2), ['--ro-bind', '/srv/hearth/runtimes/python/bootstrap.py', '/hearth/bootstrap.py'])
  t.notOk(argv.some((a) => a === '/root' || a === '/home' || a === '/etc'), 'no host /etc, /home or /root')
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
