// The command line of a zygote, as a pure function of its inputs.
import { dropToHostUid, roBinds, systemView } from '../sandbox/argv.js'
import type { CgroupsView } from '../sandbox/limits/index.js'
import type { RuntimeSpec } from '../sandbox/runtimes.js'
import { PIPES_IN_ZYGOTE, RENDEZVOUS_IN_ZYGOTE } from './rendezvous.js'

export interface ZygoteArgvOptions {
  /** the interpreter running the zygote's script, with its binds */
  readonly runtime: RuntimeSpec
  readonly hostUid: number | null
  /** host directory holding the rendezvous socket, bound read-only at /run/hearth (a tmpfs on its pipes directory) */
  readonly rendezvousDir: string
  readonly tmpBytes: number
  /** what a node child executes once isolated */
  readonly nodeCommand: readonly string[]
  /** tests force the spawn fallback with false: a zygote without capabilities cannot isolate a child */
  readonly capabilities?: boolean
  /** the sandboxes' cgroups, bound at CGROUPS_IN_ZYGOTE, to start children in */
  readonly cgroups?: CgroupsView
  /** a host directory bound where children make their pipes, instead of a tmpfs of the zygote's own (rendezvous.ts, PIPES) */
  readonly pipesDir?: string
  readonly bwrap?: string
  /** false: the runtime's code stays on its file's 4 KB pages (runtimes/zygote/hugetext.c) */
  readonly hugeText?: boolean
  /** false: children prefault the pages they write instead of fork copying them (runtimes/zygote/pin.c) */
  readonly pinPages?: boolean
  /** RLIMIT_MEMLOCK set for the zygote (prlimit, before the uid is dropped): its pins count against it (memlock.ts); none: the daemon's own */
  readonly memlockBytes?: number
}

/** where a zygote finds the sandboxes' cgroups (runtimes/zygote/isolate.h, CGROUPS_DIR) */
export const CGROUPS_IN_ZYGOTE = '/run/hearth-cgroup'

/**
 * Writable, for a child that joins its cgroup to write its own pid into its
 * cgroup.procs: v2's parent itself (clone3 needs no write, but where it is
 * refused children join), v1's parent of each hierarchy at a directory named
 * after it.
 */
function cgroupBinds (view: CgroupsView | undefined): string[] {
  if (view === undefined) return []
  if (view.version === 2) return ['--bind', view.parent, CGROUPS_IN_ZYGOTE, ...(view.clone === false ? ['--setenv', 'HEARTH_CGROUP_CLONE', '0'] : [])]
  return Object.entries(view.parents).flatMap(([name, dir]) => ['--bind', dir, `${CGROUPS_IN_ZYGOTE}/${name}`])
}

const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty']

/**
 * /dev built from binds rather than bwrap's --dev: --dev mounts a devpts, and
 * for that bwrap maps uid 0 and nests a second user namespace under it (read
 * in bwrap.c), so the zygote would not own its mount namespace and no child
 * could mount or unmount anything. Each child mounts its own devpts instead.
 */
function devices (): string[] {
  return [
    '--tmpfs', '/dev',
    ...DEVICES.flatMap((d) => ['--dev-bind', `/dev/${d}`, `/dev/${d}`]),
    '--symlink', '/proc/self/fd', '/dev/fd',
    '--symlink', '/proc/self/fd/0', '/dev/stdin',
    '--symlink', '/proc/self/fd/1', '/dev/stdout',
    '--symlink', '/proc/self/fd/2', '/dev/stderr',
    '--symlink', 'pts/ptmx', '/dev/ptmx',
    '--dir', '/dev/pts',
    '--dir', '/dev/shm'
  ]
}

function memlock (o: ZygoteArgvOptions): string[] {
  if (o.memlockBytes === undefined || o.pinPages === false) return []
  return ['prlimit', `--memlock=${o.memlockBytes}:${o.memlockBytes}`, '--']
}

export function zygoteArgv (o: ZygoteArgvOptions): string[] {
  return [
    ...memlock(o),
    ...dropToHostUid(o.hostUid),
    o.bwrap ?? 'bwrap',
    // A zygote that forks into cgroups keeps the host's cgroup namespace:
    // with nsdelegate (systemd mounts cgroup2 so) a clone into a cgroup
    // outside the caller's cgroup namespace fails (ENOENT). Each child enters
    // one of its own before any user code runs.
    ...(o.cgroups === undefined ? ['--unshare-all'] : ['--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts']),
    '--unshare-user',
    // Capabilities inside the zygote's own user namespace, which owns its
    // mount, pid and network namespaces: what a child needs to make its own.
    // The zygote never runs user code, and each child drops them all
    // (runtimes/zygote/isolate.c). No --disable-userns: it would nest the
    // zygote in a second user namespace; the zygote sets
    // max_user_namespaces=0 itself, and the children's seccomp filter denies
    // new user namespaces as well.
    ...(o.capabilities === false ? ['--cap-drop', 'ALL'] : ['--cap-add', 'ALL']),
    ...systemView(),
    '--proc', '/proc',
    ...devices(),
    '--dir', '/tmp', // each child mounts its own tmpfs here
    ...roBinds(o.runtime.binds),
    '--ro-bind', o.rendezvousDir, RENDEZVOUS_IN_ZYGOTE,
    // where each child makes its stdout and stderr pipes (isolate.c, make_pipe): the zygote's own, or a host directory
    ...(o.pipesDir === undefined ? ['--perms', '0700', '--size', '65536', '--tmpfs', PIPES_IN_ZYGOTE] : ['--bind', o.pipesDir, PIPES_IN_ZYGOTE]),
    ...cgroupBinds(o.cgroups),
    ...(o.hugeText === false ? ['--setenv', 'HEARTH_HUGE_TEXT', '0'] : []),
    ...(o.pinPages === false ? ['--setenv', 'HEARTH_PIN_PAGES', '0'] : []),
    '--remount-ro', '/dev',
    '--remount-ro', '/',
    '--chdir', '/tmp',
    '--', ...o.runtime.command, String(o.tmpBytes), ...o.nodeCommand
  ]
}
