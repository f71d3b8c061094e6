// The last-resort limits backend (LIMITS_BACKEND=rlimit, prlimit(1) before bwrap):
// weaker than cgroups, but its ceilings must hold and Node must still start.
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

// RLIMIT_NPROC counts every process of the host uid: a uid of its own keeps the
// sandboxes of tests running alongside out of this one's count.
// At most 1 × 3 pool sandboxes + 1 warm one: a ceiling of 4 × 16 tasks for them all.
const { runner, limits } = await startRunner(t, { LIMITS_BACKEND: 'rlimit', SANDBOX_UID: '64123', MAX_MEMORY: '128M', MAX_PIDS: '16', POOL_MIN: '1', POOL_MAX: '1', WARM_MAX_TOTAL: '1' })

t.test('the backend is rlimit, and Node starts under its RLIMIT_DATA', async (t) => {
  t.equal(limits.name, 'rlimit')
  t.match(limits.detail, /--data=134217728 --nproc=64/)
  const r = await call(runner, { language: 'javascript', code: 'return process.pid > 0', input: '{}' })
  t.equal(r.result?.data, 'true', 'a node sandbox runs')
})

t.test('memory past MAX_MEMORY fails the allocation instead of taking the host', async (t) => {
  const r = await call(runner, { language: 'python', code: 'x = bytearray(512 << 20)\nreturn len(x)', input: '{}' })
  t.equal(r.error?.code, 'script_error')
  t.equal(r.error?.details.name, 'MemoryError')
})

t.test('processes stop at the uid-wide ceiling, MAX_PIDS × sandboxes', async (t) => {
  const code = [
    'import os, time',
    'n = 0',
    'while n < 200:',
    '    try:',
    '        pid = os.fork()',
    '    except OSError:',
    '        break',
    '    if pid == 0:',
    '        time.sleep(3)',
    '        os._exit(0)',
    '    n += 1',
    'return n'
  ].join('\n')
  const r = await call(runner, { language: 'python', code, input: '{}' })
  t.ok(r.result !== undefined, r.error?.message ?? 'answered')
  const forked = Number(r.result?.data)
  // The pool's other sandboxes run as the same uid and count too.
  t.ok(forked > 0 && forked < 64, `forked ${forked} processes under a ceiling of 64 tasks`)
})
