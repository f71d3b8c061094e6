"""A failed call as the daemon reports it (bootstrap.py): the user's frames
only, and what a message should add to explain itself; as errors.mjs is node's."""
import errno
import socket
import sys
import traceback

from hearth_code import FILENAME

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
