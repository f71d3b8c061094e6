#!/usr/bin/env node
// `hearth`: the daemon (`hearth serve`) and a client of its HTTP API for
// everything else. HEARTH_URL and HEARTH_TOKEN from the environment.
import { Command, Option } from 'commander'
import { addCallCommands, queue } from './calls.js'
import { client, type Client } from './client.js'
import { dependenciesOf, languageOf, readCode, readInput } from './input.js'
import { EXIT, fail, printJson, table } from './output.js'

interface Globals { url: string, token?: string, json?: boolean }
interface CallOptions { input?: string, inputFile?: string, timeout?: number, stream?: boolean, async?: boolean, callback?: string }

const program = new Command('hearth')
  .description('Run Python, JavaScript and TypeScript functions in warm sandboxes (hearth\'s CLI)')
  .addOption(new Option('--url <url>', 'the daemon').env('HEARTH_URL').default('http://127.0.0.1:8080'))
  .addOption(new Option('--token <key>', 'an API key, when the daemon has AUTH=on').env('HEARTH_TOKEN'))
  .option('--json', 'machine output: the API\'s JSON')
  .showHelpAfterError()
  // Exit codes scripts can rely on: 2 for usage, 0 for --help and --version.
  .exitOverride((err) => { process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage) })

const globals = (): Globals => program.opts<Globals>()
const api = (): Client => client(globals().url, globals().token)

/** A result on stdout: its JSON with --json; else text as it is and anything else as JSON. */
function printResult (result: { data: unknown, type: string }): void {
  if (globals().json === true) return printJson(result)
  process.stdout.write((typeof result.data === 'string' ? result.data : JSON.stringify(result.data)) + '\n')
}

async function call (path: string, body: Record<string, unknown>, stream: boolean): Promise<void> {
  if (!stream) return printResult(await api().request('POST', path, body) as { data: unknown, type: string })
  let failed: Record<string, unknown> | null = null
  await api().stream(path, body, (e) => {
    if (e.event === 'log') process.stderr.write(`${String(e.data)}\n`) // as it is printed
    else if (e.event === 'result') printResult({ data: e.data, type: String(e.type) })
    else if (e.event === 'error') failed = e
  })
  if (failed !== null) {
    const e = failed as Record<string, unknown>
    process.stderr.write(`${String(e.code)}: ${String(e.data)}\n`)
    if (typeof e.stack === 'string' && e.stack !== '') process.stderr.write(`${e.stack}\n`)
    process.exit(EXIT.failed)
  }
}

const callOptions = (c: Command): Command => c
  .option('--input <json>', 'the input, as JSON (`-`: from stdin)')
  .option('--input-file <file>', 'the input, from a JSON file (`-`: stdin; without either, stdin when it is not a terminal)')
  .option('--timeout <seconds>', 'at most TIMEOUT_SCRIPT', Number)
  .option('--stream', 'print logs to stderr as they are printed')
  .option('--async', 'queue the call and print its id (see `hearth calls`)')
  .option('--callback <url>', 'with --async: where its status document is POSTed when it ends')

program.command('serve')
  .description('start the daemon (configured by its environment and .env; see the README)')
  .action(async () => { await import('../daemon/main.js') })

program.command('upload')
  .description('store FILE as a new version of the function at PATH')
  .argument('<path>', 'function path, such as team-a/resize')
  .argument('<file>', 'the code: .py, .js, .mjs, .ts')
  .option('--language <language>', 'python, javascript or typescript (default: from the extension)')
  .option('--dependency <spec...>', 'a package the function needs: npm\'s name@range (JavaScript, TypeScript), such as lodash@^4.17.21, or a pip requirement (Python), such as "attrs==23.2.0"; repeat for more')
  .action(async (path: string, file: string, o: { language?: string, dependency?: string[] }) => {
    const language = languageOf(file, o.language)
    const dependencies = o.dependency === undefined ? undefined : language === 'python' ? o.dependency : dependenciesOf(o.dependency)
    const up = await api().request('POST', '/upload', { path, language, code: readCode(file), dependencies }) as Record<string, unknown>
    if (globals().json === true) return printJson(up)
    process.stdout.write(`${String(up.path)} version ${String(up.version)} (${String(up.language)}, ${String(up.size)} bytes)\n`)
    const resolved = (up.dependencies as { resolved?: Record<string, string> } | undefined)?.resolved
    for (const [name, version] of Object.entries(resolved ?? {})) process.stdout.write(`  ${name} ${version}\n`)
  })

callOptions(program.command('run'))
  .description('run the function at PATH (its latest version, or --version)')
  .argument('<path>')
  .option('--version <n>', 'a stored version', Number)
  .action(async (path: string, o: CallOptions & { version?: number }) => {
    const input = await readInput(o)
    const url = `/${o.async === true ? 'run-async' : 'run'}/${path.replace(/^\/+/, '')}${o.version === undefined ? '' : `?version=${o.version}`}`
    const body = { ...(input === undefined ? {} : { input }), ...(o.timeout === undefined ? {} : { timeout: o.timeout }) }
    if (o.async === true) return await queue(api(), globals().json === true, url, body, o)
    await call(url, body, o.stream === true)
  })

callOptions(program.command('exec'))
  .description('run FILE once, in a fresh sandbox (/run-now)')
  .argument('<file>')
  .option('--language <language>', 'python, javascript or typescript (default: from the extension)')
  .action(async (file: string, o: CallOptions & { language?: string }) => {
    const input = await readInput(o)
    const body = { language: languageOf(file, o.language), code: readCode(file), ...(input === undefined ? {} : { input }), ...(o.timeout === undefined ? {} : { timeout: o.timeout }) }
    if (o.async === true) return await queue(api(), globals().json === true, '/run-now-async', body, o)
    await call('/run-now', body, o.stream === true)
  })

program.command('ls')
  .description('list functions, under PREFIX if given')
  .argument('[prefix]', 'only paths that start with this', '')
  .action(async (prefix: string) => {
    const all: Array<Record<string, unknown>> = []
    for (let cursor = ''; ;) {
      const page = await api().request('GET', `/functions?limit=1000${cursor === '' ? '' : `&cursor=${encodeURIComponent(cursor)}`}`) as { functions: Array<Record<string, unknown>>, next_cursor: string | null }
      all.push(...page.functions.filter((f) => String(f.path).startsWith(prefix)))
      if (page.next_cursor === null) break
      cursor = page.next_cursor
    }
    if (globals().json === true) printJson(all)
    else process.stdout.write(table(all, ['path', 'language', 'latest', 'versions']))
  })

program.command('versions')
  .description('the versions of the function at PATH')
  .argument('<path>')
  .action(async (path: string) => {
    const fn = await api().request('GET', `/functions/${path}`) as { versions: Array<Record<string, unknown>> }
    if (globals().json === true) return printJson(fn)
    process.stdout.write(table(fn.versions.map((v) => ({ ...v, created: new Date(Number(v.created) * 1000).toISOString() })), ['version', 'language', 'size', 'created', 'sha256']))
  })

program.command('rm')
  .description('delete the function at PATH: every version, or --version')
  .argument('<path>')
  .option('--version <n>', 'only this version', Number)
  .action(async (path: string, o: { version?: number }) => {
    const r = await api().request('DELETE', `/functions/${path}${o.version === undefined ? '' : `?version=${o.version}`}`) as Record<string, unknown>
    if (globals().json === true) printJson(r)
    else process.stdout.write(`deleted ${String(r.deleted)} version(s) of ${String(r.path)}\n`)
  })

const keys = program.command('keys').description('API keys (needs the admin token as HEARTH_TOKEN)')
keys.command('create')
  .description('create a key; its secret is printed once')
  .argument('<name>')
  .requiredOption('--scope <scope...>', 'run, run-now, upload, read, delete, metrics, admin')
  .option('--prefix <prefix>', 'only functions under this path prefix')
  .option('--rate <perSecond>', 'requests per second', Number)
  .option('--burst <n>', 'requests above the rate, refilled at it', Number)
  .option('--max-concurrency <n>', 'calls in flight', Number)
  .option('--expires-at <date>', 'ISO 8601')
  .action(async (name: string, o: { scope: string[], prefix?: string, rate?: number, burst?: number, maxConcurrency?: number, expiresAt?: string }) => {
    const k = await api().request('POST', '/keys', {
      name, scopes: o.scope, prefix: o.prefix, rate_per_second: o.rate, burst: o.burst, max_concurrency: o.maxConcurrency, expires_at: o.expiresAt
    }) as Record<string, unknown>
    if (globals().json === true) printJson(k)
    else process.stdout.write(`${String(k.key)}\n`) // the secret alone: HEARTH_TOKEN=$(hearth keys create ...)
  })
keys.command('ls')
  .description('list keys (never their secrets)')
  .action(async () => {
    const r = await api().request('GET', '/keys') as { keys: Array<Record<string, unknown>> }
    if (globals().json === true) return printJson(r.keys)
    process.stdout.write(table(r.keys.map((k) => ({ ...k, scopes: (k.scopes as string[]).join(',') })), ['id', 'name', 'scopes', 'prefix', 'expires_at']))
  })
keys.command('revoke')
  .description('revoke a key on every daemon')
  .argument('<id>')
  .action(async (id: string) => {
    const r = await api().request('DELETE', `/keys/${id}`) as { revoked: Record<string, unknown> }
    if (globals().json === true) printJson(r)
    else process.stdout.write(`revoked ${String(r.revoked.id)} (${String(r.revoked.name)})\n`)
  })

addCallCommands(program, api, () => globals().json === true, printResult)

program.parseAsync().catch(fail)
