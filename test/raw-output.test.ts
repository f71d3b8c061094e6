// What code writes to fds 1 and 2 itself (C libraries, child processes,
// os.write, fs.writeSync) reaches its call's log: all of it, and none of it
// another call's; for forked sandboxes and for spawned ones (ZYGOTE=off).
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const RAW_BEFORE_RETURN = {
  python: (tag: string) => `import os\nos.write(1, b"out ${tag}\\n")\nos.write(2, b"err ${tag}\\n")\nreturn 1`,
  javascript: (tag: string) => `const fs = require("fs")\nfs.writeSync(1, "out ${tag}\\n")\nfs.writeSync(2, "err ${tag}\\n")\nreturn 1`
} as const

for (const zygote of ['auto', 'off'] as const) {
  t.test(`ZYGOTE=${zygote}`, async (t) => {
    const { runner } = await startRunner(t, { ZYGOTE: zygote, POOL_MIN: '1' })

    // The answer comes on the frame channel, the raw output on two others:
    // without waiting for what was written before the answer, it was lost in
    // 1-4 % of such calls.
    t.test('raw output written just before the answer is in the call\'s log, every time', async (t) => {
      for (const [language, code] of Object.entries(RAW_BEFORE_RETURN)) {
        let whole = 0
        const calls = 120
        for (let i = 0; i < calls; i++) {
          const r = await call(runner, { language: language as keyof typeof RAW_BEFORE_RETURN, code: code(String(i)), input: '{}' })
          t.equal(r.result?.data, '1')
          const lines = r.logs.map(([stream, line]) => `${stream} ${line}`)
          if (lines.includes(`stdout out ${i}`) && lines.includes(`stderr err ${i}`)) whole++
        }
        t.equal(whole, calls, `${language}: every run-now call's raw lines`)
      }
    })

    t.test('a warm sandbox\'s raw output goes to the call that wrote it', async (t) => {
      for (const [language, code] of Object.entries(RAW_BEFORE_RETURN)) {
        const key = `raw/${language}-${zygote}@1`
        for (let i = 0; i < 60; i++) {
          const r = await call(runner, { language: language as keyof typeof RAW_BEFORE_RETURN, code: code('n'), input: '{}', functionKey: key })
          const lines = r.logs.map(([stream, line]) => `${stream} ${line}`)
          if (lines.join('\n') !== 'stdout out n\nstderr err n' && lines.join('\n') !== 'stderr err n\nstdout out n') {
            t.fail(`${language} call ${i}: ${JSON.stringify(lines)}`)
            return
          }
        }
        t.pass(`${language}: 60 calls, each with its own two lines`)
      }
    })
  })
}
