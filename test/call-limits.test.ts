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

// The bootstraps apply the caps too (runtimes/python/hearth_caps.py,
// runtimes/node/caps.mjs), before anything becomes a frame: without that, a
// result or a line far over them was encoded whole, in the sandbox's 128 MB.
t.test('a result far over the cap is result_too_large, with its size, not a memory_limit while encoding it', async (t) => {
  for (const [language, code] of [['python', 'return "x" * 40_000_000'], ['javascript', 'return "x".repeat(40_000_000)']] as const) {
    const r = await call(runner, { language, code, input: '{}' })
    t.equal(r.error?.code, 'result_too_large', language)
    t.equal(r.error?.details.bytes, 40_000_002, 'the JSON text\'s size')
  }
  // python: the JSON text is not copied again to check it encodes (an ASCII
  // one does): 50 MB of it and the string fit the sandbox's 128 MB, and three copies did not
  const r = await call(runner, { language: 'python', code: 'return "x" * 50_000_000', input: '{}' })
  t.equal(r.error?.code, 'result_too_large', 'python, 50 MB')
})

t.test('a printed line far over the caps is cut in the sandbox: the call goes on', async (t) => {
  const cases = [
    ['python', 'print("a")\nprint("y" * 50_000_000)\nprint("b")\nreturn 2'],
    ['javascript', 'console.log("a")\nconsole.log("y".repeat(50_000_000))\nconsole.log("b")\nreturn 2']
  ] as const
  for (const [language, code] of cases) {
    const r = await call(runner, { language, code, input: '{}' })
    t.equal(r.result?.data, '2', language)
    t.equal(r.result?.logsTruncated, true)
    t.same(r.logs[0], ['stdout', 'a'])
    t.match(r.logs.at(-1)?.[1], /truncated at 200 bytes/)
  }
  // printed last, with nothing returned, the line is the result: too large, by its full size
  const last = await call(runner, { language: 'python', code: 'print("y" * 5_000_000)', input: '{}' })
  t.equal(last.error?.code, 'result_too_large')
  t.equal(last.error?.details.bytes, 5_000_000)
})

t.test('a line written a piece at a time takes linear time', async (t) => {
  // Each write used to join the line so far: 200,000 one-character writes
  // took 11.6 s in python and ran past 30 s in node.
  const cases = [
    ['python', 'import sys\nfor i in range(200_000):\n    sys.stdout.write("x")\nprint()\nfor i in range(3): print("line", i)\nreturn 1'],
    ['javascript', 'for (let i = 0; i < 200_000; i++) process.stdout.write("x")\nconsole.log()\nfor (let i = 0; i < 3; i++) console.log("line", i)\nreturn 1']
  ] as const
  for (const [language, code] of cases) {
    const started = Date.now()
    const r = await call(runner, { language, code, input: '{}', timeoutMs: 5000 })
    t.equal(r.result?.data, '1', `${language}: answered in ${Date.now() - started} ms`)
    t.equal(r.result?.logsTruncated, true, 'the 200,000-character line is over the log cap')
  }
  const short = await call(runner, { language: 'python', code: 'import sys\nfor c in "hello": sys.stdout.write(c)\nsys.stdout.write(" world\\nnext")', input: '{}' })
  t.same(short.logs, [['stdout', 'hello world'], ['stdout', 'next']], 'pieces join into their lines')
  t.equal(short.result?.data, '"next"')
})

t.test('an error\'s texts are cut at the result cap', async (t) => {
  for (const [language, code] of [['python', 'raise ValueError("e" * 30_000_000)'], ['javascript', 'throw new Error("e".repeat(30_000_000))']] as const) {
    const r = await call(runner, { language, code, input: '{}' })
    t.equal(r.error?.code, 'script_error', language)
    t.equal(Buffer.byteLength(r.error?.message ?? ''), 1000, 'the message, cut at RESULT_MAX_BYTES')
    t.ok(Buffer.byteLength(String(r.error?.details.stack)) <= 1000, 'the stack too')
  }
})

t.test('a frame over what the caps allow is a protocol error from its length alone', async (t) => {
  // 50 MB announced, 1,000 bytes sent: under the old 64 MiB cap the daemon
  // waited for the rest until the call's timeout.
  const code = 'import os, time\nos.write(3, (50_000_000).to_bytes(4, "big") + b"x" * 1000)\ntime.sleep(10)'
  const started = Date.now()
  const r = await call(runner, { language: 'python', code, input: '{}', timeoutMs: 5000 })
  t.equal(r.error?.code, 'protocol_error')
  t.match(r.error?.message, /frame of 50000000 bytes exceeds the \d+-byte cap/)
  t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`)
})
