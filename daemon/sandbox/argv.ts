// The command line of one sandbox, as a pure function of its inputs.
import type { RuntimeSpec } from './runtimes.js'

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

export const SANDBOX_UID = 65534

export function sandboxArgv (o: SandboxArgvOptions): string[] {
  const argv: string[] = [...o.limitsPrefix]
  if (o.hostUid !== null) {
    // Run by root, bwrap maps the sandbox's uid onto host uid 0 (measured: a
    // root-owned file bound in could be appended to). Become an unprivileged
    // host uid first, with no supplementary groups.
    argv.push('setpriv', `--reuid=${o.hostUid}`, `--regid=${o.hostUid}`, '--clear-groups', '--')
  }
  argv.push(
    o.bwrap ?? 'bwrap',
    // New user, pid, network, ipc, uts and cgroup namespaces: no network at all,
    // no view of host processes.
    '--unshare-all',
    // ...and no user namespaces inside it (--disable-userns needs --unshare-user).
    '--unshare-user', ...(o.disableUserns === false ? [] : ['--disable-userns']),
    // The sandbox dies with the daemon (PR_SET_PDEATHSIG), never orphaned.
    '--die-with-parent',
    // setsid(): no controlling terminal to push input into (TIOCSTI).
    '--new-session',
    '--cap-drop', 'ALL',
    '--uid', String(SANDBOX_UID), '--gid', String(SANDBOX_UID),
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
    '--symlink', 'usr/sbin', '/sbin',
    '--proc', '/proc',
    '--dev', '/dev',
    // A private, size-capped /tmp: the only writable place (--size must precede --tmpfs).
    '--size', String(o.tmpBytes), '--tmpfs', '/tmp'
  )
  for (const bind of o.runtime.binds) argv.push('--ro-bind', bind.src, bind.dest)
  argv.push('--chdir', '/tmp')
  // Deny socket families but AF_UNIX, ptrace, mount, keyctl, bpf, namespaces,
  // io_uring, perf (runtimes/seccomp/generate.py).
  if (o.seccompFd !== null) argv.push('--seccomp', String(o.seccompFd))
  // bwrap closes the --seccomp fd after loading it: nothing else is inherited but fds 0-3.
  argv.push('--', ...o.runtime.command)
  return argv
}
