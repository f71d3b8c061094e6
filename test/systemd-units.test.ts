// The unit files pass systemd's own checker, with nothing to say about them.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../daemon/config.js'

t.test('hearth.service and hearth.slice pass systemd-analyze verify without a warning', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-units-'))
  for (const unit of ['hearth.slice', 'hearth.service']) copyFileSync(join(ROOT, 'systemd', unit), join(dir, unit))
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'hearth.slice'), join(dir, 'hearth.service')], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.error, undefined, 'systemd-analyze runs (make setup installs it)')
  t.equal(r.status, 0)
  t.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no warning about the units')
})

// What Delegate=yes, Slice= and KillMode= do is proven by running the unit
// (scripts/test-systemd.sh, scripts/test-vm.sh); here, only the guard against
// hardening options that were measured to break bwrap or delegation.
t.test('no hardening option that breaks bwrap or cgroup delegation', async (t) => {
  const unit = readFileSync(join(ROOT, 'systemd/hearth.service'), 'utf8')
  t.notMatch(unit, /^(RestrictNamespaces|PrivateUsers|ProtectControlGroups|ProtectHostname|RestrictSUIDSGID|ProtectKernelLogs)=/m,
    'the last two: bubblewrap 0.12 on Debian 13, measured in scripts/test-vm.sh')
})
