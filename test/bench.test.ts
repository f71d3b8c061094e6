// `make bench` itself: a short real run of the harness end to end (sandbox
// layer, warm hearth, run-now, distinct functions, cold model; not the bare
// server and the spawn variant, for make test's time), and its settings'
// validation. It checks that every scenario ran without errors and was
// recorded, not how fast: figures are `make bench`'s.
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../daemon/config.js'
import { loadOptions } from '../bench/options.js'
import { children } from '../daemon/zygote/host-pid.js'
import { parseAnswer, runPacedPart } from '../bench/paced.js'
import { diesWithTest, processesMentioning, untapped } from './helpers/processes.js'
import { waitFor } from './helpers/wait.js'

const run = promisify(execFile)

t.test('settings: defaults, flags over the environment, bad values refused', async (t) => {
  const d = loadOptions({}, [])
  t.match(d, { connections: 16, duration: 8, rounds: 2, sweepPools: [1, 2, 4, 8], only: null, profile: 'auto', appendReadme: true, distinctFunctions: 2000, pacedRate: 5 })
  const o = loadOptions({ BENCH_CONNECTIONS: '4', BENCH_ONLY: 'warm' }, ['--connections=8', '--sweep-pools=1,3', '--profile=never'])
  t.equal(o.connections, 8)
  t.same(o.sweepPools, [1, 3])
  t.same([...(o.only ?? [])], ['warm'])
  t.equal(o.profile, 'never')
  t.throws(() => loadOptions({}, ['--duration=0']), /BENCH_DURATION must be a number ≥ 1/)
  t.throws(() => loadOptions({}, ['--only=warm,nope']), /unknown group "nope"/)
  t.throws(() => loadOptions({}, ['--sweep-concurrency=1,x']), /comma-separated list/)
  t.throws(() => loadOptions({}, ['connections=3']), /^bench: Unexpected argument 'connections=3'/)
  t.throws(() => loadOptions({}, ['--conections=3']), /^bench: Unknown option '--conections'/)
})

t.test('a short run measures every server and writes the JSON and the chart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-test-'))
  const [command, ...bench] = diesWithTest(untapped([process.execPath, join(ROOT, 'dist/bench/run.js')])) as [string, ...string[]]
  await run(command, [...bench,
    // Not the bare server and the ZYGOTE=off variant (a second daemon): the
    // rest of the harness is theirs too, and make test has a time budget.
    '--only=sandbox,warm,run-now,distinct,cold', '--duration=1', '--warmup=0', '--rounds=1', '--cold-duration=1', '--cold-c1-duration=0',
    '--layer-calls=200', '--layer-spawns=2', '--distinct-functions=20', '--paced-rate=10', '--profile=never', '--readme=0', `--results-dir=${dir}`
  ], { timeout: 150_000 })
  const r = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'))
  t.match(r.meta, { cores: Number, node: process.version, python_fresh_sandboxes: 'zygote' })
  const names = ['cold-javascript', 'cold-python', 'cold-typescript', 'distinct-functions',
    'run-now-javascript', 'run-now-javascript-c1', 'run-now-python', 'run-now-python-c1',
    'run-now-typescript', 'run-now-typescript-c1', 'warm-javascript', 'warm-python', 'warm-python-paced', 'warm-typescript']
  t.same(r.scenarios.map((s: { name: string }) => s.name).sort(), names)
  for (const s of r.scenarios) {
    t.ok(s.rps > 0 && s.errors + s.mismatches + s.non2xx === 0, `${s.name}: ${s.rps} req/s, no errors`)
  }
  const cold = r.scenarios.find((s: { name: string }) => s.name === 'cold-python')
  t.ok(cold.sandboxesSpawned >= Math.round(cold.rps * cold.seconds), 'the cold model spawns a sandbox per request')
  const paced = r.scenarios.find((s: { name: string }) => s.name === 'run-now-python-c1')
  t.ok(paced.rps <= 11, `the paced caller keeps to its rate (${paced.rps} req/s at 10)`)
  for (const k of ['warm_vs_cold_throughput', 'run_now_python_vs_cold_throughput', 'run_now_python_c1_vs_warm_paced_p50_latency']) {
    t.type(r.ratios[k], 'number', `ratio ${k} computed`)
  }
  t.ok(r.sandboxLayer.floor.p50 > 0 && r.sandboxLayer.warm.python.p50 > 0 && r.sandboxLayer.warm['python-forked'].p50 > 0)
  t.equal(r.sandboxLayer.spawnToReady.node.count, 2)
  t.equal(r.sandboxLayer.spawnToReady['python-forked'].count, 2, 'fork-to-ready measured')
  t.match(readFileSync(join(dir, 'latest.svg'), 'utf8'), /^<svg[^>]*>[\s\S]*warm-python[\s\S]*<\/svg>\s*$/)
})

t.test('the paced caller reads answers as they are framed, whole or in pieces', async (t) => {
  const answer = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 26\r\n\r\n{"data":8,"type":"number"}')
  t.equal(parseAnswer(answer.subarray(0, 20)), null, 'headers incomplete')
  t.equal(parseAnswer(answer.subarray(0, answer.length - 1)), null, 'body incomplete')
  t.same(parseAnswer(Buffer.concat([answer, Buffer.from('HTTP/1.1')])), { answer: { status: 200, body: '{"data":8,"type":"number"}' }, length: answer.length, close: false }, 'what follows is left')
  t.equal(parseAnswer(Buffer.from('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\ncontent-length: 0\r\n\r\n'))?.close, true, 'Connection: close')
  t.throws(() => parseAnswer(Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n')), /Content-Length framed/)
})

t.test('the paced caller counts wrong answers and reconnects after a server closes', async (t) => {
  // Every second answer says `Connection: close`, and the close itself comes
  // 150 ms later, as from a loaded server (a request every 50 ms): a caller
  // that waits for the close, not the header, writes its next request to the
  // closing connection (seen once in a full run, as one error). The third
  // answer is another body.
  let served = 0
  const server = createServer((socket) => {
    let buffered = ''
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      let end: number
      while ((end = buffered.indexOf('\r\n\r\n{}')) !== -1) {
        buffered = buffered.slice(end + 6)
        served++
        const body = served === 3 ? '{"data":9}' : '{"data":8}'
        const close = served % 2 === 0
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`)
        if (close) {
          socket.pause() // what comes after is not answered
          setTimeout(() => socket.end(), 150)
          return
        }
      }
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const port = (server.address() as AddressInfo).port
  const part = await runPacedPart({ title: 't', url: `http://127.0.0.1:${port}/run-now`, body: '{}', connections: 1, duration: 0.25, timeout: 2, rate: 20, expectBody: '{"data":8}' })
  const r = part.result as unknown as { errors: number, mismatches: number }
  t.ok(served >= 5, `a request every 50 ms for 250 ms (${served})`)
  t.equal(r.mismatches, 1)
  t.equal(r.errors, 0, 'a closed connection is opened again')
  t.equal(part.ok, served - 1)
})

/** Whether `pid` runs (not gone, not a zombie its new parent has yet to reap). */
function running (pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'))
  } catch {
    return false
  }
}

t.test('a bench killed takes its servers with it (the death signal each is started with)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-test-'))
  const [command, ...bench] = untapped([process.execPath, join(ROOT, 'dist/bench/run.js')])
  const child = spawn(command, [...bench, '--only=run-now', '--duration=60', '--warmup=0', '--rounds=1', '--profile=never', '--readme=0', `--results-dir=${dir}`], { stdio: 'ignore' })
  let hearth: number | undefined
  t.teardown(() => { child.kill('SIGKILL'); if (hearth !== undefined && running(hearth)) process.kill(hearth, 'SIGKILL') })
  await waitFor(() => {
    const mine = children(child.pid as number)
    hearth = processesMentioning('dist/daemon/main.js').find((pid) => mine.includes(pid))
    return hearth !== undefined
  }, 30_000, 'the bench to start its hearth')
  child.kill('SIGKILL')
  await waitFor(() => !running(hearth as number), 15_000, 'its hearth to end with it')
  t.pass('the hearth ended with the bench')
})
