/**
 * The Symple server: WebSocket peers and plain HTTP routes on one port, and an API to reach peers from code.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Frame from "../protocol/Frame.js"
import type { Json } from "../protocol/Json.js"
import type * as Peer from "../protocol/Peer.js"
import * as Authenticator from "./Authenticator.js"
import * as Broker from "./Broker.js"
import * as Cluster from "./internal/cluster.js"
import * as Counters from "./internal/counters.js"
import * as FanOut from "./internal/fanOut.js"
import * as HttpServer from "./internal/httpServer.js"
import * as Hub from "./internal/hub.js"
import { encode } from "./internal/socketWriter.js"
import * as VirtualPeers from "./internal/virtualPeers.js"
import * as JoinPolicy from "./JoinPolicy.js"
import * as PeerRegistry from "./PeerRegistry.js"
import * as RateLimit from "./RateLimit.js"
import * as Router from "./Router.js"
import * as ServerConfig from "./ServerConfig.js"
import { ServerError } from "./ServerError.js"
import { ServerEvent } from "./ServerEvent.js"
import * as State from "./State.js"

export {
  /**
   * @since 0.1.0
   * @category errors
   */
  ServerError,
  /**
   * @since 0.1.0
   * @category models
   */
  ServerEvent
}

/**
 * Counters, updated in place on the hot path.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Frames received after authentication. */
  received: number
  /** Copies handed to recipients. */
  delivered: number
  /** Routed frames that reached nobody (unknown address, no shared room, odd `to`). */
  undeliverable: number
  /** Peers closed as too slow (1013): their mailbox overflowed, or they had too many bytes waiting. */
  slowConsumers: number
  /** Frames refused with an error frame. */
  refused: number
}

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
  readonly stats: Effect.Effect<Readonly<Stats>>
  /** The broker's state and counters (`state: "single"` for a server that is no cluster node). */
  readonly brokerStatus: Effect.Effect<Broker.Status>
  /** Peers connecting and leaving, from the moment of subscription. */
  readonly events: Stream.Stream<ServerEvent>
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
  /**
   * Adds a check that `GET /ready` asks, until the scope closes: while it answers `false`, fails or takes over a
   * second, `/ready` answers 503 and names it. For what the server depends on (a broker registers its link this
   * way); checks run on each request to `/ready`, so keep them cheap.
   */
  readonly addReadinessCheck: (name: string, check: Effect.Effect<boolean>) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class SympleServer extends Context.Service<SympleServer, Server>()("symple/SympleServer") {}

/**
 * The services a server runs on, each swappable by Layer: `layerDefaults(options)` provides the built-in ones.
 *
 * @since 0.2.0
 * @category models
 */
export type Services =
  | Router.Router
  | Authenticator.Authenticator
  | JoinPolicy.JoinPolicy
  | RateLimit.RateLimit
  | PeerRegistry.PeerRegistry

/**
 * Starts a server in the current scope, on the services it is given; closing the scope shuts it down gracefully
 * (shutdown notice, close 1001). `makeWithDefaults` is the same with the built-in services. A `Broker` in the
 * context (e.g. `RedisBroker.layer` of `symple-ts/redis`) makes the server one node of a cluster; without one it
 * is a single node.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Partial<ServerOptions> = {}
): Effect.Effect<Server, ServerError, Scope.Scope | Services> =>
  Effect.gen(function*() {
    const resolved = ServerConfig.resolve(options)
    const joinPolicy = yield* JoinPolicy.JoinPolicy
    // In token mode rooms carry the authentication hook's grants: dynamic joins need the application's say.
    const dynamicRooms = options.dynamicRooms ?? (resolved.dynamicRooms || joinPolicy !== JoinPolicy.noPolicy)
    const own = yield* PeerRegistry.PeerRegistry
    // A `Broker` is optional: without one the server is a single node, its registry as it is. A cluster broker
    // returns a registry that publishes the changes of local sessions.
    const brokerService = Option.getOrElse(yield* Effect.serviceOption(Broker.Broker), () => Broker.singleNode)
    const broker = yield* brokerService.attach(own)
    const hub = Hub.make({
      options: { ...resolved, dynamicRooms },
      registry: broker.registry,
      router: yield* Router.Router,
      authenticator: yield* Authenticator.Authenticator,
      joinPolicy,
      rateLimit: yield* RateLimit.RateLimit,
      brokerStatus: brokerService.status,
      handover: broker.handover,
      events: yield* PubSub.unbounded<ServerEvent>(),
      // Work started from socket listeners runs with the application's Logger, Tracer and services.
      context: yield* Effect.context<never>()
    })
    // Joins the cluster (the directory replicated into `own`) before the first peer can connect; `/ready` answers
    // 503 while the node has lost its broker (cross-node frames are dropped meanwhile).
    yield* broker.start(Cluster.local(hub, own))
    if (brokerService !== Broker.singleNode) {
      hub.readiness.set("broker", Effect.map(brokerService.status, (status) => status.state === "connected"))
    }
    const bound = yield* HttpServer.serve(hub)
    const virtuals = yield* VirtualPeers.make(hub)
    const snapshot = hub.registry.snapshot

    const sendToMembers = (
      members: ReadonlyArray<State.Member<PeerRegistry.Handle>>,
      frame: Frame.Frame,
      exclude?: string
    ) =>
      Effect.sync(() =>
        members.length === 0 ? 0 : FanOut.deliver(hub.stats, { members, exclude }, encode(frame), frame)
      )

    // Ready from here on (`GET /ready`), until it starts to stop.
    hub.started = true
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
          const route = hub.router.resolveInjected(state, "to" in frame ? frame.to : undefined)
          return Router.isEmpty(route) ? 0 : FanOut.deliver(hub.stats, route, encode(frame), frame)
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
      stats: Effect.sync(() => Counters.stats(hub.stats)),
      brokerStatus: hub.brokerStatus,
      events: Stream.fromPubSub(hub.events),
      addVirtualPeer: virtuals.add,
      removeVirtualPeer: virtuals.remove,
      addReadinessCheck: (name, check) =>
        Effect.acquireRelease(
          Effect.sync(() => void hub.readiness.set(name, check)),
          () => Effect.sync(() => void (hub.readiness.get(name) === check && hub.readiness.delete(name)))
        )
    } satisfies Server
  })

/**
 * The built-in services, made from the options: the protocol's routing (`Router.layer`), the options'
 * authentication (`Authenticator.layer`), their `authorizeJoin` hook or no join policy (`JoinPolicy.noPolicy`),
 * their rate limit (`RateLimit.layer`) and a registry of the server's own (`PeerRegistry.layer`); with the `redis`
 * option, also the Redis broker (`symple-ts/redis`, see `Broker`), whose rate-limit store (`RedisRateLimit`) the rate
 * limit then keeps its buckets in. Provide yours first and these after, for the services you keep.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerDefaults = (options: Partial<ServerOptions> = {}): Layer.Layer<Services> => {
  const resolved = ServerConfig.resolve(options)
  return Layer.mergeAll(
    Router.layer,
    authenticatorLayer(resolved),
    Layer.succeed(JoinPolicy.JoinPolicy, JoinPolicy.fromHook(resolved.authorizeJoin)),
    PeerRegistry.layer,
    // The broker provides the cluster's `RateLimit.Store`, which the rate limit reads when it is built.
    RateLimit.layer({ limit: resolved.rateLimit, seconds: resolved.rateSeconds }).pipe(
      Layer.provideMerge(brokerLayer(resolved))
    )
  )
}

/**
 * The options' authentication; in token mode with `redis` set and no hook, the sessions the JavaScript server
 * reads (`symple:session:<token>`, see `RedisSessions` of `symple-ts/redis`).
 */
const authenticatorLayer = (options: ServerConfig.Resolved): Layer.Layer<Authenticator.Authenticator> =>
  options.redis === undefined || options.redis === "" || !options.authentication ||
    options.authenticate !== undefined
    ? Authenticator.layer(options)
    : Layer.unwrap(
      Effect.map(
        Effect.promise(() => import("../redis/RedisSessions.js")),
        (RedisSessions) => RedisSessions.layer({ url: options.redis! })
      )
    )

/**
 * The single node, or with `redis` set the Redis broker (loaded only then, so that a single node never loads a
 * Redis client).
 */
const brokerLayer = (options: ServerConfig.Resolved): Layer.Layer<never> =>
  options.redis === undefined || options.redis === ""
    ? Layer.empty
    : Layer.unwrap(
      Effect.map(
        Effect.promise(() => import("../redis/RedisBroker.js")),
        (RedisBroker) => RedisBroker.layer({ url: options.redis!, ttl: options.redisTtl })
      )
    )

/**
 * `make` on the built-in services (`layerDefaults`), built in the current scope: the scoped constructor for tests
 * and embedded use.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeWithDefaults = (
  options: Partial<ServerOptions> = {}
): Effect.Effect<Server, ServerError, Scope.Scope> =>
  Effect.flatMap(Layer.build(layerDefaults(options)), (services) => Effect.provideContext(make(options), services))

/**
 * The server on the services the application provides (`Layer.provide`): all five are required, see `Services`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWithoutDefaults = (
  options: Partial<ServerOptions> = {}
): Layer.Layer<SympleServer, ServerError, Services> => Layer.effect(SympleServer, make(options))

/**
 * The server with the built-in services, made from the options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Partial<ServerOptions> = {}): Layer.Layer<SympleServer, ServerError> =>
  layerWithoutDefaults(options).pipe(Layer.provide(layerDefaults(options)))

/**
 * Like `layer`, with `SYMPLE_*` environment variables (see `ServerConfig.config`) overriding `options`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Partial<ServerOptions> = {}
): Layer.Layer<SympleServer, ServerError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(ServerConfig.fromEnv(options), layer))
