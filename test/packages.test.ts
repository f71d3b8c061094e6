// Functions with npm packages (issue 11): a real npm, in the build sandbox,
// from the real registry and from a registry on loopback that the test fills;
// layers shared, read-only, rebuilt from the lock by another daemon; builds
// that fail leave nothing behind.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { sandboxHostUid, loadConfig } from '../daemon/config.js'
import { buildSandboxArgv } from '../daemon/packages/build-sandbox.js'
import { get, post, sse, startDaemon, stateDir } from './helpers/daemon.js'
import { startRegistry } from './helpers/npm-registry.js'
import { startRedis } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

const redis = await startRedis(t)
const registry = await startRegistry(t, [
  { name: 'hearth-probe-answer', version: '1.0.0', files: { 'index.js': 'module.exports = 42\n' } },
  { name: 'hearth-probe-answer', version: '1.1.0', files: { 'index.js': 'module.exports = 43\n' } },
  {
    name: 'hearth-probe-scripts',
    version: '1.0.0',
    files: { 'index.js': 'module.exports = "scripts"\n' },
    // Would leave a mark in the layer, and in the cache, were it run.
    scripts: { preinstall: 'touch /build/PREINSTALL_RAN', postinstall: 'touch /build/POSTINSTALL_RAN /cache/POSTINSTALL_RAN' }
  },
  { name: 'hearth-probe-big', version: '1.0.0', files: { 'index.js': `module.exports = ${JSON.stringify('x'.repeat(64 << 10))}\n` } }
], ['hearth-probe-hangs'])
const env = { ...redis.env, POOL_MIN: '0', POOL_MAX: '2', NPM_CONFIG_REGISTRY: registry.url }

const layersOf = (state: string): string[] => existsSync(join(state, 'layers')) ? readdirSync(join(state, 'layers')) : []

t.test('a real npm install from the registry: require, import and TypeScript see it; nothing else does', async (t) => {
  const d = await startDaemon(t, { ...redis.env, POOL_MIN: '0', POOL_MAX: '2', STATE_DIR: stateDir() }) // npm's own registry
  const up = await post(`${d.url}/upload`, { path: 'pk/odd', language: 'javascript', code: 'const isOdd = require("is-odd")\nreturn isOdd(input.n)', dependencies: { 'is-odd': '3.0.1' } })
  t.equal(up.status, 200, JSON.stringify(up.body))
  t.same(up.body.dependencies.resolved, { 'is-odd': '3.0.1', 'is-number': '6.0.0' }, 'the exact set, transitive packages included')
  t.same((await post(`${d.url}/run/pk/odd`, { input: { n: 3 } })).body, { data: true, type: 'json' })
  const ts = await post(`${d.url}/upload`, { path: 'pk/odd-ts', language: 'typescript', code: 'import isOdd from "is-odd"\nconst n: number = input.n\nreturn isOdd(n)', dependencies: { 'is-odd': '^3.0.0' } })
  t.equal(ts.body.dependencies.layer, up.body.dependencies.layer, 'the same exact set: the same layer')
  t.same((await post(`${d.url}/run/pk/odd-ts`, { input: { n: 4 } })).body, { data: false, type: 'json' })
  await post(`${d.url}/upload`, { path: 'pk/odd-esm', language: 'javascript', code: 'const { default: isOdd } = await import("is-odd")\nreturn isOdd(input.n)', dependencies: { 'is-odd': '3.0.1' } })
  t.same((await post(`${d.url}/run/pk/odd-esm`, { input: { n: 5 } })).body, { data: true, type: 'json' }, 'dynamic import()')
  const none = await post(`${d.url}/run-now`, { language: 'javascript', code: 'return require("is-odd")(1)' })
  t.match(none.body.error, { code: 'script_error', message: /Cannot find module 'is-odd'.*the npm packages named in their upload's dependencies/s }, 'a function without dependencies sees none')
  const shown = await get(`${d.url}/functions/pk/odd`)
  t.same(shown.body.versions[0].dependencies, up.body.dependencies, 'each version shows its dependencies')
})

t.test('scripts never run; the layer is read-only, shared by every function with the same set, and has no network', async (t) => {
  const state = stateDir()
  const d = await startDaemon(t, { ...env, STATE_DIR: state })
  const deps = { 'hearth-probe-scripts': '1.0.0', 'hearth-probe-answer': '1.0.0' }
  const a = await post(`${d.url}/upload`, { path: 'pk/a', language: 'javascript', code: 'return require("hearth-probe-scripts") + require("hearth-probe-answer")', dependencies: deps })
  const b = await post(`${d.url}/upload`, { path: 'pk/b', language: 'javascript', code: 'return require("hearth-probe-answer")', dependencies: { ...deps } })
  t.equal(a.body.dependencies.layer, b.body.dependencies.layer)
  t.same(layersOf(state), [a.body.dependencies.layer], 'one layer on disk, nothing else (no half-built directory)')
  const layer = join(state, 'layers', a.body.dependencies.layer as string)
  t.notOk(existsSync(join(layer, 'PREINSTALL_RAN')) || existsSync(join(layer, 'POSTINSTALL_RAN')) || existsSync(join(state, 'npm-cache', 'POSTINSTALL_RAN')), 'no install script ran')
  t.equal(statSync(join(layer, 'node_modules')).mode & 0o222, 0, 'read-only on disk')
  t.same((await post(`${d.url}/run/pk/a`, {})).body, { data: 'scripts42', type: 'string' })
  const write = await post(`${d.url}/upload`, { path: 'pk/write', language: 'javascript', code: 'require("fs").writeFileSync("/node_modules/x", "y")', dependencies: deps })
  t.match((await post(`${d.url}/run/${write.body.path as string}`, {})).body.error, { code: 'script_error', message: /EROFS|read-only/ }, 'read-only in the sandbox')
  const port = new URL(registry.url).port
  const net = await post(`${d.url}/upload`, { path: 'pk/net', language: 'javascript', code: `await fetch("http://127.0.0.1:${port}/hearth-probe-answer")`, dependencies: deps })
  t.match((await post(`${d.url}/run/${net.body.path as string}`, {})).body.error, { code: 'script_error', message: /fetch failed|no network access/ }, 'the run sandbox still has no network')
})

t.test('"stream": true on an upload: npm\'s output as it comes, then the answer as the last event', async (t) => {
  const d = await startDaemon(t, { ...env, STATE_DIR: stateDir() })
  const events = await sse(`${d.url}/upload`, { path: 'pk/streamed', language: 'javascript', code: 'return 1', dependencies: { 'hearth-probe-answer': '1.0.0' }, stream: true })
  const logs = events.filter((e) => e.event.event === 'log').map((e) => e.event.data)
  t.ok(logs.some((l) => /added 1 package/.test(String(l))), `npm's own lines: ${JSON.stringify(logs)}`)
  const last = events.at(-1)?.event
  t.match(last, { event: 'result', type: 'json', data: { path: 'pk/streamed', dependencies: { resolved: { 'hearth-probe-answer': '1.0.0' } } } })
  const failed = await sse(`${d.url}/upload`, { path: 'pk/streamed', language: 'javascript', code: 'return 1', dependencies: { 'hearth-probe-nowhere': '1.0.0' }, stream: true })
  t.match(failed.at(-1)?.event, { event: 'error', code: 'dependency_error' }, 'a failed build ends the stream with its error')
})

t.test('run-now with dependencies: installed once, then each call a fresh sandbox with them', async (t) => {
  const state = stateDir()
  const d = await startDaemon(t, { ...env, STATE_DIR: state })
  const body = { language: 'typescript', code: 'import answer from "hearth-probe-answer"\nreturn answer + input.n', input: { n: 1 }, dependencies: { 'hearth-probe-answer': '1.x' } }
  const asked = registry.asked.length
  t.same((await post(`${d.url}/run-now`, body)).body, { data: 44, type: 'number' })
  const resolutions = registry.asked.length - asked
  t.same((await post(`${d.url}/run-now`, { ...body, input: { n: 2 } })).body, { data: 45, type: 'number' })
  t.equal(registry.asked.length - asked, resolutions, 'the second call asked the registry nothing: the set it resolved to, remembered')
  t.equal(layersOf(state).length, 1)
  const isolated = await post(`${d.url}/run-now`, { ...body, code: 'require("fs").writeFileSync("/tmp/mark", "x")\nreturn 1' })
  t.equal(isolated.status, 200)
  t.same((await post(`${d.url}/run-now`, { ...body, code: 'return require("fs").existsSync("/tmp/mark")' })).body, { data: false, type: 'json' }, 'a fresh sandbox each time')
  const async = await post(`${d.url}/run-now-async`, body)
  t.match([async.status, async.body.error], [400, { field: 'dependencies' }], 'not on run-now-async yet, said so')
})

t.test('LAYER_CACHE_MAX: least recently used layers go, never one in use; an evicted version gets its layer back from its lock', async (t) => {
  const state = stateDir()
  const d = await startDaemon(t, { ...env, STATE_DIR: state, LAYER_CACHE_MAX: '1', WARM_IDLE_SECONDS: '1' })
  const code = 'await new Promise((resolve) => setTimeout(resolve, input.ms ?? 0))\nreturn require("hearth-probe-answer")'
  const upload = async (path: string, deps: Record<string, string>): Promise<string> =>
    (await post(`${d.url}/upload`, { path, language: 'javascript', code, dependencies: deps })).body.dependencies.layer
  const la = await upload('pk/ev-a', { 'hearth-probe-answer': '1.0.0' })
  // A call of pk/ev-a runs while the next layer is built: its layer is in use.
  const running = (await post(`${d.url}/run-async/pk/ev-a`, { input: { ms: 8000 } })).body.id as string
  await waitFor(async () => (await get(`${d.url}/calls/${running}`)).body.status === 'running', 10_000, 'the call to run')
  const lb = await upload('pk/ev-b', { 'hearth-probe-answer': '1.1.0' })
  t.same(layersOf(state).sort(), [la, lb].sort(), 'over the cap, but one layer is in use by a running call and the other is new: both stay')
  await waitFor(async () => (await get(`${d.url}/calls/${running}`)).body.status === 'done', 20_000, 'the call to end')
  await waitFor(async () => (await get(`${d.url}/readyz`)).body.warm.sandboxes === 0, 10_000, 'its warm sandbox to be retired (WARM_IDLE_SECONDS=1)')
  const lc = await upload('pk/ev-c', { 'hearth-probe-answer': '1.0.0', 'hearth-probe-scripts': '1.0.0' })
  t.same(layersOf(state), [lc], 'layers in use by nothing went; the newest stays')
  t.equal((await post(`${d.url}/run/pk/ev-a`, {})).body.data, 42, 'the evicted layer of pk/ev-a is installed again from its lock')
  t.ok(layersOf(state).includes(la))
})

t.test('what cannot be installed: 422 dependency_error with npm\'s words, nothing stored, nothing left', async (t) => {
  const state = stateDir()
  const d = await startDaemon(t, { ...env, STATE_DIR: state, BUILD_TIMEOUT: '5', LAYER_MAX_SIZE: '32K' })
  const missing = await post(`${d.url}/upload`, { path: 'pk/missing', language: 'javascript', code: 'return 1', dependencies: { 'hearth-probe-nowhere': '1.0.0' } })
  t.match([missing.status, missing.body.error], [422, { code: 'dependency_error', message: /npm install failed/, output: /404/ }])
  t.equal((await get(`${d.url}/functions/pk/missing`)).status, 404, 'nothing stored')
  const range = await post(`${d.url}/upload`, { path: 'pk/range', language: 'javascript', code: 'return 1', dependencies: { 'hearth-probe-answer': '^9.0.0' } })
  t.match([range.status, range.body.error], [422, { code: 'dependency_error', output: /No matching version|ETARGET/ }], 'no version in the range')
  const slow = await post(`${d.url}/upload`, { path: 'pk/slow', language: 'javascript', code: 'return 1', dependencies: { 'hearth-probe-hangs': '1.0.0' } })
  t.match([slow.status, slow.body.error], [422, { code: 'dependency_error', message: /BUILD_TIMEOUT \(5 s\)/ }], 'a build past its time')
  const big = await post(`${d.url}/upload`, { path: 'pk/big', language: 'javascript', code: 'return 1', dependencies: { 'hearth-probe-big': '1.0.0' } })
  t.match([big.status, big.body.error], [422, { code: 'dependency_error', message: /LAYER_MAX_SIZE/ }], 'a layer past its size')
  t.same(layersOf(state), [], 'no layer, and no half-built directory')
  for (const [deps, field] of [[{ x: 'file:../x' }, /not a version, range or tag/], [{ x: 'git+https://h/x.git' }, /not a version/], [{ 'Bad Name': '1' }, /not an npm package name/], [['x'], /must be (an )?object/]] as const) {
    const r = await post(`${d.url}/upload`, { path: 'pk/bad', language: 'javascript', code: 'return 1', dependencies: deps })
    t.match([r.status, r.body.error], [400, { code: 'invalid_field', field: 'dependencies', message: field }], JSON.stringify(deps))
  }
})

t.test('two daemons on one Redis: uploaded on one, the other installs the recorded lock and runs it', async (t) => {
  const [sa, sb] = [stateDir(), stateDir()]
  const a = await startDaemon(t, { ...env, STATE_DIR: sa })
  const b = await startDaemon(t, { ...env, STATE_DIR: sb })
  const up = await post(`${a.url}/upload`, { path: 'pk/shared', language: 'javascript', code: 'return require("hearth-probe-answer")', dependencies: { 'hearth-probe-answer': '^1.0.0' } })
  t.same(up.body.dependencies.resolved, { 'hearth-probe-answer': '1.1.0' })
  const asked = registry.asked.length
  // b hears of the upload (the invalidation) and installs the lock ahead of any call.
  await waitFor(() => b.logs.some((l) => l.msg === 'packages installed ahead of the first call'), 20_000, 'b to install the layer ahead, and say so')
  t.ok(layersOf(sb).includes(up.body.dependencies.layer), 'b has the layer before any call')
  const runs = await Promise.all([1, 2, 3].map(async () => await post(`${b.url}/run/pk/shared`, {})))
  t.same(runs.map((r) => r.body), [1, 2, 3].map(() => ({ data: 43, type: 'number' })), 'its calls run with it')
  t.same(layersOf(sb), [up.body.dependencies.layer], 'the same layer, built once')
  t.same(registry.asked.slice(asked), [], 'from the lock: npm ci fetched the tarball it names, no new resolution')
  // A daemon that missed the upload (it started after it) builds on the first call, which waits.
  const c = await startDaemon(t, { ...env, STATE_DIR: stateDir() })
  t.same((await post(`${c.url}/run/pk/shared`, {})).body, { data: 43, type: 'number' }, 'the first call waits for the install, and runs')
  const queued = await post(`${b.url}/run-async/pk/shared`, {})
  let doc: any
  await waitFor(async () => ['done', 'failed'].includes((doc = (await get(`${a.url}/calls/${queued.body.id as string}`)).body).status), 20_000, 'the async call')
  t.match(doc, { status: 'done', result: { data: 43 } }, 'an async call of it, on whichever daemon')
})

t.test('a STATE_DIR the sandbox uid cannot reach: said at start, and uploads with dependencies refused saying why', { skip: process.getuid?.() !== 0 && 'the daemon runs sandboxes as SANDBOX_UID only as root' }, async (t) => {
  const hidden = mkdtempSync(join(tmpdir(), 'hearth-test-private-'))
  chmodSync(hidden, 0o700)
  const d = await startDaemon(t, { ...env, STATE_DIR: hidden })
  t.ok(d.logs.some((l) => Number(l.level) === 40 && /cannot reach .*chmod o\+x/.test(String(l.msg))), 'a warning at start')
  const r = await post(`${d.url}/upload`, { path: 'pk/hidden', language: 'javascript', code: 'return 1', dependencies: { 'hearth-probe-answer': '1.0.0' } })
  t.match([r.status, r.body.error], [422, { code: 'dependency_error', message: /SANDBOX_UID \d+ cannot reach/ }])
  t.equal((await post(`${d.url}/upload`, { path: 'pk/plain', language: 'javascript', code: 'return 1' })).status, 200, 'functions without dependencies are not affected')
})

t.test('the build sandbox sees the network and /usr, not the host\'s files', async (t) => {
  const hostUid = sandboxHostUid(loadConfig({}))
  const dir = stateDir()
  const argv = buildSandboxArgv({ limitsPrefix: [], hostUid, buildDir: dir, cacheDir: dir, binds: [], command: ['/bin/sh', '-c', 'ls /; echo --; ls /etc; echo --; cat /etc/shadow /root/.bashrc 2>&1; touch /usr/x 2>&1; true'] })
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } })
  t.equal(r.status, 0, r.stderr)
  const [root, etc, rest] = r.stdout.split('--\n')
  t.same(root?.trim().split('\n'), ['bin', 'build', 'cache', 'dev', 'etc', 'lib', 'lib64', 'proc', 'sbin', 'tmp', 'usr'], 'only what an installer needs at /')
  t.same(etc?.trim().split('\n').filter((f) => !['ca-certificates', 'nsswitch.conf', 'ssl'].includes(f)), ['hosts', 'resolv.conf'], '/etc: name resolution and CA certificates only')
  t.match(rest, /cat: \/etc\/shadow: No such file or directory\ncat: \/root\/.bashrc: No such file or directory/, 'no host secrets, no home directories')
  t.match(rest, /touch: cannot touch '\/usr\/x': Read-only file system/)
})
