// GET /metrics: the Prometheus text format, on the API port or, with
// METRICS_PORT, on a listener of its own (for a scraper on another network).
import uWS from 'uWebSockets.js'
import type { Metrics } from '../metrics/index.js'
import type { HttpDeps } from './deps.js'
import type { Exchange } from './exchange.js'
import { listenExclusive } from './listen.js'

export async function metrics (x: Exchange, deps: HttpDeps): Promise<void> {
  x.text(200, await deps.metrics.text(), deps.metrics.contentType)
}

/** A listener that serves /metrics only; resolves with its port and a close(). */
export async function listenMetrics (host: string, port: number, m: Metrics): Promise<{ port: number, close: () => void }> {
  const app = uWS.App()
  app.get('/metrics', (res) => {
    let aborted = false
    res.onAborted(() => { aborted = true })
    m.text().then((text) => {
      if (!aborted) res.cork(() => { res.writeHeader('Content-Type', m.contentType).end(text) })
    }, () => {
      if (!aborted) res.cork(() => { res.writeStatus('500 Internal Server Error').end() })
    })
  })
  app.any('/*', (res) => { res.writeStatus('404 Not Found').end() })
  const bound = await listenExclusive(app, host, port, 'METRICS_PORT')
  return { port: bound.port, close: () => app.close() }
}
