// JavaScript as written in a file, run as the body of an async function: what
// gives a top-level `return` and `await` their go-faas meaning. acorn parses the
// code as it is (a script, or a module when it has import / export); static
// imports become dynamic ones hoisted onto the function's own line, export
// keywords are blanked, so every other character keeps its line and column.
import { parse, type Node, type Program, type ImportDeclaration, type ImportAttribute } from 'acorn'

/** Line 0 of every script the node bootstrap runs; the user's line 1 is line 1. */
export const FUNCTION_LINE = '(async function (event, input) {'
export const FUNCTION_END = '\n})'
/** What `import.meta` becomes: a global of the bootstrap, exactly as long. */
export const IMPORT_META = '$hearthMeta'

export interface Parsed {
  readonly program: Program
  /** import / export / import.meta: run as a module would (strict mode) */
  readonly module: boolean
}

/** Where the code stops parsing, in the user's coordinates (line 1-based, column 1-based). */
export class ParseFailure extends Error {
  constructor (message: string, readonly line: number, readonly column: number) { super(message) }
}

export interface Edit { readonly start: number, readonly end: number, readonly text: string }

const BASE = { ecmaVersion: 'latest', allowReturnOutsideFunction: true, allowAwaitOutsideFunction: true, allowHashBang: true } as const

/**
 * A script first (sloppy mode, as go-faas ran code), a module when the code
 * needs one; when neither parses, the error of the parse that got further.
 */
export function parseJs (code: string): Parsed {
  let scriptError: unknown
  try {
    return { program: parse(code, { ...BASE, sourceType: 'script' }), module: false }
  } catch (err) { scriptError = err }
  try {
    const program = parse(code, { ...BASE, sourceType: 'module' })
    return { program, module: usesModuleSyntax(program) }
  } catch (moduleError) {
    throw failure(reachOf(moduleError) > reachOf(scriptError) ? moduleError : scriptError)
  }
}

function reachOf (err: unknown): number {
  return (err as { raisedAt?: number }).raisedAt ?? (err as { pos?: number }).pos ?? -1
}

function failure (err: unknown): Error {
  const loc = (err as { loc?: { line: number, column: number } }).loc
  if (loc === undefined) return err as Error
  return new ParseFailure((err as Error).message.replace(/ \(\d+:\d+\)$/, ''), loc.line, loc.column + 1)
}

function usesModuleSyntax (program: Program): boolean {
  if (program.body.some((n) => n.type.startsWith('Import') || n.type.startsWith('Export'))) return true
  let meta = false
  visit(program, (n) => { if (n.type === 'MetaProperty') meta = true; return !meta })
  return meta
}

/** Depth-first over every node; `enter` returning false skips a node's children. */
export function visit (node: Node, enter: (n: Node) => boolean): void {
  if (!enter(node)) return
  for (const value of Object.values(node)) {
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) visit(item, enter)
    } else if (isNode(value)) visit(value, enter)
  }
}

function isNode (v: unknown): v is Node {
  return v !== null && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string'
}

/** The script the bootstrap runs: FUNCTION_LINE (+ hoisted imports), a newline, the code, FUNCTION_END. */
export function functionScript (code: string, parsed: Parsed, extra: readonly Edit[] = []): string {
  const edits: Edit[] = [...extra]
  const hoisted: string[] = parsed.module ? ["'use strict';"] : []
  for (const node of parsed.program.body) {
    switch (node.type) {
      case 'ImportDeclaration':
        hoisted.push(importStatement(node))
        edits.push(blank(code, node.start, node.end))
        break
      case 'ExportNamedDeclaration':
      case 'ExportAllDeclaration':
        if (node.type === 'ExportNamedDeclaration' && node.declaration != null) {
          edits.push(blank(code, node.start, node.declaration.start)) // `export const x` runs as `const x`
        } else {
          if (node.source != null) hoisted.push(`await import(${JSON.stringify(node.source.value)});`)
          edits.push(blank(code, node.start, node.end))
        }
        break
      case 'ExportDefaultDeclaration': {
        const d = node.declaration
        const named = (d.type === 'FunctionDeclaration' || d.type === 'ClassDeclaration') && d.id != null
        // `export default expr` runs as `void expr`: evaluated, as a module would.
        edits.push(named ? blank(code, node.start, d.start) : { ...blank(code, node.start, d.start), text: 'void' + blank(code, node.start + 4, d.start).text })
        break
      }
    }
  }
  visit(parsed.program, (n) => {
    if (n.type === 'MetaProperty' && code.slice(n.start, n.end) === 'import.meta') edits.push({ start: n.start, end: n.end, text: IMPORT_META })
    return true
  })
  return FUNCTION_LINE + hoisted.join(' ') + '\n' + applyEdits(code, edits) + FUNCTION_END
}

function importStatement (node: ImportDeclaration): string {
  const source = JSON.stringify(node.source.value)
  const attrs = (node.attributes ?? []) as ImportAttribute[]
  const options = attrs.length === 0
    ? ''
    : `, { with: { ${attrs.map((a) => `${JSON.stringify(keyName(a.key))}: ${JSON.stringify(a.value.value)}`).join(', ')} } }`
  const load = `await import(${source}${options})`
  const names: string[] = []
  let namespace: string | null = null
  for (const s of node.specifiers) {
    if (s.type === 'ImportNamespaceSpecifier') namespace = s.local.name
    else if (s.type === 'ImportDefaultSpecifier') names.push(`default: ${s.local.name}`)
    else names.push(`${JSON.stringify(keyName(s.imported))}: ${s.local.name}`)
  }
  if (namespace !== null) return `const ${namespace} = ${load};` + (names.length > 0 ? ` const { ${names.join(', ')} } = ${namespace};` : '')
  return names.length > 0 ? `const { ${names.join(', ')} } = ${load};` : `${load};`
}

function keyName (n: Node): string {
  return n.type === 'Identifier' ? (n as unknown as { name: string }).name : String((n as unknown as { value: unknown }).value)
}

/** Spaces in place of a range, its newlines kept: nothing after it moves. */
function blank (code: string, start: number, end: number): Edit {
  return { start, end, text: code.slice(start, end).replace(/[^\n\r\u2028\u2029]/g, ' ') }
}

export function applyEdits (code: string, edits: readonly Edit[]): string {
  let out = ''
  let at = 0
  for (const e of [...edits].sort((a, b) => a.start - b.start)) {
    out += code.slice(at, e.start) + e.text
    at = e.end
  }
  return out + code.slice(at)
}
