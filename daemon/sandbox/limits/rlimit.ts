// Last resort, when no cgroup can be written: per-process rlimits through prlimit(1).
// Weaker in every way (no CPU quota, no kill of the whole tree, RLIMIT_NPROC counts
// every process of the sandbox uid together and is ignored for host uid 0), so the
// daemon warns loudly when it falls back to it.
import type { Limits, LimitsBackend, SandboxLimits } from './types.js'

export function rlimitBackend (limits: Limits): LimitsBackend {
  // RLIMIT_DATA rather than RLIMIT_AS: V8 reserves large PROT_NONE regions and
  // fails to start under an address-space limit below ~1 GiB; DATA counts only
  // memory actually made writable.
  // RLIMIT_NPROC counts the tasks (threads too: a Node sandbox has about ten)
  // of the host uid across every sandbox: the ceiling is for all of them.
  const of = (l: Limits): SandboxLimits => {
    const nproc = l.pids * (l.sandboxes ?? 1)
    const prefix = ['prlimit', `--data=${l.memoryBytes}`, `--nproc=${nproc}`, '--core=0', '--']
    return { prefix, rlimits: { data: l.memoryBytes, nproc, core: 0 }, breach: () => null, destroy: async () => {} }
  }
  const sandbox = of(limits)
  return {
    name: 'rlimit',
    detail: sandbox.prefix.slice(1, -1).join(' '),
    limits,
    create: async (_id, own) => own === undefined ? sandbox : of(own),
    removeStale: async () => 0,
    close: async () => {}
  }
}

export function noLimits (limits: Limits): LimitsBackend {
  const sandbox: SandboxLimits = { prefix: [], breach: () => null, destroy: async () => {} }
  return { name: 'none', detail: 'no resource limits (LIMITS_BACKEND=none)', limits, create: async () => sandbox, removeStale: async () => 0, close: async () => {} }
}
