"""sys.stdout and sys.stderr as the bootstrap (bootstrap.py) installs them:
each line written becomes a `log` frame on its channel, within the call's caps
(hearth_caps.py); bytes written to their `buffer` become the same lines."""
import codecs
import io


class LineCapture(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr: each line becomes a `log` frame.
    Bytes written to its `buffer` are decoded as UTF-8 into the same lines;
    fileno() is the real fd, whose raw writes the daemon captures too."""

    encoding = 'utf-8'
    errors = 'strict'
    line_buffering = True  # each line goes out when it ends
    write_through = False
    newlines = None
    mode = 'w'

    def __init__(self, chan, stream, fd, caps):
        self.chan = chan
        self.stream = stream
        self.name = '<%s>' % stream
        self.fd = fd
        self.caps = caps
        # the line being written, in pieces joined once at its end (joining at
        # each write made a line written piece by piece quadratic: 200,000
        # one-character writes took 11.6 s), up to caps.hold characters
        self.pieces = []
        self.held = 0
        self.dropped = 0  # characters of it past caps.hold, left out
        self.call_id = 0
        self.last_line = ''
        self.last_dropped = 0
        self.buffer = ByteCapture(self)

    def writable(self):
        return True

    def fileno(self):
        return self.fd

    def isatty(self):
        return False

    def reconfigure(self, *, encoding=None, errors=None, newline=None, line_buffering=None, write_through=None):
        """TextIOWrapper's, for code that calls it (`sys.stdout.reconfigure(encoding='utf-8')`):
        lines are text here, sent as they end, whatever is asked."""

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError('write() argument must be str, not ' + type(s).__name__)
        if '\n' not in s:
            self._hold(s)
            return len(s)
        lines = s.split('\n')
        self._hold(lines[0])
        self._end_line()
        hold = self.caps.hold
        for line in lines[1:-1]:
            self._emit(line[:hold], max(0, len(line) - hold))
        self._hold(lines[-1])
        return len(s)

    def flush(self):
        pass

    def end_call(self):
        self.buffer.flush_partial()
        if self.pieces or self.dropped:
            self._end_line()

    def _hold(self, piece):
        room = max(self.caps.hold - self.held, 0)
        if len(piece) > room:
            self.dropped += len(piece) - room
            piece = piece[:room]
        if piece:
            self.pieces.append(piece)
            self.held += len(piece)

    def _end_line(self):
        line = ''.join(self.pieces)
        dropped = self.dropped
        self.pieces, self.held, self.dropped = [], 0, 0
        self._emit(line, dropped)

    def _emit(self, line, dropped=0):
        if dropped or line.strip():
            self.last_line, self.last_dropped = line, dropped
        data = self.caps.log_line(line, dropped)
        if data is not None:
            self.chan.send({'t': 'log', 'id': self.call_id, 'stream': self.stream, 'data': data})


class ByteCapture(io.BufferedIOBase):
    """sys.stdout.buffer: bytes in, UTF-8 text out to its LineCapture (a
    character split across writes waits for its last byte)."""

    def __init__(self, text):
        self.text = text
        self.decoder = codecs.getincrementaldecoder('utf-8')('replace')
        self.written = False  # since the last flush_partial

    def writable(self):
        return True

    def write(self, b):
        data = bytes(b)
        self.written = True
        self.text.write(self.decoder.decode(data))
        return len(data)

    def flush_partial(self):
        """A character left unfinished at the call's end, as U+FFFD (not a
        word when no bytes came: the decoder's call alone wrote ~12 pages
        of a forked child's memory, measured)."""
        if self.written:
            self.written = False
            self.text.write(self.decoder.decode(b'', final=True))

    def fileno(self):
        return self.text.fd
