// Real code written by other people runs through /run-now as it runs with the
// host's interpreter (issue 10). The corpus: modules of CPython's own standard
// library that carry doctests, each run as a program with `doctest.testmod()`
// appended, once as `python3 function.py` on the host and once over HTTP; their
// printed lines (test counts, and every failure report with its line numbers
// and `__main__.` names) must be the same, but for the file's directory: the
// host's is a temporary one, and hearth's `__file__` is plain `function.py`.
// (enum.py is left out: its report iterates a set of strings, whose order
// changes with the hash seed from one host run to the next.)
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sse, startDaemon } from './helpers/daemon.js'
import { TestRedis } from './helpers/redis.js'

const PYTHON = '/usr/bin/python3' // the interpreter sandboxes run
const CORPUS = ['heapq', 'fractions', 'statistics', 'textwrap', 'difflib', 'ipaddress', '_pydecimal']
const RUNNER = '\nimport doctest as __doctest\nprint(__doctest.testmod())\n'

const stdlib = spawnSync(PYTHON, ['-c', 'import sysconfig; print(sysconfig.get_path("stdlib"))'], { encoding: 'utf8' }).stdout.trim()
const redis = await TestRedis.start(t)
const d = await startDaemon(t, { REDIS_URL: redis.url, TIMEOUT_SCRIPT: '60', POOL_MAX: '2' })
const dir = mkdtempSync(join(tmpdir(), 'hearth-fidelity-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function onHost (code: string): string[] {
  writeFileSync(join(dir, 'function.py'), code)
  const r = spawnSync(PYTHON, ['-I', '-B', 'function.py'], { cwd: dir, encoding: 'utf8', env: { LANG: 'C.UTF-8', PATH: '/usr/bin:/bin' }, timeout: 60_000 })
  return r.stdout.replace(/\n$/, '').replaceAll(`${dir}/`, '').split('\n')
}

async function overHttp (code: string): Promise<{ lines: string[], last: Record<string, unknown> | undefined }> {
  const events = (await sse(`${d.url}/run-now`, { language: 'python', code, stream: true, timeout: 60 })).map((e) => e.event)
  const lines = events.filter((e) => e.event === 'log' && e.stream === undefined).map((e) => String(e.data))
  return { lines, last: events.at(-1) }
}

const totals = { attempted: 0, modules: 0 }
for (const name of CORPUS) {
  t.test(`${name}.py: the same doctest report over /run-now as with python3 on the host`, async (t) => {
    const code = readFileSync(join(stdlib, `${name}.py`), 'utf8') + RUNNER
    const host = onHost(code)
    const attempted = Number(/attempted=(\d+)/.exec(host.at(-1) ?? '')?.[1] ?? 0)
    t.ok(attempted > 0, `the host ran ${attempted} examples`)
    const remote = await overHttp(code)
    t.equal(remote.last?.event, 'result', 'the call ended with a result')
    t.same(remote.lines, host, 'every line printed is the same')
    totals.attempted += attempted
    totals.modules++
  })
}

t.test('the corpus is real work', async (t) => {
  t.equal(totals.modules, CORPUS.length)
  t.ok(totals.attempted > 600, `${totals.attempted} doctest examples compared`)
})
