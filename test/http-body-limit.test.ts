// A body over the limit (README, "Limits of the HTTP front"): refused with 413
// from its Content-Length. A declared body up to DRAIN_MAX_BYTES answered
// unread (over the limit, or sent to a route that takes none) is first read to
// its end and dropped, so that a client that writes its whole body before
// reading the answer reads it (a close cut it off with EPIPE or a reset), and
// the connection serves on; a larger or undeclared one over the limit is
// refused at once and the connection closed.
import { spawnSync } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { DRAIN_MAX_BYTES } from '../daemon/http/exchange.js'
import { startDaemon } from './helpers/daemon.js'

// Bodies up to 2 × (4096 + 2048) + 64 KiB = 77,824 bytes.
const d = await startDaemon(t, { CODE_MAX_SIZE: '4096', INPUT_MAX_SIZE: '2048' })
const RUN_NOW = JSON.stringify({ language: 'python', code: 'return 1' })
const call = `POST /run-now HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${RUN_NOW.length}\r\n\r\n${RUN_NOW}`
const head = (length: number): string => `POST /run-now HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`

/** A connection that collects what it is sent: `answers(n)` resolves once n answers came whole (each a JSON body), `closed` once the daemon closed it. */
function open (): { socket: Socket, answers: (n: number) => Promise<string[]>, closed: Promise<void> } {
  const socket = connect(d.port, '127.0.0.1')
  socket.on('error', () => {})
  let got = ''
  const waiting: Array<() => void> = []
  socket.on('data', (chunk) => { got += chunk.toString('latin1'); for (const w of waiting.splice(0)) w() })
  const closed = new Promise<void>((resolve) => socket.once('close', () => { for (const w of waiting.splice(0)) w(); resolve() }))
  const complete = (): string[] => got.match(/HTTP\/1\.1 \d{3}[^]*?\r\n\r\n\{[^]*?\}\}?(?=HTTP|$)/g) ?? []
  const answers = async (n: number): Promise<string[]> => {
    while (complete().length < n && !socket.destroyed) await new Promise<void>((resolve) => waiting.push(resolve))
    return complete().map((a) => (a.match(/^HTTP\/1\.1 \d{3}/) as RegExpMatchArray)[0] + ' ' + a.slice(a.indexOf('\r\n\r\n') + 4))
  }
  return { socket, answers, closed }
}

t.test('fetch, which writes its whole body first, reads the 413 of a body 100 times the limit, every time', async (t) => {
  const body = JSON.stringify({ language: 'python', code: 'return 1', input: { s: 'x'.repeat(8 << 20) } })
  // Cut off by a close, 1 to 4 fetches in 5 failed (EPIPE, a reset), none every time.
  const answers: unknown[] = []
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${d.url}/run-now`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    answers.push([r.status, ((await r.json()) as { error: { code: string } }).error.code])
  }
  t.same(answers, Array(5).fill([413, 'body_too_large']))
})

/**
 * Posts with Python's urllib (Connection: close, the whole body written before
 * the answer is read) a run-now body of `megabytes` of input to each path, one
 * after another; what each got: '<status> <error code>', 'answered' or 'failed: ...'.
 */
function urllibPosts (base: string, posts: ReadonlyArray<[path: string, megabytes: number]>): { got: string[], stderr: string } {
  const script = `
import json, sys, urllib.request, urllib.error
def post(path, megabytes):
    body = json.dumps({'language': 'python', 'code': 'return 1', 'input': {'s': 'x' * int(megabytes * (1 << 20))}}).encode()
    try:
        urllib.request.urlopen(urllib.request.Request('${base}' + path, data=body, headers={'content-type': 'application/json'}))
        return 'answered'
    except urllib.error.HTTPError as e:
        return '%d %s' % (e.code, json.load(e)['error']['code'])
    except OSError as e:
        return 'failed: %s' % e
for path, megabytes in json.loads(sys.argv[1]):
    print(post(path, megabytes))
`
  // spawnSync blocks this test's own loop only: the daemon is a process of its own.
  const r = spawnSync('/usr/bin/python3', ['-c', script, JSON.stringify(posts)], { encoding: 'utf8', timeout: 60_000 })
  return { got: r.stdout.trim().split('\n'), stderr: r.stderr }
}

t.test('Python\'s urllib (Connection: close, the whole body before the answer) reads the 413, and a 404 answered without the body', async (t) => {
  const r = urllibPosts(d.url, [...Array(3).fill(['/run-now', 8]), ...Array(3).fill(['/no/such/route', 8])])
  t.same(r.got, [...Array(3).fill('413 body_too_large'), ...Array(3).fill('404 route_not_found')], r.stderr)
})

t.test('a refused declared body is read and dropped, then answered; the connection serves on', async (t) => {
  const c = open()
  t.teardown(() => c.socket.destroy())
  const length = 1 << 20
  c.socket.write(head(length))
  c.socket.write(Buffer.alloc(length, 'x'))
  c.socket.write(call)
  const both = await c.answers(2)
  t.match(both[0], /^HTTP\/1\.1 413 .*body_too_large/)
  t.equal(both[1], 'HTTP/1.1 200 {"data":1,"type":"number"}', 'the next request on the same connection is answered')
})

t.test('a body declared past DRAIN_MAX_BYTES, or not declared, closes the connection after the 413', async (t) => {
  const big = open()
  big.socket.write(head(DRAIN_MAX_BYTES + 1))
  const [refused] = await big.answers(1)
  t.match(refused, /^HTTP\/1\.1 413 .*body_too_large/)
  await big.closed
  t.pass('closed by the daemon')

  const chunked = open()
  chunked.socket.write('POST /run-now HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n')
  const piece = 'x'.repeat(40_000)
  for (let i = 0; i < 3; i++) chunked.socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`)
  const [cut] = await chunked.answers(1)
  t.match(cut, /^HTTP\/1\.1 413 .*body_too_large/, 'refused once past the limit')
  await chunked.closed
  t.pass('closed by the daemon')
})

t.test('an auth refusal made while a body within the limit arrives comes after it: urllib reads the 401', async (t) => {
  // Bodies up to ~16 MB here, so that 7 MB is read, not refused.
  const authed = await startDaemon(t, { AUTH: 'on', ADMIN_TOKEN: 'admin-token-for-tests-0123456789', INPUT_MAX_SIZE: String(8 << 20) })
  const r = urllibPosts(authed.url, Array(3).fill(['/run-now', 7]))
  t.same(r.got, Array(3).fill('401 unauthorized'), r.stderr)
})
