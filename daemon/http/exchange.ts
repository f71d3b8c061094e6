// One HTTP request/response on uWebSockets.js: abort tracking, body reading with
// a cap, corked writes, and the request log line.
import { STATUS_CODES } from 'node:http'
import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { ANYONE, type Principal } from '../auth/principal.js'
import { HearthError, RETRYABLE } from '../errors.js'
import type { Logger } from '../log.js'
import type { CallerGone } from '../pool/runner.js'

/** Status lines, built once from Node's own table. */
const STATUS_TEXT: Record<number, string> = Object.fromEntries(
  Object.entries(STATUS_CODES).map(([code, text]) => [Number(code), `${code} ${text ?? ''}`])
)

/** The largest body answered unread that is read to its end first (Exchange.drainable). */
export const DRAIN_MAX_BYTES = 64 << 20

export class Exchange implements CallerGone {
  readonly method: string
  readonly url: string
  readonly query: string
  /** the Idempotency-Key header ('' when absent) */
  readonly idempotencyKey: string
  /** the Authorization header ('' when absent) */
  readonly authorization: string
  /** If-None-Match ('' when absent): the console's assets answer 304 */
  readonly ifNoneMatch: string
  /** who is calling, once the route has authenticated the request */
  principal: Principal = ANYONE
  readonly started = process.hrtime.bigint()
  /** set when the client goes away: the call's sandbox is killed (CallerGone) */
  aborted = false
  private onGone: Array<() => void> | null = null
  /** fields for the request log line (language, function, version) */
  readonly logFields: Record<string, unknown> = {}
  status = 0
  private readonly res: HttpResponse
  private readonly contentLength: number
  private readonly log: Logger
  /** the route's pattern (`/run/*`), for the metrics: never the URL itself */
  readonly route: string
  private readonly onFinish: (x: Exchange, seconds: number) => void
  private finished = false
  /** a body was sent: a declared length above 0, or chunked */
  private readonly hasBody: boolean
  /** a body is still arriving: an answer to it waits for its end (json) */
  private receiving = false
  private afterBody: (() => void) | null = null
  private sse = false
  private done: Array<() => void> | null = null

  constructor (res: HttpResponse, req: HttpRequest, route: string, log: Logger, onFinish: (x: Exchange, seconds: number) => void) {
    // Everything from req now: it is invalid once the handler returns.
    this.res = res
    this.route = route
    this.method = req.getMethod().toUpperCase()
    this.url = req.getUrl()
    this.query = req.getQuery() ?? ''
    this.idempotencyKey = req.getHeader('idempotency-key')
    this.authorization = req.getHeader('authorization')
    this.ifNoneMatch = req.getHeader('if-none-match')
    const length = req.getHeader('content-length')
    this.contentLength = length === '' ? -1 : Number(length)
    this.hasBody = this.contentLength > 0 || req.getHeader('transfer-encoding') !== ''
    this.log = log
    this.onFinish = onFinish
    // Before any await (uWS examples/AsyncFunction.js); after it, never touch res.
    res.onAborted(() => {
      this.aborted = true
      const listeners = this.onGone
      this.onGone = null
      for (const listener of listeners ?? []) listener()
      this.finish(499)
    })
  }

  addEventListener (_type: 'abort', listener: () => void): void {
    if (this.aborted) return
    (this.onGone ??= []).push(listener)
  }

  removeEventListener (_type: 'abort', listener: () => void): void {
    const i = this.onGone?.indexOf(listener) ?? -1
    if (i >= 0) this.onGone?.splice(i, 1)
  }

  /** The whole body, refused with body_too_large past `limit` bytes. Call synchronously in the handler. */
  async body (limit: number): Promise<Buffer> {
    if (this.contentLength > limit) {
      if (this.drainable()) this.dropBody() // read to its end and dropped, then refused
      throw new HearthError('body_too_large', `request body of ${this.contentLength} bytes is over the ${limit}-byte limit`, { limit })
    }
    this.receiving = this.hasBody
    return await new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      let size = 0
      this.res.onData((chunk, isLast) => {
        if (isLast) this.bodyEnded()
        if (size > limit) return
        size += chunk.byteLength
        if (size > limit) {
          reject(new HearthError('body_too_large', `request body is over the ${limit}-byte limit`, { limit }))
          return
        }
        chunks.push(Buffer.from(chunk.slice(0))) // uWS reuses the chunk's memory after this returns
        if (isLast) resolve(chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks))
      })
    })
  }

  /**
   * The body of a request answered without it (a refused one, a route that
   * takes none): read to its end and dropped, and an answer made meanwhile
   * waits for that end when it is drainable. Call synchronously in the handler.
   */
  dropBody (): void {
    if (!this.hasBody) return
    this.receiving = true
    this.res.onData((_chunk, isLast) => { if (isLast) this.bodyEnded() })
  }

  private bodyEnded (): void {
    this.receiving = false
    const answer = this.afterBody
    this.afterBody = null
    answer?.()
  }

  json (status: number, body: string, headers: Record<string, string> = {}): void {
    if (this.finished) return
    if (this.receiving && this.drainable()) {
      // Answered before its body has all come (refused, unauthorized, no such
      // route): after it, so that a client that writes it all before reading
      // reads this answer, not a broken pipe (drainable).
      this.afterBody = () => this.json(status, body, headers)
      return
    }
    this.res.cork(() => {
      this.res.writeStatus(STATUS_TEXT[status] ?? String(status))
      this.res.writeHeader('Content-Type', 'application/json')
      for (const [k, v] of Object.entries(headers)) this.res.writeHeader(k, v)
      if (this.method === 'HEAD') this.endHead(body)
      else this.res.end(body, status === 413 && !this.drainable())
    })
    this.finish(status)
  }

  /**
   * Whether a body answered before it has all come (over the limit, or not
   * wanted) is read to its end, and the answer made after: one of a declared
   * length up to DRAIN_MAX_BYTES. A client that writes its whole body before
   * it reads (Node's fetch, Python's urllib) then reads the answer, where the
   * connection's close (a 413's, or uWS's after Connection: close) had cut it
   * off with EPIPE or a reset, and a keep-alive connection serves on. A larger
   * or undeclared (chunked) body is answered at once; after a 413, the
   * connection is closed.
   */
  private drainable (): boolean {
    return this.contentLength >= 0 && this.contentLength <= DRAIN_MAX_BYTES
  }

  /** An audit line: a change to what is stored, with the key that made it (never its secret). */
  audit (action: string, fields: Record<string, unknown>): void {
    this.log.info({ audit: action, by_key_id: this.principal.id, by_key_name: this.principal.name, ...fields }, 'audit')
  }

  /** Runs `fn` when the exchange ends, however it ends (a quota's place given back). */
  whenDone (fn: () => void): void {
    if (this.finished) fn()
    else (this.done ??= []).push(fn)
  }

  /** A non-JSON body (the metrics' text format). */
  text (status: number, body: string, contentType: string): void {
    this.raw(status, body, { 'Content-Type': contentType })
  }

  /** Any body, with these headers (the console's assets). */
  raw (status: number, body: string | Buffer, headers: Record<string, string>): void {
    if (this.finished) return
    this.res.cork(() => {
      this.res.writeStatus(STATUS_TEXT[status] ?? String(status))
      for (const [k, v] of Object.entries(headers)) this.res.writeHeader(k, v)
      if (this.method === 'HEAD') this.endHead(body)
      else this.res.end(body)
    })
    this.finish(status)
  }

  error (err: HearthError): void {
    if (this.sse) {
      this.event({ event: 'error', data: err.message, type: 'text', code: err.code, ...err.details })
      this.end()
      return
    }
    const headers: Record<string, string> = RETRYABLE.has(err.code) ? { 'Retry-After': '1' } : {}
    if (typeof err.details.retry_after === 'number') headers['Retry-After'] = String(err.details.retry_after)
    if (err.code === 'unauthorized') headers['WWW-Authenticate'] = 'Bearer realm="hearth"'
    this.logFields.error = err.code
    this.json(err.status, JSON.stringify(err.toJSON()), headers)
  }

  /** Whether the answer is an event stream (startStream was called). */
  get streaming (): boolean {
    return this.sse
  }

  /** Starts a Server-Sent Events response. */
  startStream (headers: Record<string, string> = {}): void {
    if (this.finished || this.sse) return
    this.sse = true
    this.status = 200
    this.res.cork(() => {
      this.res.writeStatus('200 OK')
      this.res.writeHeader('Content-Type', 'text/event-stream')
      this.res.writeHeader('Cache-Control', 'no-cache')
      this.res.writeHeader('X-Accel-Buffering', 'no')
      for (const [k, v] of Object.entries(headers)) this.res.writeHeader(k, v)
    })
  }

  /** One SSE event in go-faas's format: `data: {...}\n\n`, sent at once. */
  event (payload: Record<string, unknown>): void {
    if (this.finished || !this.sse) return
    const frame = `data: ${JSON.stringify(payload)}\n\n`
    this.res.cork(() => { this.res.write(frame) })
  }

  /** An SSE event whose data is already JSON text (the result), not re-encoded. */
  rawEvent (json: string): void {
    if (this.finished || !this.sse) return
    this.res.cork(() => { this.res.write(`data: ${json}\n\n`) })
  }

  end (): void {
    if (this.finished) return
    this.res.cork(() => { this.res.end() })
    this.finish(this.status || 200)
  }

  /**
   * A HEAD's answer: the GET's Content-Length, no body. The header is written
   * by hand: the pinned uWebSockets.js's endWithoutBody(length) takes the
   * answer for unfinished (the connection's next request went unanswered).
   */
  private endHead (body: string | Buffer): void {
    this.res.writeHeader('Content-Length', String(Buffer.byteLength(body)))
    this.res.endWithoutBody()
  }

  private finish (status: number): void {
    if (this.finished) return
    this.finished = true
    this.status = status
    const ms = Number(process.hrtime.bigint() - this.started) / 1e6
    this.log.info({ method: this.method, path: this.url, status, ms: Math.round(ms * 1000) / 1000, ...this.logFields }, 'request')
    for (const fn of this.done ?? []) fn()
    this.onFinish(this, ms / 1000)
  }
}
