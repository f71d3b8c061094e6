// What this host's bwrap can do, found once at start-up by running it.
import { spawnSync } from 'node:child_process'
import { sandboxArgv } from './argv.js'

export interface BwrapFeatures {
  /** --disable-userns works (it writes /proc/sys/user/max_user_namespaces in the sandbox) */
  readonly disableUserns: boolean
  readonly detail: string
}

/**
 * --disable-userns needs a writable /proc/sys inside the new user namespace;
 * inside systemd-nspawn (and under ProtectKernelTunables=) /proc/sys is
 * read-only and bwrap refuses to start. The seccomp filter denies creating
 * user namespaces anyway (clone flags, unshare), so the sandbox stays without
 * nested namespaces; the flag is defence in depth, dropped only when it cannot work.
 */
export function probeBwrap (hostUid: number | null): BwrapFeatures {
  // A sandbox's own command line (argv.ts), running true: what works here works for the pools.
  const argv = sandboxArgv({ runtime: { name: 'python', command: ['/usr/bin/true'], binds: [] }, limitsPrefix: [], hostUid, tmpBytes: 1 << 20, seccompFd: null })
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', timeout: 10_000 })
  if (r.status === 0) return { disableUserns: true, detail: 'bwrap --disable-userns works' }
  if (/max_user_namespaces/.test(r.stderr)) {
    return { disableUserns: false, detail: `bwrap --disable-userns cannot work here (${r.stderr.trim()}); relying on the seccomp filter to deny user namespaces` }
  }
  // Any other failure shows up, with bwrap's own words, when the pools start.
  return { disableUserns: true, detail: `bwrap probe failed: ${(r.stderr ?? String(r.error)).trim()}` }
}
