import { readdirSync, readFileSync } from 'node:fs'

/** Processes whose command line mentions `text` (a daemon's state or runtime directory). */
export function processesMentioning (text: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(text)
    } catch {
      return false
    }
  })
}
