// The CLI's only way in: hearth's HTTP API (HEARTH_URL, HEARTH_TOKEN), so it
// works against a remote daemon. Errors keep the API's code, message and field.

export class ApiError extends Error {
  constructor (readonly code: string, message: string, readonly status: number, readonly field?: string) { super(message) }
}

export interface Client {
  readonly url: string
  request: (method: string, path: string, body?: unknown) => Promise<unknown>
  /** GET of a text answer (an async call's logs) */
  text: (path: string) => Promise<string>
  /** POST with "stream": true: each SSE event as it arrives */
  stream: (path: string, body: Record<string, unknown>, onEvent: (event: Record<string, unknown>) => void) => Promise<void>
}

export function client (url: string, token: string | undefined): Client {
  const base = url.replace(/\/+$/, '')
  const headers = (): Record<string, string> => ({
    'content-type': 'application/json',
    ...(token !== undefined && token !== '' ? { authorization: `Bearer ${token}` } : {})
  })
  async function send (method: string, path: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(base + path, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) })
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code
      throw new ApiError('unreachable', `cannot reach hearth at ${base}${cause === undefined ? '' : ` (${cause})`}: set HEARTH_URL`, 0)
    }
  }
  async function failure (res: Response): Promise<ApiError> {
    const text = await res.text()
    try {
      const e = (JSON.parse(text) as { error: { code: string, message: string, field?: string } }).error
      return new ApiError(e.code, e.message, res.status, e.field)
    } catch {
      return new ApiError(`http_${res.status}`, text.trim() || res.statusText, res.status)
    }
  }
  return {
    url: base,
    async request (method, path, body) {
      const res = await send(method, path, body)
      if (!res.ok) throw await failure(res)
      return await res.json()
    },
    async text (path) {
      const res = await send('GET', path)
      if (!res.ok) throw await failure(res)
      return await res.text()
    },
    async stream (path, body, onEvent) {
      const res = await send('POST', path, { ...body, stream: true })
      if (!res.ok || res.headers.get('content-type') !== 'text/event-stream') throw await failure(res)
      const decoder = new TextDecoder()
      let buffered = ''
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true })
        for (let i = buffered.indexOf('\n\n'); i !== -1; i = buffered.indexOf('\n\n')) {
          const frame = buffered.slice(0, i)
          buffered = buffered.slice(i + 2)
          if (frame.startsWith('data: ')) onEvent(JSON.parse(frame.slice(6)) as Record<string, unknown>)
        }
      }
    }
  }
}
