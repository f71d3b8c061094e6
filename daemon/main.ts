// Entry point: the only place that exits the process. SIGTERM/SIGINT start a
// graceful stop (app.stop: calls in flight get SHUTDOWN_GRACE_SECONDS); a
// second signal, or SHUTDOWN_TIMEOUT_SECONDS after the first, exits at once
// with code 1, whatever the stop has left undone. SIGHUP (a terminal closed,
// an ssh session ended; Node ends on it even under nohup) stops as SIGTERM
// does, then exits 129 as a process the hangup ended reports: systemd's
// Restart=on-failure brings back a service sent HUP (hearth has nothing to
// reload), as it did when the hangup killed it, its cgroups and sandboxes left.
import { ConfigError, loadConfig, withDotenv } from './config.js'
import { startApp } from './app.js'
import { CannotStart } from './errors.js'
import { createLogger, flushLogger, flushLoggerSync } from './log.js'

/** 128 + SIGHUP: what a shell reports for a process the hangup ended. */
const HANGUP_EXIT = 129

async function main (): Promise<void> {
  let config
  try {
    config = loadConfig(withDotenv())
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hearth: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  const log = createLogger(config.logLevel)
  const app = await startApp(config, log)
  log.info({ host: config.httpHost, port: app.port, limits: app.limits.name }, 'hearth listening')

  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now')
      flushLoggerSync(log)
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'stopping')
    setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'the stop overran SHUTDOWN_TIMEOUT_SECONDS: exiting now')
      flushLoggerSync(log)
      process.exit(1)
    }, config.shutdownTimeoutMs).unref()
    app.stop().then(async () => {
      log.info('stopped')
      await flushLogger(log)
      process.exit(signal === 'SIGHUP' ? HANGUP_EXIT : 0)
    }, async (err: Error) => {
      log.error({ err }, 'error while stopping')
      await flushLogger(log)
      process.exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('SIGHUP', onSignal)
}

main().catch((err) => {
  // A refusal is said in one line; anything else with its stack, for a bug report.
  process.stderr.write(`hearth: cannot start: ${err instanceof CannotStart ? err.message : (err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
