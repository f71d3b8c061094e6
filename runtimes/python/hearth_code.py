"""The user's code as the bootstrap runs it (bootstrap.py): compiled as a
module whose top-level `return` gives the call's value, run as __main__."""
import ast
import linecache
import marshal
import sys
import types

FILENAME = 'function.py'
# The code runs as the program itself, as `python3 function.py` would run it:
# `if __name__ == '__main__':` blocks run, and pickle finds its functions there.
MODULE_NAME = '__main__'
COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect
# The interpreter's exact version, ahead of a code object's marshal bytes
# (dump_module): bytecode of another version is never loaded.
VERSION = sys.hexversion.to_bytes(4, 'big')


class Return(BaseException):
    """A top-level `return`: ends the code with its value. A BaseException, so
    `except Exception:` lets it through (README: returns inside try / with)."""

    def __init__(self, value=None):
        super().__init__()
        self.value = value


def _raise_returns(body):
    """`return x` outside any def or class becomes `raise __hearth_return__(x)`,
    in `body` and the blocks of its statements (if, for, while, try, with,
    match). Statements only: a return is never inside an expression, and a
    def's or a class's returns are its own. (An ast.NodeTransformer visiting
    every node cost 2.5x as much per compile, measured: 137 vs 56 us for ten
    lines, paid by every run-now call.)"""
    for i, node in enumerate(body):
        if isinstance(node, ast.Return):
            call = ast.Call(func=ast.Name(id='__hearth_return__', ctx=ast.Load()),
                            args=[node.value] if node.value is not None else [], keywords=[])
            ast.copy_location(call.func, node)
            ast.copy_location(call, node)
            body[i] = ast.copy_location(ast.Raise(exc=call, cause=None), node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for block in ('body', 'orelse', 'finalbody'):
                inner = getattr(node, block, None)
                if isinstance(inner, list):
                    _raise_returns(inner)
            for part in getattr(node, 'handlers', []) + getattr(node, 'cases', []):  # except clauses, match cases
                _raise_returns(part.body)


def _lines(code):
    # for linecache: tracebacks and inspect.getsource() read the code from there (mtime None: never checked on disk)
    return len(code), None, code.splitlines(True), FILENAME


def _null_byte(code):
    """A NUL in the code, as the SyntaxError later Pythons raise for it (3.11.2,
    Debian 12's, raises a ValueError without a position), at its line and column."""
    at = code.index('\0')
    start = code.rfind('\n', 0, at) + 1
    end = code.find('\n', at)
    text = code[start:] if end < 0 else code[start:end]
    return SyntaxError('source code cannot contain null bytes',
                       (FILENAME, code.count('\n', 0, at) + 1, at - start + 1, text))


def compile_module(code):
    """The code as a module's code object, with positions the user's own."""
    try:
        tree = ast.parse(code, FILENAME, 'exec')
    except ValueError:
        if '\0' not in code:
            raise
        raise _null_byte(code) from None
    _raise_returns(tree.body)
    return compile(tree, FILENAME, 'exec', flags=COMPILE_FLAGS, dont_inherit=True), _lines(code)


def load_module(code, compiled=None):
    """compile_module(code); or, given `compiled` (what dump_module gave for
    this very code in another sandbox of this interpreter, before any user
    code ran there: the daemon's bytecode cache), its code object from that,
    ~2 us instead of a compile (167 us for one line in a fresh sandbox)."""
    if compiled is not None and compiled[:4] == VERSION:
        try:
            return marshal.loads(compiled[4:]), _lines(code)
        except (EOFError, TypeError, ValueError):
            pass
    return compile_module(code)


def dump_module(loaded):
    """A loaded module's code object as bytes load_module takes back."""
    return VERSION + marshal.dumps(loaded[0])


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
