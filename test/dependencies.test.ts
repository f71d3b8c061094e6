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

// The modules as tsc compiled them. dist/daemon/main.js is the daemon's
// esbuild bundle (package.json build:daemon): its own imports are only the
// packages it leaves external, checked below; the text of what it bundled
// holds import statements in strings (acorn's, ajv's code generator).
const BUNDLE = join(ROOT, 'dist/daemon/main.js')
const imported = new Set<string>()
const packagesOf = (text: string, pattern: RegExp): string[] => [...text.matchAll(pattern)]
  .map((m) => m[1] as string)
  .filter((spec) => !spec.startsWith('node:') && !builtinModules.includes(spec))
  .map((spec) => spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0] as string)
for (const file of [...files(join(ROOT, 'dist/daemon')), ...files(join(ROOT, 'dist/cli'))].filter((f) => f !== BUNDLE)) {
  for (const name of packagesOf(readFileSync(file, 'utf8'), /(?:from|import\()\s*['"]([^'".][^'"]*)['"]/g)) imported.add(name)
}
// The bundle's top-level imports: `import ... from "x"` at the start of a line.
const external = packagesOf(readFileSync(BUNDLE, 'utf8'), /^import [^;\n]* from "([^".][^"]*)";$/gm)

t.test('every package the daemon and the CLI import is a production dependency', async (t) => {
  t.ok(imported.size >= 8, `${[...imported].sort().join(', ')}`)
  for (const name of imported) {
    t.ok(name in pkg.dependencies, `${name} is in dependencies`)
    t.notOk(lock.packages[`node_modules/${name}`]?.dev, `${name} is not a dev package in package-lock.json`)
  }
})

t.test('what the daemon\'s bundle leaves external is a production dependency too', async (t) => {
  t.same([...new Set(external)].sort(), ['esbuild', 'uWebSockets.js'], 'the packages with native binaries')
  for (const name of external) t.ok(name in pkg.dependencies, `${name} is in dependencies`)
})
