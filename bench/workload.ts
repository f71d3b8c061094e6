// What every scenario runs: the same small function in each language, and the
// answer a server must give to count a request as served.
import type { Language } from '../daemon/config.js'

export const LANGUAGES: readonly Language[] = ['python', 'javascript', 'typescript']
export const CODE: Record<Language, string> = {
  python: 'return event["a"] + event["b"]',
  javascript: 'return event.a + event.b',
  typescript: 'const e: { a: number, b: number } = event\nreturn e.a + e.b'
}
export const INPUT = JSON.stringify({ a: 3, b: 5 })
export const STORED_BODY = JSON.stringify({ input: INPUT })
export const EXPECTED = '{"data":8,"type":"number"}'
export const pathOf = (l: Language): string => `bench/add-${l}`
