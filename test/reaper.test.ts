// The reaper every forked sandbox's pid 1 executes (runtimes/python/zygote/reaper/,
// isolate.h become_reaper): it reaps whatever it was left with and exits as its
// program did. Here sh stands in for init: it starts the program in the
// background, then executes the reaper with the program's pid.
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { loadConfig } from '../daemon/config.js'
import { reaperBeside, zygoteLibrary } from '../daemon/zygote/library.js'

const config = loadConfig({})
const reaper = reaperBeside(zygoteLibrary(config.root, config.stateDir))

/** The reaper's exit status, `before` started in the background ahead of `program`. */
function reap (program: string, before = ''): number | null {
  return spawnSync('/bin/sh', ['-c', `${before} ${program} & exec "$0" $!`, reaper], { timeout: 10_000 }).status
}

t.test('it exits with its program\'s exit code', async (t) => {
  t.equal(reap('(exit 5)'), 5)
  t.equal(reap('true'), 0)
})

t.test('a program killed by a signal gives 128 + the signal', async (t) => {
  t.equal(reap('sh -c \'kill -9 $$\''), 137)
  t.equal(reap('sh -c \'kill -15 $$\''), 143)
})

t.test('other children are reaped on the way, and only the program\'s end counts', async (t) => {
  t.equal(reap('sleep 0.3', '(exit 9) &'), 0)
})

t.test('without a valid program pid it refuses with 70 (setup failed)', async (t) => {
  t.equal(spawnSync(reaper, [], { timeout: 10_000 }).status, 70)
  t.equal(spawnSync(reaper, ['12x'], { timeout: 10_000 }).status, 70)
  t.equal(spawnSync(reaper, ['1', '2'], { timeout: 10_000 }).status, 70)
})
