// The records of asynchronous calls in Redis: queueing, reading, cancelling.
// The daemon that runs a call changes its record through worker.ts.
import { randomBytes } from 'node:crypto'
import { reachable, type RedisClient } from '../store/connection.js'
import type { Language } from '../config.js'
import { HearthError } from '../errors.js'
import { storeFailure } from '../store/function-store.js'
import { CALL_ID, CANCEL_CHANNEL, callKey, GROUP, logsKey, QUEUE } from './keys.js'
import { CANCEL, COMPLETE, ENQUEUE, START } from './scripts.js'

export type CallStatus = 'queued' | 'running' | 'done' | 'failed'

/** What a queued call will run. */
export interface CallRequest {
  readonly language: Language
  /** run-now code; absent for a stored function, whose code is read when the call starts */
  readonly code?: string
  readonly function?: string
  readonly version?: number
  readonly input: string
  readonly timeoutMs: number
  readonly callbackUrl?: string
  /** the key that queued it (null when AUTH=off): only it, or an admin, sees the call */
  readonly keyId: string | null
}

/** GET /calls/{id}: the call's status document. */
export interface CallDocument {
  id: string
  status: CallStatus
  function?: string
  version?: number
  language: Language
  created: string
  started?: string
  finished?: string
  attempts: number
  result?: unknown
  error?: Record<string, unknown>
  logs_truncated?: boolean
  cancel_requested?: boolean
  callback?: unknown
}

type Scripted = RedisClient & {
  hearthEnqueue: (queue: string, record: string, max: number, id: string, ...fields: string[]) => Promise<string | null>
  hearthStart: (record: string, queue: string, ...argv: string[]) => Promise<string[]>
  hearthComplete: (record: string, queue: string, logs: string, ...argv: string[]) => Promise<number>
  hearthCancel: (record: string, queue: string, ...argv: string[]) => Promise<string>
}

export const CANCELLED = JSON.stringify({ code: 'cancelled', message: 'the call was cancelled (DELETE /calls/{id})' })

const iso = (ms: string | undefined): string | undefined => ms === undefined || ms === '' ? undefined : new Date(Number(ms)).toISOString()

/** A record's fields as the status document (the request's code and input stay inside). */
export function documentOf (id: string, r: Record<string, string>): CallDocument {
  const doc: CallDocument = {
    id,
    status: r.status as CallStatus,
    language: r.language as Language,
    created: iso(r.created) as string,
    attempts: Number(r.attempts ?? 0)
  }
  if (r.function !== undefined && r.function !== '') {
    doc.function = r.function
    doc.version = Number(r.version)
  }
  if (iso(r.started) !== undefined) doc.started = iso(r.started)
  if (iso(r.finished) !== undefined) doc.finished = iso(r.finished)
  if (r.result !== undefined) doc.result = JSON.parse(r.result)
  if (r.error !== undefined) doc.error = JSON.parse(r.error)
  if (r.logs_truncated === '1') doc.logs_truncated = true
  if (r.cancel === '1' && doc.status === 'running') doc.cancel_requested = true
  if (r.callback !== undefined) doc.callback = JSON.parse(r.callback)
  return doc
}

export class CallStore {
  readonly redis: Scripted
  private readonly timeoutMs: number
  private readonly ttl: number

  constructor (redis: RedisClient, opts: { timeoutMs: number, resultTtlSeconds: number }) {
    this.redis = redis as Scripted
    this.timeoutMs = opts.timeoutMs
    this.ttl = opts.resultTtlSeconds
    for (const [name, lua, keys] of [['hearthEnqueue', ENQUEUE, 2], ['hearthStart', START, 2], ['hearthComplete', COMPLETE, 3], ['hearthCancel', CANCEL, 2]] as const) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys, lua })
    }
  }

  /** The consumer group, made once (every daemon tries; the first one makes it). */
  async ensureGroup (): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', QUEUE, GROUP, '0', 'MKSTREAM')
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err
    }
  }

  /** Queues a call; resolves once Redis has it (the 202 is sent after, never before). */
  async enqueue (req: CallRequest, queueMax: number): Promise<string> {
    const id = randomBytes(16).toString('hex')
    const fields: string[] = [
      'status', 'queued', 'created', String(Date.now()), 'attempts', '0', 'language', req.language,
      'input', req.input, 'timeout', String(req.timeoutMs), 'key_id', req.keyId ?? ''
    ]
    if (req.code !== undefined) fields.push('code', req.code)
    if (req.function !== undefined) fields.push('function', req.function, 'version', String(req.version))
    if (req.callbackUrl !== undefined) fields.push('callback_url', req.callbackUrl)
    const entry = await this.guard(async () => await this.redis.hearthEnqueue(QUEUE, callKey(id), queueMax, id, ...fields), 'queue the call', true)
    if (entry === null) throw new HearthError('overloaded', `${queueMax} asynchronous calls are queued or running (ASYNC_QUEUE_MAX)`)
    return id
  }

  /** Calls queued or running, every daemon's. */
  async queued (): Promise<number> {
    return await this.redis.xlen(QUEUE)
  }

  /** The call's record; call_not_found when there is none (never was, or past ASYNC_RESULT_TTL). */
  async record (id: string): Promise<Record<string, string>> {
    const r = CALL_ID.test(id) ? await this.guard(async () => await this.redis.hgetall(callKey(id)), 'read the call') : {}
    if (r.status === undefined) throw new HearthError('call_not_found', `no call ${JSON.stringify(id)} (never queued, or its result expired after ASYNC_RESULT_TTL)`)
    return r
  }

  /** The address a call's end is POSTed to (callbacks.ts), or null: none asked for. */
  async callbackUrl (id: string): Promise<string | null> {
    const url = await this.redis.hget(callKey(id), 'callback_url')
    return url === null || url === '' ? null : url
  }

  async logs (id: string): Promise<string> {
    return await this.guard(async () => await this.redis.get(logsKey(id)), 'read the logs') ?? ''
  }

  /** Cancels: a queued call ends now; a running one is marked and its daemon told. Returns what the script found. */
  async cancel (id: string): Promise<string> {
    const found = await this.guard(async () => await this.redis.hearthCancel(callKey(id), QUEUE, GROUP, String(Date.now()), String(this.ttl), CANCELLED), 'cancel the call', true)
    if (found === 'running') await this.guard(async () => await this.redis.publish(CANCEL_CHANNEL, id), 'announce the cancel')
    return found
  }

  /** worker.ts: take a delivered entry (see START). */
  async start (id: string, entry: string, worker: string, maxAttempts: number, abandoned: string): Promise<string[]> {
    return await this.redis.hearthStart(callKey(id), QUEUE, GROUP, entry, worker, String(Date.now()), String(maxAttempts), String(this.ttl), abandoned, CANCELLED)
  }

  /** worker.ts: store a call's end and acknowledge it; false when another daemon holds it now. */
  async complete (id: string, entry: string, worker: string, logs: string, fields: string[]): Promise<boolean> {
    return await this.redis.hearthComplete(callKey(id), QUEUE, logsKey(id), GROUP, entry, worker, String(this.ttl), logs, ...fields) === 1
  }

  /** Redis failures in hearth's words; a write that may have happened anyway is store_outcome_unknown. */
  private async guard<T> (work: () => Promise<T>, what: string, write = false): Promise<T> {
    if (write && !reachable(this.redis, QUEUE)) throw new HearthError('store_unavailable', `cannot ${what}: Redis is not reachable (connection ${this.redis.status})`)
    try {
      return await work()
    } catch (err) {
      const { reason, maybeDone } = storeFailure(err as Error, this.timeoutMs)
      throw new HearthError(write && maybeDone ? 'store_outcome_unknown' : 'store_unavailable', `cannot ${what}: ${reason}`)
    }
  }
}
