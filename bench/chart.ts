// Latency percentiles per scenario as a hand-written SVG: one row per scenario,
// p50/p90/p99/max as horizontal bars on a logarithmic millisecond axis.
import type { Latency } from './load.js'

export interface ChartRow {
  readonly label: string
  /** second line under the label, e.g. the throughput */
  readonly note: string
  /** rows of one group share a background band */
  readonly group: string
  readonly latency: Latency
}

export interface ChartInput {
  readonly title: string
  readonly subtitle: string
  readonly rows: readonly ChartRow[]
  /** dashed vertical lines, e.g. the latency targets */
  readonly marks?: ReadonlyArray<{ ms: number, label: string }>
}

const SERIES = [
  { key: 'p50', color: '#0072B2' },
  { key: 'p90', color: '#009E73' },
  { key: 'p99', color: '#E69F00' },
  { key: 'max', color: '#CC79A7' }
] as const

const W = 1000
const LEFT = 210
const RIGHT = 90
const TOP = 112
const BAR = 8
const GAP = 2
const ROW = SERIES.length * (BAR + GAP) + 14
const AXIS = 44

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const fix = (x: number): string => x.toFixed(1)

export function formatMs (ms: number): string {
  if (ms >= 1000) return `${+(ms / 1000).toPrecision(3)} s`
  if (ms >= 1) return `${+ms.toPrecision(3)} ms`
  return `${+(ms * 1000).toPrecision(3)} µs`
}

function decadeLabel (exp: number): string {
  return formatMs(10 ** exp)
}

export function renderChart (c: ChartInput): string {
  const values = c.rows.flatMap((r) => SERIES.map((s) => r.latency[s.key])).filter((v) => v > 0)
  const lo = Math.floor(Math.log10(Math.min(...values, 1)))
  const hi = Math.ceil(Math.log10(Math.max(...values, 10) * 1.0001))
  const plotW = W - LEFT - RIGHT
  const x = (ms: number): number => LEFT + (Math.log10(Math.max(ms, 10 ** lo)) - lo) / (hi - lo) * plotW
  const H = TOP + c.rows.length * ROW + AXIS + 10
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`)
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  out.push(`<text x="${LEFT}" y="26" font-size="17" font-weight="bold" fill="#222">${esc(c.title)}</text>`)
  out.push(`<text x="${LEFT}" y="46" font-size="11" fill="#555">${esc(c.subtitle)}</text>`)
  // legend
  SERIES.forEach((s, i) => {
    const lx = LEFT + i * 78
    out.push(`<rect x="${lx}" y="60" width="14" height="${BAR + 2}" fill="${s.color}"/>`)
    out.push(`<text x="${lx + 19}" y="69" font-size="11" fill="#333">${s.key}</text>`)
  })
  out.push(`<text x="${LEFT + SERIES.length * 78 + 6}" y="69" font-size="11" fill="#555">latency of successful requests, log scale</text>`)
  // group bands
  let band = 0
  c.rows.forEach((r, i) => {
    if (i > 0 && r.group !== c.rows[i - 1]?.group) band++
    if (band % 2 === 0) out.push(`<rect x="0" y="${TOP + i * ROW}" width="${W}" height="${ROW}" fill="#f3f5f8"/>`)
  })
  // grid: decades and their 2..9 multiples
  const bottom = TOP + c.rows.length * ROW
  for (let e = lo; e <= hi; e++) {
    const gx = x(10 ** e)
    out.push(`<line x1="${fix(gx)}" y1="${TOP - 6}" x2="${fix(gx)}" y2="${bottom}" stroke="#b9c0c8" stroke-width="1"/>`)
    out.push(`<text x="${fix(gx)}" y="${bottom + 18}" font-size="11" fill="#333" text-anchor="middle">${esc(decadeLabel(e))}</text>`)
    if (e === hi) break
    for (let m = 2; m <= 9; m++) {
      const mx = x(m * 10 ** e)
      out.push(`<line x1="${fix(mx)}" y1="${TOP}" x2="${fix(mx)}" y2="${bottom}" stroke="#e2e6ea" stroke-width="1"/>`)
    }
  }
  out.push(`<text x="${LEFT + plotW / 2}" y="${bottom + 36}" font-size="11" fill="#555" text-anchor="middle">latency (log scale)</text>`)
  // rows
  c.rows.forEach((r, i) => {
    const y0 = TOP + i * ROW + 7
    out.push(`<text x="${LEFT - 10}" y="${y0 + 12}" font-size="12" fill="#222" text-anchor="end">${esc(r.label)}</text>`)
    out.push(`<text x="${LEFT - 10}" y="${y0 + 27}" font-size="10" fill="#666" text-anchor="end">${esc(r.note)}</text>`)
    SERIES.forEach((s, j) => {
      const v = r.latency[s.key]
      const y = y0 + j * (BAR + GAP)
      const end = x(v)
      out.push(`<rect x="${LEFT}" y="${y}" width="${fix(Math.max(end - LEFT, 1))}" height="${BAR}" fill="${s.color}"><title>${esc(`${r.label} ${s.key}: ${formatMs(v)}`)}</title></rect>`)
      out.push(`<text x="${fix(end + 4)}" y="${y + BAR - 0.5}" font-size="9" fill="#333">${esc(formatMs(v))}</text>`)
    })
  })
  // marks (targets)
  for (const [i, m] of (c.marks ?? []).entries()) {
    const mx = x(m.ms)
    const ty = TOP - 6 - (i % 2) * 11 // alternate heights: neighbouring labels do not collide
    out.push(`<line x1="${fix(mx)}" y1="${ty - 8}" x2="${fix(mx)}" y2="${bottom}" stroke="#c0392b" stroke-width="1.2" stroke-dasharray="5 4"/>`)
    out.push(`<text x="${fix(mx + 3)}" y="${ty}" font-size="9.5" fill="#c0392b">${esc(m.label)}</text>`)
  }
  out.push(`<line x1="${LEFT}" y1="${TOP - 6}" x2="${LEFT}" y2="${bottom}" stroke="#333" stroke-width="1"/>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
