// How many request headers the pinned uWebSockets.js build takes (README,
// "Limits"): the count is compiled into it (UWS_HTTP_MAX_HEADERS_COUNT, 100
// slots, the request line in one), and a request with more is treated as
// incomplete, so it is answered 431 only once its headers pass 4 KB
// (UWS_HTTP_MAX_HEADERS_SIZE) and otherwise not at all; and an HTTP/1.0
// request is answered 505 by it, before hearth sees it. This test pins that
// documented behaviour: if a newer build answers 431 at once, or serves
// HTTP/1.0, it fails, and the README must change.
import { connect } from 'node:net'
import t from 'tap'
import { startDaemon } from './helpers/daemon.js'

const d = await startDaemon(t, {})

/** The status line of the answer to a GET with `fields` header fields of `size` bytes each, or null. */
async function statusLine (fields: number, valueBytes: number, waitMs: number): Promise<string | null> {
  const lines = ['GET /healthz HTTP/1.1', 'Host: localhost']
  for (let i = 0; lines.length - 1 < fields; i++) lines.push(`x-h${i}: ${'v'.repeat(valueBytes)}`)
  return await new Promise((resolve) => {
    const socket = connect(d.port, '127.0.0.1')
    let got = ''
    const timer = setTimeout(() => { socket.destroy(); resolve(null) }, waitMs)
    socket.on('data', (chunk) => {
      got += chunk.toString('latin1')
      if (got.includes('\r\n')) {
        clearTimeout(timer)
        socket.destroy()
        resolve(got.split('\r\n')[0] ?? '')
      }
    })
    socket.on('error', () => { clearTimeout(timer); resolve(null) })
    socket.write(lines.join('\r\n') + '\r\n\r\n')
  })
}

t.test('98 header fields are served; headers over 4 KB in more fields are refused at once', async (t) => {
  t.equal(await statusLine(98, 1, 5000), 'HTTP/1.1 200 OK')
  t.equal(await statusLine(40, 120, 5000), 'HTTP/1.1 200 OK', '5 KB of headers in 40 fields is fine')
  const started = Date.now()
  t.equal(await statusLine(400, 10, 5000), 'HTTP/1.1 431 Request Header Fields Too Large')
  t.ok(Date.now() - started < 1000, 'at once')
})

t.test('99 to ~4 KB worth of header fields get no answer (the documented limit of this uWebSockets.js build)', async (t) => {
  t.equal(await statusLine(99, 1, 1500), null)
})

t.test('HTTP/1.0 (ApacheBench\'s ab) is answered 505 by uWebSockets.js itself, and the connection closed', async (t) => {
  const socket = connect(d.port, '127.0.0.1')
  let got = ''
  socket.on('data', (chunk) => { got += chunk.toString('latin1') })
  await new Promise((resolve) => { socket.on('close', resolve); socket.on('error', resolve); socket.write('GET /healthz HTTP/1.0\r\n\r\n') })
  t.equal(got.split('\r\n')[0], 'HTTP/1.1 505 HTTP Version Not Supported')
  t.match(got, /does not support HTTP\/1\.0/)
})
