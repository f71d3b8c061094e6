// async.test against a three-master Redis Cluster (issue 13): the same tests,
// the same daemons, REDIS_CLUSTER_NODES instead of REDIS_URL.
process.env.HEARTH_TEST_REDIS = 'cluster'
await import('./async.test.js')
