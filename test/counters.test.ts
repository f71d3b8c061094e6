// The kernel counters a sandbox's limits are read from: a counter that cannot
// be read must not pass for "no limit hit".
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Counters, placePid } from '../daemon/sandbox/limits/cgroupfs.js'

t.test('the first counter above zero names the breach; an unreadable one says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-counters-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const memory = join(dir, 'memory.events')
  const pids = join(dir, 'pids.events')
  writeFileSync(memory, 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n')
  writeFileSync(pids, 'max 0\n')
  const counters = new Counters([['memory', memory, 'oom_kill'], ['pids', pids, 'max']])
  t.teardown(() => counters.close())
  t.equal(counters.breach(), null, 'oom_kill 0 and max 0: nothing hit (memory.events\' own "max" line is not pids.events)')
  writeFileSync(pids, 'max 5\n') // the same file, rewritten: read again, not cached
  t.equal(counters.breach(), 'pids')
  writeFileSync(memory, 'oom_kill 1\n')
  t.equal(counters.breach(), 'memory', 'memory first')
  t.equal(new Counters([['memory', join(dir, 'gone/memory.events'), 'oom_kill']]).breach(), 'unreadable')
})

t.test('the counter files are opened when the counters are made, not at the first check (a fresh sandbox\'s call)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-counters-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const events = join(dir, 'pids.events')
  writeFileSync(events, 'max 2\n')
  const counters = new Counters([['pids', events, 'max']])
  t.teardown(() => counters.close())
  // Gone from its directory, the file is still read through the descriptor opened above.
  rmSync(events)
  t.equal(counters.breach(), 'pids')
})

t.test('a sandbox\'s cgroup.procs is opened with its counters: placed into and listed through those fds, never opened again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-counters-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const procs = join(dir, 'cgroup.procs')
  writeFileSync(procs, '')
  const counters = new Counters([], [procs])
  t.teardown(() => counters.close())
  // Gone from its directory: a write or a read that opened the path again
  // would make a new file there, or find none.
  rmSync(procs)
  await placePid([procs], 4242, counters.files)
  t.same(counters.files.read(procs), '4242')
})
