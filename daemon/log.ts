import pino, { type Logger } from 'pino'

export type { Logger }

/**
 * JSON lines on stdout. Asynchronous writes: one request log line per call must
 * not cost a blocking write(2) on the hot path; main.ts flushes before exit.
 */
export function createLogger (level: string): Logger {
  return pino({ level, base: { name: 'hearth' } }, pino.destination({ dest: 1, sync: false }))
}

export async function flushLogger (log: Logger): Promise<void> {
  await new Promise<void>((resolve) => log.flush(() => resolve()))
}
