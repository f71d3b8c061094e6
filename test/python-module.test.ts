// Python code runs as a module, as `python3 function.py` runs a file: what works
// at the top of a normal file works (issue 10), against the real bootstrap in bwrap.
import t from 'tap'
import { call, startRunner } from './helpers/runner.js'

const { runner } = await startRunner(t)

async function py (code: string, input = '{}'): Promise<Awaited<ReturnType<typeof call>>> {
  return await call(runner, { language: 'python', code, input })
}

const value = (r: Awaited<ReturnType<typeof call>>): unknown => r.result === undefined ? r.error : JSON.parse(r.result.data)

t.test('__future__ imports, import *, global and a top-level return', async (t) => {
  const r = await py([
    'from __future__ import annotations',
    'from math import *',
    'n = 1',
    'def bump() -> int:',
    '    global n',
    '    n += 1',
    '    return n  # a def\'s own return',
    'bump()',
    'for i in range(10):',
    '    if i == 3:',
    '        return {"n": n, "floor": floor(pi), "i": i, "ann": bump.__annotations__["return"]}',
    'return "not reached"'
  ].join('\n'))
  t.same(value(r), { n: 2, floor: 3, i: 3, ann: 'int' })
})

t.test('the code is __main__: its functions pickle, multiprocessing maps them, type hints resolve', async (t) => {
  const r = await py([
    'import multiprocessing, pickle, sys, typing',
    'from dataclasses import dataclass',
    'def sq(x):',
    '    return x * x',
    '@dataclass',
    'class Point:',
    '    x: int',
    '    nxt: "Point | None" = None',
    'with multiprocessing.Pool(2) as pool:',
    '    squares = pool.map(sq, [1, 2, 3])',
    'return {',
    '    "name": __name__, "main": sys.modules["__main__"].__name__, "same": sys.modules["__main__"].sq is sq,',
    '    "pickled": pickle.loads(pickle.dumps(sq))(4), "squares": squares,',
    '    "point": pickle.loads(pickle.dumps(Point(1))).x, "qualname": sq.__qualname__, "repr": repr(Point(2)),',
    '    "hints": sorted(typing.get_type_hints(Point)),',
    '}'
  ].join('\n'))
  t.same(value(r), {
    name: '__main__',
    main: '__main__',
    same: true,
    pickled: 16,
    squares: [1, 4, 9],
    point: 1,
    qualname: 'sq',
    repr: 'Point(x=2, nxt=None)',
    hints: ['nxt', 'x']
  })
})

t.test('top-level await, with and without a return', async (t) => {
  t.same(value(await py('import asyncio\nawait asyncio.sleep(0)\nreturn event["a"] * 2', '{"a": 21}')), 42)
  const printed = await py('import asyncio\nawait asyncio.sleep(0)\nprint("done")')
  t.equal(printed.result?.data, '"done"')
})

t.test('if __name__ == "__main__" runs; doctest.testmod() finds the code\'s own docstrings', async (t) => {
  const r = await py([
    'def double(x):',
    '    """',
    '    >>> double(2)',
    '    4',
    '    >>> double(-1)',
    '    -2',
    '    """',
    '    return 2 * x',
    'if __name__ == "__main__":',
    '    import doctest',
    '    print(doctest.testmod())'
  ].join('\n'))
  t.equal(r.result?.type, 'text')
  t.equal(JSON.parse(r.result?.data ?? '""'), 'TestResults(failed=0, attempted=2)')
})

t.test('every call runs the module afresh, in a warm sandbox too', async (t) => {
  const code = 'count = globals().get("count", 0) + 1\nreturn count'
  const fn = 'test/python-module-fresh'
  for (let i = 0; i < 3; i++) {
    const r = await call(runner, { language: 'python', code, input: '{}', functionKey: `${fn}@1` })
    t.equal(r.result?.data, '1', `call ${i + 1}`)
  }
})

t.test('hearth stays out of the way: no bootstrap in __main__ or sys.modules, no msgpack, no /hearth on sys.path', async (t) => {
  const r = await py([
    'import sys, inspect',
    'me = sys.modules["__main__"]',
    'def here(): pass',
    'return {',
    '    "internals": [n for n in ("Channel", "compile_module", "run_module", "main") if hasattr(me, n)],',
    '    "modules": [n for n in ("bootstrap", "hearth_caps", "hearth_code", "hearth_errors", "hearth_result", "hearth_streams", "msgpack") if n in sys.modules],',
    '    "path": [p for p in sys.path if p == "/hearth" or p.endswith("-packages")],',
    '    "argv": sys.argv, "source": inspect.getsource(here).strip(),',
    '}'
  ].join('\n'))
  t.same(value(r), { internals: [], modules: [], path: [], argv: ['function.py'], source: 'def here(): pass' })
  const imp = await py('import msgpack')
  t.equal(imp.error?.details.name, 'ModuleNotFoundError')
  t.match(imp.error?.message, /No module named 'msgpack' \(hearth functions can import Python's standard library only/)
  const boot = await py('import bootstrap')
  t.equal(boot.error?.details.name, 'ModuleNotFoundError')
  const own = await py('import hearth_result')
  t.equal(own.error?.details.name, 'ModuleNotFoundError', 'nor its modules')
})

t.test('sys.stdout is a text stream with a binary buffer and a real fd', async (t) => {
  const r = await py([
    'import sys, os',
    'sys.stdout.buffer.write(b"bytes \\xc2")',
    'sys.stdout.buffer.write(b"\\xa9 split\\n")',
    'sys.stderr.buffer.write("err \\u2713\\n".encode())',
    'print("text", sys.stdout.encoding, sys.stdout.fileno(), sys.stderr.fileno(), sys.stdout.isatty())',
    'sys.stdout.buffer.write(b"no newline")'
  ].join('\n'))
  t.same(r.logs, [['stdout', 'bytes © split'], ['stderr', 'err ✓'], ['stdout', 'text utf-8 1 2 False'], ['stdout', 'no newline']])
  t.equal(r.result?.data, '"no newline"')
  const cut = await py('import sys\nsys.stdout.buffer.write(b"cut \\xe2\\x9c")')
  t.same(cut.logs, [['stdout', 'cut \ufffd']], 'a character left unfinished at the call\'s end is U+FFFD')
})

t.test('errors say what is wrong: no network, not a standard-library module', async (t) => {
  const dns = await py('import socket\nsocket.getaddrinfo("example.com", 80)')
  t.match(dns.error?.message, /\(hearth sandboxes have no network access\)$/)
  const url = await py('import urllib.request\nurllib.request.urlopen("http://example.com/", timeout=5)')
  t.equal(url.error?.details.name, 'URLError')
  t.match(url.error?.message, /hearth sandboxes have no network access/)
  const pkg = await py('import requests')
  t.match(pkg.error?.message, /No module named 'requests' \(hearth functions can import Python's standard library only; 'requests' is not part of it\)/)
  const own = await py('import json\nraise ValueError("plain")')
  t.equal(own.error?.message, 'plain', 'other errors keep their own message')
})

t.test('a syntax error is syntax_error at the user\'s line and column; a later valid call still runs', async (t) => {
  const fn = 'test/python-module-syntax@1'
  const bad = await call(runner, { language: 'python', code: 'x = 1\nif x\n    pass', input: '{}', functionKey: fn })
  t.equal(bad.error?.code, 'syntax_error')
  t.match(bad.error?.details, { line: 2, column: 5, lineText: 'if x' })
  const again = await call(runner, { language: 'python', code: 'x = 1\nif x\n    pass', input: '{}', functionKey: fn })
  t.equal(again.error?.code, 'syntax_error', 'the same code in the same sandbox is compiled again, not "no code for key"')
  const yieldAtTop = await py('yield 1')
  t.equal(yieldAtTop.error?.code, 'syntax_error', 'a module has no yield at its top level')
  // Python 3.11.2 (Debian 12's) raises a ValueError without a position for a NUL, later ones a SyntaxError.
  const nul = await py('x = 1\ny = 2 \0 3\nreturn x')
  t.equal(nul.error?.code, 'syntax_error', 'a NUL in the code is a syntax error, as in JavaScript and TypeScript')
  t.match(nul.error?.details, { line: 2, column: 7 })
})

t.test('a top-level return inside try / with ends the code as a return; except Exception does not catch it', async (t) => {
  const r = await py([
    'import contextlib',
    'log = []',
    'try:',
    '    with contextlib.ExitStack():',
    '        return "from inside"',
    'except Exception:',
    '    log.append("caught")',
    'finally:',
    '    print("finally ran")'
  ].join('\n'))
  t.equal(r.result?.data, '"from inside"')
  t.same(r.logs, [['stdout', 'finally ran']])
})

t.test('a top-level return from every kind of block; a def\'s, a class\'s and a lambda\'s returns stay their own', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['if event:\n    return "if"\nreturn "after"', 'if'],
    ['if not event:\n    pass\nelif event:\n    return "elif"', 'elif'],
    ['for i in range(3):\n    if i == 1:\n        return i', 1],
    ['for i in []:\n    pass\nelse:\n    return "for-else"', 'for-else'],
    ['while True:\n    return "while"', 'while'],
    ['try:\n    raise ValueError()\nexcept ValueError:\n    return "except"', 'except'],
    ['try:\n    x = 1\nexcept Exception:\n    pass\nelse:\n    return "try-else"', 'try-else'],
    ['try:\n    pass\nfinally:\n    return "finally"', 'finally'],
    ['with open("/dev/null"):\n    return "with"', 'with'],
    ['match event:\n    case {"a": 1}:\n        return "case"\n    case _:\n        return "default"', 'case'],
    ['import asyncio\nasync def f():\n    return 4\nfor x in [1]:\n    return await f()', 4],
    ['def f():\n    return 5\nclass C:\n    def g(self):\n        return 6\ng = lambda: 7\nreturn [f(), C().g(), g()]', [5, 6, 7]]
  ]
  for (const [code, want] of cases) t.same(value(await py(code, '{"a": 1}')), want, code.split('\n')[0] as string)
})

t.test('sys.stdout answers what code asks of a TextIOWrapper; sys.__stdout__ is the captured stream too', async (t) => {
  const r = await py([
    'import sys',
    'sys.stdout.reconfigure(encoding="utf-8", line_buffering=True)',
    'sys.stderr.reconfigure(errors="replace")',
    'print("to the original", file=sys.__stdout__)', // block-buffered on fd 1, it was lost at the sandbox's end
    'sys.stdout = sys.__stdout__',
    'print("restored")',
    'return [sys.stdout.name, sys.stderr.name, sys.stdout.line_buffering, sys.__stderr__ is sys.stderr]'
  ].join('\n'))
  t.same(value(r), ['<stdout>', '<stderr>', true, true])
  t.same(r.logs, [['stdout', 'to the original'], ['stdout', 'restored']])
})

t.test('the sandbox uid has a name: getpass, pwd and grp answer (an /etc/passwd and /etc/group of hearth\'s, read-only)', async (t) => {
  const r = await py('import getpass, os, pwd, grp\nreturn [getpass.getuser(), pwd.getpwuid(os.getuid()).pw_dir, grp.getgrgid(os.getgid()).gr_name, sorted(os.listdir("/etc"))]')
  t.same(value(r), ['nobody', '/tmp', 'nogroup', ['group', 'passwd']])
  const write = await py('open("/etc/passwd", "a").write("x")')
  t.equal(write.error?.details.name, 'PermissionError')
})
