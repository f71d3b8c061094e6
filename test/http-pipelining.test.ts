// HTTP/1.1 pipelining with the pinned uWebSockets.js (README, "Limits of the
// HTTP front"): a request that arrives before the answer to the one ahead of
// it closes the connection, unanswered, when that answer comes later (every
// call); answers made at once pipeline. This test pins that documented
// behaviour: if a newer build answers pipelined calls, it fails, and the
// README must change.
import { connect } from 'node:net'
import t from 'tap'
import { startDaemon } from './helpers/daemon.js'

const d = await startDaemon(t, {})
const RUN_NOW = JSON.stringify({ language: 'python', code: 'return 1' })
const call = `POST /run-now HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${RUN_NOW.length}\r\n\r\n${RUN_NOW}`
const healthz = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'

/** Writes `requests` (one write each) on one connection; resolves with the answers' status lines once `answers` came or it closed. */
async function exchange (requests: readonly string[], answers: number): Promise<{ statuses: string[], closed: boolean }> {
  return await new Promise((resolve) => {
    const socket = connect(d.port, '127.0.0.1')
    let got = ''
    const statuses = (): string[] => got.match(/HTTP\/1\.1 \d{3} [^\r]*/g) ?? [] // an answer's status line follows the body before it
    socket.on('data', (chunk) => {
      got += chunk.toString('latin1')
      if (statuses().length >= answers && got.endsWith('}')) { socket.destroy(); resolve({ statuses: statuses(), closed: false }) }
    })
    socket.on('close', () => resolve({ statuses: statuses(), closed: true }))
    socket.on('error', () => {})
    socket.on('connect', () => { for (const r of requests) socket.write(r) })
  })
}

t.test('two calls in one write: the connection closes, neither answered', async (t) => {
  const r = await exchange([call + call], 2)
  t.same(r, { statuses: [], closed: true })
})

t.test('calls one at a time on one keep-alive connection: each answered', async (t) => {
  const socket = connect(d.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await new Promise((resolve) => socket.once('connect', resolve))
  for (let i = 0; i < 3; i++) {
    socket.write(call)
    const answer = await new Promise<string>((resolve) => {
      let got = ''
      const onData = (chunk: Buffer): void => {
        got += chunk.toString('latin1')
        if (got.endsWith('}')) { socket.off('data', onData); resolve(got) }
      }
      socket.on('data', onData)
    })
    t.match(answer, /^HTTP\/1.1 200 OK\r\n[^]*\{"data":1,"type":"number"\}$/, `call ${i + 1}`)
  }
})

t.test('answers made at once pipeline: three /healthz in one write, three answers', async (t) => {
  const r = await exchange([healthz.repeat(3)], 3)
  t.same(r.statuses, ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'])
})
