// Configuration: go-faas's variables and hearth's own, validated at start-up.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ConfigError, loadConfig, parseBytes, ROOT, wantsEmbeddedRedis, withDotenv } from '../daemon/config.js'
import { untapped } from './helpers/processes.js'

t.test('defaults follow go-faas where it has a variable', async (t) => {
  const c = loadConfig({})
  t.match(c, { httpPort: 8080, maxCpus: 1, maxMemoryBytes: 128 << 20, codeMaxSize: 262144, timeoutMs: 30_000, redisPort: 6379, redisDb: 0, redisTimeoutMs: 5000 })
  t.equal(c.httpHost, '127.0.0.1')
  t.ok(Object.isFrozen(c))
  t.ok(wantsEmbeddedRedis(c), 'no Redis configured: the embedded one')
  t.notOk(wantsEmbeddedRedis(loadConfig({ REDIS_HOST: 'redis.internal' })))
  t.notOk(wantsEmbeddedRedis(loadConfig({ REDIS_URL: 'redis://x:6379' })))
  t.notOk(wantsEmbeddedRedis(loadConfig({ REDIS_CLUSTER_NODES: 'a:7000, b:7001 [::1]:7002' })))
  t.same(loadConfig({ REDIS_CLUSTER_NODES: 'a:7000, b:7001 [::1]:7002' }).redisClusterNodes, [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }, { host: '::1', port: 7002 }])
  t.match(c.async, { concurrency: 4, queueMax: 10000, claimIdleMs: 30_000, maxAttempts: 3, resultTtlSeconds: 86400, callbackSecret: '', callbackMaxAttempts: 5, callbackAllow: [] })
  t.equal(loadConfig({ POOL_MAX: '3' }).async.concurrency, 1, 'ASYNC_CONCURRENCY: half of POOL_MAX by default, so synchronous calls keep the rest')
})

t.test('the runtime directory: RUNTIME_DIR, else systemd\'s, else one the sandbox uid can traverse', async (t) => {
  t.equal(loadConfig({ RUNTIME_DIR: '/srv/hearth-run' }).runtimeDir, '/srv/hearth-run')
  t.equal(loadConfig({ RUNTIME_DIRECTORY: '/run/hearth-unit' }).runtimeDir, '/run/hearth-unit')
  const fallback = loadConfig({}).runtimeDir
  t.equal(fallback, process.getuid?.() === 0 ? '/run/hearth' : join(tmpdir(), `hearth-${process.getuid?.() ?? ''}`))
  t.match(loadConfig({}), { zygote: 'auto', zygoteMaxForks: 1000, zygoteMaxAgeMs: 600_000 })
})

t.test('sizes are read as systemd and go-faas write them', async (t) => {
  t.equal(parseBytes('128M'), 128 * 1024 * 1024)
  t.equal(parseBytes('1G'), 1024 ** 3)
  t.equal(parseBytes('1.5K'), 1536)
  t.equal(parseBytes('65536'), 65536)
  t.equal(parseBytes('512MiB'), 512 * 1024 * 1024)
  t.equal(parseBytes('lots'), null)
  t.equal(parseBytes('0'), null)
})

t.test('every invalid value is refused with the variable named', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ HTTP_PORT: '70000' }, /^HTTP_PORT must be an integer from 0 to 65535/],
    [{ HTTP_PORT: 'eighty' }, /^HTTP_PORT must be an integer/],
    [{ MAX_CPUS: '0' }, /^MAX_CPUS must be a positive number/],
    [{ MAX_MEMORY: 'lots' }, /^MAX_MEMORY must be a size such as 128M/],
    [{ MAX_PIDS: '2' }, /^MAX_PIDS must be an integer from 4/],
    [{ TIMEOUT_SCRIPT: '-5' }, /^TIMEOUT_SCRIPT must be a positive number/],
    [{ POOL_MIN: '4', POOL_MAX: '2' }, /^POOL_MAX must be at least POOL_MIN \(4\)/],
    [{ HTTP_PORT: '8080', METRICS_PORT: '8080' }, /^METRICS_PORT must differ from HTTP_PORT \(8080\); leave it empty/],
    [{ SECCOMP: 'maybe' }, /^SECCOMP must be on or off/],
    [{ LIMITS_BACKEND: 'docker' }, /^LIMITS_BACKEND must be one of auto, cgroup2, cgroup1, rlimit, none/],
    [{ REDIS_DB: '16' }, /^REDIS_DB must be an integer from 0 to 15/],
    [{ SANDBOX_UID: '0' }, /^SANDBOX_UID must be an integer from 1/],
    [{ ZYGOTE: 'yes' }, /^ZYGOTE must be one of auto, on, off/],
    [{ ZYGOTE_MAX_FORKS: '0' }, /^ZYGOTE_MAX_FORKS must be an integer from 1/],
    [{ ZYGOTE_MAX_AGE_SECONDS: 'forever' }, /^ZYGOTE_MAX_AGE_SECONDS must be a positive number/],
    [{ INPUT_MAX_DEPTH: '1000' }, /^INPUT_MAX_DEPTH must be an integer from 1 to 900/],
    [{ IDEMPOTENCY_TTL_SECONDS: '0' }, /^IDEMPOTENCY_TTL_SECONDS must be an integer from 1/],
    [{ STALE_IF_REDIS_DOWN_SECONDS: '-1' }, /^STALE_IF_REDIS_DOWN_SECONDS must be an integer from 0/],
    [{ SHUTDOWN_GRACE_SECONDS: '20' }, /^SHUTDOWN_TIMEOUT_SECONDS must be more than SHUTDOWN_GRACE_SECONDS \(20\)/],
    [{ LOG_LEVEL: 'verbose' }, /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/],
    [{ CGROUP_NAME: '../../x' }, /^CGROUP_NAME must be one name/],
    [{ CGROUP_NAME: 'a/b' }, /^CGROUP_NAME must be one name/],
    [{ CGROUP_NAME: '..' }, /^CGROUP_NAME must be one name/],
    [{ CGROUP_NAME: '' }, /^CGROUP_NAME must be one name/],
    [{ REDIS_CLUSTER_NODES: 'redis-a' }, /^REDIS_CLUSTER_NODES must be host:port entries \(got "redis-a"\)/],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://b' }, /^REDIS_CLUSTER_NODES cannot be set with REDIS_URL or REDIS_HOST/],
    [{ ASYNC_MAX_ATTEMPTS: '0' }, /^ASYNC_MAX_ATTEMPTS must be an integer from 1 to 100/],
    [{ ASYNC_CLAIM_IDLE: '0' }, /^ASYNC_CLAIM_IDLE must be a positive number/],
    [{ ASYNC_QUEUE_MAX: '0' }, /^ASYNC_QUEUE_MAX must be an integer from 1/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), message, JSON.stringify(env))
    t.throws(() => loadConfig(env), ConfigError)
  }
})

t.test('reads an optional .env as Node does; the environment wins', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-env-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.equal(withDotenv({ A: '1' }, dir).A, '1', 'no .env: the environment as it is')
  writeFileSync(join(dir, '.env'), '# settings\nMAX_PIDS=99 # a comment after the value\nHTTP_PORT=9000\nexport MAX_MEMORY="256M"\nREDIS_PASSWORD=\'p # w\'\n')
  const c = loadConfig(withDotenv({ HTTP_PORT: '9100' }, dir))
  t.equal(c.maxPids, 99)
  t.equal(c.maxMemoryBytes, 256 << 20)
  t.equal(c.redisPassword, 'p # w')
  t.equal(c.httpPort, 9100, 'the environment wins over the file')
  t.equal(loadConfig({}, dir).maxPids, 64, 'loadConfig alone reads no file')
})

t.test('the daemon refuses to start on a bad value, naming it, with exit code 2', async (t) => {
  const main = fileURLToPath(new URL('../daemon/main.js', import.meta.url))
  const [node, ...argv] = untapped([process.execPath, main])
  const r = spawnSync(node, argv, { env: { PATH: process.env.PATH, MAX_MEMORY: 'lots' }, cwd: ROOT, encoding: 'utf8', timeout: 10_000 })
  t.equal(r.status, 2)
  t.match(r.stderr, /MAX_MEMORY must be a size/)
  const level = spawnSync(node, argv, { env: { PATH: process.env.PATH, LOG_LEVEL: 'verbose' }, cwd: ROOT, encoding: 'utf8', timeout: 10_000 })
  t.equal(level.status, 2, 'an unknown LOG_LEVEL is a config error too, not a logger crash')
  t.match(level.stderr, /^hearth: LOG_LEVEL must be one of/)
})
