// hearth's resident Node bootstrap: serves `run` frames on fd 3 (see ../PROTOCOL.md).
// Runs JavaScript, and TypeScript the daemon has already compiled with esbuild.
// The daemon sends each code as a script whose value is `async function (event, input)`.
import net from 'node:net'
import vm from 'node:vm'
import { createRequire } from 'node:module'
import { Packr } from 'msgpackr'

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

// Stack frames of the bootstrap and of Node's internals say nothing about the user's code.
const OWN_FRAME = /^\s+at .*(\/hearth\/bootstrap\.mjs|node:internal\/|new Promise \(<anonymous>\))/

function describe (err) {
  if (err !== null && typeof err === 'object') {
    const stack = String(err.stack ?? '').split('\n').filter((line) => !OWN_FRAME.test(line)).join('\n')
    return { name: String(err.name ?? 'Error'), message: String(err.message ?? ''), stack }
  }
  return { name: 'Error', message: String(err), stack: '' }
}

globalThis.require = createRequire('/hearth/function.js')

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
      cachedFn = vm.runInThisContext(msg.code, { filename: msg.filename || 'function.js' })
    } else if (msg.key !== cachedKey || cachedFn === null) {
      throw Object.assign(new Error(`no code for key ${msg.key}`), { name: 'ProtocolError' })
    }
    const event = JSON.parse(msg.input || '{}')
    globalThis.event = event
    globalThis.input = event
    const value = await new Promise((resolve, reject) => {
      current = { id, reject }
      Promise.resolve(cachedFn(event, event)).then(resolve, reject)
    })
    endCall()
    const json = value === undefined ? undefined : JSON.stringify(value)
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
