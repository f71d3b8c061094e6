"""hearth's resident Python bootstrap: serves `run` frames on fd 3 (see ../PROTOCOL.md)."""
import ast
import base64
import builtins
import codecs
import datetime
import errno
import io
import json
import linecache
import os
import socket
import struct
import sys
import traceback
import types

import msgpack

FILENAME = 'function.py'
HEADER = struct.Struct('>I')
# The code runs as the program itself, as `python3 function.py` would run it:
# `if __name__ == '__main__':` blocks run, and pickle finds its functions there.
MODULE_NAME = '__main__'
COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect


class Channel:
    """Length-prefixed msgpack frames over the socket pair on fd 3."""

    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.buf = bytearray()

    def send(self, msg):
        try:
            body = msgpack.packb(msg, use_bin_type=True)
        except UnicodeEncodeError:  # a lone surrogate in a log line or a stdout result
            body = msgpack.packb({k: _well_formed(v) for k, v in msg.items()}, use_bin_type=True)
        self.sock.sendall(HEADER.pack(len(body)) + body)

    def recv(self):
        while True:
            if len(self.buf) >= 4:
                (size,) = HEADER.unpack_from(self.buf)
                if len(self.buf) >= 4 + size:
                    body = bytes(self.buf[4:4 + size])
                    del self.buf[:4 + size]
                    # surrogatepass: what JavaScript strings may hold arrives as it was sent
                    return msgpack.unpackb(body, raw=False, unicode_errors='surrogatepass')
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.buf += chunk


class LineCapture(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr: each line becomes a `log` frame.
    Bytes written to its `buffer` are decoded as UTF-8 into the same lines;
    fileno() is the real fd, whose raw writes the daemon captures too."""

    encoding = 'utf-8'
    errors = 'strict'

    def __init__(self, chan, stream, fd):
        self.chan = chan
        self.stream = stream
        self.fd = fd
        self.partial = ''
        self.call_id = 0
        self.last_line = ''
        self.buffer = ByteCapture(self)

    def writable(self):
        return True

    def fileno(self):
        return self.fd

    def isatty(self):
        return False

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError('write() argument must be str, not ' + type(s).__name__)
        text = self.partial + s
        lines = text.split('\n')
        self.partial = lines.pop()
        for line in lines:
            self._emit(line)
        return len(s)

    def flush(self):
        pass

    def end_call(self):
        self.buffer.flush_partial()
        if self.partial:
            self._emit(self.partial)
            self.partial = ''

    def _emit(self, line):
        if line.strip():
            self.last_line = line
        self.chan.send({'t': 'log', 'id': self.call_id, 'stream': self.stream, 'data': line})


class ByteCapture(io.BufferedIOBase):
    """sys.stdout.buffer: bytes in, UTF-8 text out to its LineCapture (a
    character split across writes waits for its last byte)."""

    def __init__(self, text):
        self.text = text
        self.decoder = codecs.getincrementaldecoder('utf-8')('replace')

    def writable(self):
        return True

    def write(self, b):
        data = bytes(b)
        self.text.write(self.decoder.decode(data))
        return len(data)

    def flush_partial(self):
        self.text.write(self.decoder.decode(b'', final=True))

    def fileno(self):
        return self.text.fd


def _well_formed(value):
    """A str with lone surrogates (valid in Python and JSON, not in UTF-8) gets U+FFFD for each."""
    if isinstance(value, str):
        return value.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')
    return value


CYCLE = 'the result cannot be sent as JSON: it contains a reference cycle'


def result_json(value):
    """The result as compact JSON, by the rule every runtime follows (README,
    "Results"): NaN and infinities become "NaN", "Infinity", "-Infinity";
    sets and tuples arrays; bytes base64; dates ISO 8601; keys strings; a
    cycle is an error. A lone surrogate is kept as its \\u escape."""
    try:
        text = _dumps(value)
    except ValueError as exc:  # NaN / infinity, or a cycle
        if 'Circular' in str(exc):
            raise TypeError(CYCLE) from None
        text = _dumps(_normalise(value, set()))
    except TypeError:  # a key json cannot write (a tuple, say)
        text = _dumps(_normalise(value, set()))
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        text = _dumps(_normalise(value, set()), ensure_ascii=True)
    return text


def _dumps(value, ensure_ascii=False):
    return json.dumps(value, default=_json_default, ensure_ascii=ensure_ascii, allow_nan=False, separators=(',', ':'))


def _json_default(value):
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode('ascii')
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _normalise(value, path):
    """The slow path of result_json: what the json module refuses, made JSON."""
    if isinstance(value, float):
        return value if value - value == 0 else _non_finite(value)
    if isinstance(value, (str, int, type(None))):
        return value
    if not isinstance(value, (dict, list, tuple, set, frozenset)):
        return _json_default(value)
    if id(value) in path:
        raise TypeError(CYCLE)
    path.add(id(value))
    try:
        if isinstance(value, dict):
            return {_key(k): _normalise(v, path) for k, v in value.items()}
        return [_normalise(v, path) for v in value]
    finally:
        path.discard(id(value))


def _non_finite(x):
    return 'NaN' if x != x else ('Infinity' if x > 0 else '-Infinity')


def _key(key):
    """A key as json would write it, and the keys it refuses as str(key)."""
    if isinstance(key, str):
        return key
    if isinstance(key, float) and key - key != 0:
        return _non_finite(key)
    if isinstance(key, (bool, int, float, type(None))):
        return json.dumps(key)
    return str(key)


class Return(BaseException):
    """A top-level `return`: ends the code with its value. A BaseException, so
    `except Exception:` lets it through (README: returns inside try / with)."""

    def __init__(self, value=None):
        super().__init__()
        self.value = value


class _TopLevelReturns(ast.NodeTransformer):
    """`return x` outside any def or class becomes `raise __hearth_return__(x)`."""

    def visit_FunctionDef(self, node):
        return node  # a def's own returns are its own

    visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = visit_FunctionDef

    def visit_Return(self, node):
        call = ast.Call(func=ast.Name(id='__hearth_return__', ctx=ast.Load()),
                        args=[node.value] if node.value is not None else [], keywords=[])
        return ast.copy_location(ast.Raise(exc=call, cause=None), node)


def compile_module(code):
    """The code as a module's code object, with positions the user's own."""
    tree = _TopLevelReturns().visit(ast.parse(code, FILENAME, 'exec'))
    ast.fix_missing_locations(tree)
    compiled = compile(tree, FILENAME, 'exec', flags=COMPILE_FLAGS, dont_inherit=True)
    # for linecache: tracebacks and inspect.getsource() read the code from there (mtime None: never checked on disk)
    return compiled, (len(code), None, code.splitlines(True), FILENAME)


def run_module(loaded, event):
    """Runs the code in a new module registered as __main__; its value is
    what a top-level `return` gave (None when it gave nothing)."""
    compiled, lines = loaded
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = FILENAME
    module.event = module.input = event
    sys.modules[MODULE_NAME] = module
    sys.argv[:] = [FILENAME]
    linecache.cache[FILENAME] = lines
    try:
        value = eval(compiled, module.__dict__)
        if compiled.co_flags & CO_COROUTINE:  # top-level await: the module's code is a coroutine
            import asyncio
            asyncio.run(value)
        return None
    except Return as ret:
        return ret.value


NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}


def hint(exc):
    """What a message should add so that it explains itself, or ''."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.partition('.')[0]
        if top not in sys.stdlib_module_names:
            return ("hearth functions can import Python's standard library only; "
                    "%r is not part of it" % top)
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror) or (isinstance(exc, OSError) and exc.errno in NETWORK_ERRNOS):
            return 'hearth sandboxes have no network access'
        exc = getattr(exc, 'reason', None) if isinstance(getattr(exc, 'reason', None), BaseException) \
            else (exc.__cause__ or exc.__context__)
    return ''


def describe(exc):
    """{name, message, stack} with only the user's frames in the stack: the
    bootstrap's own (and the library frames it called) say nothing about the code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
    head = 'Traceback (most recent call last):\n' if frames else ''
    stack = head + ''.join(traceback.format_list(frames)) + ''.join(traceback.format_exception_only(type(exc), exc))
    message = str(exc)
    extra = hint(exc)
    if extra:
        message = '%s (%s)' % (message, extra)
    return {'name': type(exc).__name__, 'message': message, 'stack': stack}


def describe_syntax(exc):
    """A SyntaxError of the code itself: its position, for the daemon's syntax_error."""
    reply = describe(exc)
    reply['message'] = '%s (%s, line %s)' % (exc.msg, FILENAME, exc.lineno)
    reply['syntax'] = {'line': exc.lineno or 0, 'column': exc.offset or 0,
                       'lineText': (exc.text or '').rstrip('\n')}
    return reply


def warm_up():
    """One call's code path, run before `ready`: a sandbox forked from the
    zygote pays its copy-on-write faults here rather than on its first real call."""
    loaded = compile_module('x = [event, input]\nif x:\n    return {"ok": x[0], "n": float("nan")}')
    text = result_json(run_module(loaded, json.loads('{"a": [1, "b"]}')))
    msgpack.packb({'t': 'result', 'id': 0, 'json': text}, use_bin_type=True)


def hide_hearth():
    """User code sees its own __main__ and sys.path: not the bootstrap, not the
    packages hearth itself imported (msgpack), not the directory they came from.
    Hygiene, not a boundary: the sandbox is the boundary."""
    for name in list(sys.modules):
        if name in ('bootstrap', '__main__') or name == 'msgpack' or name.startswith('msgpack.'):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p != '/hearth' and not p.endswith(('-packages', '.egg'))]
    # The function's own packages (an upload's dependencies), bound read-only
    # when it has some: after the standard library, where site-packages would be.
    if os.path.isdir('/packages'):
        sys.path.append('/packages')


def start(fd):
    """Everything a sandbox does before its first call, ending with `ready`
    on `fd`."""
    builtins.__hearth_return__ = Return
    warm_up()
    chan = Channel(fd)
    out = LineCapture(chan, 'stdout', 1)
    err = LineCapture(chan, 'stderr', 2)
    sys.stdout, sys.stderr = out, err
    sys.stdin = io.StringIO('')
    hide_hearth()
    chan.send({'t': 'ready', 'runtime': 'python', 'pid': os.getpid()})
    return chan, out, err


def main(fd=3):
    """Serves calls on `fd` until the daemon closes it. The zygote's probe runs
    it too, on a socket pair holding one call, to learn which of the zygote's
    pages a sandbox writes up to the end of its first call (rehearse)."""
    chan, out, err = start(fd)
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
        out.last_line = ''
        reply = None
        try:
            key = msg.get('key')
            if msg.get('code') is not None:
                cached_key, cached = key, None  # a failed compile must not leave old code behind
                try:
                    cached = compile_module(msg['code'])
                except SyntaxError as exc:
                    reply = dict(describe_syntax(exc), t='error', id=call_id)
            elif key != cached_key or cached is None:
                reply = {'t': 'error', 'id': call_id, 'name': 'ProtocolError',
                         'message': 'no code for key %r' % (key,), 'stack': ''}
            if reply is None:
                value = run_module(cached, json.loads(msg.get('input') or '{}'))
                out.end_call()
                err.end_call()
                if value is None:
                    reply = {'t': 'result', 'id': call_id, 'stdout': out.last_line}
                else:
                    reply = {'t': 'result', 'id': call_id, 'json': result_json(value)}
        except SystemExit as exc:
            out.end_call()
            err.end_call()
            if exc.code in (None, 0):  # sys.exit() after printing a result is a normal end
                reply = {'t': 'result', 'id': call_id, 'stdout': out.last_line}
            else:
                reply = dict(describe(exc), t='error', id=call_id)
        except BaseException as exc:  # KeyboardInterrupt and the like end the call, not the sandbox
            out.end_call()
            err.end_call()
            reply = dict(describe(exc), t='error', id=call_id)
        chan.send(reply)


def rehearse():
    """A sandbox's start and one call, on a socket pair, with hearth's own code."""
    end, peer = socket.socketpair()
    call = msgpack.packb({'t': 'run', 'id': 1, 'key': 'rehearsal', 'input': '{"a": [1, 2]}',
                          'code': 'total = sum(event["a"])\nprint("total", total)\nreturn {"total": total}'},
                         use_bin_type=True)
    peer.sendall(HEADER.pack(len(call)) + call)
    peer.shutdown(socket.SHUT_WR)
    main(end.detach())


if __name__ == '__main__':
    main()
