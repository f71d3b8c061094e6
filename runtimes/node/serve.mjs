// hearth's Node sandbox: serves `run` frames on fd 3 (see ../PROTOCOL.md).
// Runs JavaScript, and TypeScript the daemon has already compiled with esbuild.
// The daemon sends each code as a script whose value is `async function (event, input)`,
// opened on a line of its own: line 0, so that the user's line 1 is line 1.
// Importing this module loads everything a sandbox runs and opens nothing:
// serve() starts it (bootstrap.mjs at once, zygote.mjs in each forked program).
import net from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import vm from 'node:vm'
import { createRequire } from 'node:module'
import { Packr } from 'msgpackr'
import { Caps } from './caps.mjs'
import { describe } from './errors.mjs'
import { resultJson } from './result.mjs'

const packr = new Packr({ useRecords: false })
const FILENAME = '/hearth/function.js'
let chan = null

/** A frame: a 4-byte big-endian length, then the message in MessagePack. */
function frame (msg) {
  const body = packr.pack(msg)
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(body.length, 0)
  return Buffer.concat([head, body])
}

/** Each whole frame at the start of `bytes` to `onMessage`; returns the bytes left. */
function takeFrames (bytes, onMessage) {
  while (bytes.length >= 4 && bytes.length >= 4 + bytes.readUInt32BE(0)) {
    const size = bytes.readUInt32BE(0)
    const msg = packr.unpack(bytes.subarray(4, 4 + size))
    bytes = bytes.subarray(4 + size)
    onMessage(msg)
  }
  return bytes
}

function send (msg) {
  chan.write(frame(msg))
}

// Captured output: whatever writes through process.stdout/stderr (console.*, libraries)
// becomes `log` frames, one per line. Raw writes to fd 1/2 still reach the daemon as logs.
let callId = 0
let lastLine = ''
let lastDropped = 0
const caps = new Caps()
// The line being written on each stream, in pieces joined once at its end
// (joining at each write made a line written piece by piece quadratic:
// 200,000 one-character writes ran past 30 s), up to caps.hold characters.
const partial = { stdout: newLine(), stderr: newLine() }

function newLine () {
  return { pieces: [], held: 0, dropped: 0 }
}

function emit (stream, line, dropped = 0) {
  if (stream === 'stdout' && (dropped > 0 || line.trim() !== '')) {
    lastLine = line
    lastDropped = dropped
  }
  const data = caps.logLine(line, dropped)
  if (data !== null) send({ t: 'log', id: callId, stream, data })
}

function hold (line, piece) {
  const room = Math.max(caps.hold - line.held, 0)
  if (piece.length > room) {
    line.dropped += piece.length - room
    piece = piece.slice(0, room)
  }
  if (piece !== '') {
    line.pieces.push(piece)
    line.held += piece.length
  }
}

function endLine (stream) {
  const line = partial[stream]
  partial[stream] = newLine()
  emit(stream, line.pieces.join(''), line.dropped)
}

// Bytes written become text as a terminal shows them: a character split
// across writes waits for its last byte; a string written with an encoding
// (process.stdout.write('6869', 'hex')) is those bytes.
const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') }

function textOf (stream, chunk, encoding) {
  const decoder = decoders[stream]
  if (typeof chunk !== 'string') return decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
  if (typeof encoding === 'string' && Buffer.isEncoding(encoding) && !/^utf-?8$/i.test(encoding)) return decoder.write(Buffer.from(chunk, encoding))
  return decoder.end() + chunk // bytes of a character left incomplete before it: U+FFFD
}

function capture (stream) {
  return function write (chunk, encoding, cb) {
    const text = textOf(stream, chunk, encoding)
    const lines = text.split('\n')
    hold(partial[stream], lines[0])
    if (lines.length > 1) {
      endLine(stream)
      for (const line of lines.slice(1, -1)) emit(stream, line.slice(0, caps.hold), Math.max(0, line.length - caps.hold))
      hold(partial[stream], lines.at(-1))
    }
    if (typeof encoding === 'function') encoding()
    else if (typeof cb === 'function') cb()
    return true
  }
}

function endCall () {
  for (const stream of ['stdout', 'stderr']) {
    const rest = decoders[stream].end()
    if (rest !== '') hold(partial[stream], rest)
    const line = partial[stream]
    if (line.held > 0 || line.dropped > 0) endLine(stream)
  }
}

const SCRIPT_OPTIONS = { lineOffset: -1, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER }

let cachedKey = null
let cachedFn = null
let current = null // { id, settle }

async function run (msg) {
  const id = msg.id
  callId = id
  lastLine = ''
  lastDropped = 0
  caps.begin(msg)
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
    reply = json === undefined ? caps.result(id, 'stdout', lastLine, lastDropped) : caps.result(id, 'json', json)
  } catch (err) {
    endCall()
    reply = { t: 'error', id, ...caps.error(describe(err)) }
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

// What has arrived of the next frame: its chunks, joined once the frame is
// whole (joining at each chunk made a 1 MB input's frame quadratic: ~20
// chunks of 64 KB, each copying all the ones before).
let chunks = []
let held = 0
let queue = Promise.resolve()

function onData (chunk) {
  chunks.push(chunk)
  held += chunk.length
  if (held < 4) return
  const head = chunks[0].length >= 4 ? chunks[0] : Buffer.concat(chunks)
  if (held < 4 + head.readUInt32BE(0)) return
  const rest = takeFrames(chunks.length === 1 ? chunk : Buffer.concat(chunks, held), (msg) => {
    if (msg.t === 'run') queue = queue.then(() => run(msg))
  })
  chunks = rest.length === 0 ? [] : [rest]
  held = rest.length
}

/** Frames arriving on `socket` are served; what is sent goes there. */
function open (socket) {
  chan = socket
  chunks = []
  held = 0
  queue = Promise.resolve()
  chan.on('data', onData)
}

/** The sandbox: its channel, its captured output, its globals; says ready. */
export function serve () {
  process.stdout.write = capture('stdout')
  process.stderr.write = capture('stderr')
  // What a CommonJS file has at its top: require (of Node's built-ins: hearth's own
  // msgpackr is bundled into this file, out of its reach), module, exports, and
  // the paths; import.meta for module code (IMPORT_META in daemon/compile/).
  globalThis.require = createRequire(FILENAME)
  globalThis.__filename = FILENAME
  globalThis.__dirname = '/hearth'
  globalThis.$hearthMeta = { url: 'file://' + FILENAME, filename: FILENAME, dirname: '/hearth' }
  process.on('uncaughtException', onStray)
  process.on('unhandledRejection', onStray)
  open(new net.Socket({ fd: 3, readable: true, writable: true }))
  chan.on('end', () => process.exit(0))
  chan.on('error', () => process.exit(1))
  send({ t: 'ready', runtime: 'node', pid: process.pid })
}

/**
 * In the node zygote, before its first fork: two calls served as a sandbox
 * serves them (a run frame with code, then one without), over a pair of unix
 * sockets (`fds`, from the zygote's core) opened as a sandbox opens its
 * channel, so what every sandbox runs is compiled once, here, instead of in
 * each program (V8 compiles a function at its first call: ~1 ms each in a
 * program, measured). Closes both sockets and leaves no state behind; touches
 * neither fd 1 nor 2 nor the process's handlers. Resolves with the replies.
 */
export async function rehearse (fds) {
  createRequire(FILENAME)
  const client = new net.Socket({ fd: fds[1], readable: true, writable: true })
  open(new net.Socket({ fd: fds[0], readable: true, writable: true }))
  const replies = []
  let pending = Buffer.alloc(0)
  const done = new Promise((resolve) => {
    client.on('data', (chunk) => {
      pending = takeFrames(Buffer.concat([pending, chunk]), (msg) => {
        replies.push(msg)
        if (replies.filter((r) => r.t === 'result').length === 2) resolve()
      })
    })
  })
  send({ t: 'ready', runtime: 'node', pid: process.pid })
  const code = '(async function (event, input) {\nreturn { sum: event.a + event.b, at: JSON.stringify(input) }\n})'
  for (const msg of [{ id: 1, key: 'rehearsal', code }, { id: 2, key: 'rehearsal' }]) {
    client.write(frame({ t: 'run', ...msg, input: '{"a":1,"b":2}' }))
  }
  await done
  const closed = (s) => new Promise((resolve) => s.once('close', resolve))
  const ends = [closed(client), closed(chan)]
  client.destroy()
  chan.destroy()
  await Promise.all(ends)
  chan = null
  cachedKey = null
  cachedFn = null
  callId = 0
  lastLine = ''
  lastDropped = 0
  for (const name of ['event', 'input', 'module', 'exports']) delete globalThis[name]
  return replies
}
