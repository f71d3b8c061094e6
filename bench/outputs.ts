// What a run leaves behind: its metadata, bench/results/latest.json and
// latest.svg, and its tables appended to bench/README.md.
import { execFileSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../daemon/config.js'
import { renderChart } from './chart.js'
import { say } from './measure.js'
import type { BenchOptions } from './options.js'
import { markdownRun, type Results, type Scenario } from './report.js'

function shell (cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
  } catch {
    return 'unknown'
  }
}

export function metadata (): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    commit: shell('git', ['rev-parse', 'HEAD']),
    dirty: shell('git', ['status', '--porcelain', '--untracked-files=no']) !== '',
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryMb: Math.round(totalmem() / 2 ** 20),
    kernel: release(),
    // other work on the machine skews every number: the 1-minute load at the start
    loadavgAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    node: process.version,
    bwrap: shell('bwrap', ['--version']),
    python: shell('/usr/bin/python3', ['--version']),
    limits: 'not measured'
  }
}

export function writeOutputs (results: Results, o: BenchOptions): void {
  const dir = o.resultsDir !== '' ? o.resultsDir : join(ROOT, 'bench/results')
  mkdirSync(dir, { recursive: true })
  const write = (name: string, text: string): void => {
    writeFileSync(join(dir, `${name}.tmp`), text)
    renameSync(join(dir, `${name}.tmp`), join(dir, name))
  }
  write('latest.json', JSON.stringify(results, null, 2) + '\n')
  const m = results.meta as { date: string, commit: string, cores: number, node: string }
  const label = (s: Scenario): string => `${s.name} (c=${s.connections})`
  write('latest.svg', renderChart({
    title: 'hearth bench: latency percentiles per scenario',
    subtitle: `${m.date.slice(0, 19).replace('T', ' ')} UTC · ${m.commit.slice(0, 10)} · ${m.cores} cores · Node ${m.node} · load generator on the same machine`,
    rows: results.scenarios.map((s) => ({ label: label(s), note: `${s.rps < 100 ? s.rps.toFixed(1) : Math.round(s.rps).toLocaleString('en-US')} req/s`, group: s.group, latency: s.latency })),
    marks: [{ ms: 1, label: 'target: warm p50 ≤ 1 ms (c=1)' }, { ms: 5, label: 'target: warm p99 ≤ 5 ms (c=32)' }]
  }))
  say(`wrote ${join(dir, 'latest.json')} and ${join(dir, 'latest.svg')}`)
  if (o.appendReadme && o.only === null) {
    const readme = join(ROOT, 'bench/README.md')
    if (!existsSync(readme)) writeFileSync(readme, '# hearth benchmarks\n\nRun with `make bench`.\n\n## Runs\n')
    appendFileSync(readme, '\n' + markdownRun(results))
    say(`appended this run's tables to ${readme}`)
  }
}
