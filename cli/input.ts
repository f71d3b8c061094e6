// Where a call's input and a function's code come from: --input JSON,
// --input-file FILE, or stdin when it is not a terminal (or either given `-`).
import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { UsageError } from './output.js'

const LANGUAGE_OF: Record<string, string> = { '.py': 'python', '.js': 'javascript', '.mjs': 'javascript', '.cjs': 'javascript', '.ts': 'typescript', '.mts': 'typescript' }

export function languageOf (file: string, given?: string): string {
  if (given !== undefined) return given
  const language = LANGUAGE_OF[extname(file)]
  if (language === undefined) throw new UsageError(`cannot tell the language of ${file} from its extension: give --language python|javascript|typescript`)
  return language
}

export function readCode (file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`)
  }
}

async function stdin (): Promise<string> {
  let text = ''
  process.stdin.setEncoding('utf8')
  for await (const chunk of process.stdin) text += chunk as string
  return text
}

/** The input as JSON text, or undefined for none. */
export async function readInput (opts: { input?: string, inputFile?: string }): Promise<unknown> {
  if (opts.input !== undefined && opts.inputFile !== undefined) throw new UsageError('give --input or --input-file, not both')
  const text = opts.input === '-' || opts.inputFile === '-'
    ? await stdin()
    : opts.input ?? (opts.inputFile !== undefined ? readCode(opts.inputFile) : process.stdin.isTTY ? undefined : await stdin())
  if (text === undefined || text.trim() === '') return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new UsageError(`the input is not JSON: ${(err as Error).message}`)
  }
}

/** `name@range` arguments (`@scope/name@range` too; a bare name means any version) as package.json's dependencies. */
export function dependenciesOf (specs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const spec of specs) {
    const at = spec.indexOf('@', 1)
    const name = at === -1 ? spec : spec.slice(0, at)
    if (name === '') throw new UsageError(`--dependency ${spec}: no package name`)
    out[name] = at === -1 ? '*' : spec.slice(at + 1)
  }
  return out
}
