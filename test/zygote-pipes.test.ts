// Where a forked sandbox's stdout and stderr pipes are made (daemon/zygote/
// rendezvous.ts): in a zygote's own tmpfs, which the daemon opens through
// /proc/<zygote>/root; where the daemon may not (no CAP_SYS_PTRACE, as under
// systemd's CapabilityBoundingSet=), in its RUNTIME_DIR, bound into the zygotes.
import t from 'tap'
import { reachesZygoteRoots } from '../daemon/zygote/rendezvous.js'
import { get, sse, startDaemon } from './helpers/daemon.js'

t.test('the daemon reaches a zygote\'s root with CAP_SYS_PTRACE, or as the zygote\'s own uid', async (t) => {
  const status = (eff: string): string => `Name:\tnode\nCapPrm:\t000001ffffffffff\nCapEff:\t${eff}\nCapBnd:\t000001ffffffffff\n`
  t.equal(reachesZygoteRoots(null, status('0000000000000000')), true, 'a zygote of its own uid')
  t.equal(reachesZygoteRoots(65534, status('000001ffffffffff')), true, 'root')
  t.equal(reachesZygoteRoots(65534, status('000001fffff7ffff')), false, 'root without CAP_SYS_PTRACE (bit 19)')
  t.equal(reachesZygoteRoots(65534, status('0000000000080000')), true, 'CAP_SYS_PTRACE alone')
  t.equal(reachesZygoteRoots(65534, 'Name:\tnode\n'), false, 'no CapEff line')
})

t.test('a root daemon without CAP_SYS_PTRACE still forks sandboxes, and their fds 1 and 2 still open by name', { skip: process.getuid?.() !== 0 ? 'needs root (a daemon dropping one of root\'s capabilities)' : false }, async (t) => {
  // Before, every fork failed: "the forked child's pipes: EACCES ... open '/proc/<zygote>/root/run/hearth/pipes/...'"
  const d = await startDaemon(t, { POOL_MIN: '1' }, undefined, ['setpriv', '--bounding-set', '-sys_ptrace', '--inh-caps', '-sys_ptrace', '--'])
  t.ok(d.logs.some((l) => String(l.msg).includes('lacks CAP_SYS_PTRACE')), 'it says where the pipes are made')
  const ready = (await get(`${d.url}/readyz`)).body as { runtimes: Record<string, { mode: string }> }
  t.equal(ready.runtimes.python?.mode, 'zygote')
  t.equal(ready.runtimes.node?.mode, 'zygote')
  const cases = [
    ['python', 'import subprocess\nsubprocess.run(["/bin/sh", "-c", "echo by-name >/dev/stderr"], check=True)\nreturn 1'],
    ['javascript', 'require("fs").writeFileSync("/dev/stderr", "by-name\\n")\nreturn 1']
  ] as const
  for (const [language, code] of cases) {
    const events = (await sse(`${d.url}/run-now`, { language, code, input: {}, stream: true })).map((e) => e.event)
    t.same(events.at(-1), { event: 'result', data: 1, type: 'number' }, language)
    t.ok(events.some((e) => e.event === 'log' && e.data === 'by-name' && e.stream === 'stderr'), `${language}: the line written to /dev/stderr`)
  }
})
