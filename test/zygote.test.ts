// Fresh sandboxes started by the zygotes (python ones forked into the python
// zygote's interpreter; node ones: test/node-zygote.test.ts): what each child
// can and cannot do, siblings alive at once, the pages it copies or maps at
// once, and its start's steps. A zygote's own life and failures:
// test/zygote-lifecycle.test.ts.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { LimitsBackend } from '../daemon/sandbox/limits/types.js'
import { call, py, pythonPool, startRunner, waitFor } from './helpers/runner.js'
import { pythonPrograms, pythonRuntime, pythonZygotes } from './helpers/zygotes.js'

t.test('fresh sandboxes of every runtime come from the zygote, and /readyz says so', async (t) => {
  const { runner } = await startRunner(t)
  const node = (): Record<string, any> => runner.stats().runtimes.node as Record<string, any>
  const before = { python: pythonRuntime(runner).forks, node: node().forks }
  t.same(await py(runner, 'return 1 + 1'), 2)
  const js = await call(runner, { language: 'javascript', code: 'return [process.pid, process.getuid(), require("fs").readdirSync("/run/hearth")]', input: '{}' })
  t.equal(js.result?.data, '[2,65534,[]]', 'node: pid 2 under an init, the sandbox uid, no way back to the daemon')
  t.match(pythonRuntime(runner), { mode: 'zygote', start: 'fork' })
  t.match(node(), { mode: 'zygote', start: 'fork' })
  t.ok(pythonRuntime(runner).forks > before.python, 'the python call ran in a forked sandbox')
  t.ok(node().forks > before.node, 'the javascript call ran in a sandbox forked from the node zygote')
})

t.test('a forked child holds no privilege and no way back to the daemon', async (t) => {
  const { runner } = await startRunner(t)
  const out = await py(runner, `import ctypes, errno, os, signal, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
def raised():
    got = []
    signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
    signal.raise_signal(signal.SIGUSR1)
    return got == [1]
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
def connect(path):
    try:
        socket.socket(socket.AF_UNIX).connect(path)
        return "connected"
    except OSError as e:
        return errno.errorcode[e.errno]
def err(rc):
    return "ok" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
writes = {}
for path in ["/x", "/hearth/x", "/dev/x", "/run/hearth/x"]:
    try:
        open(path, "w")
        writes[path] = "written"
    except OSError as e:
        writes[path] = errno.errorcode[e.errno]
return {
    "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
    "no_new_privs": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
    "uid": os.getuid(), "pid": os.getpid(),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "rendezvous": os.listdir("/run/hearth"), "reconnect": connect("/run/hearth/sock"),
    "unshare_user": err(libc.unshare(0x10000000)), "unshare_mnt": err(libc.unshare(0x00020000)),
    "mount": err(libc.mount(b"tmpfs", b"/mnt", b"tmpfs", 0, None)),
    "setuid0": err(libc.setuid(0)),
    "writes": writes,
    "cgroups": sorted(set(line.split(":", 2)[2] for line in open("/proc/self/cgroup").read().splitlines())),
    "init": open("/proc/1/cmdline").read().split("\\0")[0],
    "tid": threading.get_native_id(), "raised": raised(),
    "init_rss_kb": int(open("/proc/1/status").read().split("VmRSS:")[1].split()[0]),
}`)
  t.same(out.caps, Array(5).fill('0000000000000000'), 'no capability in any set')
  t.equal(out.no_new_privs, '1') // bwrap set it on the zygote already; the child sets it again
  t.equal(out.seccomp, '2', 'seccomp filter mode')
  t.equal(out.uid, 65534)
  t.equal(out.pid, 2, 'user code is not pid 1: an init reaps orphans')
  // Init shared the zygote's memory, then executed the reaper: no copy of the interpreter in pid 1.
  t.equal(out.init, 'hearth-reaper', 'pid 1 is the reaper')
  // A program forked by an init that shared the zygote's memory, resumed on the zygote's stack: its thread is its own.
  t.same([out.tid, out.raised], [2, true], 'the program\'s thread id is its pid, and raise() reaches it')
  t.ok((out.init_rss_kb as number) < 1024, `pid 1 holds ${out.init_rss_kb as number} KB`)
  t.same(out.fds, [0, 1, 2, 3, 4], 'fds 0-3, and the one listdir opened')
  t.same([out.rendezvous, out.reconnect], [[], 'ENOENT'], 'the daemon socket directory is covered: no second connection')
  t.same([out.unshare_user, out.unshare_mnt, out.mount], ['EPERM', 'EPERM', 'EPERM'])
  t.equal(out.setuid0, 'EINVAL', 'uid 0 does not even exist in its user namespace')
  t.same(out.writes, { '/x': 'EROFS', '/hearth/x': 'EROFS', '/dev/x': 'EROFS', '/run/hearth/x': 'EROFS' })
  t.same(out.cgroups, ['/'], 'in every hierarchy, its own cgroup is the root of what it sees')
})

t.test('two children alive at once see nothing of each other', async (t) => {
  const { runner } = await startRunner(t, { POOL_MIN: '2' })
  // A: leaves a trace of every kind, then stays alive, bound to its function.
  const a = await py(runner, `import ctypes, os, socket, subprocess
open("/tmp/mark", "w").write("a")
open("/dev/shm/mark", "w").write("a")
abstract = socket.socket(socket.AF_UNIX); abstract.bind("\\0hearth-sibling"); abstract.listen()
path = socket.socket(socket.AF_UNIX); path.bind("/tmp/sock"); path.listen()
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget(0x4845, 4096, 0o1666)
sleeper = subprocess.Popen(["/bin/sleep", "60"])
import builtins
builtins.keep = (abstract, path, sleeper)
return {"shmid": shmid, "sleeper": sleeper.pid, "hostname": socket.gethostname()}`, 'sib/a@1')
  t.ok(a.shmid >= 0, 'A made a SysV segment')
  // B: a different function, so a different forked child, while A lives.
  const b = await py(runner, `import ctypes, errno, os, signal, socket
libc = ctypes.CDLL(None, use_errno=True)
def connect(addr):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(addr)
        return "connected"
    except OSError as e:
        return errno.errorcode[e.errno]
def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        return "killed"
    except OSError as e:
        return errno.errorcode[e.errno]
procs = sorted(open("/proc/%s/cmdline" % p).read().replace("\\0", " ").strip() for p in os.listdir("/proc") if p.isdigit())
return {
    "procs": procs,
    "tmp": os.path.exists("/tmp/mark"), "shm": os.path.exists("/dev/shm/mark"),
    "abstract": connect("\\0hearth-sibling"), "path": connect("/tmp/sock"),
    "sysv": libc.shmget(0x4845, 4096, 0o666) >= 0,
    "kill": kill(${a.sleeper as number}),
    "ptrace": "ok" if libc.ptrace(16, ${a.sleeper as number}, 0, 0) == 0 else errno.errorcode[ctypes.get_errno()],
}`, 'sib/b@1')
  t.notMatch(b.procs.join('\n'), /sleep/, 'no view of the sibling\'s processes')
  t.equal(b.tmp, false, '/tmp is its own')
  t.equal(b.shm, false, '/dev/shm is its own')
  t.equal(b.abstract, 'ECONNREFUSED', 'abstract sockets live in its own network namespace')
  t.equal(b.path, 'ENOENT', 'path sockets live in its own /tmp')
  t.equal(b.sysv, false, 'SysV IPC is its own')
  t.equal(b.kill, 'ESRCH', 'cannot signal the sibling')
  t.equal(b.ptrace, 'EPERM', 'cannot ptrace')
  // A is untouched and still answers, warm.
  const again = await call(runner, { language: 'python', code: 'import builtins\nreturn {"running": builtins.keep[2].poll() is None}', input: '{}', functionKey: 'sib/a@1' })
  t.equal(again.result?.data, '{"running":true}', 'the sibling\'s sleeper still runs')
  t.equal(again.result?.warm, true)
})

t.test('the zygote works with RUNTIME_DIR on a noexec mount (systemd mounts /run so)', async (t) => {
  if (process.getuid?.() !== 0) return t.comment('needs root to mount a tmpfs; skipped')
  const dir = mkdtempSync(join(tmpdir(), 'hearth-noexec-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'noexec,nosuid,nodev,mode=755', 'hearth-noexec', dir])
  t.teardown(() => { execFileSync('umount', ['-l', dir]); rmSync(dir, { recursive: true, force: true }) })
  const { runner } = await startRunner(t, { RUNTIME_DIR: dir })
  t.match(pythonRuntime(runner), { mode: 'zygote' })
  t.same(await py(runner, 'return "forked"'), 'forked')
})

/** KB of private writable mappings of a process (what a child could copy from it). */
function writableKb (pid: number): number {
  let kb = 0
  for (const line of readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) .w.p /.exec(line)
    if (m !== null) kb += (parseInt(m[2] as string, 16) - parseInt(m[1] as string, 16)) / 1024
  }
  return kb
}

t.test('a forked python child copies at once the zygote pages a sandbox writes, and only those: its first call takes no copy-on-write faults', async (t) => {
  const [major = 0, minor = 0] = release().split('.').map(Number)
  if (major < 5 || (major === 5 && minor < 14)) {
    t.comment(`kernel ${release()} has no MADV_POPULATE_WRITE (5.14+): children fault their pages in one by one`)
    return
  }
  const { runner } = await startRunner(t, { ZYGOTE: 'on', POOL_MIN: '1' })
  const zygote = pythonZygotes()
  t.equal(zygote.length, 1, 'one zygote')
  const total = writableKb(zygote[0] as number)
  const learned = pythonRuntime(runner).prefaultPages as number
  t.ok(learned > 0 && learned * 4 < total / 2, `the probe learned ${learned} pages of the zygote's ${Math.round(total / 4)} writable ones`)
  // A usual first call finds the pages it writes copied already (before ready:
  // the prefault, or the faults of the bootstrap's start when there is none).
  const code = 'import resource\nbefore = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\ntotal = sum(event["a"])\nprint("total", total)\nout = {"total": total, "items": [str(i) for i in range(100)]}\nfaults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\nkb = next(int(l.split()[1]) for l in open("/proc/self/smaps_rollup") if l.startswith("Private_Dirty"))\nreturn [faults, kb]'
  const r = await call(runner, { language: 'python', code, input: '{"a": [1, 2, 3]}' })
  const [faults, kb] = JSON.parse(r.result?.data ?? '[]') as [number, number]
  t.ok(faults < 20, `${faults} minor faults in the first call`)
  t.ok(kb < total / 2, `the child owns ${kb} KB of the zygote's ${Math.round(total)} writable KB (all of them when every page is prefaulted)`)
})

t.test('a forked python child maps at once the code its first call runs: that call takes almost no page fault', async (t) => {
  const [major = 0, minor = 0] = release().split('.').map(Number)
  if (major < 5 || (major === 5 && minor < 14)) return t.comment(`kernel ${release()} has no MADV_POPULATE_READ (5.14+)`)
  const { runner } = await startRunner(t, { ZYGOTE: 'on', POOL_MIN: '1' })
  const premapped = pythonRuntime(runner).premapPages as number
  t.ok(premapped > 0, `the probe learned ${premapped} pages of code and constants a first call maps`)
  // What a first compile adds (the first call below compiles): copied and mapped just before it (zygote/probe.h, hz_probe_answered).
  const precompiled = pythonRuntime(runner).precompilePages as number
  t.ok(precompiled > 0, `the probe learned ${precompiled} pages a first compile copies or maps`)
  const programs = pythonPrograms
  const faults = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.split(' ')[7])
  // A first call's own faults with its code mapped at once: 3-4, once 10 in ~25 runs
  // (a full test run beside it); 19-20 when each page of code is faulted in.
  const FEW = 12
  // The first fresh sandbox compiles the code and sends its bytecode back (sandbox/bytecode-cache.ts); the next one is sent it.
  const served = new Set<number>()
  for (const [i, what] of [[1, 'its compile and the bytecode sent back'], [2, 'the bytecode loaded']] as const) {
    await waitFor(() => programs().length === i && pythonPool(runner)?.ready === 1, 15_000, 'a python sandbox ready')
    const program = programs().find((pid) => !served.has(pid)) as number
    served.add(program)
    const before = faults(program)
    // Stored, so that its sandbox lives on to be read after the call.
    const r = await call(runner, { language: 'python', code: 'total = sum(event["a"])\nprint("total", total)\nreturn {"total": total}', input: '{"a": [1, 2]}', functionKey: `premap/f${i}@1` })
    t.same(JSON.parse(r.result?.data ?? 'null'), { total: 3 })
    const taken = faults(program) - before
    t.ok(taken <= FEW, `${taken} page faults in the first call, ${what} and its answer included (19-20 when each page of code is faulted in)`)
  }
  // Once most first calls load bytecode, children are forked without the
  // compile's pages: a child that does compile copies them in its call, at
  // once (min_flt counts a populate's pages as faults: ~75 here, not 3).
  t.ok(runner.bytecode.compiles, 'no first call has loaded bytecode yet: children are forked ready to compile')
  for (let i = 0; i < 8; i++) t.same(await py(runner, 'return 1'), 1)
  t.notOk(runner.bytecode.compiles, 'eight first calls loaded bytecode: children are forked without the compile\'s pages')
  await py(runner, 'return 1') // the child forked before that
  const fresh = (): number[] => programs().filter((pid) => !served.has(pid))
  await waitFor(() => fresh().length === 1 && pythonPool(runner)?.ready === 1, 15_000, 'a python sandbox ready')
  const program = fresh()[0] as number
  const before = faults(program)
  const r = await call(runner, { language: 'python', code: 'return 2 * 21', input: '{}', functionKey: 'premap/f3@1' })
  t.equal(r.result?.data, '42')
  const taken = faults(program) - before
  t.ok(taken > FEW && taken <= precompiled + FEW, `${taken} page faults in a first call that compiles, ${precompiled} pages copied or mapped at once before its compile included`)
})

/** What of hearth's own a python sandbox's code could see (python-module.test.ts has the whole check). */
const HEARTH_SEEN = 'import sys\nreturn [n for n in sys.modules if n in ("bootstrap", "msgpack") or n.startswith("hearth_")] + [p for p in sys.path if p == "/hearth" or p.endswith("-packages")]'

t.test('ZYGOTE=off spawns every sandbox, which hides hearth\'s modules itself (a zygote hides them once, before it forks)', async (t) => {
  const { runner } = await startRunner(t, { ZYGOTE: 'off' })
  t.same(await py(runner, 'return 3'), 3)
  t.same(runner.stats().runtimes, { python: { mode: 'spawn' }, node: { mode: 'spawn' } })
  t.same(await py(runner, HEARTH_SEEN), [], 'spawned: no bootstrap, msgpack or /hearth')
})

/** Which of the sandbox's sys.stdout, sys.stderr and sys.stdin it made itself: objects the collector tracks in a generation (a zygote's are frozen, gc.freeze). */
const STREAMS_MADE_HERE = 'import gc, sys\nhere = {id(o) for g in (0, 1, 2) for o in gc.get_objects(g)}\nreturn [id(s) in here for s in (sys.stdout, sys.stderr, sys.stdin)]'

t.test('a forked python child finds its captured streams made by the zygote (bootstrap.Prepared); a spawned sandbox makes its own', async (t) => {
  const forked = await startRunner(t, { ZYGOTE: 'on' })
  t.same(await py(forked.runner, STREAMS_MADE_HERE), [false, false, false], 'forked: made before the fork, frozen')
  t.same(await py(forked.runner, 'import sys\nprint("out")\nprint("err", file=sys.stderr)\nreturn sys.stdin.read()'), '', 'and they work')
  const spawned = await startRunner(t, { ZYGOTE: 'off' })
  t.same(await py(spawned.runner, STREAMS_MADE_HERE), [true, true, true], 'spawned: made at its start')
})

/**
 * The real limits backend, with `before(n)` run before the nth placement of a
 * forked program into its cgroups by the daemon (from 0): without its way for
 * zygotes to start children in their cgroups (forkInto), so that it places
 * every one.
 */
function hookPlacements (before: (n: number) => Promise<void>): { wrapLimits: (real: LimitsBackend) => LimitsBackend, placements: () => number } {
  let n = 0
  return {
    placements: () => n,
    wrapLimits: (real) => ({
      ...real,
      forkInto: undefined,
      create: async (id, own) => {
        const sandbox = await real.create(id, own)
        return { ...sandbox, place: async (hostPid) => { await before(n++); await sandbox.place?.(hostPid) } }
      }
    })
  }
}

t.test('a child given up on before its go byte ends, and the zygote forks on', async (t) => {
  // Its program waits for the go byte (isolate.c, become_sandbox): the
  // daemon must end it by closing its connections. Here the first placement
  // into a cgroup fails.
  const hook = hookPlacements(async (n) => { if (n === 0) throw new Error('placement refused by the test') })
  const { runner } = await startRunner(t, {}, { wrapLimits: hook.wrapLimits })
  const first = await call(runner, { language: 'python', code: 'return 1', input: '{}' })
  t.ok(hook.placements() >= 1, `the first placement was refused (first call: ${first.error?.code ?? 'served by a retry'})`)
  t.equal(await py(runner, 'return 2'), 2, 'the next sandbox is forked and served')
})

t.test('while a forked child waits for its placement, the zygote forks the next one', async (t) => {
  // The program waits for the go byte, not its init: the zygote (which waits
  // for init) is free again once init has executed the reaper. Here the
  // first placement into a cgroup is held until the second sandbox served a call.
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const hook = hookPlacements(async (n) => { if (n === 0) await held })
  const { runner } = await startRunner(t, { POOL_MIN: '2' }, { wrapLimits: hook.wrapLimits })
  t.teardown(release)
  const started = Date.now()
  t.equal(await py(runner, 'return 2'), 2, 'a call is served while the first child still waits')
  t.ok(hook.placements() >= 2, 'by the second child')
  t.ok(Date.now() - started < 4000, `in ${Date.now() - started} ms`)
  release()
  await waitFor(() => pythonPool(runner)?.ready === 2, 10_000, 'the held child ready once placed, beside the replacement of the one that served')
})
