// hearth's web console: a CodeMirror editor, run-now with streamed logs, save
// as a function, the stored functions to open, run and delete. It uses the
// HTTP API only; with AUTH=on it asks for a key and keeps it in this tab's
// sessionStorage. Bundled by esbuild at `make build` (no CDN).
import { basicSetup, EditorView } from 'codemirror'
import { Compartment, EditorState } from '@codemirror/state'
import { python } from '@codemirror/lang-python'
import { javascript } from '@codemirror/lang-javascript'
import { setDiagnostics } from '@codemirror/lint'

type Language = 'python' | 'javascript' | 'typescript'
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T

const SAMPLES: Record<Language, string> = {
  python: 'print("hello from python")\nreturn {"sum": event.get("a", 1) + event.get("b", 2)}\n',
  javascript: 'console.log("hello from javascript")\nreturn { sum: (event.a ?? 1) + (event.b ?? 2) }\n',
  typescript: 'const a: number = event.a ?? 1\nconsole.log("hello from typescript")\nreturn { sum: a + (event.b ?? 2) }\n'
}

const grammar = new Compartment()
const languageSupport = (l: Language): ReturnType<typeof python> => l === 'python' ? python() : javascript({ typescript: l === 'typescript' })
const editor = new EditorView({
  parent: $('editor'),
  state: EditorState.create({ doc: SAMPLES.python, extensions: [basicSetup, grammar.of(languageSupport('python'))] })
})
;(window as unknown as { hearthEditor: EditorView }).hearthEditor = editor // for tests and the curious

const languageSelect = $<HTMLSelectElement>('language')
function setLanguage (l: Language, code?: string): void {
  languageSelect.value = l
  editor.dispatch({
    effects: grammar.reconfigure(languageSupport(l)),
    ...(code === undefined ? {} : { changes: { from: 0, to: editor.state.doc.length, insert: code } })
  })
}
languageSelect.addEventListener('change', () => {
  const l = languageSelect.value as Language
  const current = editor.state.doc.toString()
  setLanguage(l, Object.values(SAMPLES).includes(current) ? SAMPLES[l] : undefined)
})

// ---- the API, with the key of this tab when AUTH=on ----
const KEY = 'hearth-key'
function headers (): Record<string, string> {
  const key = sessionStorage.getItem(KEY)
  return { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) }
}

async function api (method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(path, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) })
  const answer = await res.json()
  if (res.status === 401) $('auth').hidden = false
  if (!res.ok) throw Object.assign(new Error(answer.error?.message ?? res.statusText), answer.error)
  return answer
}

$('use-key').addEventListener('click', () => {
  sessionStorage.setItem(KEY, $<HTMLInputElement>('key').value.trim())
  $('auth').hidden = true
  void refresh()
})

// ---- running code, with logs as they are printed ----
function clearOutput (): void {
  $('logs').textContent = ''
  $('result').textContent = ''
  $('error').textContent = ''
  $('timing').textContent = ''
  editor.dispatch(setDiagnostics(editor.state, []))
}

function log (line: string, stream: string): void {
  const span = document.createElement('span')
  span.className = stream
  span.textContent = line + '\n'
  $('logs').append(span)
}

/** The user's line of an error: its `line`, or the last function.* frame of its stack. */
function errorLine (e: Record<string, unknown>): number | null {
  if (typeof e.line === 'number') return e.line
  const stack = String(e.stack ?? '')
  const frames = [...stack.matchAll(/function\.(?:py)", line (\d+)|function\.(?:js|ts):(\d+):\d+/g)]
  const last = e.language === 'python' ? frames.at(-1) : frames[0]
  return last === undefined ? null : Number(last[1] ?? last[2])
}

function showError (e: Record<string, unknown>): void {
  $('error').textContent = `${String(e.code)}: ${String(e.message ?? e.data)}${typeof e.stack === 'string' && e.stack !== '' ? `\n${e.stack}` : ''}`
  const line = errorLine(e)
  if (line === null || line < 1 || line > editor.state.doc.lines) return
  const at = editor.state.doc.line(line)
  editor.dispatch(setDiagnostics(editor.state, [{ from: at.from, to: Math.max(at.to, at.from), severity: 'error', message: String(e.message ?? e.data) }]))
}

async function stream (path: string, body: Record<string, unknown>): Promise<void> {
  clearOutput()
  const started = performance.now()
  const res = await fetch(path, { method: 'POST', headers: headers(), body: JSON.stringify({ ...body, stream: true }) })
  if (res.headers.get('content-type') !== 'text/event-stream') {
    const answer = await res.json()
    if (res.status === 401) $('auth').hidden = false
    showError({ ...answer.error, language: body.language ?? languageSelect.value })
    return
  }
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    buffered += decoder.decode(chunk.value, { stream: true })
    for (let i = buffered.indexOf('\n\n'); i !== -1; i = buffered.indexOf('\n\n')) {
      const event = JSON.parse(buffered.slice(6, i)) as Record<string, unknown>
      buffered = buffered.slice(i + 2)
      if (event.event === 'log') log(String(event.data), String(event.stream ?? 'stdout'))
      else if (event.event === 'result') $('result').textContent = `${JSON.stringify(event.data, null, 2)}\n(${String(event.type)})`
      else if (event.event === 'error') showError({ ...event, language: body.language ?? languageSelect.value })
    }
  }
  $('timing').textContent = `${Math.round(performance.now() - started)} ms`
}

function input (): unknown {
  const text = $<HTMLTextAreaElement>('input').value.trim()
  return text === '' ? {} : JSON.parse(text)
}

$('run').addEventListener('click', () => {
  void stream('/run-now', { language: languageSelect.value, code: editor.state.doc.toString(), input: input() })
    .catch((err: Error) => showError({ code: 'console', message: err.message }))
})

$('save').addEventListener('click', () => {
  const path = $<HTMLInputElement>('path').value.trim()
  api('POST', '/upload', { path, language: languageSelect.value, code: editor.state.doc.toString() })
    .then(async (up) => { $('result').textContent = `saved ${String(up.path)} version ${String(up.version)}`; await refresh() })
    .catch((err: Record<string, unknown>) => showError({ ...err, language: languageSelect.value }))
})

// ---- the stored functions ----
function button (label: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button')
  b.type = 'button'
  b.textContent = label
  b.addEventListener('click', onClick)
  return b
}

async function refresh (): Promise<void> {
  const list = $('functions')
  const { functions } = await api('GET', '/functions') as { functions: Array<{ path: string, latest: number, versions: number, language: Language }> }
  list.replaceChildren(...functions.map((f) => {
    const li = document.createElement('li')
    li.dataset.path = f.path
    li.append(`${f.path} (${f.language}, v${f.latest}, ${f.versions} version${f.versions === 1 ? '' : 's'})`,
      button('Open', () => {
        void api('GET', `/functions/${f.path}?version=${f.latest}`).then((v) => {
          setLanguage(v.language, v.code)
          $<HTMLInputElement>('path').value = f.path
        })
      }),
      button('Run', () => { void stream(`/run/${f.path}`, { input: input(), language: f.language }) }),
      button('Delete', () => { void api('DELETE', `/functions/${f.path}`).then(refresh) }))
    return li
  }))
}
$('refresh').addEventListener('click', () => { void refresh().catch(() => {}) })
void refresh().catch(() => {})
