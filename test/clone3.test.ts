// The trampoline a sandbox's init is born through in its cgroup on cgroup v2
// (clone_into_cgroup, runtimes/zygote/clone3.c), checked on its own by
// test/c/clone3-check.c: on this machine's architecture in a cgroup v2
// directory of the host, and on arm64, which has assembly of its own and no
// host here: cross-compiled and run as the init of an emulated arm64 guest
// (QEMU, Debian's kernel: scripts/arm64-kernel.sh, which make test runs).
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig } from '../daemon/config.js'
import { mounts } from '../daemon/sandbox/limits/cgroupfs.js'

const root = loadConfig({}).root
const SOURCES = [join(root, 'test/c/clone3-check.c'), join(root, 'runtimes/zygote/clone3.c')]
const FLAGS = ['-O2', '-Wall', '-Wextra', '-Werror']
const OK = /^clone3-check: ok \(child born in 0::\/\S+\)$/m

function scratch (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-clone3-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** the .c files of `dir`, as build.sh compiles them */
const readdirC = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.c')).map((f) => join(dir, f))

const cgroup2 = mounts().find((m) => m.fstype === 'cgroup2')?.path
const hostSkip = process.arch !== 'x64' && process.arch !== 'arm64'
  ? `no trampoline for ${process.arch}`
  : cgroup2 === undefined || process.getuid?.() !== 0 ? 'needs root and a cgroup v2 mount' : false

t.test(`on this host (${process.arch}): a child born in the cgroup given, on the stack given, its answer its exit code; a refusal is -1, EBADF`, { skip: hostSkip }, async (t) => {
  const dir = scratch(t)
  execFileSync('cc', [...FLAGS, '-o', join(dir, 'check'), ...SOURCES])
  const cgroup = join(cgroup2 as string, `hearth-clone3-${process.pid}`)
  mkdirSync(cgroup)
  t.teardown(() => rmdirSync(cgroup))
  const run = spawnSync(join(dir, 'check'), [cgroup], { encoding: 'utf8' })
  if (run.status !== 0) t.comment(run.stdout + run.stderr)
  t.equal(run.status, 0, 'every check passed')
  t.match(run.stdout, OK)
  t.match(run.stdout, `0::/hearth-clone3-${process.pid}`)
})

const kernel = process.env.HEARTH_ARM64_KERNEL ?? '/var/cache/hearth-vm/arm64/vmlinuz'
const tools = ['aarch64-linux-gnu-gcc', 'qemu-system-aarch64', 'cpio']
const missing = [...tools.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0), ...(existsSync(kernel) ? [] : [kernel])]
const armSkip = missing.length === 0 ? false : `missing ${missing.join(', ')}: run scripts/arm64-kernel.sh`

t.test('on arm64, in an emulated guest: the same checks pass', { skip: armSkip }, async (t) => {
  const dir = scratch(t)
  const initramfs = join(dir, 'initramfs')
  mkdirSync(initramfs)
  execFileSync('aarch64-linux-gnu-gcc', [...FLAGS, '-static', '-o', join(initramfs, 'init'), ...SOURCES])
  execFileSync('sh', ['-c', 'find . | cpio -o -H newc --quiet | gzip -1 > ../initramfs.gz'], { cwd: initramfs })
  const boot = spawnSync('qemu-system-aarch64', [
    '-M', 'virt', '-cpu', 'cortex-a72', '-m', '256', '-smp', '1', '-nographic', '-no-reboot',
    '-kernel', kernel, '-initrd', join(dir, 'initramfs.gz'),
    '-append', 'console=ttyAMA0 rdinit=/init panic=-1 quiet'
  ], { encoding: 'utf8', timeout: 120_000 })
  const out = boot.stdout.replace(/\r/g, '')
  t.equal(boot.status, 0, `the guest powered off (${boot.error?.message ?? `status ${boot.status}`})`)
  if (!OK.test(out)) t.comment(out.slice(-3000))
  t.notMatch(out, /clone3-check: FAIL/, 'no check failed')
  t.match(out, OK, 'the check passed in the guest')
})

t.test('the zygotes\' C core, its node addon and the reaper build for arm64, as build.sh builds them', { skip: armSkip }, async (t) => {
  const dir = scratch(t)
  const zygote = join(root, 'runtimes/zygote')
  const cc = (out: string, ...args: string[]): void => { execFileSync('aarch64-linux-gnu-gcc', [...FLAGS, ...args, '-o', join(dir, out)]) }
  cc('libhearth-zygote.so', '-fPIC', '-shared', ...readdirC(zygote))
  cc('hearth-zygote.node', '-fPIC', '-shared', ...readdirC(zygote), ...readdirC(join(zygote, 'node')))
  cc('hearth-reaper', '-static', ...readdirC(join(zygote, 'reaper')))
  // ELF's e_machine, at byte 18: 183 is EM_AARCH64
  for (const out of ['libhearth-zygote.so', 'hearth-zygote.node', 'hearth-reaper']) t.equal(readFileSync(join(dir, out)).readUInt16LE(18), 183, `${out}: arm64 ELF`)
})
