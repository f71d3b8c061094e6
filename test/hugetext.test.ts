// The move of a runtime's code onto 2 MB pages (huge_text,
// runtimes/zygote/hugetext.c), checked on its own by test/c/hugetext-check.c:
// a program whose text is ~5 MB moves it, keeps every byte and runs on from
// it; code that cannot move stays where it was, with a reason; a library
// with PROT_NONE gaps between its segments (test/c/hugetext-gap-check.c)
// moves without reading them. The zygotes' use of it:
// test/zygote-huge-text.test.ts.
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

// ld.so leaves PROT_NONE mappings of a library's file between segments
// aligned wider than a page: the copy must stop before them (it read one, and
// the zygote died of SIGSEGV, before the span kept to readable mappings).
t.test('code in a library with PROT_NONE gaps between its segments moves, or stays, without a fault', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-hugetext-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const source = join(root, 'test/c/hugetext-gap-check.c')
  const flags = ['-O2', '-Wall', '-Wextra', '-Werror']
  execFileSync('cc', [...flags, '-DLIBRARY', '-shared', '-fPIC', '-Wl,-z,max-page-size=0x200000', '-o', join(dir, 'libgap.so'), source])
  execFileSync('cc', [...flags, '-o', join(dir, 'check'), source, join(root, 'runtimes/zygote/hugetext.c'), '-ldl'])
  const run = spawnSync(join(dir, 'check'), [join(dir, 'libgap.so')], { encoding: 'utf8' })
  t.equal(run.signal, null, `no signal: ${run.stdout}${run.stderr}`)
  t.equal(run.status, 0, 'every check passed')
  t.match(run.stdout, /^hugetext-gap-check: ok \d+ \(gap: yes\)/m, 'the library had a PROT_NONE gap after its code')
})
