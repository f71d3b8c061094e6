// Errors as the daemon reports them: the user's frames only, and messages that
// say what is wrong where Node's own do not (no network, no such package).

// Stack frames of the bootstrap (of the node zygote in a forked sandbox) and of
// Node's internals say nothing about the user's code.
const OWN_FRAME = /^\s+at .*(\/hearth\/(bootstrap|zygote)\.mjs|node:internal\/|new Promise \(<anonymous>\))/

const NO_NETWORK = new Set(['EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH', 'EADDRNOTAVAIL'])
const NOT_FOUND = new Set(['ERR_MODULE_NOT_FOUND', 'MODULE_NOT_FOUND'])

/** What a message should add so that it explains itself, or ''. */
export function hint (err) {
  const seen = new Set()
  for (let e = err; e !== null && typeof e === 'object' && !seen.has(e); e = e.cause) {
    seen.add(e)
    if (NO_NETWORK.has(e.code)) return 'hearth sandboxes have no network access'
    if (NOT_FOUND.has(e.code) && !/^(\.|\/|file:)/.test(String(e.message).match(/['"]([^'"]+)['"]/)?.[1] ?? '')) {
      return "hearth functions can use Node's built-in modules (node:fs, node:crypto, ...) and the npm packages named in their upload's dependencies"
    }
  }
  return ''
}

export function describe (err) {
  if (err !== null && typeof err === 'object') {
    const stack = String(err.stack ?? '').split('\n').filter((line) => !OWN_FRAME.test(line)).join('\n')
    const extra = hint(err)
    const message = String(err.message ?? '')
    return { name: String(err.name ?? 'Error'), message: extra === '' ? message : `${message} (${extra})`, stack }
  }
  return { name: 'Error', message: String(err), stack: '' }
}
