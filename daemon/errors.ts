// Every error a caller can see: a stable code, an HTTP status, a default message.
// Tests assert on `code`; messages are for people.

export const ERRORS = {
  invalid_json: { status: 400, message: 'request body is not valid JSON' },
  invalid_field: { status: 400, message: 'a field of the request is invalid' },
  invalid_version: { status: 400, message: 'version must be a positive integer' },
  unauthorized: { status: 401, message: 'a valid API key is required' },
  forbidden: { status: 403, message: 'this key may not do that' },
  route_not_found: { status: 404, message: 'no such route' },
  key_not_found: { status: 404, message: 'no key with that id' },
  call_not_found: { status: 404, message: 'no asynchronous call with that id' },
  function_not_found: { status: 404, message: 'no function at that path' },
  version_not_found: { status: 404, message: 'no such version of that function' },
  method_not_allowed: { status: 405, message: 'method not allowed on this route' },
  body_too_large: { status: 413, message: 'request body is too large' },
  code_too_large: { status: 413, message: 'code is larger than CODE_MAX_SIZE' },
  idempotency_key_reused: { status: 422, message: 'this Idempotency-Key was used for another request' },
  input_too_large: { status: 413, message: 'input is larger than INPUT_MAX_SIZE' },
  syntax_error: { status: 422, message: 'the code does not parse' },
  dependency_error: { status: 422, message: 'the dependencies could not be installed' },
  script_error: { status: 422, message: 'the code raised an exception' },
  memory_limit: { status: 422, message: 'the code exceeded its memory limit' },
  pids_limit: { status: 422, message: 'the code exceeded its process limit' },
  result_too_large: { status: 422, message: 'the result is larger than RESULT_MAX_BYTES' },
  sandbox_crashed: { status: 502, message: 'the sandbox exited during the call' },
  protocol_error: { status: 502, message: 'the sandbox broke the frame protocol' },
  rate_limited: { status: 429, message: 'this key is over its request rate' },
  concurrency_limited: { status: 429, message: 'this key has as many calls in flight as it may' },
  overloaded: { status: 503, message: 'too many calls are waiting for a sandbox' },
  queue_timeout: { status: 503, message: 'no sandbox became free in time' },
  runtime_unavailable: { status: 503, message: 'the language runtime cannot start' },
  store_unavailable: { status: 503, message: 'the function store (Redis) is unavailable' },
  store_outcome_unknown: { status: 504, message: 'Redis did not confirm the write: it may or may not have been done' },
  shutting_down: { status: 503, message: 'the server is shutting down' },
  client_closed: { status: 499, message: 'the client went away; its call was stopped' },
  timeout: { status: 504, message: 'the code ran past its time limit' },
  internal: { status: 500, message: 'internal error' },
  // Seen only in an asynchronous call's status document (GET /calls/{id}).
  cancelled: { status: 409, message: 'the call was cancelled' },
  abandoned: { status: 500, message: 'the call was started ASYNC_MAX_ATTEMPTS times and never finished' }
} as const satisfies Record<string, { status: number, message: string }>

export type ErrorCode = keyof typeof ERRORS

/** Codes whose responses carry Retry-After: the caller may simply try again. */
export const RETRYABLE: ReadonlySet<ErrorCode> = new Set(['overloaded', 'queue_timeout', 'runtime_unavailable', 'store_unavailable', 'shutting_down'])

export class HearthError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details: Record<string, unknown>

  constructor (code: ErrorCode, message?: string, details: Record<string, unknown> = {}) {
    super(message ?? ERRORS[code].message)
    this.name = 'HearthError'
    this.code = code
    this.status = ERRORS[code].status
    this.details = details
  }

  toJSON (): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } }
  }
}

/**
 * The one mapping from a sandbox limit hit to what the caller sees. `during`:
 * the error the call ended with (a timeout, a crash, a MemoryError), kept as
 * the cause; the limit is the reason.
 */
export function limitError (breach: 'memory' | 'pids' | 'unreadable', during?: HearthError): HearthError {
  // Counters that cannot be read name no limit: the call's own error stands.
  if (breach === 'unreadable') return during ?? new HearthError('sandbox_crashed', 'the sandbox exited, and its cgroup\'s counters cannot be read')
  const details = during === undefined ? {} : { cause: during.message }
  return breach === 'memory'
    ? new HearthError('memory_limit', 'the code exceeded its memory limit and was killed', details)
    : new HearthError('pids_limit', 'the code exceeded its process limit', details)
}

export function invalidField (field: string, problem: string): HearthError {
  return new HearthError('invalid_field', `${field} ${problem}`, { field })
}

export function asHearthError (err: unknown): HearthError {
  if (err instanceof HearthError) return err
  return new HearthError('internal', err instanceof Error ? err.message : String(err))
}

/**
 * A start the host or the configuration refuses (a port or STATE_DIR in use,
 * a named limits backend that cannot work here, ZYGOTE=on without a zygote):
 * the operator's to mend, so main.ts says it in one line, without a stack.
 */
export class CannotStart extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'CannotStart'
  }
}
