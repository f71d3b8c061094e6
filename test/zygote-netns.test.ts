// Network namespaces lent by the zygote (runtimes/zygote/netns.c): a fresh
// child enters one an ended sandbox left, never one a live sibling holds, and
// never one a socket outlived its sandbox in; what a child could otherwise
// leave in it for the next, it cannot make.
import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync, readlinkSync } from 'node:fs'
import t from 'tap'
import type { Runner } from '../daemon/pool/runner.js'
import { py, startRunner, waitFor } from './helpers/runner.js'

/** Its network namespace, and the unix sockets it can see there (/proc/net/unix lists every one in the namespace). */
const LOOK = `import os
return {"net": os.readlink("/proc/self/ns/net"), "sockets": open("/proc/net/unix").read().splitlines()[1:]}`

/** LOOK in a fresh sandbox, once the sandbox before it has ended and its zygote has reaped it. */
async function oneAtATime (runner: Runner): Promise<{ net: string, sockets: string[] }> {
  await waitFor(() => runner.stats().sandboxes === 0, 10_000, 'the sandbox before to end')
  return await py(runner, LOOK)
}

/** Host pids of the processes in network namespace `net` ("net:[inode]"). */
function pidsIn (net: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) === net
    } catch {
      return false
    }
  })
}

/** Kills a sandbox by its processes' host pids and waits until its zygote has reaped them. */
async function endSandbox (pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch (err) { // gone already: killing its pid 1 ended it
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
    }
  }
  await waitFor(() => pids.every((pid) => !existsSync(`/proc/${pid}`)), 10_000, 'the sandbox to be reaped')
}

t.test('fresh children take the network namespace an ended sandbox left, with no socket in it', async (t) => {
  const { runner } = await startRunner(t)
  const first = (await py(runner, LOOK, 'netns/first@1')).net as string
  const pids = pidsIn(first)
  t.ok(pids.length > 0, `the warm sandbox's processes are found by their namespace ${first}`)
  // Held open here, that namespace outlives its sandbox whether it is lent
  // again or not: a new namespace cannot be given its inode number.
  const held = openSync(`/proc/${pids[0] as number}/ns/net`, 'r')
  t.teardown(() => closeSync(held))
  await endSandbox(pids)
  const seen: Array<{ net: string, sockets: string[] }> = []
  for (let i = 0; i < 6; i++) seen.push(await oneAtATime(runner))
  t.same(seen.map((s) => s.net), Array(6).fill(first), 'six fresh sandboxes, one after another, each in the namespace the first one left')
  t.same(seen.map((s) => s.sockets), Array(6).fill([]), 'no socket of an earlier sandbox in any of them')
})

t.test('a network namespace a socket outlived its sandbox in is not lent again', async (t) => {
  const { runner } = await startRunner(t)
  const pinned = (await py(runner, LOOK, 'netns/pin@1')).net as string
  const pids = pidsIn(pinned)
  t.ok(pids.length > 0, `the warm sandbox's processes are found by their namespace ${pinned}`)
  // A socket in that namespace that its sandbox does not hold: made by a host
  // process that entered it (as a socket in flight in a unix socket's queue
  // outlives its sender).
  const holder = spawn('nsenter', [`--net=/proc/${pids[0]}/ns/net`, '/usr/bin/python3', '-c',
    'import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind(b"\\0hearth-left-behind")\nprint("bound", flush=True)\nsys.stdin.read()'],
  { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { holder.kill('SIGKILL') })
  let out = ''
  holder.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await waitFor(() => out.includes('bound'), 10_000, 'the socket to be bound')
  // The sandbox ends; its init reaped by the zygote, the namespace is back in its hands.
  await endSandbox(pids)
  const after: Array<{ net: string, sockets: string[] }> = []
  for (let i = 0; i < 6; i++) after.push(await oneAtATime(runner))
  t.notOk(after.some((s) => s.net === pinned), 'no later child entered it')
  t.same(after.map((s) => s.sockets), Array(6).fill([]), 'no later child sees the socket left behind')
})

t.test('a child can change nothing of its network namespace but its own sockets', async (t) => {
  const { runner } = await startRunner(t)
  const out = await py(runner, `import errno, fcntl, socket, struct
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def write(path):
    with open(path, "r+") as fh:
        fh.write(fh.read())
families = {name: attempt(lambda fam=fam, kind=kind: socket.socket(fam, kind).close())
            for name, fam, kind in [("inet", 2, 2), ("inet6", 10, 2), ("netlink", 16, 3), ("packet", 17, 3)]}
sysctls = {path: attempt(lambda path=path: write(path))
           for path in ["/proc/sys/net/core/somaxconn", "/proc/sys/net/unix/max_dgram_qlen", "/proc/sys/net/ipv4/ping_group_range"]}
lo_up = attempt(lambda: fcntl.ioctl(socket.socket(socket.AF_UNIX), 0x8914, struct.pack("16sH14x", b"lo", 1)))
return {"families": families, "sysctls": sysctls, "lo_up": lo_up}`)
  t.same(out.families, { inet: 'EAFNOSUPPORT', inet6: 'EAFNOSUPPORT', netlink: 'EAFNOSUPPORT', packet: 'EAFNOSUPPORT' }, 'unix sockets only (seccomp)')
  t.same(Object.values(out.sysctls), ['EACCES', 'EACCES', 'EACCES'], 'its namespace\'s sysctls belong to a uid 0 it does not have')
  t.equal(out.lo_up, 'EPERM', 'no interface can be brought up')
})

t.test('a sibling alive at the same time never gets the same network namespace', async (t) => {
  const { runner } = await startRunner(t, { POOL_MAX: '8' })
  // Each holds its sandbox (a stored function stays warm) while the next is made.
  const nets: string[] = []
  for (let i = 0; i < 6; i++) nets.push((await py(runner, LOOK, `netns/live-${i}@1`)).net)
  t.equal(new Set(nets).size, nets.length, `6 live sandboxes, 6 namespaces: ${nets.join(' ')}`)
})
