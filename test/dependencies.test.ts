// What the daemon and the CLI import at run time is a production dependency,
// in package.json and in the lock: a deployment installs `npm ci --omit=dev`
// (hearth.service's /opt/hearth, the VM guests), where a dev dependency is
// missing and the daemon would not start.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { ROOT } from '../daemon/config.js'

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }

function files (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name))
}

const imported = new Set<string>()
for (const file of [...files(join(ROOT, 'dist/daemon')), ...files(join(ROOT, 'dist/cli'))]) {
  const text = readFileSync(file, 'utf8')
  for (const m of text.matchAll(/(?:from|import\()\s*['"]([^'".][^'"]*)['"]/g)) {
    const spec = m[1] as string
    if (spec.startsWith('node:') || builtinModules.includes(spec)) continue
    imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0] as string)
  }
}

t.test('every package the daemon and the CLI import is a production dependency', async (t) => {
  t.ok(imported.size >= 8, `${[...imported].sort().join(', ')}`)
  for (const name of imported) {
    t.ok(name in pkg.dependencies, `${name} is in dependencies`)
    t.notOk(lock.packages[`node_modules/${name}`]?.dev, `${name} is not a dev package in package-lock.json`)
  }
})
