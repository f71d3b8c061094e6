"""hearth's resident Python bootstrap: serves `run` frames on fd 3 (see ../PROTOCOL.md)."""
import ast
import builtins
import io
import json
import os
import socket
import struct
import sys
import traceback

import msgpack

FILENAME = 'function.py'
HEADER = struct.Struct('>I')


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
    """Stands in for sys.stdout / sys.stderr: each line becomes a `log` frame."""

    def __init__(self, chan, stream):
        self.chan = chan
        self.stream = stream
        self.partial = ''
        self.call_id = 0
        self.last_line = ''

    def writable(self):
        return True

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
        if self.partial:
            self._emit(self.partial)
            self.partial = ''

    def _emit(self, line):
        if line.strip():
            self.last_line = line
        self.chan.send({'t': 'log', 'id': self.call_id, 'stream': self.stream, 'data': line})


def _well_formed(value):
    """A str with lone surrogates (valid in Python and JSON, not in UTF-8) gets U+FFFD for each."""
    if isinstance(value, str):
        return value.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')
    return value


def result_json(value):
    """JSON text of a returned value; a lone surrogate is kept as its \\u escape."""
    text = json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=False)
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        text = json.dumps(value, default=_json_default, ensure_ascii=True, allow_nan=False)
    return text


def _json_default(value):
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode('utf-8', 'replace')
    return str(value)


class _TopLevelAwait(ast.NodeVisitor):
    """Finds `await` (or async for/with) outside any nested function."""

    found = False

    def visit_FunctionDef(self, node):
        pass  # a nested def has its own scope

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_Await(self, node):
        self.found = True

    visit_AsyncFor = visit_Await
    visit_AsyncWith = visit_Await


def compile_function(code):
    """Turn a code body into a function of (event, input), keeping line numbers.

    The body becomes the body of a function at the AST level, so a top-level
    `return` is legal and tracebacks point at the user's own lines.
    """
    tree = ast.parse(code, FILENAME, 'exec')
    finder = _TopLevelAwait()
    for node in tree.body:
        finder.visit(node)
    kind = ast.AsyncFunctionDef if finder.found else ast.FunctionDef
    args = ast.arguments(posonlyargs=[], args=[ast.arg(arg='event'), ast.arg(arg='input')],
                         vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
    fields = dict(name='<module>', args=args, body=tree.body or [ast.Pass()],
                  decorator_list=[], returns=None, type_comment=None, lineno=1, col_offset=0)
    if sys.version_info >= (3, 12):
        fields['type_params'] = []
    module = ast.Module(body=[kind(**fields)], type_ignores=[])
    ast.fix_missing_locations(module)
    namespace = {'__name__': '__main__', '__builtins__': builtins}
    exec(compile(module, FILENAME, 'exec'), namespace)
    return namespace['<module>'], finder.found


def describe(exc):
    """{name, message, stack} with only the user's frames in the stack: the
    bootstrap's own (and the library frames it called) say nothing about the code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
    head = 'Traceback (most recent call last):\n' if frames else ''
    stack = head + ''.join(traceback.format_list(frames)) + ''.join(traceback.format_exception_only(type(exc), exc))
    message = str(exc)
    if isinstance(exc, SyntaxError):
        message = '%s (%s, line %s)' % (exc.msg, FILENAME, exc.lineno)
    return {'name': type(exc).__name__, 'message': message, 'stack': stack}


def warm_up():
    """One call's code path, run before `ready`: a sandbox forked from the
    zygote pays its copy-on-write faults here rather than on its first real call."""
    fn, _ = compile_function('x = [event, input]\nreturn {"ok": x[0]}')
    text = result_json(fn(json.loads('{"a": [1, "b"]}'), None))
    msgpack.packb({'t': 'result', 'id': 0, 'json': text}, use_bin_type=True)


def main():
    warm_up()
    chan = Channel(3)
    out = LineCapture(chan, 'stdout')
    err = LineCapture(chan, 'stderr')
    sys.stdout, sys.stderr = out, err
    sys.stdin = io.StringIO('')
    cached_key = None
    cached = None
    chan.send({'t': 'ready', 'runtime': 'python', 'pid': os.getpid()})
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
                cached = compile_function(msg['code'])
            elif key != cached_key or cached is None:
                reply = {'t': 'error', 'id': call_id, 'name': 'ProtocolError',
                         'message': 'no code for key %r' % (key,), 'stack': ''}
            if reply is None:
                fn, is_async = cached
                event = json.loads(msg.get('input') or '{}')
                builtins.event = event
                builtins.input = event
                value = fn(event, event)
                if is_async:
                    import asyncio
                    value = asyncio.run(value)
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


if __name__ == '__main__':
    main()
