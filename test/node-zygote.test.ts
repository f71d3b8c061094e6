// Node sandboxes forked from the node zygote (runtimes/node/zygote.mjs, its
// core runtimes/zygote/node/addon.c): each is a copy of a node that has
// loaded and rehearsed everything a sandbox runs, isolated like every
// sandbox, with nothing of the zygote left open, its own randomness, and
// node's threads when it asks for them; where the node zygote cannot start,
// node is executed in each sandbox instead.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import type { Runner } from '../daemon/pool/runner.js'
import { LIBRARY, REAPER } from '../daemon/zygote/library.js'
import { call, startRunner } from './helpers/runner.js'

async function js (runner: Runner, code: string): Promise<any> {
  const r = await call(runner, { language: 'javascript', code, input: '{}' })
  if (r.result === undefined) throw new Error(`call failed: ${r.error?.code} ${r.error?.message}`)
  return JSON.parse(r.result.data)
}

const node = (runner: Runner): Record<string, any> => runner.stats().runtimes.node as Record<string, any>

const INSPECT = `const fs = require('fs')
const status = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8').split('\\n').filter((l) => l.includes(':\\t')).map((l) => l.split(':\\t')))
const fds = {}
for (const fd of fs.readdirSync('/proc/self/fd')) {
  try { fds[fd] = fs.readlinkSync('/proc/self/fd/' + fd) } catch {}
}
return {
  cmdline: fs.readFileSync('/proc/self/cmdline', 'utf8').split('\\0'), argv: process.argv,
  pid: process.pid, init: fs.readFileSync('/proc/1/cmdline', 'utf8'), fds,
  caps: ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map((k) => status[k]),
  noNewPrivs: status.NoNewPrivs, seccomp: status.Seccomp, threads: status.Threads
}`

t.test('a node sandbox is a fork of the node zygote, isolated, with nothing of the zygote left open', async (t) => {
  const { runner } = await startRunner(t)
  t.match(node(runner), { mode: 'zygote', start: 'fork' })
  const before = node(runner).forks as number
  const out = await js(runner, INSPECT)
  t.ok(node(runner).forks > before, 'the call ran in a forked sandbox')
  t.ok(out.cmdline.includes('/hearth/zygote.mjs'), 'the program is the zygote\'s copy, not a node executed')
  t.same(out.argv.slice(1), ['/hearth/bootstrap.mjs'], 'process.argv reads as a sandbox executed with the bootstrap')
  t.equal(out.pid, 2)
  t.match(out.init, /hearth-reaper/, 'pid 1 is the reaper')
  t.same(out.caps, Array(5).fill('0000000000000000'))
  t.same([out.noNewPrivs, out.seccomp], ['1', '2'])
  t.equal(out.threads, '1', 'only the thread that forked; node starts others when asked')
  for (const [fd, target] of Object.entries(out.fds) as Array<[string, string]>) {
    if (Number(fd) <= 3) continue
    // libuv's own, remade after the fork (uv_loop_fork), and the directory being read
    t.match(target, /^(pipe:|anon_inode:\[(eventpoll|eventfd)\]|\/proc\/)/, `fd ${fd} (${target}) is the program's own`)
  }
})

t.test('every forked program draws its own randomness', async (t) => {
  const { runner } = await startRunner(t)
  const code = `const crypto = require('crypto')
return [Math.random(), crypto.randomUUID(), crypto.randomBytes(16).toString('hex'), crypto.getRandomValues(new Uint32Array(4)).join()]`
  const draws = await Promise.all([1, 2, 3].map(async () => await js(runner, code)))
  for (let i = 0; i < 4; i++) {
    t.equal(new Set(draws.map((d) => d[i])).size, 3, `draw ${i} differs in each sandbox: ${draws.map((d) => d[i]).join(' ')}`)
  }
  t.ok(draws.every((d) => d[0] >= 0 && d[0] < 1), 'Math.random in [0, 1)')
})

t.test('a forked program has node\'s threads when it asks: the libuv pool, a worker, a child process', async (t) => {
  const { runner } = await startRunner(t)
  const out = await js(runner, `const { promisify } = require('util')
const crypto = require('crypto')
const zlib = require('zlib')
const { Worker } = require('worker_threads')
const key = await promisify(crypto.pbkdf2)('pw', 'salt', 1000, 16, 'sha256')
const gz = await promisify(zlib.gzip)('x'.repeat(10000))
const read = await require('fs').promises.readFile('/hearth/bootstrap.mjs', 'utf8')
const worker = await new Promise((resolve, reject) => {
  const w = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true })
  w.once('message', resolve)
  w.once('error', reject)
})
const sh = require('child_process').execFileSync('/bin/sh', ['-c', 'echo $((40 + 2))']).toString().trim()
await new Promise((resolve) => setTimeout(resolve, 5))
return [key.toString('hex'), zlib.gunzipSync(gz).length, read.length > 0, worker, sh]`)
  const { pbkdf2Sync } = await import('node:crypto')
  t.same(out, [pbkdf2Sync('pw', 'salt', 1000, 16, 'sha256').toString('hex'), 10000, true, 42, '42'])
})

t.test('what V8 posts to the zygote\'s other event loops lands on fds of the program\'s own: fetch under load', async (t) => {
  // undici sets up WebAssembly, and V8 may post a delayed task for it: node
  // then wakes the platform's delayed-task loop, a thread the fork did not copy,
  // by writing to its eventfd (measured: aborted, exit code 134, before the
  // program kept an eventfd of its own at that number)
  const { runner } = await startRunner(t, { POOL_MAX: '8' })
  const one = async (): Promise<string | undefined> => (await call(runner, { language: 'javascript', code: "await fetch('http://example.com/')", input: '{}' })).error?.message
  for (let round = 0; round < 4; round++) {
    const errors = await Promise.all(Array.from({ length: 8 }, one))
    t.same(new Set(errors), new Set(['fetch failed (hearth sandboxes have no network access)']), `round ${round}: every call failed only for want of a network`)
  }
})

t.test('ZYGOTE_NODE=exec: node sandboxes execute node after the same isolation', async (t) => {
  const { runner } = await startRunner(t, { ZYGOTE_NODE: 'exec' })
  t.match(node(runner), { mode: 'zygote', start: 'exec', startReason: 'ZYGOTE_NODE=exec' })
  const out = await js(runner, INSPECT)
  t.ok(out.cmdline.includes('/hearth/bootstrap.mjs') && !out.cmdline.includes('/hearth/zygote.mjs'), 'node executed with the bootstrap')
  t.same(out.caps, Array(5).fill('0000000000000000'))
})

t.test('where the node zygote cannot start, node sandboxes are executed, with a warning', async (t) => {
  // what set-up builds, without the node addon
  const dir = mkdtempSync(join(tmpdir(), 'hearth-no-addon-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { runner, warnings } = await startRunner(t, {}, {
    editFiles: (files) => {
      const library = files.zygoteLibrary as string
      for (const f of [LIBRARY, REAPER]) copyFileSync(join(dirname(library), f), join(dir, f))
      return { ...files, zygoteLibrary: join(dir, LIBRARY) }
    }
  })
  t.match(node(runner), { mode: 'zygote', start: 'exec' })
  t.match(node(runner).startReason, /hearth-zygote\.node/, '/readyz says why')
  t.ok(warnings.some((w) => String(w.msg).startsWith('NO NODE ZYGOTE')), 'a warning says so')
  t.equal(await js(runner, 'return 6 * 7'), 42)
  t.match(runner.stats().runtimes.python, { mode: 'zygote', start: 'fork' }, 'python sandboxes are still forked')
})
