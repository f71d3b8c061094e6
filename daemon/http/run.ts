// POST /run/*path and POST /run-now: run code in a sandbox, answer JSON or SSE.
import { requirePath } from '../auth/index.js'
import { asHearthError } from '../errors.js'
import { checkRequest } from '../openapi/requests.js'
import { parseDependencies } from '../packages/index.js'
import type { Language } from '../config.js'
import { resultBody } from '../result.js'
import type { HttpDeps } from './deps.js'
import type { Exchange } from './exchange.js'
import { parseCode, parseInput, parseJsonBody, parseLanguage, parseStream, parseTimeout, parseVersion, pathFromUrl } from './validate.js'

interface Execution {
  readonly language: Language
  readonly code: string
  readonly input: string
  readonly timeoutMs: number
  readonly stream: boolean
  readonly functionKey?: string
  /** headers of a successful answer (X-Hearth-Stale) */
  readonly headers?: Record<string, string>
  /** the function's packages (daemon/packages) */
  readonly layer?: string
}

/** Bodies may carry code and input with JSON escaping: room for both, doubled. */
export function bodyLimit (deps: HttpDeps): number {
  return 2 * (deps.config.codeMaxSize + deps.config.inputMaxSize) + 65536
}

export async function runNow (x: Exchange, body: Promise<Buffer>, deps: HttpDeps): Promise<void> {
  const fields = parseJsonBody(await body)
  checkRequest('RunNow', fields)
  const language = parseLanguage(fields.language)
  x.logFields.language = language
  const code = parseCode(fields.code, deps.config)
  const input = parseInput(fields.input, deps.config)
  const timeoutMs = parseTimeout(fields.timeout, deps.config)
  const stream = parseStream(fields.stream)
  const wanted = parseDependencies(fields.dependencies, language)
  const lease = wanted === null ? undefined : await deps.packages.forRunNow(wanted)
  try {
    await execute(x, deps, { language, code, input, timeoutMs, stream, layer: lease?.dir })
  } finally {
    lease?.release()
  }
}

export async function runStored (x: Exchange, body: Promise<Buffer>, deps: HttpDeps): Promise<void> {
  const path = pathFromUrl(x.url, '/run/')
  requirePath(x.principal, path)
  const version = parseVersion(x.query)
  const fields = parseJsonBody(await body, true)
  checkRequest('Run', fields)
  const input = parseInput(fields.input, deps.config)
  const timeoutMs = parseTimeout(fields.timeout, deps.config)
  const stream = parseStream(fields.stream)
  const fn = await deps.store.resolve(path, version)
  Object.assign(x.logFields, { function: path, version: fn.version, language: fn.language })
  const headers = fn.staleSeconds === undefined ? undefined : { 'X-Hearth-Stale': String(fn.staleSeconds) }
  if (headers !== undefined) x.logFields.staleSeconds = fn.staleSeconds
  // Its packages' layer: here, or built from the version's lock first (another daemon uploaded it).
  const lease = fn.dependencies === undefined ? undefined : await deps.packages.ensure(fn.dependencies, async () => await deps.store.lock(path, fn.version))
  try {
    await execute(x, deps, { language: fn.language, code: fn.code, input, timeoutMs, stream, functionKey: `${path}@${fn.version}`, headers, layer: lease?.dir })
  } finally {
    lease?.release() // a sandbox kept warm with it keeps it in use (Runner.layersInUse)
  }
}

async function execute (x: Exchange, deps: HttpDeps, e: Execution): Promise<void> {
  if (x.aborted) return
  if (e.stream) x.startStream(e.headers)
  try {
    const result = await deps.runner.run({
      language: e.language,
      code: e.code,
      input: e.input,
      timeoutMs: e.timeoutMs,
      functionKey: e.functionKey,
      layer: e.layer,
      signal: x,
      onLog: e.stream
        ? (stream, line) => x.event(stream === 'stdout' ? { event: 'log', data: line, type: 'text' } : { event: 'log', data: line, type: 'text', stream })
        : undefined
    })
    if (e.stream) {
      x.rawEvent(`{"event":"result","data":${result.data},"type":"${result.type}"}`)
      x.end()
    } else {
      x.json(200, resultBody(result), result.logsTruncated ? { ...e.headers, 'X-Hearth-Logs-Truncated': '1' } : (e.headers ?? {}))
    }
  } catch (err) {
    x.error(asHearthError(err))
  }
}
