// TypeScript as written in a file: esbuild (the engine under tsx) compiles the
// whole module, so namespaces, type-only imports, `import x = require()` and
// both kinds of decorators are what they are at the top of a .ts file. A
// module refuses a top-level `return`: each one esbuild reports is masked as a
// `throw` of the same length, and turned back into `return` in the output,
// found through the source map.
import { SourceMap } from 'node:module'
import { transform, type Location, type Message } from 'esbuild'
import { functionScript, parseJs, visit, type Edit } from './javascript.js'

/** A comment that gives a function TC39 standard decorators instead of legacy ones. */
export const STANDARD_DECORATORS = /^\s*\/\/\s*hearth:\s*decorators\s*=\s*standard\s*$/m

export interface CompiledTs { readonly script: string, readonly map: SourceMap }

/** A compile error at the user's position (line and column 1-based). */
export class TsFailure extends Error {
  constructor (readonly m: Message | undefined) { super(m?.text ?? 'syntax error') }
}

interface Mask { readonly line: number, readonly column: number, readonly bare: boolean }

const TOP_LEVEL_RETURN = /Top-level return/

export async function compileTs (code: string): Promise<CompiledTs> {
  const masks: Mask[] = []
  let source = code
  for (;;) {
    try {
      const out = await transform(source, {
        loader: 'ts',
        sourcefile: 'function.ts',
        sourcemap: 'external',
        target: 'node20',
        logLevel: 'silent',
        // Legacy (experimentalDecorators) unless the code asks for standard ones (README, "TypeScript").
        tsconfigRaw: { compilerOptions: { experimentalDecorators: !STANDARD_DECORATORS.test(code) } }
      })
      const map = new SourceMap(JSON.parse(out.map))
      const parsed = parseJs(out.code)
      return { script: functionScript(out.code, parsed, unmask(out.code, parsed.program, map, masks)), map }
    } catch (err) {
      const errors = (err as { errors?: Message[] }).errors
      if (errors === undefined) throw err
      const returns = errors.filter((m) => TOP_LEVEL_RETURN.test(m.text) && m.location !== null)
      if (returns.length === 0) throw new TsFailure(errors[0])
      for (const m of returns) {
        const masked = mask(source, m.location as Location)
        if (masked === null) throw new TsFailure(m)
        source = masked.source
        masks.push(masked.mask)
      }
    }
  }
}

/** `return x` → `throw  x` (same length); a bare `return` → `throw 0`. */
function mask (source: string, loc: Location): { source: string, mask: Mask } | null {
  const lines = source.split('\n')
  const text = lines[loc.line - 1] ?? ''
  // esbuild's column counts bytes; the nearest `return` on the line is the one.
  let column = -1
  for (let i = text.indexOf('return'); i !== -1; i = text.indexOf('return', i + 1)) {
    if (column === -1 || Math.abs(i - loc.column) < Math.abs(column - loc.column)) column = i
  }
  if (column === -1) return null
  const rest = text.slice(column + 6)
  const bare = /^\s*(;|}|$|\/\/)/.test(rest)
  lines[loc.line - 1] = text.slice(0, column) + (bare ? 'throw 0' : 'throw ') + rest
  return { source: lines.join('\n'), mask: { line: loc.line - 1, column, bare } }
}

/** Edits turning each masked `throw` of the output back into `return`. */
function unmask (js: string, program: Parameters<typeof visit>[0], map: SourceMap, masks: readonly Mask[]): Edit[] {
  if (masks.length === 0) return []
  const lineStarts = [0]
  for (let i = js.indexOf('\n'); i !== -1; i = js.indexOf('\n', i + 1)) lineStarts.push(i + 1)
  const edits: Edit[] = []
  visit(program, (n) => {
    if (/Function|Class/.test(n.type)) return false // their own returns are their own
    if (n.type !== 'ThrowStatement') return true
    const arg = (n as unknown as { argument: { start: number, end: number } }).argument
    let line = 0
    while (line + 1 < lineStarts.length && (lineStarts[line + 1] as number) <= n.start) line++
    const entry = map.findEntry(line, n.start - (lineStarts[line] as number)) as { originalLine?: number, originalColumn?: number }
    const m = masks.find((k) => k.line === entry.originalLine && k.column === entry.originalColumn)
    if (m === undefined) return true
    edits.push(m.bare ? { start: n.start, end: arg.end, text: 'return' } : { start: n.start, end: arg.start, text: 'return ' })
    return false
  })
  return edits
}
