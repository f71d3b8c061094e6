"""The daemon's byte caps for one call, applied before anything becomes a frame
(bootstrap.py; caps.mjs is node's). The daemon enforces them (sandbox.ts); cut
here, no output of user code grows a frame, or the bootstrap's memory, past
what the daemon would keep: a 40 MB result is `result_too_large`, not a 40 MB
frame the daemon reads and then refuses, nor a memory_limit while encoding it."""
import sys

UNCAPPED = sys.maxsize  # a `run` frame without caps (the zygote's rehearsal)


def utf8_size(text):
    """Bytes of `text` in UTF-8, as the daemon counts them."""
    return len(text) if text.isascii() else len(text.encode('utf-8', 'surrogatepass'))


def cut(text, size):
    """`text` cut to at most `size` bytes of UTF-8, at a character's start."""
    if len(text) <= size // 4:
        return text
    if text.isascii():
        return text[:size]
    head = text[:size]  # a character is 1 byte or more
    data = head.encode('utf-8', 'surrogatepass')
    if len(data) <= size:
        return head
    while data[size] & 0xC0 == 0x80:  # a continuation byte: back to its character's start
        size -= 1
    return data[:size].decode('utf-8', 'surrogatepass')


class Caps:
    """`resultMax` and `logMax` of the call being served (its `run` frame)."""

    def __init__(self):
        self.begin({})

    def begin(self, msg):
        self.result_max = msg.get('resultMax', UNCAPPED)
        self.log_max = msg.get('logMax', UNCAPPED)
        self.log_sent = 0
        # characters of a line kept while it is written: past both caps, the
        # rest of it can be neither a log line the daemon keeps nor a result
        self.hold = max(self.result_max, self.log_max) + 1

    def log_line(self, line, dropped):
        """What of a line (`dropped` characters of it already left out) goes to
        the daemon: all of it while the call's logs fit in logMax; then, cut, a
        line the daemon's count also finds over the cap (it drops that line and
        says the logs were truncated); then nothing."""
        if self.log_sent > self.log_max:
            return None
        self.log_sent += utf8_size(line) + dropped + 1
        if self.log_sent <= self.log_max:
            return line
        return cut(line, self.log_max + 4)  # >= logMax + 1 bytes whenever the line had more

    def result(self, call_id, field, text, dropped=0):
        """The result frame, or only its size (`tooLarge`) when over resultMax."""
        size = utf8_size(text) + dropped
        if size > self.result_max:
            return {'t': 'result', 'id': call_id, 'tooLarge': size}
        return {'t': 'result', 'id': call_id, field: text}

    def error(self, reply):
        """An error frame's text, each field cut to resultMax bytes."""
        for key in ('name', 'message', 'stack'):
            reply[key] = cut(reply[key], self.result_max)
        if 'syntax' in reply:
            reply['syntax']['lineText'] = cut(reply['syntax']['lineText'], self.result_max)
        return reply
