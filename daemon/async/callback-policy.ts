// Where callbacks may go. An outbound request to a URL a caller chose is a
// server-side request forgery risk: only http(s), and only to public
// addresses, unless CALLBACK_ALLOW names the host or a CIDR holding its
// address. The name is resolved when the call is queued (to refuse early) and
// again for each attempt, and the request goes to the address that was
// checked (DNS rebinding cannot swap it between check and connect).
import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import { invalidField } from '../errors.js'

/** Loopback, private, link-local, shared, multicast and reserved ranges: never reached unless allowed. */
const NOT_PUBLIC: ReadonlyArray<[string, number, 'ipv4' | 'ipv6']> = [
  ['0.0.0.0', 8, 'ipv4'], ['10.0.0.0', 8, 'ipv4'], ['100.64.0.0', 10, 'ipv4'], ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.0.0.0', 24, 'ipv4'], ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'], ['224.0.0.0', 4, 'ipv4'], ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'], ['::1', 128, 'ipv6'], ['fc00::', 7, 'ipv6'], ['fe80::', 10, 'ipv6'], ['ff00::', 8, 'ipv6'],
  ['::ffff:0:0', 96, 'ipv6'], ['64:ff9b::', 96, 'ipv6']
]

export interface Target {
  readonly url: URL
  readonly address: string
  readonly family: 4 | 6
}

export class CallbackPolicy {
  private readonly names = new Set<string>()
  private readonly allowed = new BlockList()
  private readonly notPublic = new BlockList()

  /** `allow`: CALLBACK_ALLOW's entries, host names and CIDRs (an address alone is a /32 or /128). */
  constructor (allow: readonly string[]) {
    for (const [net, prefix, type] of NOT_PUBLIC) this.notPublic.addSubnet(net, prefix, type)
    for (const entry of allow) {
      const [net, bits] = entry.split('/') as [string, string | undefined]
      const v = isIP(net)
      if (v === 0) {
        if (bits !== undefined) throw new Error(`CALLBACK_ALLOW: ${entry} is neither a host name nor a CIDR`)
        this.names.add(net.toLowerCase())
        continue
      }
      const prefix = bits === undefined ? (v === 4 ? 32 : 128) : Number(bits)
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (v === 4 ? 32 : 128)) throw new Error(`CALLBACK_ALLOW: ${entry} has a bad prefix length`)
      this.allowed.addSubnet(net, prefix, v === 4 ? 'ipv4' : 'ipv6')
    }
  }

  /** The URL's syntax, without resolving it: invalid_field callback_url naming the problem. */
  parse (raw: unknown): URL {
    if (typeof raw !== 'string' || raw === '') throw invalidField('callback_url', 'must be an http or https URL')
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      throw invalidField('callback_url', 'is not a URL')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidField('callback_url', `must be http or https (got ${url.protocol.slice(0, -1)})`)
    return url
  }

  /** Resolves the URL's host and checks every address; the first one is where the callback goes. */
  async target (url: URL): Promise<Target> {
    const host = url.hostname.replace(/^\[|\]$/g, '')
    let addresses: Array<{ address: string, family: number }>
    try {
      addresses = isIP(host) !== 0 ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true, verbatim: true })
    } catch (err) {
      throw invalidField('callback_url', `host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    if (addresses.length === 0) throw invalidField('callback_url', `host ${host} does not resolve`)
    if (!this.names.has(host.toLowerCase())) {
      for (const a of addresses) {
        const type = a.family === 6 ? 'ipv6' : 'ipv4'
        if (this.notPublic.check(a.address, type) && !this.allowed.check(a.address, type)) {
          throw invalidField('callback_url', `${host} is ${a.address}, a loopback, private or reserved address: add the host or its network to CALLBACK_ALLOW to allow it`)
        }
      }
    }
    const first = addresses[0] as { address: string, family: number }
    return { url, address: first.address, family: first.family === 6 ? 6 : 4 }
  }
}
