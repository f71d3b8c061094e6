// Asynchronous calls: POST /run-async/*path, POST /run-now-async (202 once
// queued), GET /calls/{id}, GET /calls/{id}/logs, DELETE /calls/{id}.
import { requirePath, type Principal } from '../auth/index.js'
import { CALL_ID, documentOf } from '../async/index.js'
import { HearthError, invalidField } from '../errors.js'
import { checkRequest } from '../openapi/requests.js'
import type { HttpDeps } from './deps.js'
import type { Exchange } from './exchange.js'
import { parseCode, parseInput, parseJsonBody, parseLanguage, parseTimeout, parseVersion, pathFromUrl } from './validate.js'

async function callbackOf (fields: Record<string, unknown>, deps: HttpDeps): Promise<string | undefined> {
  if (fields.callback_url === undefined || fields.callback_url === null) return undefined
  if (deps.config.async.callbackSecret === '') throw invalidField('callback_url', 'cannot be used: this daemon has no CALLBACK_SECRET to sign callbacks with')
  const url = deps.async.policy.parse(fields.callback_url)
  await deps.async.policy.target(url) // refused now rather than when the call ends
  return url.href
}

function noStream (fields: Record<string, unknown>): void {
  if (fields.stream === true) throw invalidField('stream', 'is not available on asynchronous calls: read GET /calls/{id}/logs')
  if (fields.dependencies !== undefined && fields.dependencies !== null) throw invalidField('dependencies', 'are not available on /run-now-async yet: upload the function with them and call /run-async/{path}')
}

function accepted (x: Exchange, id: string): void {
  x.logFields.call = id
  x.json(202, JSON.stringify({ id, status_url: `/calls/${id}` }), { Location: `/calls/${id}` })
}

export async function runNowAsync (x: Exchange, body: Promise<Buffer>, deps: HttpDeps): Promise<void> {
  const fields = parseJsonBody(await body)
  checkRequest('RunNowAsync', fields)
  noStream(fields)
  const language = parseLanguage(fields.language)
  const id = await deps.async.enqueue({
    language,
    code: parseCode(fields.code, deps.config),
    input: parseInput(fields.input, deps.config),
    timeoutMs: parseTimeout(fields.timeout, deps.config),
    callbackUrl: await callbackOf(fields, deps),
    keyId: x.principal.id
  })
  x.logFields.language = language
  accepted(x, id)
}

export async function runAsync (x: Exchange, body: Promise<Buffer>, deps: HttpDeps): Promise<void> {
  const path = pathFromUrl(x.url, '/run-async/')
  requirePath(x.principal, path)
  const version = parseVersion(x.query)
  const fields = parseJsonBody(await body, true)
  checkRequest('RunAsync', fields)
  noStream(fields)
  const input = parseInput(fields.input, deps.config)
  const timeoutMs = parseTimeout(fields.timeout, deps.config)
  const callbackUrl = await callbackOf(fields, deps)
  // The version is fixed now: the call runs what was current when it was queued.
  const fn = await deps.store.resolve(path, version)
  const id = await deps.async.enqueue({ language: fn.language, function: path, version: fn.version, input, timeoutMs, callbackUrl, keyId: x.principal.id })
  Object.assign(x.logFields, { function: path, version: fn.version, language: fn.language })
  accepted(x, id)
}

/** /calls/{id}[/logs] → the id. */
function idFrom (url: string): { id: string, logs: boolean } {
  const rest = url.slice('/calls/'.length)
  const logs = rest.endsWith('/logs')
  return { id: logs ? rest.slice(0, -'/logs'.length) : rest, logs }
}

/** A call is seen by the key that queued it, and by an admin; with AUTH=off, by anyone. */
async function ownRecord (x: Exchange, deps: HttpDeps, id: string): Promise<Record<string, string>> {
  const r = await deps.async.calls.record(id)
  if (!mayTouch(x.principal, r, deps.auth.enabled)) throw new HearthError('call_not_found', `no call ${JSON.stringify(id)} (never queued, or its result expired after ASYNC_RESULT_TTL)`)
  return r
}

function mayTouch (p: Principal, r: Record<string, string>, authOn: boolean): boolean {
  return !authOn || p.scopes.has('admin') || (p.id !== null && r.key_id === p.id)
}

export async function getCall (x: Exchange, deps: HttpDeps): Promise<void> {
  const { id, logs } = idFrom(x.url)
  if (!CALL_ID.test(id)) throw new HearthError('call_not_found', `no call ${JSON.stringify(id)}`)
  x.logFields.call = id
  const r = await ownRecord(x, deps, id)
  if (logs) {
    x.text(200, await deps.async.calls.logs(id), 'text/plain; charset=utf-8')
    return
  }
  x.json(200, JSON.stringify(documentOf(id, r)))
}

/**
 * Cancels a queued call at once; a running one is killed by its daemon, and
 * the answer waits (up to 10 s) for its end to be stored. A finished call is
 * answered as it is.
 */
export async function cancelCall (x: Exchange, deps: HttpDeps): Promise<void> {
  const { id, logs } = idFrom(x.url)
  if (logs || !CALL_ID.test(id)) throw new HearthError('call_not_found', `no call ${JSON.stringify(id)}`)
  x.logFields.call = id
  await ownRecord(x, deps, id)
  const found = await deps.async.cancel(id)
  x.audit('call.cancel', { call: id, was: found })
  let r = await deps.async.calls.record(id)
  for (let wait = 20, until = Date.now() + 10_000; r.status === 'running' && Date.now() < until && !x.aborted; wait = Math.min(wait * 2, 500)) {
    await new Promise((resolve) => setTimeout(resolve, wait))
    r = await deps.async.calls.record(id)
  }
  x.json(200, JSON.stringify(documentOf(id, r)))
}
