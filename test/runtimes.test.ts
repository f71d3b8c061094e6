// What code in each language sees and gives back: globals, return, stdout, errors.
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const { runner } = await startRunner(t)

const SUM = {
  python: 'return event["a"] + input["b"]',
  javascript: 'return event.a + input.b',
  typescript: 'const a: number = event.a\nreturn a + (input.b as number)'
} as const

for (const [language, code] of Object.entries(SUM) as Array<[keyof typeof SUM, string]>) {
  t.test(`${language}: returns a value computed from event and input`, async (t) => {
    const r = await call(runner, { language, code, input: '{"a": 3, "b": 5}' })
    t.same(r.result && { data: r.result.data, type: r.result.type }, { data: '8', type: 'number' })
  })
}

t.test('types results as go-faas does', async (t) => {
  const cases: Array<[string, string, string, string]> = [
    ['python', 'return "hi"', '"hi"', 'string'],
    ['python', 'return {"sum": 30}', '{"sum":30}', 'json'],
    ['python', 'return [1, 2]', '[1,2]', 'json'],
    ['python', 'return True', 'true', 'json'],
    ['python', 'print("plain words")', '"plain words"', 'text'],
    ['python', 'print(\'{"k": 1}\')\nprint("")', '{"k": 1}', 'json'],
    ['python', 'print(42)', '42', 'number'],
    ['python', 'x = 1', '""', 'text'],
    ['javascript', 'return { sum: event.a + event.b }', '{"sum":30}', 'json'],
    ['javascript', 'return -1.5', '-1.5', 'number'],
    ['javascript', 'console.log("first"); console.log("last line")', '"last line"', 'text'],
    ['javascript', 'console.log(JSON.stringify("quoted"))', '"quoted"', 'string'],
    ['typescript', 'const s: string = "x"; return s.repeat(3)', '"xxx"', 'string']
  ]
  for (const [language, code, data, type] of cases) {
    const r = await call(runner, { language: language as 'python', code, input: '{"a": 10, "b": 20}' })
    t.same(r.result && { data: r.result.data, type: r.result.type }, { data, type }, `${language}: ${code}`)
  }
})

t.test('awaits asynchronous code', async (t) => {
  const js = await call(runner, { language: 'javascript', code: 'await new Promise(r => setTimeout(r, 20))\nreturn "later"', input: '{}' })
  t.equal(js.result?.data, '"later"')
  const ts = await call(runner, { language: 'typescript', code: 'const v: number = await Promise.resolve(7)\nreturn v', input: '{}' })
  t.equal(ts.result?.data, '7')
  const py = await call(runner, { language: 'python', code: 'import asyncio\nawait asyncio.sleep(0.01)\nreturn "py later"', input: '{}' })
  t.equal(py.result?.data, '"py later"')
})

t.test('delivers log lines in order, stdout and stderr apart', async (t) => {
  const py = await call(runner, { language: 'python', code: 'import sys\nfor i in range(3):\n    print(i)\nprint("oops", file=sys.stderr)\nreturn 1', input: '{}' })
  t.same(py.logs, [['stdout', '0'], ['stdout', '1'], ['stdout', '2'], ['stderr', 'oops']])
  const js = await call(runner, { language: 'javascript', code: 'console.log("a"); console.error("b"); process.stdout.write("c\\nd"); return 1', input: '{}' })
  t.same(js.logs, [['stdout', 'a'], ['stderr', 'b'], ['stdout', 'c'], ['stdout', 'd']])
})

t.test('reports exceptions with name, message and the user\'s line numbers', async (t) => {
  const py = await call(runner, { language: 'python', code: 'x = 1\n\ndef f():\n    raise ValueError("bad value")\nf()', input: '{}' })
  t.equal(py.error?.code, 'script_error')
  t.equal(py.error?.details.name, 'ValueError')
  t.equal(py.error?.message, 'bad value')
  t.match(String(py.error?.details.stack), /File "function\.py", line 5[\s\S]*File "function\.py", line 4, in f/)
  t.notMatch(String(py.error?.details.stack), /bootstrap/)

  const js = await call(runner, { language: 'javascript', code: 'const x = 1\n\nnull.boom', input: '{}' })
  t.equal(js.error?.details.name, 'TypeError')
  t.match(String(js.error?.details.stack), /function\.js:3:6/)
  t.notMatch(String(js.error?.details.stack), /bootstrap/)

  const ts = await call(runner, { language: 'typescript', code: 'type T = { a: number }\nconst v: T = { a: 1 }\n\nthrow new RangeError("too far " + v.a)', input: '{}' })
  t.equal(ts.error?.details.name, 'RangeError')
  t.equal(ts.error?.message, 'too far 1')
  t.match(String(ts.error?.details.stack), /function\.ts:4:7/, 'positions are mapped back through the source map')
})

t.test('reports syntax errors with their position', async (t) => {
  const py = await call(runner, { language: 'python', code: 'x = 1\ny = (', input: '{}' })
  t.equal(py.error?.code, 'syntax_error')
  t.match(py.error?.details, { line: 2, column: 5, lineText: 'y = (' })
  t.match(py.error?.message, /line 2/)
  const js = await call(runner, { language: 'javascript', code: 'let ok = 1\nlet = ;', input: '{}' })
  t.equal(js.error?.code, 'syntax_error')
  t.equal(js.error?.details.line, 2)
  const ts = await call(runner, { language: 'typescript', code: 'const x: number = ', input: '{}' })
  t.equal(ts.error?.code, 'syntax_error')
  t.match(ts.error?.message, /function\.ts:1:/)
})

t.test('sys.exit() after printing ends the call normally', async (t) => {
  const r = await call(runner, { language: 'python', code: 'import sys\nprint(5)\nsys.exit(0)', input: '{}' })
  t.equal(r.result?.data, '5')
})
