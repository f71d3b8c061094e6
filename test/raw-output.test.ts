// What code writes to fds 1 and 2 itself (C libraries, child processes,
// os.write, fs.writeSync, /dev/stdout) reaches its call's log: all of it, and
// none of it another call's; for forked sandboxes (node's forked and
// executed) and for spawned ones (ZYGOTE=off).
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const RAW_BEFORE_RETURN = {
  python: (tag: string) => `import os\nos.write(1, b"out ${tag}\\n")\nos.write(2, b"err ${tag}\\n")\nreturn 1`,
  javascript: (tag: string) => `const fs = require("fs")\nfs.writeSync(1, "out ${tag}\\n")\nfs.writeSync(2, "err ${tag}\\n")\nreturn 1`
} as const

// fds 1 and 2 are pipes, as a shell's are: sockets (as they were) cannot be
// opened by name, and `echo x >/dev/stderr` failed with "No such device or address".
const BY_NAME = {
  python: 'import fcntl, os, stat, subprocess\n' +
    'with open("/dev/stdout", "w") as f:\n    f.write("py stdout\\n")\n' +
    'with open("/dev/stderr", "w") as f:\n    f.write("py stderr\\n")\n' +
    'subprocess.run(["/bin/sh", "-c", "echo sh stdout >/dev/stdout; echo sh stderr >/dev/stderr"], check=True)\n' +
    'return [stat.S_ISFIFO(os.fstat(fd).st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY for fd in (1, 2)]',
  javascript: 'const fs = require("fs")\n' +
    'fs.writeFileSync("/dev/stdout", "js stdout\\n")\n' +
    'fs.appendFileSync("/dev/stderr", "js stderr\\n")\n' +
    'require("child_process").execFileSync("/bin/sh", ["-c", "echo sh stdout >/dev/stdout; echo sh stderr >/dev/stderr"], { stdio: "inherit" })\n' +
    'return [1, 2].map((fd) => fs.fstatSync(fd).isFIFO())'
} as const

// Their third item: how many times each language repeats a write just before
// its answer. The race is the daemon's (Sandbox.settle), one for every
// variant; the default one repeats it most. The other two, whose plumbing the
// first subtest checks, start a whole node for each JavaScript call: 30 each
// (120 made this file take 93 s of CPU on a slow machine, 30 44 s). Without
// settle's wait, each variant failed at 30 calls too (3 runs of 3).
const VARIANTS = [
  ['forked', { ZYGOTE: 'auto' }, 120],
  ['forked, node executed', { ZYGOTE: 'auto', ZYGOTE_NODE: 'exec' }, 30],
  ['spawned', { ZYGOTE: 'off' }, 30]
] as const

for (const [zygote, env, calls] of VARIANTS) {
  t.test(zygote, async (t) => {
    // Three ready: the refills of sequential calls overlap (a spawned sandbox
    // takes ~50 ms to start on a slow machine, and up to 360 calls wait for them).
    const { runner } = await startRunner(t, { ...env, POOL_MIN: '3' })

    t.test('/dev/stdout and /dev/stderr open: fds 1 and 2 are write-only pipes', async (t) => {
      for (const [language, code] of Object.entries(BY_NAME)) {
        const r = await call(runner, { language: language as keyof typeof BY_NAME, code, input: '{}' })
        t.equal(r.result?.data, '[true,true]', `${language}: ${r.error?.message ?? ''}`)
        const prefix = language === 'python' ? 'py' : 'js'
        t.same(r.logs.filter(([, line]) => line.startsWith(prefix)).sort(), [['stderr', `${prefix} stderr`], ['stdout', `${prefix} stdout`]], language)
        t.same(r.logs.filter(([, line]) => line.startsWith('sh ')).sort(), [['stderr', 'sh stderr'], ['stdout', 'sh stdout']], `${language}: a shell's`)
      }
    })

    // The answer comes on the frame channel, the raw output on two others:
    // without waiting for what was written before the answer, it was lost in
    // 1-4 % of such calls.
    t.test('raw output written just before the answer is in the call\'s log, every time', async (t) => {
      for (const [language, code] of Object.entries(RAW_BEFORE_RETURN)) {
        let whole = 0
        for (let i = 0; i < calls; i++) {
          const r = await call(runner, { language: language as keyof typeof RAW_BEFORE_RETURN, code: code(String(i)), input: '{}' })
          t.equal(r.result?.data, '1')
          const lines = r.logs.map(([stream, line]) => `${stream} ${line}`)
          if (lines.includes(`stdout out ${i}`) && lines.includes(`stderr err ${i}`)) whole++
        }
        t.equal(whole, calls, `${language}: every run-now call's raw lines`)
      }
    })

    t.test('a raw line left unended is the call\'s last log line, not the start of the next call\'s', async (t) => {
      const code = 'import os\nos.system("printf unended")\nreturn 1'
      for (let i = 0; i < 2; i++) {
        const r = await call(runner, { language: 'python', code, input: '{}', functionKey: 'raw/unended@1' })
        t.same(r.logs, [['stdout', 'unended']], `call ${i + 1}`)
      }
    })

    t.test('a warm sandbox\'s raw output goes to the call that wrote it', async (t) => {
      for (const [language, code] of Object.entries(RAW_BEFORE_RETURN)) {
        const key = `raw/${language}@1`
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

// Pipes for a spawned sandbox come from the zygote's C core (as its Node-API
// addon: daemon/sandbox/pipes.ts). Where it could not be built, spawned
// sandboxes keep node's socket pairs: raw output still reaches the log.
t.test('spawned without the C core: socket pairs, raw output still in the log', async (t) => {
  const { runner } = await startRunner(t, { ZYGOTE: 'off', POOL_MIN: '1' }, { editFiles: (files) => ({ ...files, zygoteLibrary: null }) })
  for (const [language, code] of Object.entries(RAW_BEFORE_RETURN)) {
    const r = await call(runner, { language: language as keyof typeof RAW_BEFORE_RETURN, code: code('s'), input: '{}' })
    t.same(r.logs.sort(), [['stderr', 'err s'], ['stdout', 'out s']], language)
  }
  const r = await call(runner, { language: 'python', code: 'import os, stat\nreturn stat.S_ISSOCK(os.fstat(1).st_mode)', input: '{}' })
  t.equal(r.result?.data, 'true', 'fd 1 is a socket there')
})
