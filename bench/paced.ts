// One caller at a steady rate: a request every 1/rate s on one keep-alive
// connection, the latency of each measured from its send. autocannon's own
// overallRate sends each second's requests back to back (measured: bursts of
// five within 70 ms at 5 req/s), which is not what a paced caller does.
//
// The request is written as autocannon writes one, a buffer made once, on a
// plain TCP socket, and the answer read with no more than its framing needs.
// Node's http client (used here before) ran its own cold path on every paced
// request, which the numbers then carried: measured on the development VM in
// alternation against this client on one daemon, 2.22 against 1.45 ms p50 for
// a warm call, 2.62 against 1.80 ms for run-now.
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Result } from 'autocannon'
import { Samples, type LoadPart, type LoadSpec } from './load.js'

interface Answer { status: number, body: string }

class Timeout extends Error {}

/** A POST as one buffer, written whole each time. */
export function requestBytes (url: URL, body: string): Buffer {
  return Buffer.from(`POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

/**
 * The end of the first answer in `buf`: its status and body, its length in
 * bytes, and whether the server closes the connection after it (`Connection:
 * close`); null while it is incomplete. Throws on what is not a
 * Content-Length framed HTTP/1.1 answer (hearth's and uWS's always are).
 */
export function parseAnswer (buf: Buffer): { answer: Answer, length: number, close: boolean } | null {
  const head = buf.indexOf('\r\n\r\n')
  if (head === -1) return null
  const lines = buf.subarray(0, head).toString('latin1').split('\r\n')
  const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] as string)?.[1]
  const lengthLine = lines.find((l) => /^content-length:/i.test(l))
  if (status === undefined || lengthLine === undefined) throw new Error(`not a Content-Length framed HTTP/1.1 answer: ${lines[0] as string}`)
  const length = head + 4 + Number(lengthLine.slice(lengthLine.indexOf(':') + 1).trim())
  if (buf.length < length) return null
  const close = lines.some((l) => /^connection:\s*close\s*$/i.test(l))
  return { answer: { status: Number(status), body: buf.subarray(head + 4, length).toString('utf8') }, length, close }
}

/** One keep-alive connection; a request at a time. */
class Connection {
  private socket: Socket | null = null
  private buf: Buffer = Buffer.alloc(0)
  private waiting: { resolve: (a: Answer) => void, reject: (e: Error) => void } | null = null

  constructor (private readonly url: URL) {}

  async send (request: Buffer, timeoutMs: number): Promise<Answer> {
    const socket = this.socket ?? await this.open()
    return await new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(socket, new Timeout()), timeoutMs)
      this.waiting = {
        resolve: (a) => { clearTimeout(timer); resolve(a) },
        reject: (e) => { clearTimeout(timer); reject(e) }
      }
      socket.write(request)
    })
  }

  close (): void {
    this.socket?.destroy()
    this.socket = null
  }

  private async open (): Promise<Socket> {
    const socket = connect(Number(this.url.port), this.url.hostname)
    socket.setNoDelay(true)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk))
    socket.on('error', (err) => this.fail(socket, err))
    socket.on('close', () => this.fail(socket, new Error('connection closed')))
    this.socket = socket
    this.buf = Buffer.alloc(0)
    return socket
  }

  private onData (socket: Socket, chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    let parsed
    try {
      parsed = parseAnswer(this.buf)
    } catch (err) {
      this.fail(socket, err as Error)
      return
    }
    if (parsed === null) return
    this.buf = this.buf.subarray(parsed.length)
    const w = this.waiting
    this.waiting = null
    // A connection the server closes is not used again, however late its
    // close arrives: the next request would be written to it and fail.
    if (parsed.close) this.close()
    w?.resolve(parsed.answer)
  }

  /** The request in flight on `socket` fails; the next one opens a new connection. */
  private fail (socket: Socket, err: Error): void {
    if (socket !== this.socket) return // an earlier connection's last events
    this.close()
    const w = this.waiting
    this.waiting = null
    w?.reject(err)
  }
}

export async function runPacedPart (spec: LoadSpec & { readonly rate: number }): Promise<LoadPart> {
  const url = new URL(spec.url)
  const request = requestBytes(url, spec.body)
  const conn = new Connection(url)
  const samples = new Samples()
  const statusCodes: Record<string, { count: number }> = {}
  let errors = 0
  let timeouts = 0
  let mismatches = 0
  let non2xx = 0
  const interval = 1000 / spec.rate
  const started = performance.now()
  let lastResponse = started
  try {
    for (let i = 0; performance.now() - started < spec.duration * 1000; i++) {
      const wait = started + i * interval - performance.now()
      if (wait > 0) await sleep(wait)
      const sent = performance.now()
      try {
        const { status, body } = await conn.send(request, spec.timeout * 1000)
        lastResponse = performance.now()
        statusCodes[status] = { count: (statusCodes[status]?.count ?? 0) + 1 }
        if (status < 200 || status >= 300) non2xx++
        else if (spec.expectBody !== undefined && body !== spec.expectBody) mismatches++
        else samples.push(lastResponse - sent)
      } catch (err) {
        if (err instanceof Timeout) timeouts++
        else errors++
      }
    }
  } finally {
    conn.close()
  }
  const result = { errors, timeouts, mismatches, non2xx, statusCodeStats: statusCodes } as unknown as Result
  return { connections: 1, seconds: Math.max(lastResponse - started, 1) / 1000, ok: samples.length, samples, result }
}
