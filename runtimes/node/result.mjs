// A returned value as compact JSON, by the rule every runtime follows (README,
// "Results"): NaN and infinities become "NaN", "Infinity", "-Infinity"; a BigInt
// its digits; a Map an object (keys as strings), a Set an array; bytes
// (Buffer, Uint8Array, ArrayBuffer) base64; dates ISO 8601; a cycle is an error.
import { randomBytes } from 'node:crypto'

const CYCLE = 'the result cannot be sent as JSON: it contains a reference cycle'
const DEEP = 'the result cannot be sent as JSON: it is nested too deeply (or a toJSON method makes a new object each time)'
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
  // A Map or Set becomes a new object at each visit, so JSON.stringify cannot
  // see a cycle made only of Maps and Sets (it recursed until the stack ran
  // out): once one is seen, each object visited records its holder, and a Map
  // or Set that is its own ancestor on the path is a cycle.
  let holders = null // made at the first Map or Set: a result without one allocates nothing for this
  let sourceOf = null
  const isAncestor = (holder, v) => {
    for (let h = holder; h !== undefined; h = holders.get(h)) if (sourceOf.get(h) === v) return true
    return false
  }
  function replacer (key, v) {
    const raw = this[key] // before toJSON: a Buffer's toJSON would hide its bytes
    const bytes = bytesOf(raw)
    if (bytes !== null) return bytes.toString('base64')
    if (typeof v === 'number') return Number.isFinite(v) ? v : String(v)
    if (typeof v === 'bigint') return `\u0000${NONCE}:${bigints.push(v.toString()) - 1}`
    if (v instanceof Map || v instanceof Set) {
      holders ??= new WeakMap()
      sourceOf ??= new WeakMap()
      if (isAncestor(this, v)) throw new TypeError(CYCLE)
      const made = v instanceof Map ? Object.fromEntries([...v].map(([k, x]) => [String(k), x])) : [...v]
      sourceOf.set(made, v)
      holders.set(made, this)
      return made
    }
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v) // Float64Array and the like
    if (holders !== null && typeof v === 'object' && v !== null) holders.set(v, this)
    return v
  }
  let text
  try {
    text = JSON.stringify(value, replacer)
  } catch (err) {
    if (err instanceof TypeError && /circular/i.test(err.message)) throw new TypeError(CYCLE)
    // a toJSON that makes a new object each time, or nesting deeper than the stack
    if (err instanceof RangeError && /call stack/i.test(err.message)) throw new TypeError(DEEP)
    throw err
  }
  return bigints.length === 0 || text === undefined ? text : text.replace(BIGINT, (_, i) => bigints[Number(i)])
}
