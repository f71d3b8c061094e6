// The part of autocannon 9's API the bench uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  interface Options {
    url: string
    method?: string
    body?: string
    headers?: Record<string, string>
    connections?: number
    duration?: number
    timeout?: number
    sampleInt?: number
    expectBody?: string
    title?: string
    setupClient?: (client: any) => void
    requests?: Array<{
      setupRequest?: (req: Record<string, unknown>) => Record<string, unknown>
      onResponse?: (status: number, body: string) => void
    }>
  }

  interface Histogram {
    average: number
    max: number
    p50: number
    p90: number
    p99: number
    total: number
  }

  interface Result {
    duration: number
    requests: Histogram
    latency: Histogram
    errors: number
    timeouts: number
    mismatches: number
    non2xx: number
    statusCodeStats: Record<string, { count: number }>
  }

  interface Instance extends EventEmitter {
    stop: () => void
  }

  interface TrackOptions {
    outputStream?: NodeJS.WritableStream
    renderProgressBar?: boolean
    renderResultsTable?: boolean
    renderLatencyTable?: boolean
  }

  interface Autocannon {
    (opts: Options, cb: (err: Error | null, result: Result) => void): Instance
    track: (instance: Instance, opts?: TrackOptions) => void
  }

  const autocannon: Autocannon
  export default autocannon
  export type { Instance, Options, Result }
}
