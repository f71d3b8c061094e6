// One caller at a steady rate: a request every 1/rate s on one keep-alive
// connection, the latency of each measured from its send. autocannon's own
// overallRate sends each second's requests back to back (measured: bursts of
// five within 70 ms at 5 req/s), which is not what a paced caller does.
import { Agent, request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Result } from 'autocannon'
import { Samples, type LoadPart, type LoadSpec } from './load.js'

async function post (agent: Agent, url: URL, body: string): Promise<{ status: number, text: string }> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

export async function runPacedPart (spec: LoadSpec & { readonly rate: number }): Promise<LoadPart> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const url = new URL(spec.url)
  const samples = new Samples()
  const statusCodes: Record<string, { count: number }> = {}
  let errors = 0
  let mismatches = 0
  let non2xx = 0
  const interval = 1000 / spec.rate
  const started = performance.now()
  let lastResponse = started
  try {
    for (let i = 0; performance.now() - started < spec.duration * 1000; i++) {
      const wait = started + i * interval - performance.now()
      if (wait > 0) await sleep(wait)
      const sent = performance.now()
      try {
        const { status, text } = await post(agent, url, spec.body)
        lastResponse = performance.now()
        statusCodes[status] = { count: (statusCodes[status]?.count ?? 0) + 1 }
        if (status < 200 || status >= 300) non2xx++
        else if (spec.expectBody !== undefined && text !== spec.expectBody) mismatches++
        else samples.push(lastResponse - sent)
      } catch {
        errors++
      }
    }
  } finally {
    agent.destroy()
  }
  const result = { errors, timeouts: 0, mismatches, non2xx, statusCodeStats: statusCodes } as unknown as Result
  return { connections: 1, seconds: Math.max(lastResponse - started, 1) / 1000, ok: samples.length, samples, result }
}
