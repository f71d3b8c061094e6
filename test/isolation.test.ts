// The isolation contract of DESIGN.md, against real sandboxes.
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const { runner } = await startRunner(t, { POOL_MIN: '1', POOL_MAX: '4' })

const COUNTER_PY = 'import builtins, os\nbuiltins.n = getattr(builtins, "n", 0) + 1\nseen = os.path.exists("/tmp/mark")\nopen("/tmp/mark", "w").write("x")\nreturn {"n": builtins.n, "seen_tmp": seen}'
const COUNTER_JS = 'globalThis.n = (globalThis.n ?? 0) + 1\nconst fs = require("fs")\nconst seen = fs.existsSync("/tmp/mark")\nfs.writeFileSync("/tmp/mark", "x")\nreturn { n: globalThis.n, seen_tmp: seen }'

t.test('a run-now sandbox is never reused: globals and /tmp start empty every call', async (t) => {
  for (let i = 0; i < 3; i++) {
    const py = await call(runner, { language: 'python', code: COUNTER_PY, input: '{}' })
    t.same(JSON.parse(py.result?.data ?? 'null'), { n: 1, seen_tmp: false })
    const js = await call(runner, { language: 'javascript', code: COUNTER_JS, input: '{}' })
    t.same(JSON.parse(js.result?.data ?? 'null'), { n: 1, seen_tmp: false })
  }
})

t.test('a stored function version reuses its own warm sandbox', async (t) => {
  const first = await call(runner, { language: 'python', code: COUNTER_PY, input: '{}', functionKey: 'iso/a@1' })
  const second = await call(runner, { language: 'python', code: COUNTER_PY, input: '{}', functionKey: 'iso/a@1' })
  t.same(JSON.parse(first.result?.data ?? 'null'), { n: 1, seen_tmp: false })
  t.same(JSON.parse(second.result?.data ?? 'null'), { n: 2, seen_tmp: true })
  t.equal(second.result?.warm, true)
})

t.test('WARM_MAX_USES: a warm sandbox is replaced after that many calls', async (t) => {
  const { runner: capped } = await startRunner(t, { POOL_MIN: '1', POOL_MAX: '2', WARM_MAX_USES: '2' })
  const counts = []
  for (let i = 0; i < 3; i++) {
    const r = await call(capped, { language: 'python', code: COUNTER_PY, input: '{}', functionKey: 'iso/uses@1' })
    counts.push([(JSON.parse(r.result?.data ?? 'null') as { n: number }).n, r.result?.warm])
  }
  t.same(counts, [[1, false], [2, true], [1, false]], 'the third call runs in a fresh sandbox')
})

t.test('another function or another version never sees a sandbox that ran different code', async (t) => {
  await call(runner, { language: 'javascript', code: COUNTER_JS, input: '{}', functionKey: 'iso/b@1' })
  const otherVersion = await call(runner, { language: 'javascript', code: COUNTER_JS, input: '{}', functionKey: 'iso/b@2' })
  t.same(JSON.parse(otherVersion.result?.data ?? 'null'), { n: 1, seen_tmp: false })
  const otherFunction = await call(runner, { language: 'javascript', code: COUNTER_JS, input: '{}', functionKey: 'iso/c@1' })
  t.same(JSON.parse(otherFunction.result?.data ?? 'null'), { n: 1, seen_tmp: false })
})

t.test('a background process left by one call is invisible to the next function', async (t) => {
  const spawner = 'import subprocess\nsubprocess.Popen(["/bin/sleep", "60"])\nreturn "started"'
  const started = await call(runner, { language: 'python', code: spawner, input: '{}', functionKey: 'iso/bg@1' })
  t.equal(started.result?.data, '"started"')
  const look = 'import os\nreturn sorted(open("/proc/%s/cmdline" % p).read().replace("\\0", " ").strip() for p in os.listdir("/proc") if p.isdigit())'
  const other = await call(runner, { language: 'python', code: look, input: '{}', functionKey: 'iso/look@1' })
  t.notMatch(other.result?.data, /sleep/)
  const runNow = await call(runner, { language: 'python', code: look, input: '{}' })
  t.notMatch(runNow.result?.data, /sleep/)
})

t.test('a sandbox that failed with a script error stays bound to its own function only', async (t) => {
  const code = 'import builtins\nbuiltins.k = getattr(builtins, "k", 0) + 1\nif builtins.k == 1:\n    raise RuntimeError("first call fails")\nreturn builtins.k'
  const a = await call(runner, { language: 'python', code, input: '{}', functionKey: 'iso/err@1' })
  t.equal(a.error?.code, 'script_error')
  const b = await call(runner, { language: 'python', code, input: '{}', functionKey: 'iso/err@1' })
  t.equal(b.result?.data, '2')
})
