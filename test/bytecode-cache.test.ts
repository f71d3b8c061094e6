// Python bytecode of code fresh sandboxes compiled, kept by its text and sent
// with the same code to the next fresh sandbox (daemon/sandbox/bytecode-cache.ts,
// runtimes/python/hearth_code.py load_module): real forked sandboxes.
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const { runner } = await startRunner(t)

async function runNow (code: string): Promise<Awaited<ReturnType<typeof call>>> {
  return await call(runner, { language: 'python', code, input: '{}' })
}

t.test('a fresh sandbox\'s bytecode is kept, and a fresh sandbox sent it runs it instead of compiling', async (t) => {
  t.equal((await runNow('return 2')).result?.data, '2')
  const two = runner.bytecode.get('return 2')
  t.ok(two !== undefined && two.length > 4, 'kept from the first fresh sandbox that compiled it')
  // What the cache holds for a text is what runs: planted under another text, it shows it was loaded, not compiled.
  runner.bytecode.set('return 1', two as Buffer)
  t.equal((await runNow('return 1')).result?.data, '2', 'the bytecode ran')
})

t.test('bytecode of another interpreter, or not bytecode at all, is not loaded: the code is compiled', async (t) => {
  await runNow('return 5')
  const version = (runner.bytecode.get('return 5') as Buffer).subarray(0, 4)
  runner.bytecode.set('return 3', Buffer.from([0, 0, 0, 0, 0xe3, 1, 2, 3]))
  t.equal((await runNow('return 3')).result?.data, '3')
  runner.bytecode.set('return 4', Buffer.concat([version, Buffer.from('not marshal data')]))
  t.equal((await runNow('return 4')).result?.data, '4')
})

t.test('code that does not compile leaves nothing', async (t) => {
  t.equal((await runNow('return (')).error?.code, 'syntax_error')
  t.equal(runner.bytecode.get('return ('), undefined)
})

// The bytes are taken only as a fresh sandbox's first frame of its first
// call, which its bootstrap always sends before the code runs: a frame the
// code writes to fd 3 itself comes after it.
t.test('a compiled frame written by the code is a protocol error; the cache keeps the bootstrap\'s bytes', async (t) => {
  const forger = [
    'import os, sys, time',
    'marker = bytes([80, 79, 73, 83, 79, 78])  # POISON, made as it runs (the compiler folds "POI" + "SON")',
    'data = sys.hexversion.to_bytes(4, "big") + marker * 4',
    'body = b"\\x83\\xa1t\\xa8compiled\\xa2id\\xce" + sys.stdout.call_id.to_bytes(4, "big") + b"\\xa4data\\xc4" + bytes([len(data)]) + data',
    'os.write(3, len(body).to_bytes(4, "big") + body)',
    'time.sleep(5)',
    'return 1'
  ].join('\n')
  const r = await runNow(forger)
  t.equal(r.error?.code, 'protocol_error', r.error?.message ?? '')
  const kept = runner.bytecode.get(forger)
  t.ok(kept !== undefined, 'the bootstrap\'s bytes were kept')
  t.notOk(kept?.includes('POISON'), 'not the forged ones')
})

t.test('bytecode over what a sandbox\'s frame may carry is not sent, and the call runs', async (t) => {
  // RESULT_MAX_BYTES 1000: frames up to 4 x 1004 + 4096 bytes, bytecode up to 4,016
  const { runner: small } = await startRunner(t, { RESULT_MAX_BYTES: '1000', LOG_MAX_BYTES: '1000' })
  const big = `s = "${'x'.repeat(6000)}"\nreturn len(s)`
  const r = await call(small, { language: 'python', code: big, input: '{}' })
  t.equal(r.result?.data, '6000')
  t.equal(small.bytecode.get(big), undefined)
  t.equal((await call(small, { language: 'python', code: 'return 7', input: '{}' })).result?.data, '7')
  t.ok(small.bytecode.get('return 7') !== undefined, 'a small one is kept')
})

t.test('whether fresh sandboxes are forked ready to compile follows what their first calls lately did', async (t) => {
  const { BytecodeCache } = await import('../daemon/sandbox/bytecode-cache.js')
  const cache = new BytecodeCache()
  t.ok(cache.compiles, 'nothing seen: ready to compile, as every child was before the split')
  for (let i = 0; i < 5; i++) cache.firstCall(false)
  t.ok(cache.compiles, 'a few loads do not turn it')
  for (let i = 0; i < 5; i++) cache.firstCall(false)
  t.notOk(cache.compiles, 'ten first calls that loaded bytecode: children are forked without the compile\'s pages')
  for (let i = 0; i < 6; i++) cache.firstCall(true)
  t.ok(cache.compiles, 'then six that compiled: with them again')
})
