// A checkout where only root can look (a clone under /root, mode 700): the
// sandboxes, which run as SANDBOX_UID, must still find everything they run.
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../daemon/config.js'
import { checkReadable } from '../daemon/runtime-files.js'
import { post, startDaemon } from './helpers/daemon.js'

if (process.getuid?.() !== 0) {
  // Not root: sandboxes run as this very uid, which can read its own private
  // directory, so this test would prove nothing. CI runs as root.
  t.plan(0, 'needs root: only then do sandboxes run as another uid (SANDBOX_UID)')
} else {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-private-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.equal(statSync(dir).mode & 0o777, 0o700, 'the directory is private')
  const checkout = join(dir, 'hearth')
  mkdirSync(checkout)
  for (const part of ['dist', 'runtimes', 'build', 'package.json']) cpSync(join(ROOT, part), join(checkout, part), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'))

  t.test('a node installed where the sandbox uid cannot read is refused at start, saying what to change', async (t) => {
    t.throws(() => checkReadable([join(dir, 'node/bin/node')], 65534), /hearth-private-.*is not readable by SANDBOX_UID 65534.*chmod o\+rx.*under \/usr/)
    t.doesNotThrow(() => checkReadable(['/usr/bin/python3'], 65534))
  })

  for (const zygote of ['on', 'off']) {
    t.test(`every runtime runs from a checkout the sandbox uid cannot read (ZYGOTE=${zygote})`, async (t) => {
      const d = await startDaemon(t, { ZYGOTE: zygote, STATE_DIR: join(checkout, `.state-${zygote}`) }, join(checkout, 'dist/daemon/main.js'))
      const code = { python: 'return event["n"] + 1', javascript: 'return event.n + 1', typescript: 'const n: number = event.n\nreturn n + 1' }
      for (const [language, body] of Object.entries(code)) {
        const r = await post(`${d.url}/run-now`, { language, code: body, input: { n: 41 } })
        t.same([r.status, r.body], [200, { data: 42, type: 'number' }], language)
      }
      const up = await post(`${d.url}/upload`, { path: 'private/fn', language: 'python', code: 'return "stored"' })
      t.equal(up.status, 200, 'the embedded Redis keeps its data in the private checkout')
      t.same((await post(`${d.url}/run/private/fn`, {})).body, { data: 'stored', type: 'string' })
    })
  }
}
