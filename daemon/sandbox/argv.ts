// The command line of one sandbox, as a pure function of its inputs.
import type { Bind, RuntimeSpec } from './runtimes.js'

export interface SandboxArgvOptions {
  readonly runtime: RuntimeSpec
  /** from the limits backend: joins the cgroups / sets rlimits, then execs the rest */
  readonly limitsPrefix: readonly string[]
  /** host uid to run bwrap as when the daemon is root; null when not root */
  readonly hostUid: number | null
  readonly tmpBytes: number
  /** fd number of the seccomp BPF program in the child, or null for none */
  readonly seccompFd: number | null
  /** false where bwrap cannot apply --disable-userns (see probe.ts) */
  readonly disableUserns?: boolean
  readonly bwrap?: string
}

/** The uid code sees inside its sandbox (nobody); the host uid behind it is SANDBOX_UID's, in config.ts. */
export const INSIDE_UID = 65534

/**
 * Run by root, bwrap maps the sandbox's uid onto host uid 0 (measured: a
 * root-owned file bound in could be appended to). Become an unprivileged host
 * uid first, with no supplementary groups.
 */
export function dropToHostUid (hostUid: number | null): string[] {
  return hostUid === null ? [] : ['setpriv', `--reuid=${hostUid}`, `--regid=${hostUid}`, '--clear-groups', '--']
}

/** What every sandbox sees of the host: a clean environment and read-only /usr, nothing else (its /etc/passwd and /etc/group are hearth's: runtimes.ts). */
export function systemView (): string[] {
  return [
    '--die-with-parent', // PR_SET_PDEATHSIG: never outlives the daemon
    '--new-session', // setsid(): no controlling terminal to push input into (TIOCSTI)
    '--uid', String(INSIDE_UID), '--gid', String(INSIDE_UID),
    // Nothing of the daemon's environment (secrets, REDIS_PASSWORD) leaks in.
    '--clearenv',
    '--setenv', 'PATH', '/usr/bin:/bin',
    '--setenv', 'HOME', '/tmp',
    '--setenv', 'LANG', 'C.UTF-8',
    '--setenv', 'PYTHONIOENCODING', 'utf-8',
    '--hostname', 'sandbox',
    // Programs and libraries, read-only; no /etc, /home, /root, /var of the host.
    '--ro-bind', '/usr', '/usr',
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
    '--symlink', 'usr/bin', '/bin',
    '--symlink', 'usr/sbin', '/sbin'
  ]
}

export function roBinds (binds: readonly Bind[]): string[] {
  return binds.flatMap((b) => ['--ro-bind', b.src, b.dest])
}

export function sandboxArgv (o: SandboxArgvOptions): string[] {
  const size = String(o.tmpBytes)
  const argv: string[] = [...o.limitsPrefix, ...dropToHostUid(o.hostUid)]
  argv.push(
    o.bwrap ?? 'bwrap',
    // New user, pid, network, ipc, uts and cgroup namespaces: no network at all,
    // no view of host processes.
    '--unshare-all',
    // ...and no user namespaces inside it (--disable-userns needs --unshare-user).
    '--unshare-user', ...(o.disableUserns === false ? [] : ['--disable-userns']),
    '--cap-drop', 'ALL',
    ...systemView(),
    '--proc', '/proc',
    '--dev', '/dev',
    // Private, size-capped /tmp and /dev/shm (POSIX shm, multiprocessing's
    // semaphores): the only writable places (--size must precede --tmpfs).
    '--size', size, '--tmpfs', '/tmp',
    '--size', size, '--tmpfs', '/dev/shm',
    ...roBinds(o.runtime.binds),
    // Everything else read-only: the root (where bwrap made /hearth and the
    // mount points) and /dev's own tmpfs.
    '--remount-ro', '/dev',
    '--remount-ro', '/',
    '--chdir', '/tmp'
  )
  // Deny socket families but AF_UNIX, ptrace, mount, keyctl, bpf, namespaces,
  // io_uring, perf (runtimes/seccomp/generate.py).
  if (o.seccompFd !== null) argv.push('--seccomp', String(o.seccompFd))
  // bwrap closes the --seccomp fd after loading it: nothing else is inherited but fds 0-3.
  argv.push('--', ...o.runtime.command)
  return argv
}
