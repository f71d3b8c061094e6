// The uWebSockets.js front: routes, in-flight tracking, listen and graceful close.
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp } from 'uWebSockets.js'
import { asHearthError, HearthError } from '../errors.js'
import type { HttpDeps } from './deps.js'
import { Exchange } from './exchange.js'
import { list, remove, show, upload } from './functions.js'
import { healthz, readyz } from './health.js'
import { metrics } from './metrics.js'
import { bodyLimit, runNow, runStored } from './run.js'

type WithBody = (x: Exchange, body: Promise<Buffer>, deps: HttpDeps) => Promise<void>
type WithoutBody = (x: Exchange, deps: HttpDeps) => Promise<void> | void

/** The route table, once: what uWS serves, and what tells 405 from 404. */
const ROUTES: ReadonlyArray<{ method: 'post' | 'get' | 'del', pattern: string } & ({ body: WithBody } | { handler: WithoutBody, duringDrain?: boolean })> = [
  { method: 'post', pattern: '/upload', body: upload },
  { method: 'post', pattern: '/run-now', body: runNow },
  { method: 'post', pattern: '/run/*', body: runStored },
  { method: 'get', pattern: '/functions', handler: list },
  { method: 'get', pattern: '/functions/*', handler: show },
  { method: 'del', pattern: '/functions/*', handler: remove },
  { method: 'get', pattern: '/healthz', handler: healthz, duringDrain: true },
  { method: 'get', pattern: '/readyz', handler: readyz, duringDrain: true },
  { method: 'get', pattern: '/metrics', handler: metrics, duringDrain: true }
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
    this.app = uWS.App()
    // METRICS_PORT: /metrics is served there (http/metrics.ts), not here.
    this.routes = ROUTES.filter((r) => r.pattern !== '/metrics' || deps.config.metricsPort === null)
    for (const r of this.routes) {
      this.app[r.method](r.pattern, 'body' in r ? this.withBody(r.pattern, r.body, limit) : this.route(r.pattern, r.handler, r.duringDrain))
    }
    this.app.any('/*', this.route('other', (x) => { this.notFound(x) }, true))
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

  private withBody (pattern: string, handler: WithBody, limit: number) {
    return (res: HttpResponse, req: HttpRequest): void => {
      const x = this.begin(res, req, pattern)
      if (this.draining) return x.error(new HearthError('shutting_down'))
      let body: Promise<Buffer>
      try {
        body = x.body(limit) // onData must be attached before the handler returns
      } catch (err) {
        return x.error(asHearthError(err))
      }
      body.catch(() => {}) // the handler reports it
      handler(x, body, this.deps).catch((err) => x.error(asHearthError(err)))
    }
  }

  private route (pattern: string, handler: WithoutBody, duringDrain = false) {
    return (res: HttpResponse, req: HttpRequest): void => {
      const x = this.begin(res, req, pattern)
      if (this.draining && !duringDrain) return x.error(new HearthError('shutting_down'))
      Promise.resolve()
        .then(async () => await handler(x, this.deps))
        .catch((err) => x.error(asHearthError(err)))
    }
  }

  /** Listens and resolves with the port (HTTP_PORT=0 picks a free one). */
  async listen (host: string, port: number): Promise<number> {
    return await new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (socket === false) return reject(new Error(`cannot listen on ${host}:${port}`))
        this.listenSocket = socket
        resolve(uWS.us_socket_local_port(socket as unknown as uWS.us_socket))
      })
    })
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
