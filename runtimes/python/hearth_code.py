"""The user's code as the bootstrap runs it (bootstrap.py): compiled as a
module whose top-level `return` gives the call's value, run as __main__."""
import ast
import linecache
import sys
import types

FILENAME = 'function.py'
# The code runs as the program itself, as `python3 function.py` would run it:
# `if __name__ == '__main__':` blocks run, and pickle finds its functions there.
MODULE_NAME = '__main__'
COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect


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
