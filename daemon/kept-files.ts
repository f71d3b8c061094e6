// Files the daemon reads (or writes) again and again, /proc and cgroupfs ones,
// each opened once and re-read from its start with one pread: there an open
// costs more than the read (cgroup counters after every call, a cgroup's
// cgroup.procs at each sandbox's start and end, a zygote's children at each fork).
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'

export class KeptFiles {
  private readonly fds = new Map<string, number>()
  private readonly buf = Buffer.allocUnsafe(4096)

  /** `file` opened for reading, once; throws when it cannot be opened. */
  reader (file: string): number {
    return this.kept(file, file, 'r')
  }

  /** `file` opened for writing, once (a cgroup.procs: placePid); throws when it cannot be opened. */
  writer (file: string): number {
    return this.kept(`>${file}`, file, 'w')
  }

  /** All of `file` (latin1) through its kept fd; read whole when it fills the buffer. Throws when it cannot be read. */
  read (file: string): string {
    const n = readSync(this.reader(file), this.buf, 0, this.buf.length, 0)
    return n < this.buf.length ? this.buf.toString('latin1', 0, n) : readFileSync(file, 'latin1')
  }

  close (): void {
    for (const fd of this.fds.values()) {
      try { closeSync(fd) } catch {}
    }
    this.fds.clear()
  }

  private kept (key: string, file: string, flags: 'r' | 'w'): number {
    let fd = this.fds.get(key)
    if (fd === undefined) {
      fd = openSync(file, flags)
      this.fds.set(key, fd)
    }
    return fd
  }
}
