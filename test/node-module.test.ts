// JavaScript and TypeScript run as the code of a module would, with go-faas's
// top-level return and await (issue 10), against the real bootstrap in bwrap.
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const { runner } = await startRunner(t)

type Lang = 'javascript' | 'typescript'
async function run (language: Lang, code: string, input = '{}'): Promise<Awaited<ReturnType<typeof call>>> {
  return await call(runner, { language, code, input })
}
const value = (r: Awaited<ReturnType<typeof call>>): unknown => r.result === undefined ? r.error : JSON.parse(r.result.data)

for (const language of ['javascript', 'typescript'] as const) {
  t.test(`${language}: static imports of Node built-ins, every form, with a top-level return and await`, async (t) => {
    const r = await run(language, [
      "import fs from 'node:fs'",
      "import { join as joinPath, sep } from 'node:path'",
      "import * as os from 'node:os'",
      "import assert, { strictEqual } from 'node:assert'",
      "import 'node:util'",
      'const text = await fs.promises.readFile(joinPath("/hearth", "bootstrap.mjs"), "utf8")',
      'strictEqual(typeof os.cpus, "function")',
      'if (text.length > 0) return { sep, assert: typeof assert, read: true, a: event.a }',
      'return "not reached"'
    ].join('\n'), '{"a": 1}')
    t.same(value(r), { sep: '/', assert: 'function', read: true, a: 1 })
  })

  t.test(`${language}: dynamic import(), require of built-ins, module.exports, import.meta`, async (t) => {
    const r = await run(language, [
      "const { createHash } = await import('node:crypto')",
      "const util = require('node:util')",
      'module.exports = { ok: true }',
      'return [createHash("sha1").update("x").digest("hex").length, typeof util.inspect, module.exports.ok, typeof __dirname]'
    ].join('\n'))
    t.same(value(r), [40, 'function', true, 'string'])
    const meta = await run(language, "import { sep } from 'node:path'\nreturn [import.meta.url, sep]")
    t.same(value(meta), ['file:///hearth/function.js', '/'])
  })

  t.test(`${language}: export is allowed and runs; stacks keep the user's lines`, async (t) => {
    const r = await run(language, [
      "import { sep } from 'node:path'",
      'export const half = (x: number) => x / 2'.replace(': number', language === 'typescript' ? ': number' : ''),
      'export default function twice (x) { return x * 2 }'.replace('(x)', language === 'typescript' ? '(x: number)' : '(x)'),
      'return [half(8), twice(4), sep]'
    ].join('\n'))
    t.same(value(r), [4, 8, '/'])
    const err = await run(language, "import { sep } from 'node:path'\n\nconst o = null\nexport const v = 1\nthrow new Error('at line five ' + sep)")
    t.equal(err.error?.message, 'at line five /')
    const file = language === 'javascript' ? 'function\\.js' : 'function\\.ts'
    t.match(String(err.error?.details.stack), new RegExp(`${file}:5:7`))
  })

  t.test(`${language}: hearth's own packages are out of reach; the error says what can be used`, async (t) => {
    const req = await run(language, "require('msgpackr')")
    t.match(req.error?.message, /Cannot find module 'msgpackr'[\s\S]*\(hearth functions can use Node's built-in modules/)
    const imp = await run(language, "await import('msgpackr')")
    t.match(imp.error?.message, /Cannot find package 'msgpackr'.*\(hearth functions can use Node's built-in modules/)
    const stat = await run(language, "import _ from 'lodash'\nreturn typeof _")
    t.match(stat.error?.message, /lodash.*\(hearth functions can use Node's built-in modules/)
  })

  t.test(`${language}: no network says so`, async (t) => {
    const r = await run(language, "await fetch('http://example.com/')")
    t.match(r.error?.message, /^fetch failed \(hearth sandboxes have no network access\)$/)
    const dns = await run(language, "const dns = await import('node:dns')\nawait dns.promises.lookup('example.com')")
    t.match(dns.error?.message, /hearth sandboxes have no network access/)
  })
}

t.test('javascript: a syntax error points at the user\'s code, never the wrapper', async (t) => {
  const end = await run('javascript', 'const a = 1\nreturn (1 +')
  t.equal(end.error?.code, 'syntax_error')
  t.match(end.error?.details, { line: 2, column: 12, lineText: 'return (1 +' })
  t.match(end.error?.message, /function\.js:2:12/)
  const mid = await run('javascript', "import fs from 'node:fs'\nlet = ;\nreturn 1")
  t.match(mid.error?.details, { line: 2, lineText: 'let = ;' })
  const first = await run('javascript', 'return )')
  t.match(first.error?.details, { line: 1, column: 8 })
})

t.test('javascript without import/export stays sloppy, as go-faas ran it; with them, strict as a module', async (t) => {
  t.same(value(await run('javascript', 'undeclared = 5\nreturn undeclared')), 5)
  const strict = await run('javascript', "import 'node:fs'\nundeclared2 = 5")
  t.equal(strict.error?.details.name, 'ReferenceError')
  // Code that parses as a script is one: new.target (a MetaProperty to acorn, as import.meta is) keeps it sloppy.
  t.same(value(await run('javascript', 'function F () { this.made = new.target === F }\nundeclared3 = new F().made\nreturn undeclared3')), true, 'new.target is no module syntax')
  t.equal((await run('javascript', 'undeclared4 = import.meta.url\nreturn 1')).error?.details.name, 'ReferenceError', 'import.meta is')
})

t.test('typescript: namespace, type-only imports, import x = require()', async (t) => {
  const r = await run('typescript', [
    "import type { Stats } from 'node:fs'",
    "import { type Dirent, existsSync } from 'node:fs'",
    "import path = require('node:path')",
    'namespace Geo {',
    '  export const tau = 2 * Math.PI',
    '  export function round (x: number): number { return Math.round(x * 100) / 100 }',
    '}',
    'enum Kind { A = 1, B }',
    'let s: Stats | Dirent | null = null',
    'return { tau: Geo.round(Geo.tau), b: Kind.B, sep: path.sep, root: existsSync("/"), s }'
  ].join('\n'))
  t.same(value(r), { tau: 6.28, b: 2, sep: '/', root: true, s: null })
})

t.test('typescript: bare and nested top-level returns with imports; a top-level throw stays a throw', async (t) => {
  const code = (n: number): string => [
    "import { sep } from 'node:path'",
    `const n: number = ${n}`,
    'if (n === 1) return',
    'if (n === 2) {',
    '  return { sep } // a comment',
    '}',
    "if (n === 3) throw new Error('thrown')",
    'function inner (): number { return 7 }',
    'return inner()'
  ].join('\n')
  t.equal(value(await run('typescript', code(2)))?.toString(), '[object Object]')
  t.same(value(await run('typescript', code(2))), { sep: '/' })
  const bare = await run('typescript', code(1))
  t.equal(bare.result?.type, 'text', 'a bare return returns nothing')
  const thrown = await run('typescript', code(3))
  t.equal(thrown.error?.message, 'thrown')
  t.match(String(thrown.error?.details.stack), /function\.ts:7:/)
  t.same(value(await run('typescript', code(4))), 7)
})

t.test('typescript: legacy decorators by default, standard ones on request', async (t) => {
  const legacy = await run('typescript', [
    'const seen: string[] = []',
    'function field (target: object, key: string) { seen.push(key) }',
    'function sealed (ctor: Function) { Object.seal(ctor); seen.push(ctor.name) }',
    '@sealed class User { @field name = "ada" }',
    'return [seen, new User().name, Object.isSealed(User)]'
  ].join('\n'))
  t.same(value(legacy), [['name', 'User'], 'ada', true])
  const standard = await run('typescript', [
    '// hearth: decorators=standard',
    'const seen: string[] = []',
    'function logged (value: Function, context: ClassMethodDecoratorContext) { seen.push(String(context.name)); return value }',
    'class C { @logged hello () { return "hi" } }',
    'return [seen, new C().hello()]'
  ].join('\n'))
  t.same(value(standard), [['hello'], 'hi'])
})

t.test('typescript: a syntax error is at the user\'s position', async (t) => {
  const r = await run('typescript', "import { sep } from 'node:path'\nconst x: number = \nreturn x")
  t.equal(r.error?.code, 'syntax_error')
  t.match(r.error?.details, { line: 3 })
})

t.test('javascript: bytes written to process.stdout become text as a terminal shows them', async (t) => {
  const r = await run('javascript', [
    'process.stdout.write(Buffer.from([0xc2]))', // © split across two writes
    'process.stdout.write(Buffer.from([0xa9, 0x0a]))',
    'process.stdout.write("68690a", "hex")',
    'process.stdout.write("aGV5Cg==", "base64")',
    'process.stderr.write(new Uint8Array([0xe2, 0x9c]))', // a character left incomplete at the end
    'return 1'
  ].join('\n'))
  t.equal(r.result?.data, '1')
  t.same(r.logs, [['stdout', '©'], ['stdout', 'hi'], ['stdout', 'hey'], ['stderr', '\ufffd']])
})

t.test('javascript: os.userInfo() names the sandbox uid', async (t) => {
  const r = await run('javascript', 'const os = require("os")\nreturn [os.userInfo().username, os.userInfo().homedir, os.userInfo().uid]')
  t.same(value(r), ['nobody', '/tmp', 65534])
})
