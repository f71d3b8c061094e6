// The uWebSockets.js front: routes, in-flight tracking, listen and graceful close.
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp } from 'uWebSockets.js'
import { requireScope, type Scope } from '../auth/index.js'
import { asHearthError, HearthError } from '../errors.js'
import { compileRequestSchemas } from '../openapi/requests.js'
import type { HttpDeps } from './deps.js'
import { Exchange } from './exchange.js'
import { list, remove, show, upload } from './functions.js'
import { healthz, readyz } from './health.js'
import { listenExclusive } from './listen.js'
import { createKey, listKeys, revokeKey } from './keys.js'
import { consoleAsset } from './console.js'
import { metrics } from './metrics.js'
import { openapi } from './openapi.js'
import { bodyLimit, runNow, runStored } from './run.js'
import { cancelCall, getCall, runAsync, runNowAsync } from './calls.js'

type WithBody = (x: Exchange, body: Promise<Buffer>, deps: HttpDeps) => Promise<void>
type WithoutBody = (x: Exchange, deps: HttpDeps) => Promise<void> | void

const CALLERS: readonly Scope[] = ['run', 'run-now', 'admin']

/**
 * The route table, once: what uWS serves, what tells 405 from 404, and the
 * scope each route needs when AUTH=on (none: open to anyone, for probes).
 */
type Route = { method: 'post' | 'get' | 'del', pattern: string, scope: Scope | readonly Scope[] | null } & ({ body: WithBody } | { handler: WithoutBody, duringDrain?: boolean })
export const ROUTES: readonly Route[] = [
  { method: 'post', pattern: '/upload', scope: 'upload', body: upload },
  { method: 'post', pattern: '/run-now', scope: 'run-now', body: runNow },
  { method: 'post', pattern: '/run/*', scope: 'run', body: runStored },
  { method: 'post', pattern: '/run-now-async', scope: 'run-now', body: runNowAsync },
  { method: 'post', pattern: '/run-async/*', scope: 'run', body: runAsync },
  // Any of these; the call itself is seen only by the key that queued it (or an admin).
  { method: 'get', pattern: '/calls/*', scope: CALLERS, handler: getCall },
  { method: 'del', pattern: '/calls/*', scope: CALLERS, handler: cancelCall },
  { method: 'get', pattern: '/functions', scope: 'read', handler: list },
  { method: 'get', pattern: '/functions/*', scope: 'read', handler: show },
  { method: 'del', pattern: '/functions/*', scope: 'delete', handler: remove },
  { method: 'post', pattern: '/keys', scope: 'admin', body: createKey },
  { method: 'get', pattern: '/keys', scope: 'admin', handler: listKeys },
  { method: 'del', pattern: '/keys/*', scope: 'admin', handler: revokeKey },
  { method: 'get', pattern: '/healthz', scope: null, handler: healthz, duringDrain: true },
  { method: 'get', pattern: '/readyz', scope: null, handler: readyz, duringDrain: true },
  { method: 'get', pattern: '/metrics', scope: 'metrics', handler: metrics, duringDrain: true },
  { method: 'get', pattern: '/openapi.json', scope: null, handler: openapi, duringDrain: true },
  // The console's page and assets are open: its API calls carry the key.
  { method: 'get', pattern: '/', scope: null, handler: consoleAsset },
  { method: 'get', pattern: '/console/*', scope: null, handler: consoleAsset }
]

const matches = (pattern: string, url: string): boolean =>
  pattern.endsWith('/*') ? url.startsWith(pattern.slice(0, -1)) : url === pattern

export class HttpServer {
  private readonly app: TemplatedApp
  private readonly deps: HttpDeps
  private readonly routes: typeof ROUTES
  private listenSocket: uWS.us_listen_socket | null = null
  private inFlight = 0
  private draining = false
  private idle: (() => void) | null = null

  constructor (deps: HttpDeps) {
    this.deps = deps
    const limit = bodyLimit(deps)
    compileRequestSchemas()
    this.app = uWS.App()
    // METRICS_PORT: /metrics is served there (http/metrics.ts), not here.
    this.routes = ROUTES.filter((r) => r.pattern !== '/metrics' || deps.config.metricsPort === null)
    for (const r of this.routes) {
      this.app[r.method](r.pattern, 'body' in r ? this.withBody(r, r.body, limit) : this.route(r, r.handler, r.duringDrain))
      // HEAD of every GET route (RFC 9110): its answer's status and headers, no body (Exchange).
      if (r.method === 'get' && 'handler' in r) this.app.head(r.pattern, this.route(r, r.handler, r.duringDrain))
    }
    this.app.any('/*', this.route({ pattern: 'other', scope: null }, (x) => { this.notFound(x) }, true))
  }

  private notFound (x: Exchange): void {
    const code = this.routes.some((r) => matches(r.pattern, x.url)) ? 'method_not_allowed' : 'route_not_found'
    x.error(new HearthError(code, `${x.method} ${x.url}: ${code === 'method_not_allowed' ? 'method not allowed' : 'no such route'}`))
  }

  private begin (res: HttpResponse, req: HttpRequest, route: string): Exchange {
    this.inFlight++
    return new Exchange(res, req, route, this.deps.log, (x, seconds) => {
      this.deps.metrics.request(x.route, x.method, x.status, seconds)
      if (--this.inFlight === 0) this.idle?.()
    })
  }

  /** Who is calling, and whether the route's scope allows it (AUTH=off: anyone, everything). */
  private async admit (x: Exchange, scope: Scope | readonly Scope[] | null): Promise<void> {
    if (scope === null || !this.deps.auth.enabled) return
    x.principal = await this.deps.auth.authenticate(x.authorization)
    x.logFields.key_id = x.principal.id
    x.logFields.key_name = x.principal.name
    if (typeof scope === 'string') requireScope(x.principal, scope)
    else if (!scope.some((s) => x.principal.scopes.has(s))) requireScope(x.principal, scope[0] as Scope)
    await this.deps.quotas.request(x.principal)
    if (scope === 'run' || scope === 'run-now') x.whenDone(await this.deps.quotas.call(x.principal))
  }

  private withBody (r: Pick<Route, 'pattern' | 'scope'>, handler: WithBody, limit: number) {
    return (res: HttpResponse, req: HttpRequest): void => {
      const x = this.begin(res, req, r.pattern)
      if (this.draining) {
        x.dropBody()
        return x.error(new HearthError('shutting_down'))
      }
      let body: Promise<Buffer>
      try {
        body = x.body(limit) // onData must be attached before the handler returns
      } catch (err) {
        return x.error(asHearthError(err))
      }
      body.catch(() => {}) // the handler reports it
      const work = r.scope === null || !this.deps.auth.enabled
        ? handler(x, body, this.deps) // AUTH=off: the warm path as it was, no extra hop
        : this.admit(x, r.scope).then(async () => await handler(x, body, this.deps))
      work.catch((err) => x.error(asHearthError(err)))
    }
  }

  private route (r: Pick<Route, 'pattern' | 'scope'>, handler: WithoutBody, duringDrain = false) {
    return (res: HttpResponse, req: HttpRequest): void => {
      const x = this.begin(res, req, r.pattern)
      x.dropBody() // a body sent to a route that takes none
      if (this.draining && !duringDrain) return x.error(new HearthError('shutting_down'))
      this.admit(x, r.scope)
        .then(async () => await handler(x, this.deps))
        .catch((err) => x.error(asHearthError(err)))
    }
  }

  /** Listens and resolves with the port (HTTP_PORT=0 picks a free one). */
  async listen (host: string, port: number): Promise<number> {
    const bound = await listenExclusive(this.app, host, port, 'HTTP_HOST, HTTP_PORT')
    this.listenSocket = bound.socket
    return bound.port
  }

  get requestsInFlight (): number {
    return this.inFlight
  }

  /**
   * Stops accepting connections, answers new requests on open connections with
   * shutting_down, and resolves when in-flight requests are done or after graceMs.
   */
  async drain (graceMs: number): Promise<boolean> {
    this.draining = true
    if (this.listenSocket !== null) {
      uWS.us_listen_socket_close(this.listenSocket)
      this.listenSocket = null
    }
    if (this.inFlight === 0) return true
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), graceMs)
      this.idle = () => {
        clearTimeout(timer)
        resolve(true)
      }
    })
  }

  /** Closes every connection that is left. */
  close (): void {
    this.app.close()
  }
}
