// The OpenAPI document: valid OpenAPI 3.1 (an OpenAPI validator), served as it
// is written, and complete: every route the server has, every error code.
// (Every answer the HTTP tests receive is checked against it: helpers/openapi.ts.)
import t from 'tap'
import { Validator } from '@seriousme/openapi-schema-validator'
import { ERRORS } from '../daemon/errors.js'
import { ROUTES } from '../daemon/http/server.js'
import { ERROR_TEXT, OPENAPI } from '../daemon/openapi/document.js'
import { checkRequest } from '../daemon/openapi/requests.js'
import { get, post, startDaemon } from './helpers/daemon.js'

t.test('the document is valid OpenAPI 3.1', async (t) => {
  const validator = new Validator()
  const res = await validator.validate(structuredClone(OPENAPI))
  t.ok(res.valid, JSON.stringify(res.errors ?? null))
  t.equal(validator.version, '3.1')
})

t.test('every route of the server is documented, with its scope', async (t) => {
  const paths = OPENAPI.paths as Record<string, Record<string, Record<string, unknown>>>
  for (const r of ROUTES) {
    const template = r.pattern.replace('/run/*', '/run/{path}').replace('/functions/*', '/functions/{path}').replace('/keys/*', '/keys/{id}').replace('/console/*', '/console/{file}').replace('/run-async/*', '/run-async/{path}').replace('/calls/*', '/calls/{id}')
    const op = paths[template]?.[r.method === 'del' ? 'delete' : r.method]
    t.ok(op, `${r.method} ${r.pattern} is in the document`)
    if (op !== undefined) t.same(op['x-hearth-scope'] ?? null, r.scope, `${r.method} ${r.pattern}: scope ${String(r.scope)}`)
  }
})

t.test('every error code is documented under its status', async (t) => {
  for (const [code, { status }] of Object.entries(ERRORS)) {
    t.match(ERROR_TEXT[status], new RegExp(`\\b${code}\\b`), `${code} under ${status}`)
  }
})

t.test('request bodies are checked against the document\'s schemas, naming the field', async (t) => {
  const cases: Array<[Parameters<typeof checkRequest>[0], Record<string, unknown>, string]> = [
    ['RunNow', { code: 'x' }, 'language'],
    ['RunNow', { language: 'ruby', code: 'x' }, 'language'],
    ['RunNow', { language: 'python', code: 5 }, 'code'],
    ['Run', { timeout: '5' }, 'timeout'],
    ['Run', { stream: 'yes' }, 'stream'],
    ['Upload', { language: 'python', code: 'x' }, 'path'],
    ['KeySpec', { name: 'n', scopes: ['root'] }, 'scopes'],
    ['KeySpec', { name: 'n', scopes: ['read'], burst: 1.5 }, 'burst']
  ]
  for (const [schema, body, field] of cases) {
    t.throws(() => checkRequest(schema, body), { code: 'invalid_field', details: { field } }, `${schema} ${JSON.stringify(body)}`)
  }
  t.doesNotThrow(() => checkRequest('Run', { input: { a: 1 }, timeout: null, stream: null }), 'null is "not given", as before')
})

t.test('GET /openapi.json serves the document, open to anyone; bodies are checked against it', async (t) => {
  const d = await startDaemon(t, { POOL_MIN: '0', AUTH: 'on', ADMIN_TOKEN: 'admin-token-for-openapi-test' })
  const r = await get(`${d.url}/openapi.json`)
  t.equal(r.status, 200)
  t.same(r.body, OPENAPI)
  const open = await startDaemon(t, { POOL_MIN: '0' })
  const bad = await post(`${open.url}/run-now`, { language: 'python', code: 'return 1', timeout: '5' })
  t.same([bad.status, bad.body.error.field], [400, 'timeout'])
  t.match(bad.body.error.message, /^timeout must be number or null \(the API's schema/, 'the schema answered, before the hand-written parsers')
})
