// GET / and GET /console/*: the web console (console/, bundled into
// dist/console at make build), read once, at its first request, and served from memory.
// The page is revalidated on every load; its assets carry an ETag and are
// cached for an hour. Nothing here touches the call path.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { HearthError } from '../errors.js'
import type { HttpDeps } from './deps.js'
import type { Exchange } from './exchange.js'

interface Asset { readonly body: Buffer, readonly type: string, readonly etag: string, readonly cache: string }

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' }
const FILES: Record<string, string> = { '/': 'index.html', '/console/app.js': 'app.js', '/console/app.css': 'app.css' }

let assets: Map<string, Asset> | null = null

function load (root: string): Map<string, Asset> {
  const dir = join(root, 'dist/console')
  const out = new Map<string, Asset>()
  for (const [url, file] of Object.entries(FILES)) {
    const path = join(dir, file)
    if (!existsSync(path)) continue
    const body = readFileSync(path)
    out.set(url, {
      body,
      type: TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      cache: url === '/' ? 'no-cache' : 'public, max-age=3600'
    })
  }
  return out
}

export function consoleAsset (x: Exchange, deps: HttpDeps): void {
  assets ??= load(deps.config.root)
  const asset = assets.get(x.url)
  if (asset === undefined) {
    throw new HearthError('route_not_found', x.url === '/' ? 'the console is not built here (make build)' : `no console asset ${x.url}`)
  }
  if (x.ifNoneMatch === asset.etag) {
    x.raw(304, '', { ETag: asset.etag, 'Cache-Control': asset.cache })
    return
  }
  x.raw(200, asset.body, { 'Content-Type': asset.type, ETag: asset.etag, 'Cache-Control': asset.cache })
}
