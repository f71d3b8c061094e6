// GET /healthz (the process answers) and GET /readyz (it can serve calls).
import type { HttpDeps } from './deps.js'
import type { Exchange } from './exchange.js'

export function healthz (x: Exchange): void {
  x.json(200, '{"status":"ok"}')
}

export async function readyz (x: Exchange, deps: HttpDeps): Promise<void> {
  const redis = await deps.store.ping()
  const stats = deps.runner.stats()
  const ready = redis && deps.runner.ready()
  x.json(ready ? 200 : 503, JSON.stringify({
    ready,
    redis,
    limits: { backend: deps.limits.name, detail: deps.limits.detail, ...deps.limits.limits, cgroups: deps.limits.cgroups?.() },
    runtimes: stats.runtimes,
    pools: stats.pools,
    warm: stats.warm,
    sandboxes: stats.sandboxes
  }))
}
