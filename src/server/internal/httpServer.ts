/**
 * Owns the server's port: the Node HTTP (or HTTPS) server (its timeouts), the plain HTTP routes (`GET /health`, `GET /`,
 * `GET /ready` and `GET /metrics` from `operations`, `GET /ice` when ICE servers are configured, the application's),
 * listening and closing, WebSocket upgrades (each accepted socket becomes a connection whose fiber the server
 * supervises), pings to find dead peers, and the order of shutdown: detached sessions end, connections say goodbye
 * (each sends its notice and 1001) and their fibers are stopped and awaited, peers get `shutdownTimeout` to finish
 * the close, then whatever is left is dropped and the port closed.
 *
 * @since 0.2.0
 * @internal
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerError from "effect/http/HttpServerError"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import type { Duplex } from "node:stream"
import type { WebSocket } from "ws"
import * as IceServers from "../IceServers.js"
import type * as ServerConfig from "../ServerConfig.js"
import { ServerError } from "../ServerError.js"
import * as State from "../State.js"
import * as Admission from "./admission.js"
import * as Connection from "./connection.js"
import { ConnectionSocket } from "./connectionSocket.js"
import type { Hub } from "./hub.js"
import * as IceRoute from "./iceRoute.js"
import * as Listener from "./listener.js"
import * as Operations from "./operations.js"
import * as Resume from "./resume.js"
import { makeWebSocketServer } from "./socketWriter.js"

const hostOf = (socket: { readonly remoteAddress?: string | undefined }): string | undefined => {
  const address = socket.remoteAddress
  return address === undefined ? undefined : address.startsWith("::ffff:") ? address.slice(7) : address
}

/** Node takes whole milliseconds; an infinite timeout is none at all (0). */
const wholeMillis = (millis: number): number => Number.isFinite(millis) ? Math.ceil(millis) : 0

/**
 * Node's HTTP timeouts from the options; they also bound how long an upgrade request may take to arrive. Node
 * checks them on a timer (`connectionsCheckingInterval`, 30 s by default), so a timeout fires up to one period
 * late: the period here is the shortest timeout, kept between 50 ms and 1 s. Node refuses a `headersTimeout`
 * above `requestTimeout` (the headers are part of the request): it is capped to it.
 */
const httpOptions = (resolved: ServerConfig.Resolved): Http.ServerOptions => {
  const requestTimeout = wholeMillis(resolved.requestTimeoutMillis)
  const headers = wholeMillis(resolved.headersTimeoutMillis)
  const headersTimeout = requestTimeout > 0 && headers > requestTimeout ? requestTimeout : headers
  const shortest = Math.min(...[headersTimeout, requestTimeout].filter((timeout) => timeout > 0))
  return Number.isFinite(shortest)
    ? { headersTimeout, requestTimeout, connectionsCheckingInterval: Math.max(50, Math.min(1000, shortest)) }
    : { headersTimeout, requestTimeout }
}

const ignore = () => {}

const isUnroutedRoot = (error: unknown): error is HttpServerError.HttpServerError =>
  HttpServerError.isHttpServerError(error) && error.reason._tag === "RouteNotFound" &&
  error.request.url.split("?")[0] === "/"

/**
 * The built-in routes and the application's, as one request handler built in the server's scope. `GET /` belongs
 * to the application when it routes it (a demo page); otherwise it says how to connect (426).
 */
const routes = (hub: Hub, operations: Layer.Layer<never, never, HttpRouter.HttpRouter>) => {
  const health = Effect.flatMap(
    hub.registry.snapshot,
    (state) =>
      Effect.map(hub.brokerStatus, (broker) =>
        HttpServerResponse.jsonUnsafe({
          status: hub.shuttingDown ? "stopping" : "ok",
          peers: State.size(state),
          rooms: HashMap.size(state.rooms),
          connections: hub.connections.size,
          uptime: Math.round((Date.now() - hub.startedAt) / 1000),
          // A cluster node says how it stands with the broker (cross-node frames are dropped while disconnected).
          ...(broker.state === "single" ? {} : { broker })
        }))
  )
  const base = Layer.mergeAll(operations, HttpRouter.add("GET", "/health", health))
  const withIce = IceServers.isConfigured(hub.options) ? Layer.mergeAll(base, IceRoute.route(hub)) : base
  const app = hub.options.routes === undefined ? withIce : Layer.mergeAll(withIce, hub.options.routes)
  // The router refuses a route declared twice (one of ours included) by dying: a start that fails, said as such.
  return HttpRouter.toHttpEffect(app).pipe(
    Effect.map((handler) =>
      Effect.catchIf(
        handler,
        isUnroutedRoot,
        () => Effect.succeed(HttpServerResponse.text("Symple server: connect with a WebSocket", { status: 426 }))
      )
    ),
    Effect.catchDefect((defect) =>
      Effect.fail(
        new ServerError({
          reason: "Routes",
          message: `Invalid routes: ${defect instanceof Error ? defect.message : String(defect)}`,
          cause: defect
        })
      )
    )
  )
}

/**
 * Serves on the port of the hub's options until the scope closes: each connection's fiber is supervised by the
 * server (stopped and awaited first when the scope closes). Returns the bound address.
 *
 * @since 0.2.0
 * @internal
 */
export const serve = (hub: Hub): Effect.Effect<AddressInfo, ServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = hub.options
    // The routes are built in the server's scope (a router of its own each time), and requests run in it.
    const scope = yield* Effect.scope
    const handler = yield* NodeHttpServer.makeHandler(yield* routes(hub, yield* Operations.routes(hub)), { scope })
    const server = yield* Effect.try({
      try: () => Listener.createServer(resolved.tls, httpOptions(resolved), handler),
      catch: (cause) => new ServerError({ reason: "Tls", message: (cause as Error).message, cause })
    })
    const wss = makeWebSocketServer(resolved, ConnectionSocket)
    const open = hub.open

    // Released last: stop listening and drop whatever is left.
    yield* Effect.acquireRelease(
      Effect.callback<void, ServerError>((resume) => {
        const onError = (cause: Error) =>
          resume(Effect.fail(new ServerError({ reason: "Listen", message: `Cannot listen: ${cause.message}`, cause })))
        server.once("error", onError)
        server.listen(resolved.port, resolved.host, () => {
          server.off("error", onError)
          resume(Effect.void)
        })
      }),
      () =>
        Effect.callback<void>((resume) => {
          for (const socket of open) socket.terminate()
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    // After the connections said goodbye (each sent its 1001), give peers a moment to finish the close.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const deadline = Date.now() + resolved.shutdownTimeoutMillis
        while (open.size > 0 && Date.now() < deadline) yield* Effect.sleep(10)
        for (const socket of open) socket.terminate()
      })
    )
    // Connections say goodbye (each sends its notice and 1001, and its teardown ends its fiber), then every
    // connection's fiber is stopped and awaited (one still running work for its connection is interrupted).
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const fibers: Array<Fiber.Fiber<void>> = []
        for (const live of Array.from(hub.connections)) {
          if (live.fiber !== undefined) fibers.push(live.fiber)
          try {
            live.goodbye()
          } catch (error) {
            hub.run(Effect.logError("Symple connection teardown failed", Cause.die(error)))
          }
        }
        return Fiber.interruptAll(fibers)
      })
    )
    // First of all: no session is held from now on, and those held end (their peers cannot come back).
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        hub.shuttingDown = true
        Resume.endAll(hub)
      })
    )

    // Kept out of the upgrade listener's scope so that a live socket does not retain its upgrade request.
    // One listener for every socket (`this` is the socket): no closure per connection. Only for sockets that get no
    // connection: a connection puts its socket in `open` when it says goodbye, and its close takes it out.
    function forget(this: WebSocket): void {
      open.delete(this)
    }
    const upgraded = (ws: WebSocket, socket: Duplex, host: string | undefined) => {
      // The WebSocket now listens for the socket's errors itself: a second listener would cost the socket a listener
      // array for its whole life.
      socket.off("error", ignore)
      if (Admission.atCapacity(hub)) {
        open.add(ws)
        ws.on("close", forget)
        hub.stats.refusedConnections++
        return Admission.refuseAtCapacity(ws, socket)
      }
      try {
        Connection.accept(hub, ws, socket, host)
      } catch (error) {
        // A bug here must cost one connection, not the process.
        open.add(ws)
        ws.on("close", forget)
        ws.terminate()
        hub.run(Effect.logError("Symple connection setup failed", Cause.die(error)))
      }
    }
    server.on("upgrade", (request: Http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on("error", ignore)
      if (hub.shuttingDown) {
        socket.destroy()
        return
      }
      const host = hostOf(request.socket)
      wss.handleUpgrade(request, socket, head, (ws) => upgraded(ws, socket, host))
    })

    if (resolved.pingIntervalMillis > 0) {
      yield* Effect.sync(() => {
        for (const live of hub.connections) {
          if (!live.alive) live.terminate()
          else {
            live.alive = false
            live.ping()
          }
        }
      }).pipe(
        Effect.repeat(Schedule.spaced(resolved.pingIntervalMillis)),
        Effect.delay(resolved.pingIntervalMillis),
        Effect.forkScoped
      )
    }

    return server.address() as AddressInfo
  })
