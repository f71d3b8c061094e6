import type { AsyncCalls } from '../async/index.js'
import type { Authenticator } from '../auth/index.js'
import type { Config } from '../config.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/index.js'
import type { Packages } from '../packages/index.js'
import type { Quotas } from '../quotas/index.js'
import type { Runner } from '../pool/runner.js'
import type { LimitsBackend } from '../sandbox/limits/index.js'
import type { FunctionStore } from '../store/function-store.js'

/** What the routes need from the rest of the daemon. */
export interface HttpDeps {
  readonly config: Config
  readonly log: Logger
  readonly runner: Runner
  readonly store: FunctionStore
  readonly limits: LimitsBackend
  readonly metrics: Metrics
  readonly auth: Authenticator
  readonly quotas: Quotas
  readonly async: AsyncCalls
  readonly packages: Packages
}
