// Framing: 4-byte big-endian length + msgpack map, readable by Python's msgpack.
import { execFileSync } from 'node:child_process'
import { Packr } from 'msgpackr'
import t from 'tap'
import { encodeFrame, FrameDecoder, ProtocolError } from '../daemon/protocol.js'

const packr = new Packr({ useRecords: false })

function frame (msg: unknown): Buffer {
  const body = packr.pack(msg)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length)
  return Buffer.concat([head, body])
}

const log = { t: 'log', id: 1, stream: 'stdout', data: 'hello' }
const result = { t: 'result', id: 1, json: '{"a":1}' }

t.test('decodes frames split at every byte', async (t) => {
  const bytes = Buffer.concat([frame(log), frame(result)])
  const decoder = new FrameDecoder()
  const out = []
  for (let i = 0; i < bytes.length; i++) out.push(...decoder.push(bytes.subarray(i, i + 1)))
  t.same(out, [log, result])
})

t.test('decodes several frames coalesced in one chunk', async (t) => {
  const decoder = new FrameDecoder()
  t.same(decoder.push(Buffer.concat([frame(log), frame(log), frame(result)])), [log, log, result])
})

t.test('refuses a frame over the cap before buffering it', async (t) => {
  const decoder = new FrameDecoder(1024)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(4096)
  t.throws(() => decoder.push(head), ProtocolError)
})

t.test('refuses undecodable and malformed frames', async (t) => {
  const junk = Buffer.from([0, 0, 0, 1, 0xc1]) // 0xc1 is never valid msgpack
  t.throws(() => new FrameDecoder().push(junk), ProtocolError)
  t.throws(() => new FrameDecoder().push(frame({ t: 'result', id: 1 })), ProtocolError, 'result without json or stdout')
  t.throws(() => new FrameDecoder().push(frame({ t: 'nope' })), ProtocolError)
  t.throws(() => new FrameDecoder().push(frame([1, 2])), ProtocolError)
})

t.test('run frames are readable by Python\'s msgpack (no msgpackr records)', async (t) => {
  const run = encodeFrame({ t: 'run', id: 7, key: 'k', code: 'return 1', input: '{"a":[1,2]}', filename: 'function.py' })
  const script = 'import sys, msgpack\nb = sys.stdin.buffer.read()\nn = int.from_bytes(b[:4], "big")\nassert n == len(b) - 4\nprint(msgpack.unpackb(b[4:], raw=False))'
  const out = execFileSync('/usr/bin/python3', ['-c', script], { input: run }).toString().trim()
  t.equal(out, "{'t': 'run', 'id': 7, 'key': 'k', 'code': 'return 1', 'input': '{\"a\":[1,2]}', 'filename': 'function.py'}")
})
