// GET /openapi.json: the OpenAPI 3.1 document of every route, written once.
// The tests validate it (an OpenAPI validator) and check every answer they
// receive against it (test/helpers/openapi.ts).
import { SCHEMAS } from './schemas.js'

type Json = Record<string, unknown>
const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: string): Json => ({ 'application/json': { schema: ref(schema) } })
const retryAfter = { 'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'integer' } } }

export const ERROR_TEXT: Record<number, string> = {
  400: 'invalid_json, invalid_field (naming `field`), invalid_version',
  401: 'unauthorized: AUTH=on and no valid key',
  403: 'forbidden: the key lacks the `scope`, or the path is outside its `prefix`',
  404: 'route_not_found (/metrics too, when METRICS_PORT is set), function_not_found, version_not_found, key_not_found, call_not_found',
  405: 'method_not_allowed',
  413: 'body_too_large, code_too_large, input_too_large',
  422: 'syntax_error, script_error, dependency_error, memory_limit, pids_limit, result_too_large, idempotency_key_reused',
  429: 'rate_limited, concurrency_limited',
  499: 'client_closed: the client went away and its call was stopped (logged, never received)',
  409: 'cancelled: only in an async call\'s status document (DELETE /calls/{id})',
  500: 'internal; abandoned (only in an async call\'s status document: started ASYNC_MAX_ATTEMPTS times, never finished)',
  502: 'sandbox_crashed, protocol_error',
  503: 'overloaded, queue_timeout, runtime_unavailable, store_unavailable, shutting_down',
  504: 'timeout, store_outcome_unknown'
}

function errors (statuses: readonly number[]): Json {
  return Object.fromEntries(statuses.map((s) => [String(s), {
    description: ERROR_TEXT[s],
    content: json('Error'),
    ...(s === 429 || s === 503 ? { headers: retryAfter } : {}),
    ...(s === 401 ? { headers: { 'WWW-Authenticate': { schema: { const: 'Bearer realm="hearth"' } } } } : {})
  }]))
}

const PATH_PARAM = { name: 'path', in: 'path', required: true, description: 'a function path: segments of letters, digits, _ . - joined by single slashes (sent as they are, slashes included)', schema: { type: 'string' } }
const VERSION_PARAM = { name: 'version', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } }
const CALLERS = ['run', 'run-now', 'admin']
const CALL_PARAM = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } }
const AUTHED = [400, 401, 403, 405, 429, 500, 503]
const CALL = [...AUTHED, 404, 413, 422, 502, 504]
const STREAM = { 'text/event-stream': { schema: { type: 'string', description: 'data: {"event":"log","data":line,"type":"text"[,"stream":"stderr"]} per line printed, then data: {"event":"result","data":...,"type":...} or data: {"event":"error","data":message,"code":...}' } } }

function operation (id: string, summary: string, scope: string | readonly string[] | null, ok: Json, statuses: readonly number[], extra: Json = {}): Json {
  return {
    operationId: id,
    summary,
    ...(scope === null
      ? { security: [] }
      : { 'x-hearth-scope': scope, description: typeof scope === 'string' ? `Needs the \`${scope}\` scope when AUTH=on.` : `Needs one of the scopes ${scope.map((s) => `\`${s}\``).join(', ')} when AUTH=on.` }),
    ...extra,
    responses: { ...ok, ...errors(statuses) }
  }
}

export const OPENAPI: Json = {
  openapi: '3.1.0',
  info: {
    title: 'hearth',
    version: '0.1.0',
    description: 'Warm bubblewrap sandboxes running Python, JavaScript and TypeScript functions over HTTP; compatible with go-faas\'s API.'
  },
  jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
  security: [{ bearer: [] }],
  paths: {
    '/upload': {
      post: operation('upload', 'Store a new version of a function', 'upload', {
        200: {
          description: 'the stored version (an Idempotency-Key replay answers the first one); with "stream": true and dependencies, an event stream of the installer\'s output (npm, pip), then data: {"event":"result","data":<the answer>,"type":"json"}',
          headers: { 'Idempotent-Replayed': { schema: { const: 'true' } } },
          content: { ...json('Uploaded'), 'text/event-stream': { schema: { type: 'string' } } }
        }
      }, [...AUTHED, 413, 422, 504], {
        parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } }],
        requestBody: { required: true, content: json('Upload') }
      })
    },
    '/run-now': {
      post: operation('runNow', 'Run code once, in a fresh sandbox', 'run-now', {
        200: { description: 'the result, or an event stream with "stream": true', content: { ...json('Result'), ...STREAM } }
      }, CALL, { requestBody: { required: true, content: json('RunNow') } })
    },
    '/run/{path}': {
      post: operation('run', 'Run a stored function: its latest version, or ?version=N', 'run', {
        200: {
          description: 'the result, or an event stream with "stream": true',
          headers: {
            'X-Hearth-Stale': { description: 'Redis is away: the version last known, this many seconds old (STALE_IF_REDIS_DOWN_SECONDS)', schema: { type: 'integer' } },
            'X-Hearth-Logs-Truncated': { schema: { const: '1' } }
          },
          content: { ...json('Result'), ...STREAM }
        }
      }, CALL, { parameters: [PATH_PARAM, VERSION_PARAM], requestBody: { required: false, content: json('Run') } })
    },
    '/run-now-async': {
      post: operation('runNowAsync', 'Queue code to run once, in a fresh sandbox, on whichever daemon has room', 'run-now', {
        202: { description: 'queued (durably: Redis has it)', headers: { Location: { schema: { type: 'string' } } }, content: json('CallAccepted') }
      }, [...AUTHED, 413], { requestBody: { required: true, content: json('RunNowAsync') } })
    },
    '/run-async/{path}': {
      post: operation('runAsync', 'Queue a call of a stored function: its latest version (fixed when queued), or ?version=N', 'run', {
        202: { description: 'queued (durably: Redis has it)', headers: { Location: { schema: { type: 'string' } } }, content: json('CallAccepted') }
      }, [...AUTHED, 404, 413, 504], { parameters: [PATH_PARAM, VERSION_PARAM], requestBody: { required: false, content: json('RunAsync') } })
    },
    '/calls/{id}': {
      get: operation('getCall', 'An async call\'s status document (the key that queued it, or an admin)', CALLERS, { 200: { description: 'the call', content: json('Call') } }, [...AUTHED, 404], { parameters: [CALL_PARAM] }),
      delete: operation('cancelCall', 'Cancel a queued call, or kill a running one; answers once its end is stored (up to 10 s)', CALLERS, {
        200: { description: 'the call after the cancel (a finished call is left as it was)', content: json('Call') }
      }, [...AUTHED, 404, 504], { parameters: [CALL_PARAM] })
    },
    '/calls/{id}/logs': {
      get: operation('getCallLogs', 'What an async call printed, up to LOG_MAX_BYTES', CALLERS, { 200: { description: 'its output', content: { 'text/plain': { schema: { type: 'string' } } } } }, [...AUTHED, 404], { parameters: [CALL_PARAM] })
    },
    '/functions': {
      get: operation('listFunctions', 'List functions (a key with a prefix sees its own)', 'read', { 200: { description: 'a page', content: json('FunctionList') } }, AUTHED, {
        parameters: [
          { name: 'cursor', in: 'query', required: false, schema: { type: 'string' } },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 } }
        ]
      })
    },
    '/functions/{path}': {
      get: operation('getFunction', 'A function\'s versions; with ?version=N, that version and its code', 'read', {
        200: { description: 'its versions, or one version with its code', content: { 'application/json': { schema: { oneOf: [ref('Function'), ref('VersionCode')] } } } }
      }, [...AUTHED, 404], { parameters: [PATH_PARAM, VERSION_PARAM] }),
      delete: operation('deleteFunction', 'Delete every version, or ?version=N', 'delete', { 200: { description: 'how many versions were deleted', content: json('Deleted') } }, [...AUTHED, 404, 504], { parameters: [PATH_PARAM, VERSION_PARAM] })
    },
    '/keys': {
      post: operation('createKey', 'Create an API key', 'admin', { 201: { description: 'the key, with its secret shown this once', content: json('KeyCreated') } }, AUTHED, { requestBody: { required: true, content: json('KeySpec') } }),
      get: operation('listKeys', 'List API keys, never their secrets', 'admin', { 200: { description: 'every key', content: json('KeyList') } }, AUTHED)
    },
    '/keys/{id}': {
      delete: operation('revokeKey', 'Revoke an API key on every daemon', 'admin', { 200: { description: 'the revoked key', content: json('KeyRevoked') } }, [...AUTHED, 404], {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]
      })
    },
    '/healthz': { get: operation('healthz', 'The process answers', null, { 200: { description: 'alive', content: json('Health') } }, [503]) },
    '/readyz': {
      get: operation('readyz', 'Redis answers and every language can take work', null, {
        200: { description: 'ready', content: json('Ready') },
        503: { description: 'not ready (or shutting_down)', content: { 'application/json': { schema: { oneOf: [ref('Ready'), ref('Error')] } } } }
      }, [])
    },
    '/metrics': {
      get: operation('metrics', 'Prometheus text format (on METRICS_PORT instead when set)', 'metrics', {
        200: { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } }
      }, [...AUTHED, 404])
    },
    '/': { get: operation('console', 'The web console', null, { 200: { description: 'its page', content: { 'text/html': { schema: { type: 'string' } } } }, 304: { description: 'not modified (If-None-Match)' } }, [404]) },
    '/console/{file}': {
      get: operation('consoleAsset', 'The web console\'s script and style', null, {
        200: { description: 'the asset (ETag; cached for an hour)', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
        304: { description: 'not modified (If-None-Match)' }
      }, [404], { parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }] })
    },
    '/openapi.json': { get: operation('openapi', 'This document', null, { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } }, []) }
  },
  components: {
    schemas: SCHEMAS,
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API key (hearth_<id>_<secret>) or ADMIN_TOKEN; only when AUTH=on' } }
  }
}

/** The document as served, encoded once. */
export const OPENAPI_JSON = JSON.stringify(OPENAPI)
