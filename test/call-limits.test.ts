// Per-call limits enforced by the daemon: time, log bytes, result bytes, and a
// protocol that user output cannot forge.
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const { runner } = await startRunner(t, { LOG_MAX_BYTES: '200', RESULT_MAX_BYTES: '1000' })

t.test('kills a sandbox that exceeds its timeout, then serves the next call', async (t) => {
  for (const [language, code] of [['python', 'while True:\n    pass'], ['javascript', 'for (;;) {}']] as const) {
    const started = Date.now()
    const r = await call(runner, { language, code, input: '{}', timeoutMs: 500, functionKey: `limits/spin-${language}@1` })
    t.equal(r.error?.code, 'timeout', language)
    t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`)
    const next = await call(runner, { language, code: 'return 1', input: '{}', functionKey: `limits/spin-${language}@1` })
    t.equal(next.result?.data, '1')
    t.equal(next.result?.warm, false, 'the timed-out sandbox was not reused')
  }
})

t.test('truncates logs at the byte cap and says so', async (t) => {
  const r = await call(runner, { language: 'python', code: 'for i in range(100):\n    print("line %03d" % i)\nreturn "done"', input: '{}' })
  t.equal(r.result?.data, '"done"')
  t.equal(r.result?.logsTruncated, true)
  const last = r.logs.at(-1)
  t.match(last?.[1], /truncated at 200 bytes/)
  t.ok(r.logs.length < 30)
})

t.test('refuses a result over the byte cap', async (t) => {
  const r = await call(runner, { language: 'javascript', code: 'return "x".repeat(5000)', input: '{}' })
  t.equal(r.error?.code, 'result_too_large')
})

t.test('output that looks like a frame is only a log line', async (t) => {
  // A complete fake result frame, written every way user code can write.
  // {"t": "result", "id": 1, "json": "666"} in msgpack, by hand (user code has no msgpack)
  const py = 'import os, sys\nfake = b"\\x83\\xa1t\\xa6result\\xa2id\\x01\\xa4json\\xa3666"\nframe = len(fake).to_bytes(4, "big") + fake\nos.write(1, frame + b"\\n")\nos.write(2, frame + b"\\n")\nsys.stdout.write(frame.decode("latin-1") + "\\n")\nprint(frame)\nreturn 1'
  const r = await call(runner, { language: 'python', code: py, input: '{}' })
  t.equal(r.result?.data, '1')
  const js = 'const fs = require("fs")\nconst body = Buffer.from([0x83, 0xa1, 0x74, 0xa6, 0x72, 0x65, 0x73, 0x75, 0x6c, 0x74])\nconst head = Buffer.alloc(4); head.writeUInt32BE(body.length)\nfs.writeSync(1, Buffer.concat([head, body]))\nprocess.stdout.write(Buffer.concat([head, body]))\nconsole.log(head.toString("latin1"))\nreturn 2'
  const r2 = await call(runner, { language: 'javascript', code: js, input: '{}' })
  t.equal(r2.result?.data, '2')
})

t.test('garbage written to the frame channel itself is a protocol error and kills the sandbox', async (t) => {
  const r = await call(runner, { language: 'python', code: 'import os\nos.write(3, b"\\xff\\xff\\xff\\xff")\nimport time\ntime.sleep(5)', input: '{}' })
  t.equal(r.error?.code, 'protocol_error')
})

t.test('a sandbox that dies mid-call fails the call at once', async (t) => {
  const cases = [['python', 'import os\nprint("before")\nos._exit(3)'], ['javascript', 'process.exit(4)'], ['python', 'import os, signal\nos.kill(os.getpid(), signal.SIGKILL)']] as const
  for (const [language, code] of cases) {
    const started = Date.now()
    const r = await call(runner, { language, code, input: '{}', timeoutMs: 5000 })
    t.equal(r.error?.code, 'sandbox_crashed', code)
    t.ok(Date.now() - started < 2000)
  }
})
