// The unix socket forked children connect to (daemon/zygote/rendezvous.ts),
// with real sockets: close() ends whatever is still connected.
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Rendezvous } from '../daemon/zygote/rendezvous.js'

t.test('close() ends connections handed over and never closed by their taker', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-rendezvous-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rendezvous = await Rendezvous.open(join(dir, 'r'), null)
  const nonce = 'ab'.repeat(16)
  const arrived = rendezvous.expect(nonce)
  const clients = ['proto', 'stdout', 'stderr'].map((kind) => {
    const c = connect(rendezvous.path)
    c.on('error', () => {})
    c.write(`HEARTH ${nonce} ${kind}\n`)
    return c
  })
  t.teardown(() => { for (const c of clients) c.destroy() })
  const conns = await arrived
  t.same(Object.keys(conns).sort(), ['proto', 'stderr', 'stdout'])
  // Handed over, then left open and paused, as a launch that gave up at the wrong moment left them.
  const closed = Promise.all(clients.map(async (c) => await new Promise((resolve) => c.once('close', resolve))))
  const keepAlive = setInterval(() => {}, 1000) // close() must not need the test's loop to end
  t.teardown(() => clearInterval(keepAlive))
  const outcome = await Promise.race([rendezvous.close().then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 3000, 'still waiting'))])
  t.equal(outcome, 'closed', 'close() resolves')
  if (outcome === 'closed') {
    await closed
    t.pass('the children\'s ends saw their connections close')
  }
})
