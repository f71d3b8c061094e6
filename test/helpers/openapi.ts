// Every answer an HTTP test receives is checked against the OpenAPI document
// (daemon/openapi/): its route and status must be documented, and its body
// must match the documented schema. A drift between code and document fails
// the test that saw it.
import { OPENAPI } from '../../daemon/openapi/document.js'
import { errorsText, validatorOf } from '../../daemon/openapi/requests.js'

const paths = OPENAPI.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>

// Templates to regexps; exact paths first, so /functions is not /functions/{path}.
const templates = Object.keys(paths)
  .sort((a, b) => Number(a.includes('{')) - Number(b.includes('{')))
  .map((t) => ({ t, re: new RegExp(`^${t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace('{path}', '(.+)').replace(/\{[a-z]+\}/, '([^/]+)')}$`) }))

const pointer = (...parts: string[]): string => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')

/** Throws when the answer is not what the document says. */
export function checkAnswer (method: string, url: string, status: number, contentType: string | null, body: unknown): void {
  const path = new URL(url).pathname
  const m = method.toLowerCase() === 'delete' ? 'delete' : method.toLowerCase()
  const t = templates.find((x) => x.re.test(path))?.t
  const where = `${method} ${path} → ${status}`
  const op = t === undefined ? undefined : paths[t]?.[m]
  if (op === undefined) { // no such route or method: the error body, and nothing else
    if (status !== 404 && status !== 405) throw new Error(`${where}: not in the OpenAPI document`)
    validate(where, '#/components/schemas/Error', body)
    return
  }
  const answer = op.responses[String(status)]
  if (answer === undefined) throw new Error(`${where}: status not documented for ${m} ${t as string}`)
  const type = (contentType ?? '').split(';')[0] as string
  if (answer.content === undefined) return
  if (!(type in answer.content)) throw new Error(`${where}: content type ${type} not documented (${Object.keys(answer.content).join(', ')})`)
  if (type !== 'application/json') return
  validate(where, `#/${pointer('paths', t as string, m, 'responses', String(status), 'content', type, 'schema')}`, body)
}

function validate (where: string, ref: string, body: unknown): void {
  const check = validatorOf(ref)
  if (!check(body)) throw new Error(`${where}: the answer does not match the OpenAPI document: ${errorsText(check.errors)}\n${JSON.stringify(body).slice(0, 500)}`)
}
