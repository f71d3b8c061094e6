// The web console in a real browser (Debian's chromium, driven by
// playwright-core) against a real daemon: write Python, run it, see the logs
// stream in and the result; save a function and run it from the list; an
// error highlights its line (issue 14). scripts/test-all.sh installs chromium.
import t from 'tap'
import { existsSync } from 'node:fs'
import { chromium, type Page } from 'playwright-core'
import { startDaemon } from '../helpers/daemon.js'
import { TestRedis } from '../helpers/redis.js'

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) {
  t.comment(`no browser at ${CHROMIUM}: install Debian's chromium (make test does), or set CHROMIUM`)
  t.fail('the browser test needs chromium')
} else {
  await run()
}

/** Waits until an expression holds in the page (a string: it runs there, not here). */
async function until (page: Page, expression: string): Promise<void> {
  await page.waitForFunction(expression)
}

const text = (id: string): string => `(document.getElementById('${id}')?.textContent ?? '')`

async function write (page: Page, code: string): Promise<void> {
  await page.click('.cm-content')
  await page.keyboard.press('Control+A')
  await page.keyboard.insertText(code) // as a paste: the editor's auto-closing does not apply
}

async function run (): Promise<void> {
  const redis = await TestRedis.start(t)
  const d = await startDaemon(t, { REDIS_URL: redis.url, POOL_MIN: '1', POOL_MAX: '2' })
  // root in CI: chromium's own sandbox needs an unprivileged user
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(async () => await browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  await page.goto(`${d.url}/`)

  t.test('the page loads with its editor and no script error', async (t) => {
    await page.waitForSelector('.cm-editor')
    t.equal(await page.title(), 'hearth console')
    t.same(problems, [])
  })

  t.test('write Python, run it: logs stream in as printed, then the result and its type', async (t) => {
    await write(page, 'import time\nprint("first line")\ntime.sleep(1)\nprint("second line")\nreturn {"n": 42}\n')
    await page.click('#run')
    await until(page, `${text('logs')}.includes('first line')`)
    t.equal(await page.textContent('#result'), '', 'the first log line is shown before the call has ended')
    await until(page, `${text('result')} !== ''`)
    t.equal(await page.textContent('#logs'), 'first line\nsecond line\n')
    t.equal(await page.textContent('#result'), '{\n  "n": 42\n}\n(json)')
    t.match(await page.textContent('#timing'), /^\d+ ms$/)
  })

  t.test('save as a function, then run it from the list', async (t) => {
    await write(page, 'print("stored")\nreturn "from the list"\n')
    await page.fill('#path', 'console/hello')
    await page.click('#save')
    const item = page.locator('#functions li[data-path="console/hello"]')
    await item.waitFor()
    t.match(await item.textContent(), /console\/hello \(python, v\d+, 1 version\)/)
    await write(page, 'return "something else"\n')
    await item.locator('button', { hasText: 'Open' }).click()
    await until(page, "window.hearthEditor.state.doc.toString().includes('from the list')")
    await item.locator('button', { hasText: 'Run' }).click()
    await until(page, `${text('result')}.includes('from the list')`)
    t.equal(await page.textContent('#logs'), 'stored\n')
  })

  t.test('an error highlights its line', async (t) => {
    await write(page, 'x = 1\ny = 2\nraise ValueError("broken here")\nz = 3\n')
    await page.click('#run')
    await page.waitForSelector('.cm-lintRange-error')
    t.match(await page.textContent('#error'), /^script_error: broken here/)
    t.equal(await page.textContent('.cm-lintRange-error'), 'raise ValueError("broken here")', 'the third line, the one that raised')
    await write(page, 'return (1 +\n')
    await page.selectOption('#language', 'javascript')
    await page.click('#run')
    await until(page, `${text('error')}.startsWith('syntax_error')`)
    t.equal(await page.textContent('.cm-lintRange-error'), 'return (1 +', 'a syntax error: its line')
    if (process.env.CONSOLE_SCREENSHOT !== undefined) {
      await write(page, 'const primes = []\nfor (let n = 2; primes.length < 10; n++) {\n  if (primes.every((p) => n % p !== 0)) primes.push(n)\n}\nconsole.log("found", primes.length)\nreturn { primes, input: event }\n')
      await page.fill('#input', '{"who": "readme"}')
      await page.click('#run')
      await until(page, `${text('result')}.includes('primes')`)
      await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT })
    }
    t.same(problems, [], 'no script error in the page')
  })
}
