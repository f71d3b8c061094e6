// Request bodies and parameters → typed values, or a 4xx naming the field.
import { isUtf8 } from 'node:buffer'
import { LANGUAGES, type Config, type Language } from '../config.js'
import { HearthError, invalidField } from '../errors.js'

export const PATH_MAX = 256

export function parseJsonBody (body: Buffer, optional = false): Record<string, unknown> {
  if (body.length === 0 && optional) return {}
  // toString() would turn invalid bytes into U+FFFD silently: the caller's
  // code or input would not be what it sent.
  if (!isUtf8(body)) throw new HearthError('invalid_json', 'request body is not valid UTF-8')
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw new HearthError('invalid_json', `request body is not valid JSON: ${(err as Error).message}`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HearthError('invalid_json', 'request body must be a JSON object')
  }
  return value as Record<string, unknown>
}

/** A function path: as go-faas (no `..`), plus a bounded length and a plain charset. */
export function validatePath (raw: unknown, field = 'path'): string {
  if (typeof raw !== 'string') throw invalidField(field, 'must be a string')
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw invalidField(field, 'must not contain control characters')
  const path = raw.replace(/^\/+|\/+$/g, '')
  if (path === '') throw invalidField(field, 'must not be empty')
  if (path.split('/').some((s) => s === '..')) throw invalidField(field, "must not contain '..'")
  if (path.length > PATH_MAX) throw invalidField(field, `must be at most ${PATH_MAX} characters`)
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(path) || path.split('/').some((s) => s === '.')) {
    throw invalidField(field, 'may only contain letters, digits, _ . - and single / between segments')
  }
  return path
}

/** The path after a route prefix, percent-decoded. */
export function pathFromUrl (url: string, prefix: string): string {
  let raw: string
  try {
    raw = decodeURIComponent(url.slice(prefix.length))
  } catch {
    throw invalidField('path', 'is not valid percent-encoding')
  }
  return validatePath(raw)
}

export function parseLanguage (raw: unknown): Language {
  if (raw === undefined || raw === null || raw === '') throw invalidField('language', 'is required')
  if (typeof raw !== 'string' || !(LANGUAGES as readonly string[]).includes(raw)) {
    throw invalidField('language', `must be one of ${LANGUAGES.join(', ')}`)
  }
  return raw as Language
}

/** Where a string holds half of a UTF-16 surrogate pair (from a \uD800-style JSON escape): not Unicode text. */
function loneSurrogate (s: string): number {
  if (s.isWellFormed()) return -1
  const m = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(s)
  return m?.index ?? -1
}

export function parseCode (raw: unknown, config: Config): string {
  if (raw === undefined || raw === null) throw invalidField('code', 'is required')
  if (typeof raw !== 'string') throw invalidField('code', 'must be a string')
  if (raw.trim() === '') throw invalidField('code', 'must not be empty')
  const at = loneSurrogate(raw)
  if (at !== -1) {
    const unit = raw.charCodeAt(at).toString(16).toUpperCase()
    throw invalidField('code', `is not valid Unicode text: a lone surrogate (U+${unit}) at character ${at}`)
  }
  const size = Buffer.byteLength(raw)
  if (size > config.codeMaxSize) {
    throw new HearthError('code_too_large', `code is ${size} bytes, over CODE_MAX_SIZE (${config.codeMaxSize})`, { field: 'code', limit: config.codeMaxSize })
  }
  return raw
}

/**
 * Whether a parsed JSON value nests arrays and objects more than `levels`
 * deep; its recursion stops there. It visits values, not characters: a
 * character scan of the text took 2.7 ms of a 1 MB input's call, most of it
 * inside strings.
 */
export function nestedDeeper (value: object, levels: number): boolean {
  if (levels === 0) return true
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    if (item !== null && typeof item === 'object' && nestedDeeper(item, levels - 1)) return true
  }
  return false
}

/**
 * Raw lone surrogates inside JSON text (a caller's "\uD800" escape, unescaped
 * by the request body's own parse) written back as escapes: the text stays the
 * same JSON, and becomes UTF-8 that every runtime decodes. Each runtime then
 * holds the lone surrogate as its JSON decoder gives it.
 */
function escapeLoneSurrogates (text: string): string {
  if (text.isWellFormed()) return text
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16)}`)
}

/**
 * The input as JSON text. go-faas sends a JSON string holding JSON text; any
 * other JSON value is taken as the input itself. Absent or "" means {}.
 */
export function parseInput (raw: unknown, config: Config): string {
  if (raw === undefined || raw === null || raw === '') return '{}'
  let text: string
  if (typeof raw === 'string') {
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch {
      throw invalidField('input', 'must be JSON text when it is a string (go-faas style), e.g. "{\\"a\\": 1}"')
    }
    text = checkSize(raw, config)
    checkDepth(value, config)
  } else {
    checkDepth(raw, config) // before JSON.stringify, which recurses (measured: the stack is gone near 5,000 levels)
    text = checkSize(JSON.stringify(raw), config)
  }
  return escapeLoneSurrogates(text)
}

function checkSize (text: string, config: Config): string {
  if (Buffer.byteLength(text) > config.inputMaxSize) {
    throw new HearthError('input_too_large', `input is over INPUT_MAX_SIZE (${config.inputMaxSize} bytes)`, { field: 'input', limit: config.inputMaxSize })
  }
  return text
}

function checkDepth (value: unknown, config: Config): void {
  if (value !== null && typeof value === 'object' && nestedDeeper(value, config.inputMaxDepth)) {
    throw new HearthError('invalid_field', `input is nested deeper than INPUT_MAX_DEPTH (${config.inputMaxDepth} levels of arrays and objects)`, { field: 'input', limit: config.inputMaxDepth })
  }
}

/** Idempotency-Key: 1-255 printable ASCII characters (the IETF draft's shape), or absent. */
export function parseIdempotencyKey (raw: string): string | undefined {
  if (raw === '') return undefined
  if (raw.length > 255 || !/^[\x21-\x7e]+$/.test(raw)) throw invalidField('Idempotency-Key', 'must be 1 to 255 printable ASCII characters without spaces')
  return raw
}

export function parseStream (raw: unknown): boolean {
  if (raw === undefined || raw === null) return false
  if (typeof raw !== 'boolean') throw invalidField('stream', 'must be true or false')
  return raw
}

/** Per-call timeout in seconds, capped by TIMEOUT_SCRIPT; returns milliseconds. */
export function parseTimeout (raw: unknown, config: Config): number {
  if (raw === undefined || raw === null) return config.timeoutMs
  if (typeof raw !== 'number' || !Number.isFinite(raw) || raw <= 0) throw invalidField('timeout', 'must be a positive number of seconds')
  return Math.min(Math.ceil(raw * 1000), config.timeoutMs)
}

/** ?version=N: absent means latest; anything but a positive integer is a 400, never "latest". */
export function parseVersion (query: string): number | undefined {
  const params = new URLSearchParams(query)
  if (!params.has('version')) return undefined
  const raw = params.get('version') ?? ''
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n <= 0) {
    throw new HearthError('invalid_version', `version must be a positive integer (got ${JSON.stringify(raw)})`, { field: 'version' })
  }
  return n
}

export function parseLimit (query: string, max: number): { cursor: string, limit: number } {
  const params = new URLSearchParams(query)
  const raw = params.get('limit')
  let limit = 100
  if (raw !== null) {
    limit = Number(raw)
    if (!/^\d+$/.test(raw) || limit < 1 || limit > max) throw invalidField('limit', `must be an integer from 1 to ${max}`)
  }
  return { cursor: params.get('cursor') ?? '', limit }
}
