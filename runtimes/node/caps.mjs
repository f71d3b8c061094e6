// The daemon's byte caps for one call, applied before anything becomes a frame
// (serve.mjs; hearth_caps.py is python's). The daemon enforces them
// (sandbox.ts); cut here, no output of user code grows a frame, or the
// sandbox's memory, past what the daemon would keep: a 40 MB result is
// `result_too_large`, not a 40 MB frame the daemon reads and then refuses.

const UNCAPPED = Number.MAX_SAFE_INTEGER // a `run` frame without caps (the zygote's rehearsal)

/** `text` cut to at most `size` bytes of UTF-8, at a character's start. */
export function cut (text, size) {
  if (text.length <= size / 3) return text // a UTF-16 unit is at most 3 bytes of UTF-8
  const head = text.length > size ? text.slice(0, size) : text // a UTF-16 unit is 1 byte or more
  const bytes = Buffer.from(head, 'utf8')
  if (bytes.length <= size) return head
  while ((bytes[size] & 0xC0) === 0x80) size-- // a continuation byte: back to its character's start
  return bytes.toString('utf8', 0, size)
}

/** `resultMax` and `logMax` of the call being served (its `run` frame). */
export class Caps {
  constructor () {
    this.begin({})
  }

  begin (msg) {
    this.resultMax = msg.resultMax ?? UNCAPPED
    this.logMax = msg.logMax ?? UNCAPPED
    this.logSent = 0
    // characters of a line kept while it is written: past both caps, the rest
    // of it can be neither a log line the daemon keeps nor a result
    this.hold = Math.max(this.resultMax, this.logMax) + 1
  }

  /**
   * What of a line (`dropped` characters of it already left out) goes to the
   * daemon: all of it while the call's logs fit in logMax; then, cut, a line
   * the daemon's count also finds over the cap (it drops that line and says
   * the logs were truncated); then nothing (null).
   */
  logLine (line, dropped) {
    if (this.logSent > this.logMax) return null
    this.logSent += Buffer.byteLength(line) + dropped + 1
    if (this.logSent <= this.logMax) return line
    return cut(line, this.logMax + 4) // >= logMax + 1 bytes whenever the line had more
  }

  /** The result frame, or only its size (`tooLarge`) when over resultMax. */
  result (id, field, text, dropped = 0) {
    const size = Buffer.byteLength(text) + dropped
    return size > this.resultMax ? { t: 'result', id, tooLarge: size } : { t: 'result', id, [field]: text }
  }

  /** An error frame's text, each field cut to resultMax bytes. */
  error (reply) {
    for (const key of ['name', 'message', 'stack']) reply[key] = cut(reply[key], this.resultMax)
    return reply
  }
}
