// Where the daemon's listeners bind: exclusively. uWebSockets.js sets
// SO_REUSEPORT by default, so a second daemon started on a port already in use
// (a `make run` twice, a unit started beside a manual run) bound it as well and
// took a share of the connections, silently, with a store of its own (seen:
// uploads answered by one, "function_not_found" from the other).
import uWS, { type TemplatedApp } from 'uWebSockets.js'
import { CannotStart } from '../errors.js'

type ListenWithOptions = (host: string, port: number, options: number, cb: (socket: uWS.us_listen_socket | false) => void) => TemplatedApp

/** What the binding exports as LIBUS_LISTEN_EXCLUSIVE_PORT (its typings name it only inside the ListenOptions enum). */
const EXCLUSIVE_PORT = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT

/** Listens on host:port alone; resolves with the listen socket and the port bound (port 0 picks a free one). */
export async function listenExclusive (app: TemplatedApp, host: string, port: number, what: string): Promise<{ socket: uWS.us_listen_socket, port: number }> {
  // The binding takes options after host and port, which its typings leave out.
  const listen = app.listen as unknown as ListenWithOptions
  return await new Promise((resolve, reject) => {
    listen.call(app, host, port, EXCLUSIVE_PORT, (socket) => {
      if (socket === false) return reject(new CannotStart(`cannot listen on ${host}:${port} (${what}): the port is in use, or the address is not this host's`))
      resolve({ socket, port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket) })
    })
  })
}

/**
 * Fails as listenExclusive would if host:port cannot be bound now: checked
 * at start-up before anything is started, so that a daemon on a port in use
 * stops having made no cgroup, zygote or redis-server (port 0: any is free).
 */
export async function checkPortFree (host: string, port: number, what: string): Promise<void> {
  if (port === 0) return
  const app = uWS.App()
  try {
    uWS.us_listen_socket_close((await listenExclusive(app, host, port, what)).socket)
  } finally {
    app.close()
  }
}
