// What code inside a sandbox cannot do or see: for sandboxes the zygote
// started (python forked, node executed) and for ones bwrap spawned (ZYGOTE=off).
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import tap, { type Test } from 'tap'
import type { Runner } from '../daemon/pool/runner.js'
import { call, startRunner } from './helpers/runner.js'

process.env.HEARTH_TEST_SECRET = 'do-not-leak'

for (const mode of ['zygote', 'spawn'] as const) {
  await tap.test(`sandboxes ${mode === 'zygote' ? 'started by the zygote' : 'spawned by bwrap'}`, async (t) => {
    const { runner } = await startRunner(t, { ZYGOTE: mode === 'zygote' ? 'on' : 'off' })
    t.equal((runner.stats().runtimes.python as { mode: string }).mode, mode)
    t.equal((runner.stats().runtimes.node as { mode: string }).mode, mode)
    hostile(t, runner)
  })
}

function hostile (t: Test, runner: Runner): void {
  async function py (code: string): Promise<unknown> {
    const r = await call(runner, { language: 'python', code, input: '{}' })
    if (r.result === undefined) throw new Error(`call failed: ${r.error?.code} ${r.error?.message}`)
    return JSON.parse(r.result.data)
  }

  // Run as another user, the daemon cannot give a sandbox host root: the check proves something only as root.
  t.test('no process of a sandbox runs as host root', { skip: process.getuid?.() === 0 ? false : 'the tests do not run as root' }, async (t) => {
    const r = await call(runner, { language: 'python', code: 'import time\ntime.sleep(0.5)\nreturn 1', input: '{}', functionKey: 'sec/uid@1', timeoutMs: 5000 })
    t.equal(r.result?.data, '1')
    // Every process whose ancestry holds a bwrap started by us: check its real/effective host uid.
    const procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p))
    const info = new Map<number, { ppid: number, uid: string, comm: string }>()
    for (const p of procs) {
      try {
        const status = readFileSync(`/proc/${p}/status`, 'utf8')
        info.set(Number(p), {
          ppid: Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]),
          uid: /^Uid:\s+(.*)$/m.exec(status)?.[1] ?? '',
          comm: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? ''
        })
      } catch {}
    }
    const mine = [...info].filter(([, i]) => i.comm === 'bwrap' && i.ppid === process.pid).map(([pid]) => pid)
    t.ok(mine.length > 0, 'found our sandboxes')
    const tree = new Set(mine)
    for (let grew = true; grew;) {
      grew = false
      for (const [pid, i] of info) if (!tree.has(pid) && tree.has(i.ppid)) { tree.add(pid); grew = true }
    }
    for (const pid of tree) {
      const uids = (info.get(pid)?.uid ?? '').split(/\s+/)
      t.notOk(uids.includes('0'), `pid ${pid} (${info.get(pid)?.comm}) uids ${uids.join(' ')}`)
    }
  })

  t.test('has no network, not even loopback', async (t) => {
    const server = createServer((s) => s.end('hello'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => server.close())
    const port = (server.address() as { port: number }).port
    // The seccomp filter refuses the socket itself; without it, the empty net namespace would refuse the connection.
    const out = await py(`import errno, socket\ntry:\n    socket.create_connection(("127.0.0.1", ${port}), timeout=1)\n    return "connected"\nexcept OSError as e:\n    return errno.errorcode.get(e.errno, str(e))`)
    t.equal(out, 'EAFNOSUPPORT')
    const js = await call(runner, { language: 'javascript', code: `return await new Promise(r => require("net").connect(${port}, "127.0.0.1").on("connect", () => r("connected")).on("error", e => r(e.code)))`, input: '{}' })
    t.equal(js.result?.data, '"EAFNOSUPPORT"')
  })

  t.test('sees none of the host\'s files, secrets or environment', async (t) => {
    const out = await py('import os\nreturn {p: os.path.exists(p) for p in ["/root", "/home", "/etc/shadow", "/etc/hostname", "/var", "/work", "/usr/bin/python3"]} | {"env": sorted(os.environ), "etc": sorted(os.listdir("/etc")), "passwd": open("/etc/passwd").read()}') as Record<string, unknown>
    t.same(out, {
      '/root': false,
      '/home': false,
      '/etc/shadow': false,
      '/etc/hostname': false,
      '/var': false,
      '/work': false,
      '/usr/bin/python3': true,
      env: ['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONIOENCODING'],
      // hearth's own, naming the sandbox uid: no account of the host's
      etc: ['group', 'passwd'],
      passwd: 'nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n'
    })
  })

  t.test('cannot write outside /tmp and /dev/shm, both private and size-capped', async (t) => {
    const out = await py(`import errno
def write(path, mib=0):
    try:
        with open(path, "wb") as f:
            f.write(b"x")
            for _ in range(mib):
                f.write(b"x" * (1 << 20))
        return "written"
    except OSError as e:
        return errno.errorcode[e.errno]
return {p: write(p) for p in ["/evil", "/usr/evil", "/hearth/evil", "/dev/evil", "/proc/evil", "/dev/shm/small"]} | {
    "/tmp": write("/tmp/big", 64), "/dev/shm": write("/dev/shm/big", 64)}`)
    t.same(out, {
      '/evil': 'EROFS',
      '/usr/evil': 'EROFS',
      '/hearth/evil': 'EROFS',
      '/dev/evil': 'EROFS',
      '/proc/evil': 'ENOENT',
      '/tmp': 'ENOSPC',
      '/dev/shm': 'ENOSPC',
      '/dev/shm/small': 'written'
    })
  })

  t.test('the seccomp filter denies namespaces, ptrace and non-unix sockets', async (t) => {
    const out = await py('import ctypes, errno, socket\nlibc = ctypes.CDLL(None, use_errno=True)\ndef err(rc):\n    return errno.errorcode.get(ctypes.get_errno(), "ok") if rc != 0 else "ok"\nr = {"unshare": err(libc.unshare(0x00020000)), "ptrace": err(libc.ptrace(16, 1, 0, 0))}\ntry:\n    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)\n    r["netlink"] = "ok"\nexcept OSError as e:\n    r["netlink"] = errno.errorcode[e.errno]\nr["unix"] = len(socket.socketpair())\nreturn r')
    t.same(out, { unshare: 'EPERM', ptrace: 'EPERM', netlink: 'EAFNOSUPPORT', unix: 2 })
  })

  t.test('a node sandbox holds no privilege and writes nowhere but /tmp and /dev/shm', async (t) => {
    const r = await call(runner, {
      language: 'javascript',
      input: '{}',
      code: `const fs = require('fs')
const status = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8').split('\\n').filter((l) => l.includes(':\\t')).map((l) => l.split(':\\t')))
const write = (p) => { try { fs.writeFileSync(p, 'x'); return 'written' } catch (e) { return e.code } }
const unshare = require('child_process').spawnSync('/usr/bin/unshare', ['-n', 'true'], { encoding: 'utf8' })
return {
  caps: ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map((k) => status[k].trim()),
  noNewPrivs: status.NoNewPrivs.trim(), seccomp: status.Seccomp.trim(), uid: process.getuid(),
  env: Object.keys(process.env).sort(),
  writes: Object.fromEntries(['/evil', '/usr/evil', '/hearth/evil', '/dev/evil', '/tmp/ok', '/dev/shm/ok'].map((p) => [p, write(p)])),
  unshare: unshare.status === 0 ? 'ran' : 'refused'
}`
    })
    t.same(JSON.parse(r.result?.data ?? 'null'), {
      caps: Array(5).fill('0000000000000000'),
      noNewPrivs: '1',
      seccomp: '2',
      uid: 65534,
      env: ['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONIOENCODING'],
      writes: { '/evil': 'EROFS', '/usr/evil': 'EROFS', '/hearth/evil': 'EROFS', '/dev/evil': 'EROFS', '/tmp/ok': 'written', '/dev/shm/ok': 'written' },
      unshare: 'refused'
    }, r.error?.message ?? 'the probe answered')
  })
}
