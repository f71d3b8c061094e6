// go-faas's result typing: {data, type} with type string | number | json | text.
import type { Outcome } from './sandbox/sandbox.js'

export type ResultType = 'string' | 'number' | 'json' | 'text'

export interface TypedResult {
  readonly data: string // JSON text of `data`
  readonly type: ResultType
}

function typeOfJson (json: string): ResultType {
  const c = json.trimStart()[0]
  if (c === '"') return 'string'
  if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return 'number'
  return 'json'
}

/**
 * A returned value keeps its JSON type. Otherwise the last non-empty stdout line
 * is the result: typed by its JSON value when it parses, else plain text.
 */
export function typeResult (outcome: Pick<Outcome, 'json' | 'stdout'>): TypedResult {
  if (outcome.json !== undefined) return { data: outcome.json, type: typeOfJson(outcome.json) }
  const line = (outcome.stdout ?? '').trim()
  if (line !== '') {
    try {
      JSON.parse(line)
      return { data: line, type: typeOfJson(line) }
    } catch {}
  }
  return { data: JSON.stringify(line), type: 'text' }
}

/** The go-faas response body, built without re-encoding the result. */
export function resultBody (r: TypedResult): string {
  return `{"data":${r.data},"type":"${r.type}"}`
}
