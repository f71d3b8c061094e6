// Request bodies at the edges of JSON and Unicode, over real HTTP into real
// sandboxes: invalid UTF-8, deep nesting, lone surrogates (legal JSON escapes
// that are not Unicode text), and errors raised by hearth's own code paths.
import t from 'tap'
import { checkAnswer } from './helpers/openapi.js'
import { post, startDaemon } from './helpers/daemon.js'
import { TestRedis } from './helpers/redis.js'

const redis = await TestRedis.start(t)
const d = await startDaemon(t, { REDIS_URL: redis.url, POOL_MIN: '1', INPUT_MAX_DEPTH: '64' })
const u = (path: string): string => d.url + path

/** POSTs exactly these bytes. */
async function raw (path: string, body: string | Buffer): Promise<{ status: number, text: string, json: any }> {
  const res = await fetch(u(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const text = await res.text()
  let json: unknown = null
  try { json = JSON.parse(text) } catch {}
  checkAnswer('POST', u(path), res.status, res.headers.get('content-type'), json)
  return { status: res.status, text, json }
}

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth)

t.test('a body that is not UTF-8 is refused, not silently repaired', async (t) => {
  const body = Buffer.concat([Buffer.from('{"language":"python","code":"return \''), Buffer.from([0xff, 0xfe]), Buffer.from('\'"}')])
  const r = await raw('/run-now', body)
  t.same([r.status, r.json.error.code], [400, 'invalid_json'])
  t.match(r.json.error.message, /UTF-8/)
})

t.test('input nested deeper than INPUT_MAX_DEPTH is a 400 naming it, however deep', async (t) => {
  for (const depth of [65, 5000, 100_000]) {
    const asValue = await raw('/run-now', `{"language":"python","code":"return 1","input":${nested(depth)}}`)
    t.same([asValue.status, asValue.json?.error?.code, asValue.json?.error?.field], [400, 'invalid_field', 'input'], `depth ${depth} as a JSON value`)
    t.match(asValue.json.error.message, /INPUT_MAX_DEPTH \(64/)
    const asText = await post(u('/run-now'), { language: 'javascript', code: 'return 1', input: nested(depth) })
    t.same([asText.status, asText.body?.error?.field], [400, 'input'], `depth ${depth} as go-faas JSON text`)
  }
  await post(u('/upload'), { path: 'deep/fn', language: 'python', code: 'return len(event)' })
  const stored = await raw('/run/deep/fn', `{"input":${nested(70)}}`)
  t.same([stored.status, stored.json.error.code], [400, 'invalid_field'], 'stored functions too')
  for (const language of ['python', 'javascript']) {
    const atLimit = await post(u('/run-now'), { language, code: language === 'python' ? 'return len(event)' : 'return event.length', input: JSON.parse(nested(64)) })
    t.same(atLimit.body, { data: 1, type: 'number' }, `${language}: ${64} levels run`)
  }
})

t.test('a lone surrogate in the input reaches every runtime as data, and comes back escaped', async (t) => {
  const code = { python: 'return event["x"]', javascript: 'return event.x', typescript: 'const e: { x: string } = event\nreturn e.x' }
  for (const [language, body] of Object.entries(code)) {
    const r = await raw('/run-now', `{"language":"${language}","code":${JSON.stringify(body)},"input":{"x":"a\\ud800b"}}`)
    t.equal(r.status, 200, `${language}: ${r.text}`)
    t.equal(r.text, '{"data":"a\\ud800b","type":"string"}', `${language} answers the lone surrogate as its JSON escape`)
    t.ok(Buffer.from(r.text).every((byte) => byte < 0x80), 'the answer is plain UTF-8')
  }
})

t.test('python code that prints or returns a lone surrogate answers, and its sandbox lives on', async (t) => {
  await post(u('/upload'), { path: 'sur/fn', language: 'python', code: 'import builtins\nbuiltins.n = getattr(builtins, "n", 0) + 1\nprint("half \\ud800 of a pair")\nreturn {"s": event["x"] + "\\udc00", "n": builtins.n}' })
  const answers = []
  for (let i = 0; i < 20; i++) answers.push(await raw('/run/sur/fn', '{"input":{"x":"\\ud800"}}'))
  t.same(answers.map((a) => a.status), Array(20).fill(200), 'no call crashed its sandbox')
  t.same(answers.map((a) => a.json.data.n), Array.from({ length: 20 }, (_, i) => i + 1), 'one warm sandbox served all twenty')
  t.equal(answers[0]?.text, '{"data":{"s":"\\ud800\\udc00","n":1},"type":"json"}', 'the pair rebuilt from two halves is the one character it makes')
  const printed = await raw('/run-now', '{"language":"python","code":"print(\\"x\\\\ud800\\")"}')
  t.same([printed.status, printed.json.type], [200, 'text'], 'a stdout result with a lone surrogate is text (U+FFFD in its place)')
})

t.test('code that is not Unicode text is refused at the door', async (t) => {
  const r = await raw('/run-now', '{"language":"python","code":"return \\"\\udc80\\""}')
  t.same([r.status, r.json.error.code, r.json.error.field], [400, 'invalid_field', 'code'])
  t.match(r.json.error.message, /lone surrogate \(U\+DC80\)/)
})

t.test('an error raised after the user\'s code returns shows none of hearth\'s frames', async (t) => {
  const r = await post(u('/run-now'), { language: 'python', code: 'x = []\nx.append(x)\nreturn x' })
  t.same([r.status, r.body.error.code, r.body.error.name], [422, 'script_error', 'TypeError'])
  t.match(r.body.error.message, /contains a reference cycle/)
  t.notMatch(r.body.error.stack, /bootstrap|\/hearth\//, 'no frame of the bootstrap')
  const inUser = await post(u('/run-now'), { language: 'python', code: 'def f():\n    raise KeyError("k")\nf()' })
  t.match(inUser.body.error.stack, /File "function.py", line 3[\s\S]*File "function.py", line 2, in f[\s\S]*KeyError: 'k'/)
  t.notMatch(inUser.body.error.stack, /bootstrap/)
})

t.test('an input near INPUT_MAX_SIZE reaches every runtime whole, call after call', async (t) => {
  // ~1 MB frames arrive in many reads: the bootstraps gather them (python reads
  // the rest of a large frame into one buffer, node joins its chunks once).
  const s = 'aé😀'.repeat(120_000) // 840,000 bytes of UTF-8
  const code = {
    python: 'return [len(event["s"]), event["s"][-3:], event["n"]]',
    javascript: 'return [[...event.s].length, event.s.slice(-4), event.n]',
    typescript: 'const e: { s: string, n: number } = event\nreturn [[...e.s].length, e.s.slice(-4), e.n]'
  }
  for (const [language, body] of Object.entries(code)) {
    await post(u('/upload'), { path: `big/${language}`, language, code: body })
    for (let n = 1; n <= 3; n++) {
      const r = await post(u(`/run/big/${language}`), { input: { s, n } })
      t.same(r.body, { data: [360_000, 'aé😀', n], type: 'json' }, `${language}, call ${n}`)
    }
    const small = await post(u(`/run/big/${language}`), { input: { s: 'xyz', n: 4 } })
    t.same(small.body?.data, [3, 'xyz', 4], `${language}: a small input after them`)
  }
})
