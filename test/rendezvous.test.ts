// Where forked children meet the daemon (daemon/zygote/rendezvous.ts), with
// a real socket and real named pipes made as a child makes them
// (runtimes/zygote/isolate.c, make_pipe): close() ends whatever is still open.
import { execFileSync } from 'node:child_process'
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Rendezvous } from '../daemon/zygote/rendezvous.js'

/** A rendezvous, and a directory for its children's pipes (a zygote's own tmpfs in the daemon). */
async function opened (t: Test): Promise<{ rendezvous: Rendezvous, pipes: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-rendezvous-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rendezvous = await Rendezvous.open(join(dir, 'r'), null)
  t.teardown(async () => await rendezvous.close())
  const pipes = join(dir, 'pipes')
  mkdirSync(pipes)
  return { rendezvous, pipes }
}

/** A child's stdout and stderr pipes: made, and held open for writing (by an O_RDWR open, as no reader is there yet). */
function makePipes (t: Test, pipes: string, nonce: string): number[] {
  return [1, 2].map((which) => {
    const path = join(pipes, `${nonce}-${which}`)
    execFileSync('mkfifo', ['-m', '600', path])
    const fd = openSync(path, constants.O_RDWR)
    t.teardown(() => closeSync(fd))
    return fd
  })
}

function hello (t: Test, rendezvous: Rendezvous, nonce: string): Socket {
  const c = connect(rendezvous.path)
  c.on('error', () => {})
  c.write(`HEARTH ${nonce} proto\n`)
  t.teardown(() => c.destroy())
  return c
}

async function firstData (s: Socket): Promise<string> {
  s.resume()
  return await new Promise((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())))
}

t.test('a hello hands over the connection and the child\'s pipes, read ends open, names gone', async (t) => {
  const { rendezvous, pipes } = await opened(t)
  const nonce = 'cd'.repeat(16)
  const arrived = rendezvous.expect(nonce, pipes)
  const [out, err] = makePipes(t, pipes, nonce) as [number, number]
  hello(t, rendezvous, nonce)
  const conns = await arrived
  t.notOk(existsSync(join(pipes, `${nonce}-1`)) || existsSync(join(pipes, `${nonce}-2`)), 'unlinked once opened')
  writeSync(out, 'to stdout\n')
  writeSync(err, 'to stderr\n')
  t.equal(await firstData(conns.stdout), 'to stdout\n')
  t.equal(await firstData(conns.stderr), 'to stderr\n')
})

t.test('a hello without its pipes fails the launch; a cancelled nonce\'s pipes are removed', async (t) => {
  const { rendezvous, pipes } = await opened(t)
  const lost = 'ef'.repeat(16)
  const arrived = rendezvous.expect(lost, pipes)
  hello(t, rendezvous, lost)
  await t.rejects(arrived, /the forked child's pipes: ENOENT/)
  // a link where a pipe should be is not followed (through /proc/<zygote>/root it would resolve on the host)
  const linked = '34'.repeat(16)
  const refused = rendezvous.expect(linked, pipes)
  symlinkSync('/etc/hostname', join(pipes, `${linked}-1`))
  execFileSync('mkfifo', [join(pipes, `${linked}-2`)])
  hello(t, rendezvous, linked)
  await t.rejects(refused, /the forked child's pipes: ELOOP/)
  const gaveUp = '12'.repeat(16)
  const never = rendezvous.expect(gaveUp, pipes)
  makePipes(t, pipes, gaveUp)
  rendezvous.cancel(gaveUp, new Error('aborted'))
  await t.rejects(never, /aborted/)
  t.notOk(existsSync(join(pipes, `${gaveUp}-1`)), 'removed')
})

t.test('close() ends connections handed over and never closed by their taker', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-rendezvous-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rendezvous = await Rendezvous.open(join(dir, 'r'), null)
  const pipes = join(dir, 'pipes')
  mkdirSync(pipes)
  const nonce = 'ab'.repeat(16)
  const arrived = rendezvous.expect(nonce, pipes)
  makePipes(t, pipes, nonce)
  const client = hello(t, rendezvous, nonce)
  const conns = await arrived
  t.same(Object.keys(conns).sort(), ['proto', 'stderr', 'stdout'])
  // Handed over, then left open and paused, as a launch that gave up at the wrong moment left them.
  const closed = Promise.all([client, conns.stdout, conns.stderr].map(async (c) => await new Promise((resolve) => c.once('close', resolve))))
  const keepAlive = setInterval(() => {}, 1000) // close() must not need the test's loop to end
  t.teardown(() => clearInterval(keepAlive))
  const outcome = await Promise.race([rendezvous.close().then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 3000, 'still waiting'))])
  t.equal(outcome, 'closed', 'close() resolves')
  if (outcome === 'closed') {
    await closed
    t.pass('the child\'s end of its connection saw it close, and the pipes\' read ends are closed')
  }
})
