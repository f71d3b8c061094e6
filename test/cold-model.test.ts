// The bench's cold model (bench/cold-server.ts) stays go-faas's: a new cgroup
// made and removed for every request, never a spare cgroup handed on from an
// ended sandbox (daemon/sandbox/limits/spares.ts), which would make the
// baseline faster than what it stands for.
import t from 'tap'
import { getJson, postJson, startCold } from '../bench/servers.js'

t.test('the cold model makes a new cgroup for every request', async (t) => {
  const cold = await startCold()
  t.teardown(async () => { await cold.stop() })
  for (let i = 0; i < 3; i++) {
    const r = await postJson(`${cold.url}/run-now`, { language: 'python', code: 'return 1', input: {} })
    t.same([r.status, r.body], [200, { data: 1, type: 'number' }])
  }
  const stats = (await getJson(`${cold.url}/stats`)).body
  t.equal(stats.spawned, 3)
  if (stats.cgroups === undefined) {
    t.comment(`limits backend ${stats.limits as string}: no cgroups to hand on`)
    return
  }
  t.same(stats.cgroups, { made: 0, reused: 0, spare: 0 }, 'every cgroup had limits of its own: none taken from the spares, none left there')
})
