// QUEUE_MAX, counted once over every place a call can wait for a sandbox: a
// function's warm set (its own sandboxes all busy) and a language pool (no
// ready sandbox).
import { HearthError } from '../errors.js'

export class WaitLimit {
  private waiting = 0

  constructor (readonly max: number) {}

  /** Counts one more waiting call, or refuses it with overloaded. Returns what ends the wait's count. */
  enter (): () => void {
    if (this.waiting >= this.max) throw new HearthError('overloaded', `more than ${this.max} calls are waiting for a sandbox`)
    this.waiting++
    let counted = true
    return () => {
      if (counted) this.waiting--
      counted = false
    }
  }
}
