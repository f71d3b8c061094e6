// The sandbox an installer runs in: a separate hardening profile from the run
// sandbox (daemon/sandbox/argv.ts), each difference for a reason:
// - it shares the host's network: npm must reach the registry (the run sandbox has none);
// - /etc/resolv.conf, /etc/hosts, /etc/nsswitch.conf and /etc/ssl are bound
//   read-only: name resolution and the system's CA certificates for TLS;
// - two host directories are writable: the layer being built (/build) and
//   the installer's download cache (/cache); everything else is read-only;
// - no seccomp filter: npm opens TCP sockets, which the run filter denies;
// - its environment is the installer's (registry settings, NPM_CONFIG_*),
//   given to bwrap as its environment, not on its command line (which any
//   host user can read in /proc).
// The same as a run sandbox: an unprivileged host uid (setpriv), new user, pid,
// ipc, uts and cgroup namespaces, no capabilities, a clean environment, its
// own cgroup limits, killed with its tree on timeout or when the daemon dies.
import { existsSync } from 'node:fs'
import { dropToHostUid, INSIDE_UID } from '../sandbox/argv.js'

export interface BuildSandboxOptions {
  readonly limitsPrefix: readonly string[]
  readonly hostUid: number | null
  /** host directories, under STATE_DIR, which the sandbox uid must be able to reach (checked at start: Packages.start) */
  readonly buildDir: string
  readonly cacheDir: string
  /** read-only binds the installer needs beyond /usr (node installed elsewhere, pip's local find-links) */
  readonly binds: ReadonlyArray<{ src: string, dest: string }>
  readonly command: readonly string[]
}

const HOST_FILES = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/ssl', '/etc/ca-certificates']

export function buildSandboxArgv (o: BuildSandboxOptions): string[] {
  return [
    ...o.limitsPrefix,
    ...dropToHostUid(o.hostUid),
    'bwrap',
    '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    '--share-net',
    '--cap-drop', 'ALL',
    '--die-with-parent', '--new-session',
    '--uid', String(INSIDE_UID), '--gid', String(INSIDE_UID),
    '--hostname', 'hearth-build',
    '--ro-bind', '/usr', '/usr',
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
    '--symlink', 'usr/bin', '/bin',
    '--symlink', 'usr/sbin', '/sbin',
    ...HOST_FILES.filter((f) => existsSync(f)).flatMap((f) => ['--ro-bind', f, f]),
    '--proc', '/proc',
    '--dev', '/dev',
    '--tmpfs', '/tmp',
    ...o.binds.flatMap((b) => ['--ro-bind', b.src, b.dest]), // after /tmp: a find-links directory may be under it
    '--bind', o.buildDir, '/build',
    '--bind', o.cacheDir, '/cache',
    '--remount-ro', '/',
    // Not the installer's: whatever a wrapper of the daemon (a test runner, a
    // profiler) put there for node processes it starts.
    '--unsetenv', 'NODE_OPTIONS',
    '--chdir', '/build',
    '--', ...o.command
  ]
}
