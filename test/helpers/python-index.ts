// Python distributions a test makes (this machine reaches no Python index):
// wheels and source distributions written by Python's own zipfile/tarfile
// into a directory (a find-links directory for pip), and a PEP 503 "simple"
// index on loopback serving them, behind HTTP basic auth.
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

export interface Distribution {
  readonly name: string
  readonly version: string
  /** path in the distribution → contents (a package's modules) */
  readonly files: Readonly<Record<string, string>>
  /** Requires-Dist lines */
  readonly requires?: readonly string[]
  /** a source distribution (setup.py, run by pip to build it) instead of a wheel */
  readonly source?: boolean
}

const WRITER = `
import base64, hashlib, io, json, sys, tarfile, zipfile
dest, spec = sys.argv[1], json.loads(sys.argv[2])
name, version = spec['name'], spec['version']
dist = name.replace('-', '_') + '-' + version
meta = 'Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n' % (name, version) + ''.join('Requires-Dist: %s\\n' % r for r in spec.get('requires', []))
files = dict(spec['files'])
if spec.get('source'):
    pkgs = sorted({p.split('/')[0] for p in files if '/' in p})
    files['setup.py'] = 'from setuptools import setup\\nsetup(name=%r, version=%r, packages=%r, install_requires=%r)\\n' % (name, version, pkgs, spec.get('requires', []))
    files['PKG-INFO'] = meta
    with tarfile.open('%s/%s.tar.gz' % (dest, dist), 'w:gz') as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo('%s/%s' % (dist, path))
            info.size, info.mtime = len(data), 1577836800
            tar.addfile(info, io.BytesIO(data))
    sys.exit(0)
files[dist + '.dist-info/METADATA'] = meta
files[dist + '.dist-info/WHEEL'] = 'Wheel-Version: 1.0\\nGenerator: hearth-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'
record = ['%s,sha256=%s,%d' % (p, base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b'=').decode(), len(t.encode())) for p, t in files.items()]
files[dist + '.dist-info/RECORD'] = '\\n'.join(record + [dist + '.dist-info/RECORD,,']) + '\\n'
with zipfile.ZipFile('%s/%s-py3-none-any.whl' % (dest, dist), 'w') as whl:
    for path, text in files.items():
        whl.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
`

/** A directory (readable by the sandbox uid) holding the distributions. */
export function distributions (t: Test, dists: readonly Distribution[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-wheels-'))
  chmodSync(dir, 0o755)
  for (const d of dists) execFileSync('/usr/bin/python3', ['-c', WRITER, dir, JSON.stringify(d)])
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface TestIndex {
  /** http://user:password@127.0.0.1:port/simple */
  readonly url: string
  readonly password: string
  /** project pages asked for, in order */
  readonly asked: string[]
}

/** A PEP 503 simple index on loopback over the files of `dir`, which answers 401 without its credentials. */
export async function startIndex (t: Test, dir: string): Promise<TestIndex> {
  const password = 's3cret-' + Math.random().toString(36).slice(2)
  const auth = 'Basic ' + Buffer.from(`hearth:${password}`).toString('base64')
  const normal = (n: string): string => n.toLowerCase().replace(/[-_.]+/g, '-')
  const asked: string[] = []
  const server = createServer((req, res) => {
    if (req.headers.authorization !== auth) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="hearth-test"' }).end()
      return
    }
    const [, kind, name] = (req.url ?? '/').split('/')
    const files = readdirSync(dir)
    if (kind === 'files' && name !== undefined && files.includes(decodeURIComponent(name))) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(join(dir, decodeURIComponent(name))))
      return
    }
    if (kind === 'simple' && name !== undefined) {
      asked.push(name)
      const mine = files.filter((f) => normal(f.split('-')[0] as string) === normal(name))
      if (mine.length === 0) { res.writeHead(404).end(); return }
      const links = mine.map((f) => `<a href="/files/${encodeURIComponent(f)}">${f}</a>`).join('\n')
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!DOCTYPE html><html><body>\n${links}\n</body></html>`)
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => await new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as { port: number }).port
  return { url: `http://hearth:${password}@127.0.0.1:${port}/simple`, password, asked }
}
