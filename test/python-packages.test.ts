// Functions with pip packages (issue 11): Debian's pip in the build sandbox,
// from wheels this test makes (this machine reaches no Python index), through
// PIP_FIND_LINKS and through a PEP 503 index on loopback with credentials;
// the lock (pins and sha256) is what another daemon installs.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { get, post, sse, startDaemon, stateDir } from './helpers/daemon.js'
import { distributions, startIndex } from './helpers/python-index.js'
import { startRedis } from './helpers/redis.js'

const redis = await startRedis(t)
const greet = { name: 'hearth-greet', version: '1.0.0', files: { 'hearth_greet/__init__.py': 'from hearth_base import BASE\n\ndef greet(name):\n    return BASE + name\n' }, requires: ['hearth-base>=1'] }
const base = (version: string, text: string): { name: string, version: string, files: Record<string, string> } =>
  ({ name: 'hearth-base', version, files: { 'hearth_base/__init__.py': `BASE = ${JSON.stringify(text)}\n` } })
const wheels = distributions(t, [greet, base('1.2.0', 'hello, ')])
const env = { ...redis.env, POOL_MIN: '0', POOL_MAX: '2', PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheels }
const code = 'from hearth_greet import greet\nimport importlib.metadata\nreturn [greet(input["name"]), importlib.metadata.version("hearth-base")]'
const layersOf = (state: string): string[] => existsSync(join(state, 'layers')) ? readdirSync(join(state, 'layers')) : []

t.test('pip installs the wheels of PIP_FIND_LINKS; the function imports them; nothing else sees them', async (t) => {
  const state = stateDir()
  const d = await startDaemon(t, { ...env, STATE_DIR: state })
  const up = await post(`${d.url}/upload`, { path: 'py/greet', language: 'python', code, dependencies: ['hearth-greet>=1'] })
  t.equal(up.status, 200, JSON.stringify(up.body))
  t.same(up.body.dependencies.requested, ['hearth-greet>=1'])
  t.same(up.body.dependencies.resolved, { 'hearth-base': '1.2.0', 'hearth-greet': '1.0.0' }, 'the exact set, the dependency of a dependency included')
  t.same((await post(`${d.url}/run/py/greet`, { input: { name: 'ann' } })).body, { data: ['hello, ann', '1.2.0'], type: 'json' })
  const same = await post(`${d.url}/upload`, { path: 'py/greet2', language: 'python', code: 'import hearth_base\nreturn hearth_base.__file__', dependencies: ['hearth-greet'] })
  t.equal(same.body.dependencies.layer, up.body.dependencies.layer, 'the same exact set: the same layer')
  t.same((await post(`${d.url}/run/py/greet2`, {})).body, { data: '/packages/hearth_base/__init__.py', type: 'string' }, 'bound at /packages')
  t.same(layersOf(state), [up.body.dependencies.layer])
  const layer = join(state, 'layers', up.body.dependencies.layer as string)
  t.equal(statSync(join(layer, 'site', 'hearth_base')).mode & 0o222, 0, 'read-only on disk')
  t.notOk(existsSync(join(layer, '.fetched')) || existsSync(join(layer, '.wheels')), 'the downloads are not part of the layer')
  const write = await post(`${d.url}/upload`, { path: 'py/write', language: 'python', code: 'open("/packages/x", "w")', dependencies: ['hearth-greet'] })
  t.match((await post(`${d.url}/run/${write.body.path as string}`, {})).body.error, { code: 'script_error', message: /Read-only file system/ }, 'read-only in the sandbox')
  const none = await post(`${d.url}/run-now`, { language: 'python', code: 'import hearth_greet' })
  t.match(none.body.error, { code: 'script_error', message: /No module named 'hearth_greet'/ }, 'a function without dependencies sees none')
  t.same((await get(`${d.url}/functions/py/greet`)).body.versions[0].dependencies, up.body.dependencies, 'each version shows its dependencies')
  const now = await post(`${d.url}/run-now`, { language: 'python', code, input: { name: 'bo' }, dependencies: ['hearth-greet==1.0.0'] })
  t.same(now.body, { data: ['hello, bo', '1.2.0'], type: 'json' }, 'run-now with dependencies')
})

t.test('the lock: another daemon installs exactly the recorded files, though its index has a newer version', async (t) => {
  const a = await startDaemon(t, { ...env, STATE_DIR: stateDir() })
  const up = await post(`${a.url}/upload`, { path: 'py/locked', language: 'python', code, dependencies: ['hearth-greet'] })
  t.same(up.body.dependencies.resolved, { 'hearth-base': '1.2.0', 'hearth-greet': '1.0.0' })
  // b's index: the same files, and a newer hearth-base that a fresh resolution would take.
  const newer = distributions(t, [greet, base('1.2.0', 'hello, '), base('1.3.0', 'hi, ')])
  const sb = stateDir()
  const b = await startDaemon(t, { ...env, STATE_DIR: sb, PIP_FIND_LINKS: newer })
  t.same((await post(`${b.url}/run/py/locked`, { input: { name: 'cy' } })).body, { data: ['hello, cy', '1.2.0'], type: 'json' }, 'the first call waits for the install from the lock, and runs with 1.2.0')
  t.ok(layersOf(sb).includes(up.body.dependencies.layer), 'the same layer address')
  const fresh = await post(`${b.url}/upload`, { path: 'py/fresh', language: 'python', code, dependencies: ['hearth-greet'] })
  t.equal(fresh.body.dependencies.resolved['hearth-base'], '1.3.0', 'a new upload of the same requirements resolves anew')
  // c's index has a different file under the locked name and version: the hashes refuse it.
  const tampered = distributions(t, [greet, base('1.2.0', 'pwned, ')])
  const c = await startDaemon(t, { ...env, STATE_DIR: stateDir(), PIP_FIND_LINKS: tampered })
  const r = await post(`${c.url}/run/py/locked`, { input: { name: 'dee' } })
  t.match([r.status, r.body.error], [422, { code: 'dependency_error', output: /HASHES|hash/i }], 'a file that is not the locked one is refused')
})

t.test('what pip cannot install: 422 dependency_error in pip\'s words, nothing stored, nothing left; invalid requirements 400', async (t) => {
  const sources = distributions(t, [{ name: 'hearth-src', version: '1.0.0', files: { 'hearth_src/__init__.py': 'WHERE = "built from source"\n' }, source: true }])
  const state = stateDir()
  const d = await startDaemon(t, { ...env, STATE_DIR: state, PIP_FIND_LINKS: `${wheels} ${sources}` })
  const missing = await post(`${d.url}/upload`, { path: 'py/missing', language: 'python', code: 'return 1', dependencies: ['hearth-nowhere==1.0'] })
  t.match([missing.status, missing.body.error], [422, { code: 'dependency_error', message: /pip download failed/, output: /No matching distribution found for hearth-nowhere/ }])
  t.equal((await get(`${d.url}/functions/py/missing`)).status, 404, 'nothing stored')
  const range = await post(`${d.url}/upload`, { path: 'py/range', language: 'python', code: 'return 1', dependencies: ['hearth-base>=2'] })
  t.match([range.status, range.body.error], [422, { output: /from versions: 1\.2\.0/ }], 'no version in the range')
  const source = await post(`${d.url}/upload`, { path: 'py/src', language: 'python', code: 'return 1', dependencies: ['hearth-src'] })
  t.match([source.status, source.body.error], [422, { message: /wheels only: BUILD_ALLOW_SOURCE=true/ }], 'a source distribution is not built by default')
  t.same(layersOf(state), [], 'no layer, no half-built directory')
  for (const [deps, message] of [[['hearth-base @ https://example.com/x.whl'], /URLs, paths and pip options are not allowed/], [['-e .'], /not a requirement/], [['--index-url=http://x'], /not a requirement/], [['x\n--find-links /etc'], /not a requirement/], [{ x: '1' }, /must be a list of requirement strings/]] as const) {
    const r = await post(`${d.url}/upload`, { path: 'py/bad', language: 'python', code: 'return 1', dependencies: deps })
    t.match([r.status, r.body.error], [400, { code: 'invalid_field', field: 'dependencies', message }], JSON.stringify(deps))
  }
  const allowed = await startDaemon(t, { ...env, STATE_DIR: stateDir(), PIP_FIND_LINKS: sources, BUILD_ALLOW_SOURCE: 'true' })
  const built = await post(`${allowed.url}/upload`, { path: 'py/src', language: 'python', code: 'import hearth_src\nreturn hearth_src.WHERE', dependencies: ['hearth-src==1.0.0'] })
  t.equal(built.status, 200, JSON.stringify(built.body))
  t.same((await post(`${allowed.url}/run/py/src`, {})).body, { data: 'built from source', type: 'string' }, 'BUILD_ALLOW_SOURCE: built into a wheel in the build sandbox')
})

t.test('PIP_INDEX_URL with credentials: pip reaches the index, its output streams, the password appears nowhere', async (t) => {
  const index = await startIndex(t, wheels)
  const d = await startDaemon(t, { ...redis.env, POOL_MIN: '0', POOL_MAX: '2', STATE_DIR: stateDir(), PIP_INDEX_URL: index.url })
  const events = await sse(`${d.url}/upload`, { path: 'py/indexed', language: 'python', code, dependencies: ['hearth-greet'], stream: true })
  const logs = events.filter((e) => e.event.event === 'log').map((e) => String(e.event.data))
  t.ok(logs.some((l) => /Successfully installed hearth-base-1.2.0 hearth-greet-1.0.0/.test(l)), `pip's own lines: ${JSON.stringify(logs)}`)
  t.match(events.at(-1)?.event, { event: 'result', data: { dependencies: { resolved: { 'hearth-greet': '1.0.0' } } } })
  t.ok(index.asked.includes('hearth-greet') && index.asked.includes('hearth-base'), 'from the index')
  const failed = await post(`${d.url}/upload`, { path: 'py/nowhere', language: 'python', code: 'return 1', dependencies: ['hearth-nowhere'] })
  t.equal(failed.status, 422)
  t.notMatch(JSON.stringify([logs, failed.body, d.logs]), index.password, 'not in the streamed output, the error, or the logs')
  t.same((await post(`${d.url}/run/py/indexed`, { input: { name: 'eve' } })).body.data, ['hello, eve', '1.2.0'])
})
