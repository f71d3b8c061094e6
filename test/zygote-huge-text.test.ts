// Each zygote moves its runtime's machine code onto 2 MB pages before it
// forks (runtimes/zygote/hugetext.c): the children of the python and node
// zygotes run the interpreter from those pages, shared, and /readyz says how
// many there are; ZYGOTE_HUGE_TEXT=off leaves the code on its file's pages.
// The move itself, on a program of its own: test/hugetext.test.ts.
import { existsSync } from 'node:fs'
import t from 'tap'
import { call, py, startRunner } from './helpers/runner.js'
import { pythonRuntime } from './helpers/zygotes.js'

/** The mapping of a python child holding the interpreter's code (PyEval_EvalCode): its permissions, file and 2 MB pages. */
const PYTHON_CODE = `import ctypes, re
address = ctypes.cast(ctypes.pythonapi.PyEval_EvalCode, ctypes.c_void_p).value
found = None
for line in open("/proc/self/smaps"):
    head = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\\S+) \\S+ \\S+ \\S+ *(.*)", line)
    if head:
        holds = int(head[1], 16) <= address < int(head[2], 16)
        if holds:
            found = {"perms": head[3], "file": head[4].strip(), "hugeKb": 0}
    elif holds and line.startswith("AnonHugePages:"):
        found["hugeKb"] = int(line.split()[1])
return found`

/** A node child's executable mappings of node's code that no file backs, each with its 2 MB pages (kB), found between two of node's own. */
const NODE_CODE = `const fs = require('fs')
const exe = fs.realpathSync(process.execPath)
const vmas = []
for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
  const head = /^([0-9a-f]+)-([0-9a-f]+) (\\S+) \\S+ \\S+ \\S+ *(.*)$/.exec(line)
  if (head) vmas.push({ start: head[1], end: head[2], perms: head[3], file: head[4].trim(), hugeKb: 0 })
  else if (line.startsWith('AnonHugePages:')) vmas[vmas.length - 1].hugeKb = Number(line.split(/\\s+/)[1])
}
return vmas.filter((v, i) => v.perms === 'r-xp' && v.file === '' && vmas[i - 1]?.file === exe && vmas[i - 1].end === v.start && vmas[i + 1]?.file === exe)
  .map((v) => v.hugeKb)`

// Where the kernel has no transparent huge pages, each zygote says why in
// /readyz and keeps its code where it was: nothing to see here.
const thp = existsSync('/sys/kernel/mm/transparent_hugepage')

t.test('the zygotes move their runtime\'s code onto 2 MB pages, and every forked child runs from them', { skip: thp ? false : 'no transparent huge pages in this kernel' }, async (t) => {
  const { runner } = await startRunner(t, { ZYGOTE: 'on' })
  const python = pythonRuntime(runner)
  const node = runner.stats().runtimes.node as Record<string, any>
  t.ok(python.hugeTextPages >= 1, `python: ${python.hugeTextPages} pages of 2 MB (${python.hugeTextReason ?? 'no reason given'})`)
  t.ok(node.hugeTextPages >= 1, `node: ${node.hugeTextPages} pages of 2 MB (${node.hugeTextReason ?? 'no reason given'})`)
  t.notOk('hugeTextReason' in python, 'no reason given when the code moved')
  const code = await py(runner, PYTHON_CODE)
  t.match(code, { perms: 'r-xp', file: '' }, 'the interpreter\'s code is in an executable mapping no file backs')
  t.ok(code.hugeKb >= 2048, `${code.hugeKb} kB of it on 2 MB pages`)
  const js = await call(runner, { language: 'javascript', code: NODE_CODE, input: '{}' })
  const huge = JSON.parse(js.result?.data ?? '[]') as number[]
  t.equal(huge.length, 1, 'node\'s code has one such mapping, in the middle of its executable')
  t.equal(huge[0], node.hugeTextPages * 2048, 'all of it on the 2 MB pages /readyz counts')
  // the children run from them: a call of each runtime still answers
  t.equal(await py(runner, 'return sum(range(10))'), 45)
  t.equal((await call(runner, { language: 'typescript', code: 'const n: number = 6\nreturn n * 7', input: '{}' })).result?.data, '42')
})

t.test('ZYGOTE_HUGE_TEXT=off: the code stays on its file\'s pages, and /readyz says why', async (t) => {
  const { runner } = await startRunner(t, { ZYGOTE: 'on', ZYGOTE_HUGE_TEXT: 'off' })
  const python = pythonRuntime(runner)
  const node = runner.stats().runtimes.node as Record<string, any>
  for (const runtime of [python, node]) t.match(runtime, { hugeTextPages: 0, hugeTextReason: 'off (ZYGOTE_HUGE_TEXT=off)' })
  const code = await py(runner, PYTHON_CODE)
  t.match(code, { perms: 'r-xp', file: /python3/, hugeKb: 0 }, 'the interpreter\'s code is its executable\'s own mapping')
  const js = await call(runner, { language: 'javascript', code: NODE_CODE, input: '{}' })
  t.same(JSON.parse(js.result?.data ?? 'null'), [], 'node\'s code is its executable\'s own mappings')
})
