// The move of a runtime's code onto 2 MB pages (huge_text,
// runtimes/zygote/hugetext.c), checked on its own by test/c/hugetext-check.c:
// a program whose text is ~5 MB moves it, keeps every byte and runs on from
// it; code that cannot move stays where it was, with a reason. The zygotes'
// use of it: test/zygote-huge-text.test.ts.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../daemon/config.js'

const root = loadConfig({}).root
const SOURCES = [join(root, 'test/c/hugetext-check.c'), join(root, 'runtimes/zygote/hugetext.c')]

const skip = existsSync('/sys/kernel/mm/transparent_hugepage') ? false : 'no transparent huge pages in this kernel'

t.test('a program\'s code moves onto 2 MB pages in place and runs on; code that cannot move stays, with a reason', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-hugetext-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', join(dir, 'check'), ...SOURCES])
  const run = spawnSync(join(dir, 'check'), { encoding: 'utf8' })
  if (run.status !== 0) t.comment(run.stdout + run.stderr)
  t.equal(run.status, 0, 'every check passed')
  t.match(run.stdout, /^hugetext-check: ok [1-9]\d* \(libc: .+\)$/m)
})
