// One rule for results JSON cannot represent, the same in every language, and
// compact JSON written the same way (README, "Results"; issue 10).
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const { runner } = await startRunner(t)

async function data (language: 'python' | 'javascript' | 'typescript', code: string): Promise<string | undefined> {
  const r = await call(runner, { language, code, input: '{}' })
  return r.result?.data ?? `error: ${r.error?.message ?? ''}`
}

// [what, python, javascript, the JSON text both answer]
const SAME: Array<[string, string, string, string]> = [
  ['compact arrays and objects', 'return [1, {"a": [2, 3]}, "x"]', 'return [1, { a: [2, 3] }, "x"]', '[1,{"a":[2,3]},"x"]'],
  ['non-finite numbers as strings', 'return [float("nan"), float("inf"), -float("inf"), 1.5]', 'return [NaN, Infinity, -Infinity, 1.5]', '["NaN","Infinity","-Infinity",1.5]'],
  ['integers past 2^53 keep every digit', 'return 2 ** 70', 'return 2n ** 70n', '1180591620717411303424'],
  ['big integers inside structures', 'return {"n": [2 ** 64]}', 'return { n: [2n ** 64n] }', '{"n":[18446744073709551616]}'],
  ['maps are objects with string keys', 'return {1: "a", None: "b", (1, 2): "c"}', 'return new Map([[1, "a"], [null, "b"], ["(1, 2)", "c"]])', '{"1":"a","null":"b","(1, 2)":"c"}'],
  ['sets are arrays', 'return {3}', 'return new Set([3])', '[3]'],
  ['bytes are base64', 'return b"\\x00\\xffhi"', 'return Buffer.from([0, 255, 104, 105])', '"AP9oaQ=="'],
  ['typed bytes and ArrayBuffers too', 'return bytearray(b"hi")', 'return new Uint8Array([104, 105]).buffer', '"aGk="'],
  ['dates are ISO 8601', 'import datetime\nreturn datetime.datetime(2026, 11, 25, 12, 30, tzinfo=datetime.timezone.utc).isoformat().replace("+00:00", ".000Z")', 'return new Date(Date.UTC(2026, 10, 25, 12, 30))', '"2026-11-25T12:30:00.000Z"'],
  ['non-ASCII text as itself', 'return "héllo ✓"', 'return "héllo ✓"', '"héllo ✓"']
]

for (const [what, python, javascript, json] of SAME) {
  t.test(what, async (t) => {
    t.equal(await data('python', python), json, 'python')
    t.equal(await data('javascript', javascript), json, 'javascript')
    t.equal(await data('typescript', javascript), json, 'typescript')
  })
}

t.test('a cycle is an error that says so, in every language', async (t) => {
  const message = 'error: the result cannot be sent as JSON: it contains a reference cycle'
  t.equal(await data('python', 'a = []\na.append(a)\nreturn a'), message)
  t.equal(await data('python', 'd = {"x": float("nan")}\nd["self"] = d\nreturn d'), message, 'found on the slow path too')
  t.equal(await data('javascript', 'const a = []\na.push(a)\nreturn a'), message)
  // A Map or Set becomes a new object at each visit: a cycle of only Maps and
  // Sets was invisible to JSON.stringify, which recursed until the stack ran out.
  t.equal(await data('javascript', 'const m = new Map()\nm.set("self", m)\nreturn m'), message, 'a Map that holds itself')
  t.equal(await data('typescript', 'const s = new Set<unknown>()\ns.add(new Map([["back", s]]))\nreturn s'), message, 'a Set and a Map that hold each other')
  t.equal(await data('javascript', 'const m = new Map([["x", 1]])\nreturn [m, { again: m }]'), '[{"x":1},{"again":{"x":1}}]', 'a Map met twice, not inside itself, is no cycle')
})

t.test('a javascript result nested deeper than the stack says so', async (t) => {
  t.equal(await data('javascript', 'let x = []\nfor (let i = 0; i < 100000; i++) x = [x]\nreturn x'),
    'error: the result cannot be sent as JSON: it is nested too deeply (or a toJSON method makes a new object each time)')
})

t.test('python dates, and objects JSON has no form for, become strings', async (t) => {
  t.equal(await data('python', 'import datetime\nreturn [datetime.date(2026, 1, 2), datetime.time(3, 4)]'), '["2026-01-02","03:04:00"]')
  t.equal(await data('python', 'import decimal\nreturn decimal.Decimal("1.10")'), '"1.10"')
})

t.test('a lone surrogate stays an escape: the answer is valid UTF-8 JSON', async (t) => {
  t.equal(await data('python', 'return "a\\ud800b"'), '"a\\ud800b"')
  t.equal(await data('javascript', 'return "a\\ud800b"'), '"a\\ud800b"')
})
