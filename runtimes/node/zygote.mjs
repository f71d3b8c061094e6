// hearth's Node zygote: forks ready node sandboxes (see ../PROTOCOL.md, "Zygote").
//
// It runs in a bwrap sandbox of its own that keeps capabilities inside its user
// namespace, loads node and everything a sandbox runs (serve.mjs) once, and
// never runs user code. Then it hands over to the zygotes' C core, loaded as a
// Node-API addon from fd 5 (../zygote/node/addon.c): the fork loop and each
// child's isolation run there. serve() of the addon returns in a forked program
// only, which becomes a sandbox exactly as bootstrap.mjs would have.
//
// Node is started with V8's --single-threaded (the daemon's argv): a fork
// copies only the thread that forked, so nothing V8 does may wait on its
// worker threads. What a program does differently from a node just started is
// below (asProgram) and in the README ("What siblings share").
//
// usage: node --single-threaded zygote.mjs TMP_BYTES
import { closeSync, readFileSync, writeFileSync } from 'node:fs'
import { getRandomValues } from 'node:crypto'
import v8 from 'node:v8'
import vm from 'node:vm'
import { rehearse, serve } from './serve.mjs' // everything a sandbox runs, loaded once

const CONTROL_FD = 3
const SECCOMP_FD = 4
const LIBRARY_FD = 5
const REAPER_FD = 6
const RENDEZVOUS_DIR = '/run/hearth'
const PROBE = 3 // serve()'s answer in the probe child

/** All of an inherited fd's bytes; empty when it was not given (SECCOMP=off). */
function readFd (fd) {
  try {
    const bytes = readFileSync(fd)
    closeSync(fd)
    return bytes
  } catch {
    return Buffer.alloc(0)
  }
}

/**
 * Math.random from the kernel's randomness: V8 seeds its generator once per
 * process, so every program forked from one zygote would draw the same
 * sequence. 53 random bits per number, as V8's own.
 */
function reseedMathRandom () {
  const pool = new Uint32Array(1024)
  let at = pool.length
  function random () {
    if (at === pool.length) {
      getRandomValues(pool)
      at = 0
    }
    const high = pool[at++] >>> 5
    const low = pool[at++] >>> 6
    return (high * 67108864 + low) / 9007199254740992
  }
  Object.defineProperty(Math, 'random', { value: random, writable: true, configurable: true })
}

/** A forked program, made to look and end like a node just started with bootstrap.mjs. */
function asProgram (core) {
  process.reallyExit = (code) => core.exit(code ?? 0) // what process.exit() ends with
  reseedMathRandom()
  process.argv.splice(1, Infinity, '/hearth/bootstrap.mjs')
}

async function main () {
  // Nested user namespaces: none for anything forked from here (the seccomp
  // filter denies them too; /proc/sys is read-only under nspawn).
  try {
    writeFileSync('/proc/sys/user/max_user_namespaces', '0')
  } catch {}
  const tmpBytes = Number(process.argv[2] ?? 16 << 20)
  const tmpOptions = `size=${tmpBytes},mode=1777,nr_inodes=${Math.max(1024, Math.floor(tmpBytes / 4096))}`
  const bpf = readFd(SECCOMP_FD)
  const core = { exports: {} }
  process.dlopen(core, `/proc/self/fd/${LIBRARY_FD}`)
  const replies = await rehearse(core.exports.socketPair())
  if (!replies.some((r) => r.t === 'result' && r.json === '{"sum":3,"at":"{\\"a\\":1,\\"b\\":2}"}')) {
    throw new Error(`the rehearsal failed: ${JSON.stringify(replies)}`)
  }
  // A full collection before the first fork: what is garbage now is never
  // copied, and no sweeping is left to run in a program.
  v8.setFlagsFromString('--expose-gc')
  vm.runInNewContext('gc')()
  v8.setFlagsFromString('--no-expose-gc')
  const rc = core.exports.serve(CONTROL_FD, REAPER_FD, RENDEZVOUS_DIR, tmpOptions, bpf)
  if (rc === PROBE) {
    // The probe (zygote/probe.c): the rehearsal again, then the pages it
    // copied are reported and it exits.
    await rehearse(core.exports.socketPair())
    core.exports.probeDone()
  }
  if (rc !== 0) core.exports.exit(rc === 1 || rc === 2 ? 0 : 70)
  asProgram(core.exports)
  serve()
}

await main()
