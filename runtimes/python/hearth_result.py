"""A call's result as JSON, by the rule every runtime follows (README, "Results");
the bootstrap's (bootstrap.py), as result.mjs is node's."""
import base64
import datetime
import json

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
    if text.isascii():  # no copy: a result's JSON text may be most of the sandbox's memory
        return text
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        text = _dumps(_normalise(value, set()), ensure_ascii=True)
    return text


def _dumps(value, ensure_ascii=False):
    return (_ASCII if ensure_ascii else _COMPACT).encode(value)


def _json_default(value):
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode('ascii')
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


# What json.dumps would make at each call, made once: made in a forked
# sandbox, it wrote ~5 of the zygote's pages a call (measured), and a warm
# call spent ~0.6 us more on it.
_COMPACT = json.JSONEncoder(default=_json_default, ensure_ascii=False, allow_nan=False, separators=(',', ':'))
_ASCII = json.JSONEncoder(default=_json_default, ensure_ascii=True, allow_nan=False, separators=(',', ':'))


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
