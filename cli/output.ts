// What the CLI prints: aligned tables for people, JSON with --json, errors as
// `code: message` on stderr. Exit codes scripts can rely on: 0 ok, 1 the call
// failed, 2 usage.
import { ApiError } from './client.js'

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

export function table (rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[]): string {
  const cells = rows.map((r) => columns.map((c) => r[c] === undefined || r[c] === null ? '-' : String(r[c])))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)))
  const line = (values: readonly string[]): string => values.map((v, i) => v.padEnd(widths[i] as number)).join('  ').trimEnd()
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n'
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/** An API error as `code: message (field: x)`; exit code 1. */
export function fail (err: unknown): never {
  if (err instanceof ApiError) {
    process.stderr.write(`${err.code}: ${err.message}${err.field === undefined ? '' : ` (field: ${err.field})`}\n`)
    process.exit(EXIT.failed)
  }
  if (err instanceof UsageError) {
    process.stderr.write(`usage: ${err.message}\n`)
    process.exit(EXIT.usage)
  }
  process.stderr.write(`error: ${(err as Error).message}\n`)
  process.exit(EXIT.failed)
}

export class UsageError extends Error {}
