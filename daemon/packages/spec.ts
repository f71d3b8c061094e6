// What an upload may ask for as `dependencies`: for JavaScript and TypeScript,
// package.json's shape (name → version range); for Python, a list of PEP 508
// requirement strings. From a registry (or index, or find-links) only.
import { invalidField } from '../errors.js'
import type { Language } from '../config.js'

export type NpmDependencies = Readonly<Record<string, string>>
export type PythonRequirements = readonly string[]
/** what an upload asked for: npm's shape or pip's */
export type Requested = NpmDependencies | PythonRequirements

export function isPython (r: Requested): r is PythonRequirements {
  return Array.isArray(r)
}

const MAX_ENTRIES = 64
// npm's own rule for new package names: lowercase, URL-safe, optionally scoped.
const NAME = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/
// A version, a range or a dist-tag. No `file:`, `git+`, URLs, paths or aliases:
// a layer is what the registry serves, nothing of the host or of a repository.
const RANGE = /^[A-Za-z0-9 .^~<>=|*+-]{1,100}$/

// PEP 508 without direct references: a project name, optional extras, version
// specifiers, an optional environment marker. No `name @ url`, no paths, no
// pip options (`-e`, `--index-url`): an upload cannot point pip elsewhere.
const PEP508 = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)[ \t]*(\[[ \t]*[A-Za-z0-9._-]+(?:[ \t]*,[ \t]*[A-Za-z0-9._-]+)*[ \t]*\])?[ \t]*(\(?[ \t]*(?:(?:===|==|!=|~=|<=|>=|<|>)[ \t]*[A-Za-z0-9.*+!_-]+[ \t]*,?[ \t]*)*\)?)[ \t]*(;[ \t]*[A-Za-z0-9_ .<>=!~'"()-]+)?$/

/** The dependencies of an upload, or null for none; invalid_field naming what is wrong. */
export function parseDependencies (raw: unknown, language: Language): Requested | null {
  if (raw === undefined || raw === null) return null
  if (language === 'python') return parseRequirements(raw)
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

/** Python: PEP 508 requirement strings, sorted, without duplicates; null for none. */
function parseRequirements (raw: unknown): PythonRequirements | null {
  if (!Array.isArray(raw)) throw invalidField('dependencies', 'must be a list of requirement strings for Python, as in requirements.txt ("attrs==23.2.0")')
  if (raw.length > MAX_ENTRIES) throw invalidField('dependencies', `may name at most ${MAX_ENTRIES} requirements`)
  const out = new Set<string>()
  for (const r of raw) {
    if (typeof r !== 'string' || r.length > 200 || !PEP508.test(r.trim())) {
      throw invalidField('dependencies', `${JSON.stringify(r)} is not a requirement of a package index (name, extras, versions, marker; URLs, paths and pip options are not allowed)`)
    }
    out.add(r.trim())
  }
  return out.size === 0 ? null : [...out].sort()
}
