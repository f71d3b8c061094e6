// The ceiling of the front end: a uWebSockets.js server that reads the request
// body (as hearth does) and answers the fixed JSON hearth would return, with no
// sandbox behind it. Run as its own process: `node dist/bench/bare-server.js`.
// Prints {"msg":"listening","port":N} once it listens on 127.0.0.1 (port 0 = any).
import uWS from 'uWebSockets.js'

const BODY = '{"data":8,"type":"number"}'
const host = process.env.HTTP_HOST ?? '127.0.0.1'
const port = Number(process.env.HTTP_PORT ?? '0')

const app = uWS.App().any('/*', (res) => {
  let aborted = false
  res.onAborted(() => { aborted = true })
  res.onData((_chunk, isLast) => {
    if (!isLast || aborted) return
    res.cork(() => {
      res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(BODY)
    })
  })
})

app.listen(host, port, (socket) => {
  if (socket === false) {
    process.stderr.write(`bare-server: cannot listen on ${host}:${port}\n`)
    process.exit(1)
  }
  process.stdout.write(JSON.stringify({ msg: 'listening', port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket) }) + '\n')
  const stop = (): void => {
    uWS.us_listen_socket_close(socket)
    app.close()
    process.exit(0)
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
})
