// A tiny npm registry on loopback: packuments and tarballs of packages a test
// makes, served as registry.npmjs.org serves them, for a real npm to install.
// `hang`: names whose packument never comes (a build that times out).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

export interface PackageSpec {
  readonly name: string
  readonly version: string
  readonly files: Readonly<Record<string, string>>
  readonly scripts?: Readonly<Record<string, string>>
  readonly dependencies?: Readonly<Record<string, string>>
}

export interface TestRegistry {
  readonly url: string
  /** package names asked for, in order */
  readonly asked: string[]
}

export async function startRegistry (t: Test, packages: readonly PackageSpec[], hang: readonly string[] = []): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-registry-'))
  const tarballs = new Map<string, Buffer>()
  const packuments = new Map<string, Record<string, unknown>>()
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').slice(1))
    const tarball = tarballs.get(path)
    if (tarball !== undefined) return send(res, 200, 'application/octet-stream', tarball)
    registry.asked.push(path)
    if (hang.includes(path)) return // never answered
    const doc = packuments.get(path)
    if (doc === undefined) return send(res, 404, 'application/json', Buffer.from('{"error":"Not found"}'))
    send(res, 200, 'application/json', Buffer.from(JSON.stringify(doc)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`
  const registry: TestRegistry = { url, asked: [] }
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
    rmSync(dir, { recursive: true, force: true })
  })
  for (const p of packages) {
    const root = join(dir, `${p.name}-${p.version}`)
    mkdirSync(join(root, 'package'), { recursive: true })
    const manifest = { name: p.name, version: p.version, main: 'index.js', scripts: p.scripts ?? {}, dependencies: p.dependencies ?? {} }
    writeFileSync(join(root, 'package', 'package.json'), JSON.stringify(manifest))
    for (const [file, text] of Object.entries(p.files)) writeFileSync(join(root, 'package', file), text)
    execFileSync('tar', ['-czf', join(root, 'p.tgz'), '-C', root, 'package'])
    const bytes = readFileSync(join(root, 'p.tgz'))
    const file = `${p.name}/-/${p.name}-${p.version}.tgz`
    tarballs.set(file, bytes)
    const doc = packuments.get(p.name) ?? { name: p.name, 'dist-tags': {}, versions: {} }
    ;(doc['dist-tags'] as Record<string, string>).latest = p.version
    ;(doc.versions as Record<string, unknown>)[p.version] = {
      ...manifest,
      dist: {
        tarball: url + file,
        shasum: createHash('sha1').update(bytes).digest('hex'),
        integrity: 'sha512-' + createHash('sha512').update(bytes).digest('base64')
      }
    }
    packuments.set(p.name, doc)
  }
  return registry
}

function send (res: ServerResponse, status: number, type: string, body: Buffer): void {
  res.writeHead(status, { 'content-type': type, 'content-length': body.length })
  res.end(body)
}
