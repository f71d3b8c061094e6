// The JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of every body hearth
// reads and answers. The HTTP tests validate every answer they get against
// them (test/helpers/openapi.ts), so they cannot drift from the code.
import { LANGUAGES } from '../config.js'
import { ERRORS } from '../errors.js'
import { SCOPES } from '../auth/principal.js'

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` })
const string = { type: 'string' } as const
const integer = { type: 'integer' } as const
const nullable = (schema: Record<string, unknown>): Record<string, unknown> => ({ oneOf: [schema, { type: 'null' }] })
const dateTime = { type: 'string', format: 'date-time' } as const

/** The body of /run-now and /run-now-async, but for `stream` and `callback_url`. */
const RUN_NOW = {
  language: ref('Language'),
  code: string,
  input: ref('Input'),
  timeout: { type: ['number', 'null'], exclusiveMinimum: 0, description: 'seconds, at most TIMEOUT_SCRIPT' }
}
const DEPENDENCIES = { type: ['object', 'array', 'null'], additionalProperties: string, items: string, description: 'JavaScript / TypeScript: npm packages as in package.json (an object: name → version range, from the registry); Python: requirement strings as in requirements.txt (a list, PEP 508 without URLs); installed before the answer' }
const CALLBACK_URL = { type: ['string', 'null'], description: 'http(s) URL that receives the call\'s status document when it ends (signed: X-Hearth-Signature); public addresses only, unless CALLBACK_ALLOW lists the host or its network' }

const key = {
  type: 'object',
  required: ['id', 'name', 'scopes', 'prefix', 'rate_per_second', 'burst', 'max_concurrency', 'expires_at', 'created'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    name: string,
    scopes: { type: 'array', items: ref('Scope') },
    prefix: { type: 'string', description: 'the key sees and touches only functions whose path starts with this ("" for all)' },
    rate_per_second: nullable({ type: 'number' }),
    burst: nullable(integer),
    max_concurrency: nullable(integer),
    expires_at: nullable(dateTime),
    created: dateTime
  }
}

export const SCHEMAS: Record<string, unknown> = {
  Language: { type: 'string', enum: [...LANGUAGES] },
  Scope: { type: 'string', enum: [...SCOPES] },
  Error: {
    type: 'object',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        description: 'more fields by code: `field` (400s), `line`, `column`, `lineText` (syntax_error), `name`, `stack` (script_error), `scope` / `prefix` (forbidden), `limit`, `bytes`',
        properties: {
          code: { type: 'string', enum: Object.keys(ERRORS) },
          message: string,
          field: string,
          name: string,
          stack: string,
          line: integer,
          column: integer,
          lineText: string,
          scope: ref('Scope'),
          prefix: string,
          output: { type: 'string', description: 'dependency_error: the end of the installer\'s output' }
        }
      }
    }
  },
  Input: { description: 'the input: JSON text in a string (go-faas), or any JSON value' },
  Result: {
    type: 'object',
    required: ['data', 'type'],
    additionalProperties: false,
    properties: {
      data: { description: 'the returned value, or the last non-empty stdout line' },
      type: { type: 'string', enum: ['string', 'number', 'json', 'text'] }
    }
  },
  RunNow: {
    type: 'object',
    required: ['language', 'code'],
    properties: {
      ...RUN_NOW,
      stream: { type: ['boolean', 'null'], description: 'answer as Server-Sent Events: logs as printed, then the result' },
      dependencies: DEPENDENCIES
    }
  },
  Run: {
    type: 'object',
    properties: {
      input: ref('Input'),
      timeout: { type: ['number', 'null'], exclusiveMinimum: 0 },
      stream: { type: ['boolean', 'null'] }
    }
  },
  RunNowAsync: { type: 'object', required: ['language', 'code'], properties: { ...RUN_NOW, callback_url: CALLBACK_URL } },
  RunAsync: {
    type: 'object',
    properties: { input: ref('Input'), timeout: { type: ['number', 'null'], exclusiveMinimum: 0 }, callback_url: CALLBACK_URL }
  },
  CallAccepted: {
    type: 'object',
    required: ['id', 'status_url'],
    additionalProperties: false,
    properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' }, status_url: string }
  },
  Call: {
    type: 'object',
    required: ['id', 'status', 'language', 'created', 'attempts'],
    additionalProperties: false,
    properties: {
      id: string,
      status: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] },
      function: string,
      version: integer,
      language: ref('Language'),
      created: dateTime,
      started: dateTime,
      finished: dateTime,
      attempts: { type: 'integer', minimum: 0, description: 'times a daemon started it (a call whose daemon died is started again, up to ASYNC_MAX_ATTEMPTS)' },
      result: ref('Result'),
      error: { $ref: '#/components/schemas/Error/properties/error' },
      logs_truncated: { const: true },
      cancel_requested: { const: true, description: 'DELETE asked for it; its daemon has not stored its end yet' },
      callback: {
        type: 'object',
        required: ['delivered', 'attempts'],
        additionalProperties: false,
        properties: {
          delivered: { type: 'boolean' },
          attempts: {
            type: 'array',
            items: { type: 'object', required: ['at'], additionalProperties: false, properties: { at: dateTime, status: integer, error: string } }
          }
        }
      }
    }
  },
  Upload: {
    type: 'object',
    required: ['path', 'language', 'code'],
    properties: {
      path: string,
      language: ref('Language'),
      code: string,
      dependencies: DEPENDENCIES,
      stream: { type: ['boolean', 'null'], description: 'with dependencies: the installer\'s output (npm, pip) as Server-Sent Events while it installs, then the answer as the last event' }
    }
  },
  Dependencies: {
    type: 'object',
    required: ['requested', 'resolved', 'layer'],
    additionalProperties: false,
    properties: {
      requested: { type: ['object', 'array'], additionalProperties: string, items: string, description: 'what the upload asked for: npm\'s object or pip\'s list' },
      resolved: { type: 'object', additionalProperties: string, description: 'every package installed at its exact version: npm by its path (a > b: b nested under a), pip by its normalized project name' },
      layer: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'the layer\'s address: a hash of the runtime and the exact set' }
    }
  },
  Uploaded: {
    type: 'object',
    required: ['path', 'language', 'version', 'size', 'sha256', 'created'],
    additionalProperties: false,
    properties: { path: string, language: ref('Language'), version: integer, size: integer, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, created: integer, dependencies: ref('Dependencies') }
  },
  Version: {
    type: 'object',
    required: ['version', 'language', 'size', 'sha256', 'created'],
    additionalProperties: false,
    properties: { version: integer, language: ref('Language'), size: integer, sha256: string, created: integer, dependencies: ref('Dependencies') }
  },
  Function: {
    type: 'object',
    required: ['path', 'versions'],
    additionalProperties: false,
    properties: { path: string, latest: integer, versions: { type: 'array', items: ref('Version') } }
  },
  VersionCode: {
    type: 'object',
    required: ['path', 'version', 'language', 'size', 'sha256', 'created', 'code'],
    additionalProperties: false,
    properties: { path: string, version: integer, language: ref('Language'), size: integer, sha256: string, created: integer, dependencies: ref('Dependencies'), code: string }
  },
  FunctionList: {
    type: 'object',
    required: ['functions', 'next_cursor'],
    additionalProperties: false,
    properties: {
      functions: {
        type: 'array',
        items: {
          type: 'object',
          required: ['path', 'latest', 'versions', 'language'],
          additionalProperties: false,
          properties: { path: string, latest: integer, versions: integer, language: ref('Language') }
        }
      },
      next_cursor: nullable(string)
    }
  },
  Deleted: { type: 'object', required: ['path', 'deleted'], additionalProperties: false, properties: { path: string, deleted: integer } },
  KeySpec: {
    type: 'object',
    required: ['name', 'scopes'],
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 100 },
      scopes: { type: 'array', minItems: 1, items: ref('Scope') },
      prefix: { type: ['string', 'null'] },
      rate_per_second: { type: ['number', 'null'], exclusiveMinimum: 0 },
      burst: { type: ['integer', 'null'], minimum: 1 },
      max_concurrency: { type: ['integer', 'null'], minimum: 1 },
      expires_at: { oneOf: [dateTime, { type: 'number' }, { type: 'null' }] }
    }
  },
  Key: key,
  KeyCreated: { ...key, required: [...key.required, 'key'], properties: { ...key.properties, key: { type: 'string', description: 'the secret, shown this once' } } },
  KeyList: { type: 'object', required: ['keys'], additionalProperties: false, properties: { keys: { type: 'array', items: ref('Key') } } },
  KeyRevoked: { type: 'object', required: ['revoked'], additionalProperties: false, properties: { revoked: ref('Key') } },
  Health: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } },
  Ready: {
    type: 'object',
    required: ['ready', 'redis', 'limits', 'runtimes', 'pools', 'warm', 'sandboxes'],
    properties: {
      ready: { type: 'boolean' },
      redis: { type: 'boolean' },
      limits: {
        type: 'object',
        required: ['backend'],
        properties: {
          backend: string,
          cgroups: { type: 'object', required: ['made', 'reused', 'spare'], properties: { made: integer, reused: integer, spare: integer }, description: 'cgroup backends: sandbox cgroups made, handed on from an ended sandbox to the next, and kept empty now' }
        }
      },
      runtimes: { type: 'object' },
      pools: { type: 'array', items: { type: 'object', required: ['language'] } },
      warm: { type: 'object' },
      sandboxes: integer
    }
  }
}
