# The cold model's one-shot Python wrapper (go-faas style): a fresh interpreter per
# request reads {"code", "input"} as JSON on stdin, runs the code as the body of a
# function of (event, input), and prints the returned value's JSON as its last line.
import json
import sys

request = json.load(sys.stdin)
event = json.loads(request["input"])
lines = request["code"].splitlines() or ["pass"]
source = "def __hearth_function(event, input):\n" + "\n".join("    " + line for line in lines)
scope = {}
exec(compile(source, request.get("filename", "function.py"), "exec"), scope)
value = scope["__hearth_function"](event, event)
if value is not None:
    sys.stdout.write(json.dumps(value) + "\n")
