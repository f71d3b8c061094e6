// The cold model's one-shot Node wrapper (go-faas style): a fresh node per request
// reads {"code", "input"} as JSON on stdin, where code is the script the daemon
// prepares for its bootstrap (daemon/compile/: its value is an async function of
// (event, input), opened on a line 0 of its own), runs it once and prints the returned value's JSON as its last line.
import vm from 'node:vm'

let text = ''
process.stdin.setEncoding('utf8')
for await (const chunk of process.stdin) text += chunk
const request = JSON.parse(text)
const event = JSON.parse(request.input)
const fn = vm.runInThisContext(request.code, {
  filename: request.filename ?? 'function.js',
  lineOffset: -1,
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
})
const value = await fn(event, event)
if (value !== undefined) process.stdout.write(JSON.stringify(value) + '\n')
