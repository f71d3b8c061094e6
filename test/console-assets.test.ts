// The console's page and assets over HTTP: served from memory with ETags, the
// page revalidated on each load, the assets cached; open even with AUTH=on.
import t from 'tap'
import { startDaemon } from './helpers/daemon.js'
import { checkAnswer } from './helpers/openapi.js'

const d = await startDaemon(t, { POOL_MIN: '0', AUTH: 'on', ADMIN_TOKEN: 'admin-token-for-console-assets' })

async function fetchChecked (path: string, headers: Record<string, string> = {}): Promise<Response> {
  const res = await fetch(d.url + path, { headers })
  const body = await res.clone().text()
  let parsed: unknown = body
  try { parsed = JSON.parse(body) } catch {}
  checkAnswer('GET', d.url + path, res.status, res.headers.get('content-type'), parsed)
  return res
}

t.test('the page, then its assets, with their cache headers', async (t) => {
  const page = await fetchChecked('/')
  t.equal(page.status, 200)
  t.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
  t.equal(page.headers.get('cache-control'), 'no-cache')
  t.match(await page.text(), /<script type="module" src="\/console\/app.js">/)
  const script = await fetchChecked('/console/app.js')
  t.equal(script.headers.get('content-type'), 'text/javascript; charset=utf-8')
  t.equal(script.headers.get('cache-control'), 'public, max-age=3600')
  const etag = script.headers.get('etag') as string
  t.match(etag, /^"[A-Za-z0-9_-]+"$/)
  t.equal((await fetchChecked('/console/app.js', { 'if-none-match': etag })).status, 304)
  t.equal((await fetchChecked('/console/app.css')).headers.get('content-type'), 'text/css; charset=utf-8')
  t.equal((await fetchChecked('/console/missing.js')).status, 404)
})
