// Turns a language + code into what a bootstrap runs, once per code: Python as
// written (the bootstrap compiles it as a module); JavaScript and TypeScript as
// a module's code inside an async function (javascript.ts, typescript.ts),
// TypeScript with a source map for its stacks.
import { createHash } from 'node:crypto'
import type { SourceMap } from 'node:module'
import type { Location } from 'esbuild'
import type { Language } from '../config.js'
import { HearthError } from '../errors.js'
import { ByteLru, textBytes } from '../lru.js'
import { functionScript, ParseFailure, parseJs } from './javascript.js'
import { compileTs, TsFailure } from './typescript.js'

export interface Prepared {
  readonly language: Language
  readonly key: string // sha256 of language + code: what a warm sandbox has loaded
  readonly code: string // what the bootstrap receives
  readonly filename: string
  readonly sourceMap: SourceMap | null
}

const FILENAMES: Record<Language, string> = { python: 'function.py', javascript: 'function.js', typescript: 'function.ts' }

export function codeKey (language: Language, code: string): string {
  return createHash('sha256').update(language).update('\0').update(code).digest('hex')
}

function syntaxError (language: Language, text: string, code: string, line?: number, column?: number): HearthError {
  if (line !== undefined) [line, column] = notPastTheEnd(code, line, column ?? 1)
  const where = line === undefined ? '' : ` (${FILENAMES[language]}:${line}:${column ?? 1})`
  const lineText = line === undefined ? undefined : code.split('\n')[line - 1] ?? ''
  return new HearthError('syntax_error', `${text}${where}`, { line, column, lineText })
}

/**
 * An error found at the end of the input (code that stops too early) is
 * placed just after its last non-blank character, not on a blank line below.
 */
function notPastTheEnd (code: string, line: number, column: number): [number, number] {
  const lines = code.split('\n')
  const rest = [(lines[line - 1] ?? '').slice(column - 1), ...lines.slice(line)].join('\n')
  if (rest.trim() !== '') return [line, column]
  const body = code.trimEnd().split('\n')
  return [Math.max(body.length, 1), (body.at(-1) ?? '').length + 1]
}

function fromEsbuild (code: string, text: string, loc: Location | null | undefined): HearthError {
  return syntaxError('typescript', text, code, loc?.line, loc == null ? undefined : loc.column + 1)
}

async function compile (language: 'javascript' | 'typescript', code: string): Promise<{ script: string, map: SourceMap | null }> {
  try {
    if (language === 'typescript') return await compileTs(code)
    return { script: functionScript(code, parseJs(code)), map: null }
  } catch (err) {
    if (err instanceof ParseFailure) throw syntaxError(language, err.message, code, err.line, err.column)
    if (err instanceof TsFailure) throw fromEsbuild(code, err.message, err.m?.location)
    throw err
  }
}

// Keyed by the code string itself, one cache per language: a stored
// function's code is the same string object on every call, and V8 caches a
// string's hash, so a hit costs no hashing of the code at all. Bounded by
// bytes (../lru.ts): 1,024 entries held up to ~1 GB of compiled TypeScript and
// its source maps, and more functions than that in rotation were compiled
// again on every call.
const caches = new Map<Language, ByteLru<string, Prepared>>()
const CACHE_BYTES = 16 << 20

/** What a prepared code is charged: its source and what runs, twice that with a source map. */
function charge (source: string, prepared: Prepared): number {
  return textBytes(source, prepared.code) * (prepared.sourceMap === null ? 1 : 2) + 1024
}

/** Compiled once per code; throws HearthError('syntax_error') for JS/TS that does not parse. */
export async function prepare (language: Language, code: string): Promise<Prepared> {
  let cache = caches.get(language)
  if (cache === undefined) caches.set(language, cache = new ByteLru(CACHE_BYTES))
  const hit = cache.get(code)
  if (hit !== undefined) return hit
  const key = codeKey(language, code)
  let prepared: Prepared
  if (language === 'python') {
    prepared = { language, key, code, filename: FILENAMES.python, sourceMap: null }
  } else {
    const { script, map } = await compile(language, code)
    prepared = { language, key, code: script, filename: FILENAMES[language], sourceMap: map }
  }
  cache.set(code, prepared, charge(code, prepared))
  return prepared
}

/**
 * Rewrites function.ts:L:C positions of a compiled TypeScript stack to the
 * user's source. The bootstrap counts the compiled module's first line as 1
 * (the function's own line is line 0), as the source map does.
 */
export function mapStack (prepared: Prepared, stack: string): string {
  const map = prepared.sourceMap
  if (map === null) return stack
  return stack.replace(/function\.ts:(\d+):(\d+)/g, (whole, line: string, col: string) => {
    if (Number(line) < 1) return whole
    const entry = map.findEntry(Number(line) - 1, Number(col) - 1) as { originalLine?: number, originalColumn?: number }
    if (entry.originalLine === undefined || entry.originalColumn === undefined) return whole
    return `function.ts:${entry.originalLine + 1}:${entry.originalColumn + 1}`
  })
}
