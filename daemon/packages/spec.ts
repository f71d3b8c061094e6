// What an upload may ask for as `dependencies`: for JavaScript and TypeScript,
// package.json's shape (name → version range), from a registry only.
import { invalidField } from '../errors.js'
import type { Language } from '../config.js'

export type NpmDependencies = Readonly<Record<string, string>>

const MAX_ENTRIES = 64
// npm's own rule for new package names: lowercase, URL-safe, optionally scoped.
const NAME = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/
// A version, a range or a dist-tag. No `file:`, `git+`, URLs, paths or aliases:
// a layer is what the registry serves, nothing of the host or of a repository.
const RANGE = /^[A-Za-z0-9 .^~<>=|*+-]{1,100}$/

/** The dependencies of an upload, or null for none; invalid_field naming what is wrong. */
export function parseDependencies (raw: unknown, language: Language): NpmDependencies | null {
  if (raw === undefined || raw === null) return null
  if (language === 'python') throw invalidField('dependencies', 'are not available for Python yet: JavaScript and TypeScript functions may have npm dependencies')
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidField('dependencies', 'must be an object of package names to version ranges, as in package.json')
  const entries = Object.entries(raw as Record<string, unknown>)
  if (entries.length === 0) return null
  if (entries.length > MAX_ENTRIES) throw invalidField('dependencies', `may name at most ${MAX_ENTRIES} packages`)
  const out: Record<string, string> = {}
  for (const [name, range] of entries.sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (name.length > 214 || !NAME.test(name)) throw invalidField('dependencies', `${JSON.stringify(name)} is not an npm package name`)
    if (typeof range !== 'string' || !RANGE.test(range)) {
      throw invalidField('dependencies', `${name}: ${JSON.stringify(range)} is not a version, range or tag of the registry (file:, git and URLs are not allowed)`)
    }
    out[name] = range
  }
  return out
}
