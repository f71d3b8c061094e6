// The real `hearth` binary against a real daemon over HTTP (issue 14): files in,
// results out, exit codes scripts can rely on (0 ok, 1 the call failed, 2 usage).
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ROOT } from '../daemon/config.js'
import { startDaemon } from './helpers/daemon.js'
import { TestRedis } from './helpers/redis.js'
import { untapped } from './helpers/processes.js'

const BIN = fileURLToPath(new URL('../cli/main.js', import.meta.url))
const ADMIN = 'admin-token-for-the-cli-tests-01'
const redis = await TestRedis.start(t)
const d = await startDaemon(t, { REDIS_URL: redis.url, POOL_MIN: '1', POOL_MAX: '2' })
const dir = mkdtempSync(join(tmpdir(), 'hearth-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface Ran { code: number | null, stdout: string, stderr: string }
async function hearth (args: readonly string[], opts: { stdin?: string, env?: Record<string, string> } = {}): Promise<Ran> {
  const [command, ...argv] = untapped([process.execPath, BIN, ...args])
  const child = spawn(command, argv, {
    env: { PATH: process.env.PATH, HEARTH_URL: d.url, ...opts.env },
    stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  if (opts.stdin !== undefined) child.stdin?.end(opts.stdin)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

function file (name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

t.test('upload a file, run it with --input, stdin or --input-file, pinned or latest', async (t) => {
  const add = file('add.py', 'return event["a"] + event["b"]\n')
  const up = await hearth(['upload', 'cli/add', add])
  t.equal(up.code, 0, up.stderr)
  t.match(up.stdout, /^cli\/add version \d+ \(python, \d+ bytes\)\n$/)
  t.same(await hearth(['run', 'cli/add', '--input', '{"a": 2, "b": 3}']), { code: 0, stdout: '5\n', stderr: '' })
  t.equal((await hearth(['run', 'cli/add'], { stdin: '{"a": 10, "b": 1}' })).stdout, '11\n', 'input from stdin')
  t.equal((await hearth(['run', 'cli/add', '--input', '-'], { stdin: '{"a": 20, "b": 1}' })).stdout, '21\n', '--input - reads stdin')
  t.equal((await hearth(['run', 'cli/add', '--input-file', '-'], { stdin: '{"a": 30, "b": 1}' })).stdout, '31\n', '--input-file - too')
  t.equal((await hearth(['run', 'cli/add', '--input-file', file('in.json', '{"a": 1, "b": 1}')])).stdout, '2\n')
  const version = Number(/version (\d+)/.exec(up.stdout)?.[1])
  const json = await hearth(['--json', 'run', 'cli/add', '--version', String(version), '--input', '{"a": 1, "b": 2}'])
  t.same(JSON.parse(json.stdout), { data: 3, type: 'number' })
})

t.test('--stream: logs to stderr as they come, the result to stdout', async (t) => {
  const code = file('logs.js', 'console.log("one")\nconsole.error("two")\nreturn { ok: true }\n')
  const r = await hearth(['exec', code, '--stream'])
  t.same(r, { code: 0, stdout: '{"ok":true}\n', stderr: 'one\ntwo\n' })
  const plain = await hearth(['exec', file('t.ts', 'const n: number = 41\nreturn n + 1\n')])
  t.same(plain, { code: 0, stdout: '42\n', stderr: '' }, 'TypeScript, from the extension')
})

t.test('--async, then calls show | wait | logs | cancel', async (t) => {
  const add = file('async-add.py', 'print("adding")\nreturn event["a"] + event["b"]\n')
  t.equal((await hearth(['upload', 'cli/async-add', add])).code, 0)
  const queued = await hearth(['run', 'cli/async-add', '--async', '--input', '{"a": 20, "b": 22}'])
  t.match(queued, { code: 0, stdout: /^[0-9a-f]{32}\n$/ }, 'the id alone on stdout')
  const id = queued.stdout.trim()
  t.same(await hearth(['calls', 'wait', id]), { code: 0, stdout: '42\n', stderr: '' }, 'wait prints the result as run does')
  t.match((await hearth(['calls', 'show', id])).stdout, new RegExp(`^${id}  done  attempts 1\n42\n$`))
  t.equal((await hearth(['calls', 'logs', id])).stdout, 'adding\n')
  const failing = (await hearth(['exec', file('boom.js', 'throw new Error("boom")\n'), '--async'])).stdout.trim()
  t.match(await hearth(['calls', 'wait', failing]), { code: 1, stdout: '', stderr: /^script_error: .*boom/ }, 'a failed call: exit 1, code: message')
  const long = (await hearth(['exec', file('long.py', 'import time\ntime.sleep(60)\n'), '--async'])).stdout.trim()
  t.match(await hearth(['calls', 'cancel', long]), { code: 0, stdout: new RegExp(`^${long}  failed  cancelled\n$`) })
  t.match(await hearth(['calls', 'show', '0'.repeat(32)]), { code: 1, stderr: /^call_not_found: / })
  t.equal((await hearth(['exec', add, '--async', '--stream'])).code, 2, '--stream with --async is a usage error')
})

t.test('upload --dependency: npm packages from the registry, the exact set printed', async (t) => {
  const code = file('odd.js', 'return require("is-odd")(input.n)\n')
  const up = await hearth(['upload', 'cli/odd', code, '--dependency', 'is-odd@3.0.1'])
  t.equal(up.code, 0, up.stderr)
  t.match(up.stdout, /^cli\/odd version \d+ \(javascript, \d+ bytes\)\n {2}is-number 6\.0\.0\n {2}is-odd 3\.0\.1\n$/)
  t.same(await hearth(['run', 'cli/odd', '--input', '{"n": 7}']), { code: 0, stdout: 'true\n', stderr: '' })
  t.match(await hearth(['upload', 'cli/odd', code, '--dependency', 'Not A Name@1']), { code: 1, stderr: /^invalid_field: dependencies "Not A Name" is not an npm package name \(field: dependencies\)\n$/ })
  const py = file('py.py', 'return 1\n')
  t.match(await hearth(['upload', 'cli/py', py, '--dependency', 'attrs==23.2.0', '--dependency', 'x @ https://example.com/x.whl']), { code: 1, stderr: /^invalid_field: dependencies "x @ https:\/\/example.com\/x.whl" is not a requirement/ }, 'Python: pip requirement strings, sent as a list')
})

t.test('ls, versions and rm, as tables and as --json', async (t) => {
  const code = file('v.js', 'return 1\n')
  for (const path of ['cli/list/a', 'cli/list/a', 'cli/list/b', 'other/c']) t.equal((await hearth(['upload', path, code])).code, 0)
  const ls = await hearth(['ls', 'cli/list/'])
  t.equal(ls.code, 0)
  t.match(ls.stdout, /^PATH\s+LANGUAGE\s+LATEST\s+VERSIONS\ncli\/list\/a\s+javascript\s+\d+\s+2\ncli\/list\/b\s+javascript\s+\d+\s+1\n$/)
  t.same(JSON.parse((await hearth(['--json', 'ls', 'cli/list/'])).stdout).map((f: { path: string }) => f.path), ['cli/list/a', 'cli/list/b'])
  const versions = await hearth(['versions', 'cli/list/a'])
  t.equal(versions.stdout.trim().split('\n').length, 3, 'a header and two versions')
  t.same(await hearth(['rm', 'cli/list/a']), { code: 0, stdout: 'deleted 2 version(s) of cli/list/a\n', stderr: '' })
})

t.test('exit codes: 1 with code: message when the call fails, 2 for usage', async (t) => {
  const err = await hearth(['exec', file('bad.py', 'raise ValueError("nope")\n')])
  t.equal(err.code, 1)
  t.equal(err.stderr, 'script_error: nope\n')
  const missing = await hearth(['run', 'no/such/fn'])
  t.same([missing.code, missing.stderr], [1, 'function_not_found: no function at path "no/such/fn"\n'])
  const field = await hearth(['upload', 'bad path!', file('ok.py', 'return 1')])
  t.same([field.code, field.stderr], [1, 'invalid_field: path may only contain letters, digits, _ . - and single / between segments (field: path)\n'])
  const syntax = await hearth(['exec', file('syn.js', 'return (1 +\n')])
  t.match(syntax, { code: 1, stderr: /^syntax_error: .*function\.js:1:/ })
  const streamed = await hearth(['exec', file('bad2.py', 'print("before")\nraise KeyError("k")\n'), '--stream'])
  t.match(streamed, { code: 1, stderr: /^before\nscript_error: 'k'\n/ })
  t.equal((await hearth(['frobnicate'])).code, 2, 'an unknown command')
  t.equal((await hearth(['run'])).code, 2, 'a missing argument')
  t.equal((await hearth(['exec', file('x.rb', 'puts 1')])).code, 2, 'a language the extension does not tell')
  t.equal((await hearth(['run', 'cli/add', '--input', '{not json'])).code, 2)
  t.equal((await hearth(['--help'])).code, 0)
  const away = await hearth(['ls'], { env: { HEARTH_URL: 'http://127.0.0.1:1' } })
  t.same([away.code, away.stderr.startsWith('unreachable: cannot reach hearth at http://127.0.0.1:1')], [1, true])
})

t.test('keys create | ls | revoke with HEARTH_TOKEN, against AUTH=on', async (t) => {
  const authed = await startDaemon(t, { REDIS_URL: redis.url, POOL_MIN: '0', AUTH: 'on', ADMIN_TOKEN: ADMIN })
  const env = { HEARTH_URL: authed.url, HEARTH_TOKEN: ADMIN }
  const created = await hearth(['keys', 'create', 'ci robot', '--scope', 'read', 'upload', '--prefix', 'ci/'], { env })
  t.equal(created.code, 0, created.stderr)
  const key = created.stdout.trim()
  t.match(key, /^hearth_[0-9a-f]{16}_/)
  const listed = await hearth(['keys', 'ls'], { env })
  t.match(listed.stdout, /ci robot\s+read,upload\s+ci\//)
  t.notOk(listed.stdout.includes(key.slice(key.indexOf('_', 'hearth_'.length) + 1)), 'no secret in the listing') // base64url has '_' too
  t.equal((await hearth(['ls'], { env: { HEARTH_URL: authed.url, HEARTH_TOKEN: key } })).code, 0)
  const denied = await hearth(['ls'], { env: { HEARTH_URL: authed.url } })
  t.same([denied.code, denied.stderr.split(':')[0]], [1, 'unauthorized'])
  const id = key.split('_')[1] as string
  t.match((await hearth(['keys', 'revoke', id], { env })).stdout, `revoked ${id} (ci robot)`)
  t.equal((await hearth(['ls'], { env: { HEARTH_URL: authed.url, HEARTH_TOKEN: key } })).code, 1, 'revoked')
})

t.test('after a global install, `hearth` is on the PATH', async (t) => {
  const prefix = join(dir, 'global')
  // A folder install: npm links the checkout (offline: nothing is fetched).
  const npm = spawnSync('npm', ['install', '--global', '--prefix', prefix, ROOT, '--offline', '--no-audit', '--no-fund'], { encoding: 'utf8' })
  t.equal(npm.status, 0, npm.stderr)
  const r = spawnSync('hearth', ['ls', 'cli/'], { encoding: 'utf8', env: { PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`, HEARTH_URL: d.url } })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^PATH\s+LANGUAGE/)
})
