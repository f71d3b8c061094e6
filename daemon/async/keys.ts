// Redis keys of asynchronous calls. All share the hash tag {async}: the stream
// is one key, so its slot carries every queued call anyway, and with the call
// records beside it, queueing (record + stream entry) and finishing (result +
// acknowledgement) are each one atomic script, on one Redis or a cluster.
import { PREFIX } from '../store/keys.js'

const TAG = `${PREFIX}{async}`

/** The stream of queued calls: one entry per call, `id` → the call's id; deleted once acknowledged. */
export const QUEUE = `${TAG}:queue`

/** The consumer group every daemon joins. */
export const GROUP = 'hearth'

/** Hash: one call's record (request, status, result). */
export const callKey = (id: string): string => `${TAG}:call:${id}`

/** String: one call's logs, up to LOG_MAX_BYTES. */
export const logsKey = (id: string): string => `${TAG}:logs:${id}`

/** Pub/sub: the id of a running call someone asked to cancel; its daemon kills it. */
export const CANCEL_CHANNEL = `${TAG}:cancel`

/** A call id: 128 random bits, hex. */
export const CALL_ID = /^[0-9a-f]{32}$/
