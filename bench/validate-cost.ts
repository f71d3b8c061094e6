// What checking a request body against the OpenAPI schema costs, next to what
// the warm path already pays for its body (JSON.parse + the hand-written
// parsers): node dist/bench/validate-cost.js. One process, interleaved rounds.
import { loadConfig } from '../daemon/config.js'
import { parseInput, parseJsonBody, parseStream, parseTimeout } from '../daemon/http/validate.js'
import { checkRequest } from '../daemon/openapi/requests.js'

const config = loadConfig({})
const bodies = [Buffer.from('{"input":"{\\"a\\": 3, \\"b\\": 5}"}'), Buffer.from('{"input":{"a":3,"b":5},"timeout":5}')]
const N = 200_000

function handWritten (): void {
  for (let i = 0; i < N; i++) {
    const f = parseJsonBody(bodies[i & 1] as Buffer, true)
    parseInput(f.input, config)
    parseTimeout(f.timeout, config)
    parseStream(f.stream)
  }
}

function withSchema (): void {
  for (let i = 0; i < N; i++) {
    const f = parseJsonBody(bodies[i & 1] as Buffer, true)
    checkRequest('Run', f)
    parseInput(f.input, config)
    parseTimeout(f.timeout, config)
    parseStream(f.stream)
  }
}

function ns (fn: () => void): number {
  const start = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - start) / N
}

const a: number[] = []
const b: number[] = []
for (let round = 0; round < 7; round++) { a.push(ns(handWritten)); b.push(ns(withSchema)) }
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[3] as number
const extra = median(b) - median(a)
console.log(`POST /run body, per request (median of 7 rounds of ${N}):`)
console.log(`  JSON.parse + hand-written parsers: ${median(a).toFixed(0)} ns`)
console.log(`  ... + the OpenAPI schema (ajv):     ${median(b).toFixed(0)} ns  (+${extra.toFixed(0)} ns)`)
