// POST /upload and the function listing / inspection / deletion routes.
import { requirePath } from '../auth/index.js'
import { prepare } from '../compile/index.js'
import { checkRequest } from '../openapi/requests.js'
import { parseDependencies } from '../packages/index.js'
import type { HttpDeps } from './deps.js'
import type { Exchange } from './exchange.js'
import { parseCode, parseIdempotencyKey, parseJsonBody, parseLanguage, parseLimit, parseStream, parseVersion, pathFromUrl, validatePath } from './validate.js'

export async function upload (x: Exchange, body: Promise<Buffer>, deps: HttpDeps): Promise<void> {
  const fields = parseJsonBody(await body)
  checkRequest('Upload', fields)
  const path = validatePath(fields.path)
  requirePath(x.principal, path)
  const language = parseLanguage(fields.language)
  const code = parseCode(fields.code, deps.config)
  const wanted = parseDependencies(fields.dependencies, language)
  // JavaScript and TypeScript that do not parse are refused now, with the
  // compiler's message and position; the compiled output is cached for the runs.
  await prepare(language, code)
  // Answered once the layer is built; a failed build stores nothing (422
  // dependency_error). "stream": true sends npm's output as it comes first.
  const stream = parseStream(fields.stream)
  if (stream && wanted !== null) x.startStream()
  const built = wanted === null ? null : await deps.packages.install(wanted, stream ? (line) => x.event({ event: 'log', data: line, type: 'text' }) : undefined)
  const packages = built === null || wanted === null ? undefined : { dependencies: { requested: wanted, resolved: built.resolved, layer: built.hash }, lock: built.lock }
  const meta = await deps.store.upload(path, language, code, parseIdempotencyKey(x.idempotencyKey), packages)
  Object.assign(x.logFields, { function: path, version: meta.version, language, ...(meta.replayed ? { replayed: true } : {}) })
  if (!meta.replayed) x.audit('function.upload', { function: path, version: meta.version, language, sha256: meta.sha256 })
  const answer = JSON.stringify({ path, language, version: meta.version, size: meta.size, sha256: meta.sha256, created: meta.created, ...(packages === undefined ? {} : { dependencies: packages.dependencies }) })
  if (x.streaming) {
    x.rawEvent(`{"event":"result","data":${answer},"type":"json"}`)
    x.end()
    return
  }
  x.json(200, answer, meta.replayed ? { 'Idempotent-Replayed': 'true' } : {})
}

export async function list (x: Exchange, deps: HttpDeps): Promise<void> {
  const { cursor, limit } = parseLimit(x.query, 1000)
  const page = await deps.store.list(cursor, limit, x.principal.prefix) // a key sees its own prefix only
  x.json(200, JSON.stringify({ functions: page.functions, next_cursor: page.next }))
}

export async function show (x: Exchange, deps: HttpDeps): Promise<void> {
  const path = pathFromUrl(x.url, '/functions/')
  requirePath(x.principal, path)
  const version = parseVersion(x.query)
  if (version !== undefined) { // one version, with its code (the console opens it)
    const fn = await deps.store.resolve(path, version)
    x.json(200, JSON.stringify({ path, version: fn.version, language: fn.language, size: fn.size, sha256: fn.sha256, created: fn.created, ...(fn.dependencies === undefined ? {} : { dependencies: fn.dependencies }), code: fn.code }))
    return
  }
  const versions = await deps.store.versions(path)
  x.json(200, JSON.stringify({ path, latest: versions.at(-1)?.version, versions }))
}

export async function remove (x: Exchange, deps: HttpDeps): Promise<void> {
  const path = pathFromUrl(x.url, '/functions/')
  requirePath(x.principal, path)
  const version = parseVersion(x.query)
  const deleted = await deps.store.delete(path, version)
  Object.assign(x.logFields, { function: path, version })
  x.audit('function.delete', { function: path, version: version ?? 'all', deleted })
  x.json(200, JSON.stringify({ path, deleted }))
}
