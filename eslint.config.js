import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'build/**', '.state/**', 'bench/results/**'] }),
  {
    rules: {
      // `void promise` marks a deliberately unawaited call (sandbox teardown off the hot path).
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
