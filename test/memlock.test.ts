// How much a zygote may pin (daemon/zygote/memlock.ts): a raised
// RLIMIT_MEMLOCK only where the daemon has CAP_SYS_RESOURCE and prlimit(1).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { mayRaiseMemlock, onPath } from '../daemon/zygote/memlock.js'

t.test('CAP_SYS_RESOURCE (bit 24 of CapEff) says whether the daemon may raise a zygote\'s RLIMIT_MEMLOCK', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-memlock-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const status = (capEff: string): string => {
    const file = join(dir, capEff)
    writeFileSync(file, `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`)
    return file
  }
  t.equal(mayRaiseMemlock(status('000001ffffffffff')), true, 'every capability')
  t.equal(mayRaiseMemlock(status('000001fffeffffff')), false, 'all but CAP_SYS_RESOURCE (measured: a container\'s root)')
  t.equal(mayRaiseMemlock(status('0000000001000000')), true, 'CAP_SYS_RESOURCE alone')
  t.equal(mayRaiseMemlock(status('0000000000000000')), false, 'none (not root)')
  t.equal(mayRaiseMemlock(join(dir, 'missing')), false, 'unreadable: not assumed')
})

t.test('prlimit is looked for on PATH, as an executable file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-path-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'tool'), '#!/bin/sh\n')
  writeFileSync(join(dir, 'plain'), '')
  chmodSync(join(dir, 'tool'), 0o755)
  t.equal(onPath('tool', `/nonexistent:${dir}`), true)
  t.equal(onPath('plain', dir), false, 'not executable')
  t.equal(onPath('tool', '/nonexistent'), false)
  t.equal(onPath('tool', ''), false, 'an empty PATH finds nothing')
})
