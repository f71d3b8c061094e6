// One load run with autocannon (as a library, in the bench process), with exact
// latency percentiles: autocannon's histogram keeps whole milliseconds, too
// coarse for a warm call that takes a few hundred microseconds.
import autocannon, { type Result } from 'autocannon'
import { runPacedPart } from './paced.js'

export interface LoadSpec {
  readonly title: string
  readonly url: string
  /** request paths taken in turn (round-robin) instead of the url's own */
  readonly paths?: readonly string[]
  /** one caller paced at this many requests per second (bench/paced.ts), instead of autocannon */
  readonly rate?: number
  readonly body: string
  readonly connections: number
  /** seconds */
  readonly duration: number
  /** per-request timeout, seconds */
  readonly timeout: number
  /** a response with another body counts as a mismatch (an error) */
  readonly expectBody?: string
  /** show autocannon's progress bar (only on a terminal) */
  readonly progress?: boolean
}

export interface Latency {
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

export interface LoadResult {
  readonly connections: number
  /** seconds actually measured */
  readonly seconds: number
  /** every response received */
  readonly responses: number
  /** 2xx responses with the expected body, per second */
  readonly rps: number
  /** milliseconds, 2xx responses only */
  readonly latency: Latency
  /** connection errors and timeouts */
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  readonly mismatches: number
  readonly statusCodes: Record<string, number>
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000

/** Nearest-rank percentile of sorted values. */
function percentile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number
}

export class Samples {
  private buf = new Float64Array(1 << 16)
  length = 0
  push (x: number): void {
    if (this.length === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2)
      bigger.set(this.buf)
      this.buf = bigger
    }
    this.buf[this.length++] = x
  }

  values (): Float64Array {
    return this.buf.subarray(0, this.length)
  }

  static latency (parts: readonly Samples[]): Latency {
    const sorted = new Float64Array(parts.reduce((n, p) => n + p.length, 0))
    let at = 0
    for (const p of parts) {
      sorted.set(p.values(), at)
      at += p.length
    }
    sorted.sort()
    let sum = 0
    for (const x of sorted) sum += x
    return {
      p50: round3(percentile(sorted, 0.5)),
      p90: round3(percentile(sorted, 0.9)),
      p99: round3(percentile(sorted, 0.99)),
      max: round3(sorted.length === 0 ? 0 : sorted[sorted.length - 1] as number),
      mean: round3(sorted.length === 0 ? 0 : sum / sorted.length)
    }
  }
}

/**
 * autocannon ends a duration run by destroying its connections, requests in
 * flight included, and hearth (as designed) kills the sandbox of a call whose
 * client went away: every run would end by killing the warm sandboxes the next
 * one needs. So the run drains instead: at the deadline each client may finish
 * the request it has in flight and then stops (autocannon's own per-client
 * `responseMax`, set on the clients collected through `setupClient`), and
 * autocannon's own end, 2 s later, is only the hard bound.
 */
const DRAIN_SECONDS = 2
interface AutocannonClient { reqsMade: number, responseMax?: number }

/** One run, kept raw so that runs of the same scenario can be merged. */
export interface LoadPart {
  readonly connections: number
  readonly seconds: number
  readonly ok: number
  readonly samples: Samples
  readonly result: Result
}

export async function runLoadPart (spec: LoadSpec): Promise<LoadPart> {
  if (spec.rate !== undefined) return await runPacedPart({ ...spec, rate: spec.rate })
  const samples = new Samples()
  const clients: AutocannonClient[] = []
  const started = performance.now()
  let lastResponse = started
  let turn = 0
  let wrongBodies = 0
  const paths = spec.paths
  // autocannon refuses expectBody together with `requests`: the body is checked here instead.
  const rotate = paths === undefined || paths.length === 0
    ? (spec.expectBody === undefined ? {} : { expectBody: spec.expectBody })
    : {
        requests: [{
          setupRequest: (req: Record<string, unknown>) => ({ ...req, path: paths[turn++ % paths.length] }),
          onResponse: (status: number, body: string) => { if (spec.expectBody !== undefined && status < 300 && body !== spec.expectBody) wrongBodies++ }
        }]
      }
  const result = await new Promise<Result>((resolve, reject) => {
    // autocannon may call back synchronously (a bad option): the timer may not exist yet
    const deadline: { timer?: NodeJS.Timeout } = {}
    const instance = autocannon({
      title: spec.title,
      url: spec.url,
      method: 'POST',
      body: spec.body,
      headers: { 'content-type': 'application/json' },
      connections: spec.connections,
      duration: spec.duration + DRAIN_SECONDS,
      timeout: spec.timeout,
      // autocannon notices the end (every client done) only at its next sample tick
      sampleInt: 100,
      setupClient: (client: AutocannonClient) => { clients.push(client) },
      ...rotate
    }, (err, res) => {
      clearTimeout(deadline.timer)
      if (err !== null) reject(err)
      else resolve({ ...res, mismatches: res.mismatches + wrongBodies })
    })
    deadline.timer = setTimeout(() => {
      for (const c of clients) c.responseMax = Math.max(1, c.reqsMade)
    }, spec.duration * 1000)
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      lastResponse = performance.now()
      if (status >= 200 && status < 300) samples.push(ms)
    })
    if (spec.progress === true) {
      autocannon.track(instance, { outputStream: process.stderr, renderProgressBar: true, renderResultsTable: false, renderLatencyTable: false })
    }
  })
  const seconds = Math.max(lastResponse - started, 1) / 1000
  return { connections: spec.connections, seconds, ok: Math.max(0, samples.length - result.mismatches), samples, result }
}

/** Sums runs of one scenario (rounds): rates over their total time, percentiles over all their responses. */
export function summarize (parts: readonly LoadPart[]): LoadResult {
  const seconds = parts.reduce((t, p) => t + p.seconds, 0)
  const ok = parts.reduce((t, p) => t + p.ok, 0)
  const sum = (f: (r: Result) => number): number => parts.reduce((t, p) => t + f(p.result), 0)
  const statusCodes: Record<string, number> = {}
  for (const p of parts) {
    for (const [code, { count }] of Object.entries(p.result.statusCodeStats ?? {})) statusCodes[code] = (statusCodes[code] ?? 0) + Number(count)
  }
  return {
    connections: parts[0]?.connections ?? 0,
    seconds: round3(seconds),
    responses: Object.values(statusCodes).reduce((a, b) => a + b, 0),
    rps: seconds > 0 ? Math.round(ok / seconds * 10) / 10 : 0,
    latency: Samples.latency(parts.map((p) => p.samples)),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    mismatches: sum((r) => r.mismatches),
    statusCodes
  }
}

export async function runLoad (spec: LoadSpec): Promise<LoadResult> {
  return summarize([await runLoadPart(spec)])
}
