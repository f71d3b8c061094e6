// Request bodies checked against the OpenAPI document's own schemas (ajv,
// compiled once at start), before the hand-written parsers of http/validate.ts
// add what a schema cannot say (sizes, UTF-8, path segments, JSON depth). The
// cost on the warm path was measured: bench/validate-cost.ts. The tests check
// answers with the same validators (validatorOf).
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import { invalidField } from '../errors.js'
import { OPENAPI } from './document.js'

export type RequestSchema = 'Upload' | 'RunNow' | 'Run' | 'RunNowAsync' | 'RunAsync' | 'KeySpec'

// validateSchema: false: the document is checked as OpenAPI 3.1 by the tests
// (test/openapi.test.ts); checking it against JSON Schema's meta-schema at
// every start compiled that meta-schema, ~0.1 s of a daemon's ~0.8 s of CPU
// to ready (measured), and that in every test daemon and emulated guest.
const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: false, validateSchema: false })
ajv.addSchema(OPENAPI, 'openapi')
const validators = new Map<string, ValidateFunction>()

/** The compiled validator of a schema in the document: `ref` is a JSON pointer into it ("#/components/schemas/Run"). */
export function validatorOf (ref: string): ValidateFunction {
  let validate = validators.get(ref)
  if (validate === undefined) validators.set(ref, validate = ajv.compile({ $ref: `openapi${ref}` }))
  return validate
}

export function errorsText (errors: ValidateFunction['errors']): string {
  return ajv.errorsText(errors)
}

/** The field an ajv error is about: the first segment of its path, or the missing property. */
function fieldOf (e: ErrorObject): string {
  const top = e.instancePath.split('/')[1]
  if (top !== undefined && top !== '') return top
  return String((e.params as { missingProperty?: string }).missingProperty ?? 'body')
}

/** Throws invalid_field naming the first field that breaks the documented schema. */
export function checkRequest (schema: RequestSchema, body: Record<string, unknown>): void {
  const validate = validatorOf(`#/components/schemas/${schema}`)
  if (validate(body)) return
  const e = (validate.errors as ErrorObject[])[0] as ErrorObject
  const field = fieldOf(e)
  const params = e.params as { allowedValues?: unknown[], type?: string | string[] }
  const problem = e.keyword === 'required'
    ? 'is required'
    : e.keyword === 'enum'
      ? `must be one of ${(params.allowedValues ?? []).join(', ')}`
      : e.keyword === 'type'
        ? `must be ${String(params.type).split(',').join(' or ')} (the API's schema: GET /openapi.json)`
        : `${e.message ?? 'is invalid'} (the API's schema: GET /openapi.json)`
  throw invalidField(field, problem)
}

/** Compiles every request schema now, so that no first request pays for it. */
export function compileRequestSchemas (): void {
  for (const s of ['Upload', 'RunNow', 'Run', 'RunNowAsync', 'RunAsync', 'KeySpec'] as const) {
    try { checkRequest(s, {}) } catch {}
  }
}
