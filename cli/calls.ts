// `--async` on run and exec, and `hearth calls show|wait|logs|cancel`: the
// asynchronous calls of the HTTP API (POST /run-async, /run-now-async, /calls/{id}).
import type { Command } from 'commander'
import { ApiError, type Client } from './client.js'
import { EXIT, printJson, UsageError } from './output.js'

type Doc = Record<string, unknown> & { id: string, status: string, attempts: number, result?: { data: unknown, type: string }, error?: { code: string, message: string, stack?: string } }

/** Queues a call; prints its id (the 202 body with --json). */
export async function queue (api: Client, json: boolean, path: string, body: Record<string, unknown>, o: { stream?: boolean, callback?: string }): Promise<void> {
  if (o.stream === true) throw new UsageError('--stream and --async do not go together: read `hearth calls logs ID` after')
  const accepted = await api.request('POST', path, { ...body, ...(o.callback === undefined ? {} : { callback_url: o.callback }) }) as { id: string }
  if (json) printJson(accepted)
  else process.stdout.write(`${accepted.id}\n`)
}

const ended = (d: Doc): boolean => d.status === 'done' || d.status === 'failed'

export function addCallCommands (program: Command, api: () => Client, json: () => boolean, printResult: (r: { data: unknown, type: string }) => void): void {
  const get = async (id: string): Promise<Doc> => await api().request('GET', `/calls/${id}`) as Doc

  /** A call's end as `run` prints one: the result on stdout (exit 0), or `code: message` on stderr (exit 1). */
  const finish = (d: Doc): void => {
    if (json()) printJson(d)
    else if (d.status === 'done' && d.result !== undefined) printResult(d.result)
    else if (d.error !== undefined) process.stderr.write(`${d.error.code}: ${d.error.message}\n${d.error.stack ?? ''}`)
    if (d.status === 'failed') process.exit(EXIT.failed)
  }

  const calls = program.command('calls').description('asynchronous calls (queued with run --async or exec --async)')
  calls.command('show')
    .description('a call\'s status document')
    .argument('<id>')
    .action(async (id: string) => {
      const d = await get(id)
      if (json()) return printJson(d)
      process.stdout.write(`${d.id}  ${d.status}  attempts ${d.attempts}\n`)
      if (ended(d)) finish(d)
    })
  calls.command('wait')
    .description('wait for a call to end; print its result (exit 0) or its error (exit 1)')
    .argument('<id>')
    .option('--timeout <seconds>', 'give up after this long (exit 1)', Number)
    .action(async (id: string, o: { timeout?: number }) => {
      const until = o.timeout === undefined ? Infinity : Date.now() + o.timeout * 1000
      for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
        const d = await get(id)
        if (ended(d)) return finish(d)
        if (Date.now() + wait > until) throw new ApiError('wait_timeout', `call ${id} is still ${d.status} after ${String(o.timeout)} s`, 0)
        await new Promise((resolve) => setTimeout(resolve, wait))
      }
    })
  calls.command('logs')
    .description('what a call printed')
    .argument('<id>')
    .action(async (id: string) => {
      const text = await api().text(`/calls/${id}/logs`)
      process.stdout.write(text === '' ? '' : text + '\n')
    })
  calls.command('cancel')
    .description('cancel a queued call, or kill a running one')
    .argument('<id>')
    .action(async (id: string) => {
      const d = await api().request('DELETE', `/calls/${id}`) as Doc
      if (json()) return printJson(d)
      process.stdout.write(`${d.id}  ${d.status}${d.error === undefined ? '' : `  ${d.error.code}`}\n`)
    })
}
