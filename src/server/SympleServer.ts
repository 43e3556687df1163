/**
 * The Symple server: WebSocket peers and plain HTTP routes on one port, and an API to reach peers from code.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Cause from "effect/Cause"
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as FiberSet from "effect/FiberSet"
import * as HashMap from "effect/HashMap"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import type { Duplex } from "node:stream"
import { type WebSocket, WebSocketServer } from "ws"
import type * as Frame from "../protocol/Frame.js"
import type { Json } from "../protocol/Json.js"
import * as Message from "../protocol/Message.js"
import type * as Peer from "../protocol/Peer.js"
import * as Authenticator from "./Authenticator.js"
import * as Connection from "./Connection.js"
import * as Delivery from "./Delivery.js"
import * as Listener from "./internal/listener.js"
import * as JoinPolicy from "./JoinPolicy.js"
import * as OutboundBudget from "./OutboundBudget.js"
import * as PeerRegistry from "./PeerRegistry.js"
import * as Presence from "./Presence.js"
import * as RateLimit from "./RateLimit.js"
import * as Router from "./Router.js"
import * as ServerConfig from "./ServerConfig.js"
import * as State from "./State.js"

/**
 * @since 0.1.0
 * @category models
 */
export type ServerEvent = Delivery.ServerEvent

/**
 * @since 0.1.0
 * @category constructors
 */
export const ServerEvent = Delivery.ServerEvent

/**
 * @since 0.1.0
 * @category models
 */
export type Stats = Delivery.Stats

/**
 * @since 0.1.0
 * @category models
 */
export type ServerOptions = ServerConfig.ServerOptions

/**
 * A virtual peer's description: `id` and `user` are required; `name` defaults to `user`, `type` to `"Peer"`.
 *
 * @since 0.1.0
 * @category models
 */
export interface VirtualPeer {
  readonly id: string
  readonly user: string
  readonly name?: string | undefined
  readonly type?: string | undefined
  readonly [key: string]: Json | undefined
}

/**
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Data.TaggedError("ServerError")<{
  readonly reason: "Listen" | "Routes" | "Tls" | "DuplicatePeer" | "InvalidPeer"
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * The server's API.
 *
 * @since 0.1.0
 * @category models
 */
export interface Server {
  /** The bound port (useful with `port: 0`). */
  readonly port: number
  readonly host: string
  /** `ws://host:port` of the bound socket (`wss://` with the `tls` option). */
  readonly url: string
  /** Sends a frame to every member of a room (except `excludeId`); returns the number of recipients. */
  readonly broadcast: (room: string, frame: Frame.Frame, excludeId?: string) => Effect.Effect<number>
  /** Sends a frame to one session; `false` if there is no such session. */
  readonly sendTo: (id: string, frame: Frame.Frame) => Effect.Effect<boolean>
  /**
   * Routes a frame that comes from outside the peer network (e.g. a Redis `symple:broadcast` message) by its own
   * `to`: `"user|id"`, a room name, or an array of room names. `from` is left as it is and no shared-room rule
   * applies. Returns the number of recipients.
   */
  readonly inject: (frame: Frame.Frame) => Effect.Effect<number>
  /** Sends a frame to every session of a user; returns the number of sessions. */
  readonly sendToUser: (user: string, frame: Frame.Frame) => Effect.Effect<number>
  readonly getPeer: (id: string) => Effect.Effect<Option.Option<Peer.Peer>>
  readonly peersInRoom: (room: string) => Effect.Effect<ReadonlyArray<Peer.Peer>>
  readonly rooms: Effect.Effect<ReadonlyArray<string>>
  /** Authenticated sessions plus virtual peers. */
  readonly peerCount: Effect.Effect<number>
  /** Open sockets, authenticated or not. */
  readonly connectionCount: Effect.Effect<number>
  readonly stats: Effect.Effect<Readonly<Delivery.Stats>>
  /** Peers connecting and leaving, from the moment of subscription. */
  readonly events: Stream.Stream<Delivery.ServerEvent>
  /**
   * Registers an in-process peer in its personal room plus `rooms`: it is announced and appears in snapshots,
   * frames routed to it go to `handler` one at a time.
   */
  readonly addVirtualPeer: (
    peer: VirtualPeer,
    rooms: ReadonlyArray<string>,
    handler: (frame: Frame.Frame) => Effect.Effect<void>
  ) => Effect.Effect<Peer.Peer, ServerError>
  /** Removes a virtual peer (offline presence follows); `false` if there was none with that id. */
  readonly removeVirtualPeer: (id: string) => Effect.Effect<boolean>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class SympleServer extends Context.Service<SympleServer, Server>()("symple/SympleServer") {}

const hostOf = (socket: { readonly remoteAddress?: string | undefined }): string | undefined => {
  const address = socket.remoteAddress
  return address === undefined ? undefined : address.startsWith("::ffff:") ? address.slice(7) : address
}

const virtualHandlerQueue = 1024

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

/**
 * Starts a server in the current scope; closing the scope shuts it down gracefully (shutdown notice, close 1001).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Partial<ServerOptions> = {}): Effect.Effect<Server, ServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = ServerConfig.resolve(options)
    const registry = yield* PeerRegistry.make<Delivery.Handle>()
    const events = yield* PubSub.unbounded<Delivery.ServerEvent>()
    const router = yield* Effect.serviceOption(Router.Router).pipe(
      Effect.map(Option.getOrElse(() => Router.Router.of({ resolve: Router.resolve })))
    )
    const customAuthenticator = yield* Effect.serviceOption(Authenticator.Authenticator)
    const authenticator = Option.getOrElse(customAuthenticator, () => Authenticator.make(resolved))
    const customJoinPolicy = yield* Effect.serviceOption(JoinPolicy.JoinPolicy)
    const joinPolicy = Option.getOrElse(customJoinPolicy, () => JoinPolicy.make(resolved.authorizeJoin))
    // In token mode rooms carry the authentication hook's grants: dynamic joins need the application's say.
    const dynamicRooms = options.dynamicRooms ?? (resolved.dynamicRooms || Option.isSome(customJoinPolicy))
    // Bound once the server's fiber set exists (it is created after the listener so that it is released first).
    let supervise: (effect: Effect.Effect<void>) => unknown = () => {}
    const runInServer = Effect.runForkWith(yield* Effect.context<never>())
    const hub: Delivery.Hub = {
      fork: (effect) => void supervise(effect),
      run: (effect) => void runInServer(effect),
      options: { ...resolved, dynamicRooms },
      registry,
      router,
      authenticator,
      authenticatorMayWait: Option.isSome(customAuthenticator) || resolved.authenticate !== undefined,
      joinPolicy,
      rateLimitStore: yield* RateLimit.Store,
      events,
      stats: { received: 0, delivered: 0, undeliverable: 0, slowConsumers: 0, refused: 0 },
      outbound: OutboundBudget.make(resolved),
      connections: new Set(),
      startedAt: Date.now(),
      shuttingDown: false
    }

    const health = Effect.map(PeerRegistry.snapshot(registry), (state) =>
      HttpServerResponse.jsonUnsafe({
        status: hub.shuttingDown ? "stopping" : "ok",
        peers: State.size(state),
        rooms: HashMap.size(state.rooms),
        connections: hub.connections.size,
        uptime: Math.round((Date.now() - hub.startedAt) / 1000)
      }))
    const base = Layer.mergeAll(
      HttpRouter.add("GET", "/health", health),
      HttpRouter.add("GET", "/", HttpServerResponse.text("Symple server: connect with a WebSocket", { status: 426 }))
    )
    const app = resolved.routes === undefined ? base : Layer.mergeAll(base, resolved.routes)
    // The routes are built in the server's scope (a router of its own each time), and requests run in it.
    const scope = yield* Effect.scope
    // The router refuses a route declared twice (one of ours included) by dying: a start that fails, said as such.
    const routes = yield* HttpRouter.toHttpEffect(app).pipe(
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
    const handler = yield* NodeHttpServer.makeHandler(routes, { scope })
    const server = yield* Effect.try({
      try: () => Listener.createServer(resolved.tls, httpOptions(resolved), handler),
      catch: (cause) => new ServerError({ reason: "Tls", message: (cause as Error).message, cause })
    })
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: resolved.hardPayloadLimit,
      perMessageDeflate: false,
      clientTracking: false,
      // Symple defines no subprotocol, but clients that offer some fail the handshake when none is selected:
      // prefer "symple", else take the first offer (as the JavaScript server does).
      handleProtocols: (offered) => offered.has("symple") ? "symple" : (offered.values().next().value ?? false)
    })
    const open = new Set<{ readonly terminate: () => void }>()

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
    // After the connections are interrupted (each sent its 1001), give peers a moment to finish the close.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const deadline = Date.now() + resolved.shutdownTimeoutMillis
        while (open.size > 0 && Date.now() < deadline) yield* Effect.sleep(10)
        for (const socket of open) socket.terminate()
      })
    )
    const fork = yield* FiberSet.makeRuntime<never, void, never>()
    supervise = fork
    const virtuals = yield* FiberMap.make<string>()
    yield* Effect.addFinalizer(() => Effect.sync(() => void (hub.shuttingDown = true)))

    // Kept out of the upgrade listener's scope so that a live socket does not retain its upgrade request.
    // One listener for every socket (`this` is the socket): no closure per connection.
    function forget(this: WebSocket): void {
      open.delete(this)
    }
    const upgraded = (ws: WebSocket, socket: Duplex, host: string | undefined) => {
      open.add(ws)
      ws.on("close", forget)
      const max = resolved.maxConnections
      if (max > 0 && hub.connections.size >= max) {
        ws.on("error", ignore)
        ws.send(Delivery.encode(Message.error(503, "Server at capacity")))
        ws.close(1013, "Server at capacity")
        // Without waiting for the peer's close frame: at capacity, every descriptor freed early counts.
        socket.end()
        return
      }
      try {
        fork(Connection.run(Connection.accept(hub, ws, socket, host)))
      } catch (error) {
        // A bug here must cost one connection, not the process.
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

    const bound = server.address() as AddressInfo
    const snapshot = PeerRegistry.snapshot(registry)

    const sendToMembers = (
      members: ReadonlyArray<State.Member<Delivery.Handle>>,
      frame: Frame.Frame,
      exclude?: string
    ) =>
      Effect.sync(() =>
        members.length === 0 ? 0 : Delivery.deliver(hub.stats, { members, exclude }, Delivery.wire(frame), frame)
      )

    const addVirtualPeer: Server["addVirtualPeer"] = (description, rooms, onFrame) =>
      Effect.gen(function*() {
        if (typeof description.id !== "string" || description.id === "" || description.id.includes("|")) {
          return yield* new ServerError({ reason: "InvalidPeer", message: "A virtual peer needs an id without '|'" })
        }
        if (typeof description.user !== "string" || description.user === "") {
          return yield* new ServerError({ reason: "InvalidPeer", message: "A virtual peer needs a user" })
        }
        const fields: Record<string, Json> = {}
        for (const [key, value] of Object.entries(description)) if (value !== undefined) fields[key] = value
        const peer = {
          ...fields,
          id: description.id,
          user: description.user,
          name: description.name ?? description.user,
          type: description.type ?? "Peer",
          online: true
        } as Peer.Peer
        const inbox = yield* Queue.dropping<Frame.Frame>(virtualHandlerQueue)
        const member: State.Member<Delivery.Handle> = {
          id: peer.id,
          user: peer.user,
          handle: { send: (_bytes, frame) => void Queue.offerUnsafe(inbox, frame) }
        }
        const joined = [peer.user, ...rooms.filter((room) => room !== "" && room !== peer.user)]
        const state = yield* PeerRegistry.connect(registry, member, peer, joined, { virtual: true })
        if (state === undefined) {
          return yield* new ServerError({ reason: "DuplicatePeer", message: `A peer with id ${peer.id} exists` })
        }
        yield* Queue.take(inbox).pipe(
          Effect.flatMap((frame) =>
            Effect.catchCause(onFrame(frame), (cause) => Effect.logWarning(Cause.pretty(cause)))
          ),
          Effect.forever,
          FiberMap.run(virtuals, peer.id)
        )
        const me = State.session(state, peer.id)!
        const presence = Delivery.onlinePresence(peer)
        Delivery.deliverEncoded(hub.stats, State.neighbours(state, peer.id, me.rooms), presence.bytes, presence.frame)
        yield* PubSub.publish(events, Delivery.ServerEvent.PeerConnected({ peer, rooms: me.rooms, virtual: true }))
        return peer
      })

    const removeVirtualPeer: Server["removeVirtualPeer"] = (id) =>
      Effect.gen(function*() {
        const current = State.session(yield* snapshot, id)
        if (current === undefined || !current.virtual) return false
        const removed = yield* PeerRegistry.disconnect(registry, id)
        yield* FiberMap.remove(virtuals, id)
        if (removed === undefined) return false
        Delivery.deliverToSessions(hub.stats, removed.neighbours, Presence.offline(removed.session.peer))
        yield* PubSub.publish(
          events,
          Delivery.ServerEvent.PeerDisconnected({ peer: removed.session.peer, virtual: true })
        )
        return true
      })

    return {
      port: bound.port,
      host: resolved.host,
      url: `${resolved.tls === undefined ? "ws" : "wss"}://${
        bound.family === "IPv6" ? `[${bound.address}]` : bound.address
      }:${bound.port}`,
      broadcast: (room, frame, excludeId) =>
        Effect.flatMap(snapshot, (state) => sendToMembers(State.members(state, room), frame, excludeId)),
      sendTo: (id, frame) =>
        Effect.flatMap(snapshot, (state) => {
          const target = State.session(state, id)
          return target === undefined ? Effect.succeed(false) : Effect.as(sendToMembers([target.member], frame), true)
        }),
      inject: (frame) =>
        Effect.map(snapshot, (state) => {
          const route = Router.resolveInjected(state, "to" in frame ? frame.to : undefined)
          return Router.isEmpty(route) ? 0 : Delivery.deliver(hub.stats, route, Delivery.wire(frame), frame)
        }),
      sendToUser: (user, frame) =>
        Effect.flatMap(snapshot, (state) => {
          const members = State.sessionsOfUser(state, user).flatMap((id) => {
            const session = State.session(state, id)
            return session === undefined ? [] : [session.member]
          })
          return sendToMembers(members, frame)
        }),
      getPeer: (id) => Effect.map(snapshot, (state) => Option.fromNullishOr(State.session(state, id)?.peer)),
      peersInRoom: (room) =>
        Effect.map(snapshot, (state) =>
          State.members(state, room).flatMap((member) => {
            const session = State.session(state, member.id)
            return session === undefined ? [] : [session.peer]
          })),
      rooms: Effect.map(snapshot, (state) => Array.from(HashMap.keys(state.rooms))),
      peerCount: Effect.map(snapshot, State.size),
      connectionCount: Effect.sync(() => hub.connections.size),
      stats: Effect.sync(() => ({ ...hub.stats })),
      events: Stream.fromPubSub(events),
      addVirtualPeer,
      removeVirtualPeer
    } satisfies Server
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Partial<ServerOptions> = {}): Layer.Layer<SympleServer, ServerError> =>
  Layer.effect(SympleServer, make(options))

/**
 * Like `layer`, with `SYMPLE_*` environment variables (see `ServerConfig.config`) overriding `options`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Partial<ServerOptions> = {}
): Layer.Layer<SympleServer, ServerError | Config.ConfigError> =>
  Layer.effect(SympleServer, Effect.flatMap(ServerConfig.fromEnv(options), make))
