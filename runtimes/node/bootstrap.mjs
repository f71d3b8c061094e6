// hearth's resident Node bootstrap: serves `run` frames on fd 3 (see ../PROTOCOL.md).
// Runs JavaScript, and TypeScript the daemon has already compiled with esbuild.
// The daemon sends each code as a script whose value is `async function (event, input)`,
// opened on a line of its own: line 0, so that the user's line 1 is line 1.
import net from 'node:net'
import vm from 'node:vm'
import { createRequire } from 'node:module'
import { Packr } from 'msgpackr'
import { describe } from './errors.mjs'
import { resultJson } from './result.mjs'

const packr = new Packr({ useRecords: false })
const chan = new net.Socket({ fd: 3, readable: true, writable: true })

function send (msg) {
  const body = packr.pack(msg)
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(body.length, 0)
  chan.write(Buffer.concat([head, body]))
}

// Captured output: whatever writes through process.stdout/stderr (console.*, libraries)
// becomes `log` frames, one per line. Raw writes to fd 1/2 still reach the daemon as logs.
let callId = 0
let lastLine = ''
const partial = { stdout: '', stderr: '' }

function emit (stream, line) {
  if (stream === 'stdout' && line.trim() !== '') lastLine = line
  send({ t: 'log', id: callId, stream, data: line })
}

function capture (stream) {
  return function write (chunk, encoding, cb) {
    const text = partial[stream] + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'))
    const lines = text.split('\n')
    partial[stream] = lines.pop()
    for (const line of lines) emit(stream, line)
    if (typeof encoding === 'function') encoding()
    else if (typeof cb === 'function') cb()
    return true
  }
}
process.stdout.write = capture('stdout')
process.stderr.write = capture('stderr')

function endCall () {
  for (const stream of ['stdout', 'stderr']) {
    if (partial[stream] !== '') emit(stream, partial[stream])
    partial[stream] = ''
  }
}

// What a CommonJS file has at its top: require (of Node's built-ins: hearth's own
// msgpackr is bundled into this file, out of its reach), module, exports, and
// the paths; import.meta for module code (IMPORT_META in daemon/compile/).
const FILENAME = '/hearth/function.js'
globalThis.require = createRequire(FILENAME)
globalThis.__filename = FILENAME
globalThis.__dirname = '/hearth'
globalThis.$hearthMeta = { url: 'file://' + FILENAME, filename: FILENAME, dirname: '/hearth' }
const SCRIPT_OPTIONS = { lineOffset: -1, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER }

let cachedKey = null
let cachedFn = null
let current = null // { id, settle }

async function run (msg) {
  const id = msg.id
  callId = id
  lastLine = ''
  let reply
  try {
    if (msg.code != null) {
      cachedKey = msg.key
      cachedFn = null
      cachedFn = vm.runInThisContext(msg.code, { ...SCRIPT_OPTIONS, filename: msg.filename || 'function.js' })
    } else if (msg.key !== cachedKey || cachedFn === null) {
      throw Object.assign(new Error(`no code for key ${msg.key}`), { name: 'ProtocolError' })
    }
    const event = JSON.parse(msg.input || '{}')
    globalThis.event = event
    globalThis.input = event
    globalThis.module = { exports: {} }
    globalThis.exports = globalThis.module.exports
    const value = await new Promise((resolve, reject) => {
      current = { id, reject }
      Promise.resolve(cachedFn(event, event)).then(resolve, reject)
    })
    endCall()
    const json = value === undefined ? undefined : resultJson(value)
    reply = json === undefined
      ? { t: 'result', id, stdout: lastLine }
      : { t: 'result', id, json }
  } catch (err) {
    endCall()
    reply = { t: 'error', id, ...describe(err) }
  }
  current = null
  send(reply)
}

// An exception thrown from a callback of the running call fails that call;
// outside a call it is reported as a log line rather than ending the sandbox.
function onStray (err) {
  if (current !== null) current.reject(err)
  else emit('stderr', `uncaught: ${describe(err).stack || describe(err).message}`)
}
process.on('uncaughtException', onStray)
process.on('unhandledRejection', onStray)

let buf = Buffer.alloc(0)
let queue = Promise.resolve()
chan.on('data', (chunk) => {
  buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
  while (buf.length >= 4) {
    const size = buf.readUInt32BE(0)
    if (buf.length < 4 + size) break
    const msg = packr.unpack(buf.subarray(4, 4 + size))
    buf = buf.subarray(4 + size)
    if (msg.t === 'run') queue = queue.then(() => run(msg))
  }
})
chan.on('end', () => process.exit(0))
chan.on('error', () => process.exit(1))

send({ t: 'ready', runtime: 'node', pid: process.pid })
