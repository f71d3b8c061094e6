// Settings that shape the daemon itself: where it listens, how much it logs.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { post, startDaemon, stateDir } from './helpers/daemon.js'
import { untapped } from './helpers/processes.js'
import { freePort } from './helpers/redis.js'
import { waitFor } from './helpers/wait.js'

async function answers (host: string, port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, host)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

t.test('HTTP_HOST: it listens on that address only', async (t) => {
  const d = await startDaemon(t, { HTTP_HOST: '127.0.0.2' })
  t.ok(await answers('127.0.0.2', d.port), 'on 127.0.0.2')
  t.notOk(await answers('127.0.0.1', d.port), 'not on 127.0.0.1')
  const r = await fetch(`http://127.0.0.2:${d.port}/healthz`)
  t.same(await r.json(), { status: 'ok' })
})

t.test('LOG_LEVEL=warn: not even the start is logged, nor a request; debug logs both', async (t) => {
  // startDaemon waits for the "hearth listening" line, which warn does not print: start this one by hand.
  const port = await freePort()
  const lines: string[] = []
  const [command, ...args] = untapped([process.execPath, fileURLToPath(new URL('../daemon/main.js', import.meta.url))])
  const quiet = spawn(command, args, {
    env: { PATH: process.env.PATH, HTTP_HOST: '127.0.0.1', HTTP_PORT: String(port), POOL_MIN: '1', STATE_DIR: stateDir(), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  quiet.stdout.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)))
  const exited = new Promise((resolve) => quiet.once('exit', resolve))
  t.teardown(async () => { quiet.kill('SIGTERM'); await exited })
  await waitFor(async () => await answers('127.0.0.1', port), 20_000, 'the quiet daemon to listen')
  const loud = await startDaemon(t, { LOG_LEVEL: 'debug' })
  for (const url of [`http://127.0.0.1:${port}`, loud.url]) {
    await waitFor(async () => (await post(`${url}/run-now`, { language: 'python', code: 'return 1' })).status === 200, 20_000, 'a call to succeed')
  }
  await waitFor(() => loud.logs.some((l) => l.msg === 'request'), 5000, 'debug to log the request')
  const logged = lines.map((l) => JSON.parse(l) as { level: number, msg: string })
  t.same(logged.filter((l) => l.level < 40), [], 'nothing below warn')
})

t.test('SECCOMP=off: the daemon says so, and sandboxes run without the filter', async (t) => {
  const d = await startDaemon(t, { SECCOMP: 'off' })
  t.ok(d.logs.some((l) => l.level === 40 && l.msg === 'SECCOMP=off: sandboxes run without the seccomp filter'))
  const r = await post(`${d.url}/run-now`, { language: 'python', code: 'import socket\nsocket.socket(socket.AF_NETLINK, socket.SOCK_RAW)\nreturn "netlink socket made"' })
  t.same(r.body, { data: 'netlink socket made', type: 'string' }, 'with the filter: EAFNOSUPPORT (sandbox-security.test.ts)')
})
