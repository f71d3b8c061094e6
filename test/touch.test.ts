// A child's first touch of the pages its first call uses, made before its
// `ready` (touch_runs, runtimes/zygote/touch.c, over runmaps.c), checked on its own by
// test/c/touch-check.c: the runs of the phase asked are read, the others
// not, and a run no longer mapped is left alone.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../daemon/config.js'

const root = loadConfig({}).root

t.test('the runs of the phase asked are read, the others not, an unmapped one skipped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-touch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', join(dir, 'check'), join(root, 'test/c/touch-check.c'), join(root, 'runtimes/zygote/touch.c'), join(root, 'runtimes/zygote/runmaps.c')])
  const run = spawnSync(join(dir, 'check'), [dir], { encoding: 'utf8' })
  if (run.status !== 0) t.comment(run.stdout + run.stderr + (run.signal ?? ''))
  t.equal(run.status, 0, 'every check passed')
  t.match(run.stdout, /^touch-check: ok$/m)
})
