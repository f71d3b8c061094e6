// Turns a language + code into what a bootstrap runs, once per code hash:
// Python as written; JavaScript wrapped in an async function; TypeScript wrapped,
// then compiled by esbuild (the engine under tsx) with a source map for stacks.
import { createHash } from 'node:crypto'
import { SourceMap } from 'node:module'
import { transform, type Message } from 'esbuild'
import type { Language } from './config.js'
import { HearthError } from './errors.js'

export interface Prepared {
  readonly language: Language
  readonly key: string // sha256 of language + code: what a warm sandbox has loaded
  readonly code: string // what the bootstrap receives
  readonly filename: string
  readonly sourceMap: SourceMap | null
}

// On the same line as the user's first line, so line numbers stay the user's.
const PREFIX = '(async function (event, input) {'
const TS_PREFIX = '(async function (event: any, input: any) {'
const SUFFIX = '\n})'
const FILENAMES: Record<Language, string> = { python: 'function.py', javascript: 'function.js', typescript: 'function.ts' }

export function codeKey (language: Language, code: string): string {
  return createHash('sha256').update(language).update('\0').update(code).digest('hex')
}

function syntaxError (language: Language, m: Message | undefined, prefixLength: number, code: string): HearthError {
  const loc = m?.location
  let line = loc?.line
  let column = loc == null ? undefined : (loc.line === 1 ? loc.column - prefixLength : loc.column) + 1
  let lineText = loc == null ? undefined : (loc.line === 1 ? loc.lineText.slice(prefixLength) : loc.lineText)
  const lines = code.split('\n')
  if (line !== undefined && line > lines.length) {
    // The parser ran into our closing `})`: the user's code ended too early.
    line = lines.length
    lineText = lines[line - 1] ?? ''
    column = lineText.length + 1
  }
  const where = line === undefined ? '' : ` (${FILENAMES[language]}:${line}:${column})`
  return new HearthError('syntax_error', `${m?.text ?? 'syntax error'}${where}`, { line, column, lineText })
}

async function compileScript (language: 'javascript' | 'typescript', code: string): Promise<{ js: string, map: SourceMap | null }> {
  const prefix = language === 'typescript' ? TS_PREFIX : PREFIX
  const wrapped = prefix + code + SUFFIX
  try {
    const out = await transform(wrapped, {
      loader: language === 'typescript' ? 'ts' : 'js',
      sourcefile: FILENAMES[language],
      sourcemap: language === 'typescript' ? 'external' : false,
      target: 'node20',
      logLevel: 'silent'
    })
    // JavaScript runs as written (its positions are already the user's); esbuild
    // only checked that it parses. TypeScript runs as compiled.
    if (language === 'javascript') return { js: wrapped, map: null }
    return { js: out.code, map: new SourceMap(JSON.parse(out.map)) }
  } catch (err) {
    const errors = (err as { errors?: Message[] }).errors
    if (errors === undefined) throw err
    throw syntaxError(language, errors[0], prefix.length, code)
  }
}

// Keyed by the code string itself, one Map per language: a stored function's
// code is the same string object on every call, and V8 caches a string's hash,
// so a hit costs no hashing of the code at all.
const caches = new Map<Language, Map<string, Prepared>>()
const CACHE_MAX = 1024

/** Compiled once per code; throws HearthError('syntax_error') for JS/TS that does not parse. */
export async function prepare (language: Language, code: string): Promise<Prepared> {
  let cache = caches.get(language)
  if (cache === undefined) caches.set(language, cache = new Map())
  const hit = cache.get(code)
  if (hit !== undefined) return hit
  const key = codeKey(language, code)
  let prepared: Prepared
  if (language === 'python') {
    prepared = { language, key, code, filename: FILENAMES.python, sourceMap: null }
  } else {
    const { js, map } = await compileScript(language, code)
    prepared = { language, key, code: js, filename: FILENAMES[language], sourceMap: map }
  }
  cache.set(code, prepared)
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value as string) // oldest first
  return prepared
}

/** Rewrites function.ts:L:C positions of a compiled TypeScript stack to the user's source. */
export function mapStack (prepared: Prepared, stack: string): string {
  const map = prepared.sourceMap
  if (map === null) return stack
  return stack.replace(/function\.ts:(\d+):(\d+)/g, (whole, line: string, col: string) => {
    const entry = map.findEntry(Number(line) - 1, Number(col) - 1) as { originalLine?: number, originalColumn?: number }
    if (entry.originalLine === undefined || entry.originalColumn === undefined) return whole
    const column = entry.originalLine === 0 ? entry.originalColumn - TS_PREFIX.length : entry.originalColumn
    return `function.ts:${entry.originalLine + 1}:${Math.max(column, 0) + 1}`
  })
}
