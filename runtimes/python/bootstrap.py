"""hearth's resident Python bootstrap: serves `run` frames on fd 3 (see ../PROTOCOL.md).
Its modules beside it: hearth_code (compiling and running the user's code),
hearth_result (the result as JSON), hearth_errors (a failure described),
hearth_caps (the call's byte caps), hearth_streams (the captured sys.stdout
and sys.stderr)."""
import builtins
import io
import json
import os
import socket
import struct
import sys

if '/hearth' not in sys.path:  # -I leaves the script's directory off; hide_hearth() takes it away again
    sys.path.insert(0, '/hearth')

import msgpack  # noqa: E402

from hearth_code import Return, compile_module, dump_module, load_module, run_module  # noqa: E402
from hearth_errors import describe, describe_syntax  # noqa: E402
from hearth_caps import Caps  # noqa: E402
from hearth_result import result_json  # noqa: E402
from hearth_streams import LineCapture  # noqa: E402

HEADER = struct.Struct('>I')
CHUNK = 1 << 16


class Channel:
    """Length-prefixed msgpack frames over the socket pair on fd 3."""

    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.buf = bytearray()

    def send(self, msg):
        self.sock.sendall(self.frame(msg))

    @staticmethod
    def frame(msg):
        """`msg` as the bytes of a frame."""
        try:
            body = msgpack.packb(msg, use_bin_type=True)
        except UnicodeEncodeError:  # a lone surrogate in a log line or a stdout result
            body = msgpack.packb({k: _well_formed(v) for k, v in msg.items()}, use_bin_type=True)
        return HEADER.pack(len(body)) + body

    def recv(self):
        while True:
            if len(self.buf) >= 4:
                (size,) = HEADER.unpack_from(self.buf)
                if len(self.buf) >= 4 + size:
                    with memoryview(self.buf) as view, view[4:4 + size] as body:
                        # surrogatepass: what JavaScript strings may hold arrives as it was sent
                        msg = msgpack.unpackb(body, raw=False, unicode_errors='surrogatepass')
                    del self.buf[:4 + size]
                    return msg
                if size > CHUNK and not self._fill(4 + size):
                    return None
                continue
            chunk = self.sock.recv(CHUNK)
            if not chunk:
                return None
            self.buf += chunk

    def _fill(self, total):
        """Reads the rest of a large frame straight into place (`total` bytes
        buffered in all): one buffer of its size, no chunks appended to it.
        False at the end of the channel."""
        buf = bytearray(total)
        have = len(self.buf)
        buf[:have] = self.buf
        with memoryview(buf) as view:
            while have < total:
                n = self.sock.recv_into(view[have:])
                if n == 0:
                    return False
                have += n
        self.buf = buf
        return True


def _well_formed(value):
    """A str with lone surrogates (valid in Python and JSON, not in UTF-8) gets U+FFFD for each."""
    if isinstance(value, str):
        return value.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')
    return value


WARMED = False  # warm_up() ran here, or in the zygote this process was forked from
HIDDEN = False  # hide_hearth() ran here, or in the zygote


def warm_up():
    """One call's code path, run before `ready`, so the first real call does
    not pay its first run (lazy imports, the interpreter's caches). The python
    zygote runs it once before it forks: its children skip it (WARMED)."""
    global WARMED
    builtins.__hearth_return__ = Return
    loaded = compile_module('x = [event, input]\nif x:\n    return {"ok": x[0], "n": float("nan")}')
    text = result_json(run_module(loaded, json.loads('{"a": [1, "b"]}')))
    msgpack.packb({'t': 'result', 'id': 0, 'json': text}, use_bin_type=True)
    WARMED = True


def hide_hearth():
    """User code sees its own __main__ and sys.path: not the bootstrap, not the
    packages hearth itself imported (msgpack), not the directory they came from.
    Hygiene, not a boundary: the sandbox is the boundary. The python zygote
    runs it once before it forks: in each child it wrote ~75 of the zygote's
    pages (the reference count of every module's name, measured), each one a
    copy per sandbox."""
    global HIDDEN
    for name in list(sys.modules):
        if name in ('bootstrap', '__main__') or name.startswith('hearth_') or name == 'msgpack' or name.startswith('msgpack.'):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p != '/hearth' and not p.endswith(('-packages', '.egg'))]
    HIDDEN = True


def add_packages():
    """The function's own packages (an upload's dependencies), bound read-only
    when it has some: after the standard library, where site-packages would be."""
    if os.path.isdir('/packages'):
        sys.path.append('/packages')


class Prepared:
    """What start() makes for a sandbox whose channel is `fd`, made ahead of
    it: the python zygote makes these once before it forks (prepare), so that
    its children find them made. Made in each child, they wrote ~50 of the
    zygote's pages (the allocations, the calls making them, the sys.stdout
    they replace, freed), each a copy per sandbox (the probe's count). The
    zygote's own fd 3, its control connection, is a unix stream socket as
    each child's channel is: the socket object made on it stays valid when a
    child's fd 3 is its channel. The zygote never uses them (its fork loop is
    C), and they are never collected (gc.freeze)."""

    def __init__(self, fd):
        self.fd = fd
        self.chan = Channel(fd)
        self.caps = Caps()
        self.out = LineCapture(self.chan, 'stdout', 1, self.caps)
        self.err = LineCapture(self.chan, 'stderr', 2, self.caps)
        self.stdin = io.StringIO('')
        # kept, so that the child replacing them frees nothing
        self.replaced = (sys.stdout, sys.stderr, sys.stdin)
        # The probe's calls (rehearse), packed here: packing them there would
        # count pages no child writes. Shaped like the daemon's frames: a
        # first call of code the daemon has seen (its bytecode comes with
        # it), then one of code it has not (it asks for the bytecode), which
        # compiles: what that adds is copied only before a child's first
        # compile (../zygote/probe.h, hz_probe_answered; ~70 of ~350 pages).
        code = 'total = sum(event["a"])\nprint("total", total)\nreturn {"total": total}'
        call = {'t': 'run', 'input': '{"a": [1, 2]}', 'filename': 'rehearsal', 'code': code, 'resultMax': 1 << 20, 'logMax': 1 << 20}
        self.rehearsal = (Channel.frame(dict(call, id=1, key='seen', compiled=dump_module(compile_module(code))))
                          + Channel.frame(dict(call, id=2, key='new', wantCompiled=1 << 20)))
        # set by the zygote: copies what a first compile writes (hz_prefault_compile)
        self.before_compile = None


PREPARED = None  # a Prepared, in the python zygote and the programs it forks


def prepare(fd=3):
    """Makes start()'s objects ahead, for the programs this process will fork:
    each runs on `fd` and has no packages (a function with packages gets a
    spawned sandbox, daemon/pool/runner.ts)."""
    global PREPARED
    PREPARED = Prepared(fd)


def prepared(fd):
    """The Prepared made for a program on `fd` (prepare), or None."""
    return PREPARED if PREPARED is not None and PREPARED.fd == fd else None


def start(fd):
    """Everything a sandbox does before its first call, ending with `ready`
    on `fd`."""
    if not WARMED:
        warm_up()  # it installs __hearth_return__ too (inherited when forked)
    made = prepared(fd)
    if made is not None:
        chan, caps, out, err, stdin = made.chan, made.caps, made.out, made.err, made.stdin
    else:
        chan = Channel(fd)
        caps = Caps()
        out = LineCapture(chan, 'stdout', 1, caps)
        err = LineCapture(chan, 'stderr', 2, caps)
        stdin = io.StringIO('')
    # sys.__stdout__ too: code that restores it, or writes there to get past a
    # redirection, reaches the captured stream (the original, block-buffered
    # on fd 1, lost what it held when the sandbox ended)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__ = out, err
    sys.stdin = stdin
    if not HIDDEN:
        hide_hearth()
    if made is None:
        add_packages()
    chan.send({'t': 'ready', 'runtime': 'python', 'pid': os.getpid()})
    return chan, out, err, caps


def send_compiled(chan, call_id, loaded, max_bytes):
    """The code's bytecode for the daemon's cache (runtimes/PROTOCOL.md,
    `compiled`), asked of a fresh sandbox only: no user code has run in it
    yet. Always a frame, without `data` when over `max_bytes`, and before the
    code runs: the daemon takes it only as the call's first frame, so none the
    code might write to fd 3 itself is ever taken."""
    data = dump_module(loaded)
    chan.send({'t': 'compiled', 'id': call_id, 'data': data} if len(data) <= max_bytes else {'t': 'compiled', 'id': call_id})


def main(fd=3, started=None, answered=None):
    """Serves calls on `fd` until the daemon closes it. The zygote's probe runs
    it too, on a socket pair holding two calls, to learn which of the zygote's
    pages a sandbox writes up to the end of its first call, and which it maps
    during that call (rehearse: `started` is called in between), and what a
    first compile adds (`answered` is called after the first call)."""
    chan, out, err, caps = start(fd)
    if started is not None:
        started()
    # a forked program's: copies at once what a compile writes, before its first
    made = prepared(fd)
    before_compile = made.before_compile if made is not None else None
    cached_key = None
    cached = None
    while True:
        msg = chan.recv()
        if msg is None:
            return
        if msg.get('t') != 'run':
            continue
        call_id = msg['id']
        out.call_id = err.call_id = call_id
        out.last_line, out.last_dropped = '', 0
        caps.begin(msg)
        reply = None
        try:
            key = msg.get('key')
            if msg.get('code') is not None:
                cached_key, cached = key, None  # a failed compile must not leave old code behind
                if before_compile is not None and msg.get('compiled') is None:
                    before_compile()
                    before_compile = None
                try:
                    cached = load_module(msg['code'], msg.get('compiled'))
                except SyntaxError as exc:
                    reply = dict(caps.error(describe_syntax(exc)), t='error', id=call_id)
                if cached is not None and msg.get('wantCompiled'):
                    send_compiled(chan, call_id, cached, msg['wantCompiled'])
            elif key != cached_key or cached is None:
                reply = {'t': 'error', 'id': call_id, 'name': 'ProtocolError',
                         'message': 'no code for key %r' % (key,), 'stack': ''}
            if reply is None:
                value = run_module(cached, json.loads(msg.get('input') or '{}'))
                out.end_call()
                err.end_call()
                if value is None:
                    reply = caps.result(call_id, 'stdout', out.last_line, out.last_dropped)
                else:
                    reply = caps.result(call_id, 'json', result_json(value))
        except SystemExit as exc:
            out.end_call()
            err.end_call()
            if exc.code in (None, 0):  # sys.exit() after printing a result is a normal end
                reply = caps.result(call_id, 'stdout', out.last_line, out.last_dropped)
            else:
                reply = dict(caps.error(describe(exc)), t='error', id=call_id)
        except BaseException as exc:  # KeyboardInterrupt and the like end the call, not the sandbox
            out.end_call()
            err.end_call()
            reply = dict(caps.error(describe(exc)), t='error', id=call_id)
        chan.send(reply)
        if answered is not None:
            answered()
            answered = None


def rehearsal():
    """A socket pair holding the probe's calls, made (in the zygote) before the
    probe is forked: made in the probe, it mapped code a child does not run
    before its first call, which the probe then took for its start's, not
    its call's (the probe's count, ../zygote/probe.h): the child's first call
    faulted it in (13 faults where 3). Its fds are the zygote's: a sandbox's
    init closes every fd but its own (../zygote/isolate.c, arrange_fds)."""
    end, peer = socket.socketpair()
    peer.sendall(PREPARED.rehearsal)
    peer.shutdown(socket.SHUT_WR)
    return end, peer


def rehearse(pair, started=None, answered=None):
    """A forked program's start and two calls, on `pair` (rehearsal()) moved
    to the prepared channel's fd, with hearth's own code; `started` is called
    after the start, `answered` after the first call. In the zygote's probe,
    which closed the zygote's control connection on that fd."""
    os.dup2(pair[0].fileno(), PREPARED.fd)
    main(PREPARED.fd, started, answered)


if __name__ == '__main__':
    main()
