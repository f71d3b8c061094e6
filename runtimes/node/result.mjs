// A returned value as compact JSON, by the rule every runtime follows (README,
// "Results"): NaN and infinities become "NaN", "Infinity", "-Infinity"; a BigInt
// its digits; a Map an object (keys as strings), a Set an array; bytes
// (Buffer, Uint8Array, ArrayBuffer) base64; dates ISO 8601; a cycle is an error.
import { randomBytes } from 'node:crypto'

const CYCLE = 'the result cannot be sent as JSON: it contains a reference cycle'
// A BigInt goes through JSON.stringify as this string, then becomes its digits.
const NONCE = randomBytes(8).toString('hex')
const BIGINT = new RegExp(`"\\\\u0000${NONCE}:(\\d+)"`, 'g')

function bytesOf (raw) {
  if (raw instanceof ArrayBuffer) return Buffer.from(raw)
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
  return null
}

export function resultJson (value) {
  const bigints = []
  function replacer (key, v) {
    const raw = this[key] // before toJSON: a Buffer's toJSON would hide its bytes
    const bytes = bytesOf(raw)
    if (bytes !== null) return bytes.toString('base64')
    if (typeof v === 'number') return Number.isFinite(v) ? v : String(v)
    if (typeof v === 'bigint') return `\u0000${NONCE}:${bigints.push(v.toString()) - 1}`
    if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), x]))
    if (v instanceof Set) return [...v]
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v) // Float64Array and the like
    return v
  }
  let text
  try {
    text = JSON.stringify(value, replacer)
  } catch (err) {
    if (err instanceof TypeError && /circular/i.test(err.message)) throw new TypeError(CYCLE)
    throw err
  }
  return bigints.length === 0 || text === undefined ? text : text.replace(BIGINT, (_, i) => bigints[Number(i)])
}
