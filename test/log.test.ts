// The daemon's log: JSON lines written in batches (a thread-pool write per
// request line costs two wakeups), none held longer than LOG_HOLD_MS,
// everything out, in order, at a flush; nothing written while idle.
import fs, { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createLogger, flushLogger, flushLoggerSync, LOG_HOLD_MS } from '../daemon/log.js'

/** A logger on a file of its own, and a count of the writes made to it. */
function fileLogger (t: Test): { log: ReturnType<typeof createLogger>, lines: () => Array<Record<string, unknown>>, writes: () => number } {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-log-'))
  const file = join(dir, 'log')
  const fd = openSync(file, 'w')
  let writes = 0
  const write = fs.write
  // sonic-boom (under pino.destination) writes through this module's fs.write
  fs.write = ((...args: Parameters<typeof fs.write>) => {
    if (args[0] === fd) writes++
    return (write as (...a: unknown[]) => void)(...args)
  }) as typeof fs.write
  t.teardown(() => {
    fs.write = write
    closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  })
  const log = createLogger('info', fd)
  const lines = (): Array<Record<string, unknown>> =>
    readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
  return { log, lines, writes: () => writes }
}

async function until (what: string, ok: () => boolean, timeoutMs = 5000): Promise<number> {
  const started = Date.now()
  while (!ok()) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(2)
  }
  return Date.now() - started
}

t.test('lines logged a few ms apart go out together, in a write or two, not one write each', async (t) => {
  const { log, lines, writes } = fileLogger(t)
  const started = Date.now()
  for (let i = 0; i < 20; i++) {
    log.info({ i }, 'request')
    await sleep(4) // a caller's pace: each line alone would have been written by now
  }
  const windows = Math.ceil((Date.now() - started) / LOG_HOLD_MS) // ~1, more on a loaded machine
  await flushLogger(log)
  t.same(lines().map((l) => l.i), [...Array(20).keys()], 'every line, in order')
  t.ok(writes() <= windows + 1, `${writes()} writes for 20 lines logged over ${windows} hold windows`)
})

t.test('a line waits at most LOG_HOLD_MS, then goes out without anything else logged', async (t) => {
  const { log, lines } = fileLogger(t)
  const started = Date.now()
  log.info('hearth listening')
  await until('the line is written', () => lines().length === 1)
  const waited = Date.now() - started
  t.ok(waited >= LOG_HOLD_MS * 0.9, `held ${waited} ms (a batch fills or LOG_HOLD_MS passes)`)
  t.ok(waited < LOG_HOLD_MS + 1000, `but written after ${waited} ms`)
})

t.test('an idle logger writes nothing (no periodic empty writes)', async (t) => {
  const { log, writes } = fileLogger(t)
  log.info('one')
  await flushLogger(log)
  const after = writes()
  await sleep(LOG_HOLD_MS * 4) // an absence is what is tested: nothing may come in this window
  t.equal(writes(), after)
})

t.test('flushLoggerSync writes what waits before a forced exit', async (t) => {
  const { log, lines } = fileLogger(t)
  log.warn('second signal: exiting now')
  log.error('the stop overran')
  flushLoggerSync(log)
  t.same(lines().map((l) => l.msg), ['second signal: exiting now', 'the stop overran'])
})
