import pino, { type Logger } from 'pino'

export type { Logger }

type Destination = ReturnType<typeof pino.destination>
const destinations = new WeakMap<Logger, Destination>()

/**
 * JSON lines on stdout. Asynchronous writes: one request log line per call must
 * not cost a blocking write(2) on the hot path; main.ts flushes before it exits
 * (flushLogger after a stop, flushLoggerSync before a forced exit).
 */
export function createLogger (level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: false })
  const log = pino({ level, base: { name: 'hearth' } }, destination)
  destinations.set(log, destination)
  return log
}

export async function flushLogger (log: Logger): Promise<void> {
  await new Promise<void>((resolve) => log.flush(() => resolve()))
}

/** Writes out what is buffered before process.exit(), which would drop it. */
export function flushLoggerSync (log: Logger): void {
  try {
    destinations.get(log)?.flushSync()
  } catch {} // stdout gone or full: nothing left to tell anyone
}
