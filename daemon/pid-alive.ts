/** Whether a process exists (EPERM: it does, owned by another user). For names that carry a daemon's pid. */
export function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
