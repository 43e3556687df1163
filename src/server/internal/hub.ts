/**
 * Owns the server's context (`Hub`): what every connection of one server shares, built once when the server
 * starts. Everything mutable that the socket listeners touch lives here, per server (counters, the outbound budget,
 * write coalescing, the online-presence cache), so that servers in one process never share state.
 *
 * @since 0.2.0
 * @internal
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as PubSub from "effect/PubSub"
import type * as Peer from "../../protocol/Peer.js"
import type * as Authenticator from "../Authenticator.js"
import type * as Broker from "../Broker.js"
import type * as JoinPolicy from "../JoinPolicy.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import type * as RateLimit from "../RateLimit.js"
import type * as Router from "../Router.js"
import type * as ServerConfig from "../ServerConfig.js"
import type { ServerEvent } from "../ServerEvent.js"
import * as Counters from "./counters.js"
import * as OutboundBudget from "./outboundBudget.js"
import * as SocketWriter from "./socketWriter.js"

/**
 * A live socket as the server tracks it (pings, capacity, shutdown).
 *
 * @since 0.2.0
 * @internal
 */
export interface Live {
  alive: boolean
  readonly ping: () => void
  readonly terminate: () => void
  /** The connection's fiber (see `connectionFiber`), which the server stops and awaits when it stops. */
  readonly fiber: Fiber.Fiber<void> | undefined
  /** The server is stopping: shutdown notice, close 1001, teardown (which ends the fiber). */
  readonly goodbye: () => void
}

/**
 * @since 0.2.0
 * @internal
 */
export interface Hub {
  /** The options, `dynamicRooms` decided (a join policy of the application's turns it on in token mode). */
  readonly options: ServerConfig.Resolved
  /** Membership: the listeners read its published snapshot, and apply its transitions with `runNow`. */
  readonly registry: Context.Service.Shape<typeof PeerRegistry.PeerRegistry>
  readonly router: Context.Service.Shape<typeof Router.Router>
  readonly authenticator: Context.Service.Shape<typeof Authenticator.Authenticator>
  readonly joinPolicy: Context.Service.Shape<typeof JoinPolicy.JoinPolicy>
  readonly rateLimit: Context.Service.Shape<typeof RateLimit.RateLimit>
  /** The broker's state (`single` without one): for `/health`, and readiness (503 while `disconnected`). */
  readonly brokerStatus: Effect.Effect<Broker.Status>
  /** The broker's session handover, when it has one (a cluster broker): see `resume`. */
  readonly handover: Broker.Attached["handover"]
  readonly events: PubSub.PubSub<ServerEvent>
  /** `Stats` and the tallies behind `GET /metrics`. */
  readonly stats: Counters.Counters
  /** Outbound bytes waiting for peers, against `maxQueuedBytes` and `maxOutboundBytes`. */
  readonly outbound: OutboundBudget.OutboundBudget
  /** Write coalescing of this server's sockets. */
  readonly ticks: SocketWriter.Ticks
  /**
   * Online presences, encoded once per peer record (the bytes only). Keyed by the record itself: records are
   * immutable, so a changed peer is a new key and a stale encoding can never be served; a record nobody holds any
   * more releases its entry.
   */
  readonly presences: WeakMap<Peer.Peer, Uint8Array>
  /** Every accepted socket until its connection ends. */
  readonly connections: Set<Live>
  /**
   * Upgraded WebSockets that no connection holds until their socket closes (refused ones, and those of connections
   * that said goodbye when the server stopped): what the server's shutdown waits for, and terminates once its time
   * is up. A connection's socket is not in it for its whole life (`connections` has the connection): a set entry
   * less per connection.
   */
  readonly open: Set<{ readonly terminate: () => void }>
  readonly startedAt: number
  /**
   * Runs an effect in the server's context (the application's Logger, Tracer and services), not the default
   * runtime's, also while the server stops: for work started from socket listeners that nothing waits for.
   */
  readonly run: (effect: Effect.Effect<void>) => void
  /** Forks an effect in the server's context, as `run` does, and returns its fiber (a connection's fiber). */
  readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  /**
   * Runs an effect that completes synchronously (a registry transition) in the server's context, and returns its
   * result: how the socket listeners cross into Effect.
   */
  readonly runNow: <A>(effect: Effect.Effect<A>) => A
  shuttingDown: boolean
  /** Set once the server has started (`GET /ready` answers 503 before). */
  started: boolean
  /** What else `GET /ready` asks (a broker's link, the application's checks), by name. */
  readonly readiness: Map<string, Effect.Effect<boolean>>
}

/**
 * @since 0.2.0
 * @internal
 */
export const make = (
  services:
    & Pick<
      Hub,
      "options" | "registry" | "router" | "authenticator" | "joinPolicy" | "rateLimit" | "brokerStatus" | "events"
    >
    & Partial<Pick<Hub, "handover">>
    & {
      /** The server's context: what `run` and `runNow` run effects with. */
      readonly context: Context.Context<never>
    }
): Hub => {
  const { context, ...shared } = services
  const fork = Effect.runForkWith(context)
  return {
    ...shared,
    handover: shared.handover,
    run: (effect) => void fork(effect),
    fork: (effect) => fork(effect),
    runNow: Effect.runSyncWith(context),
    stats: Counters.make(),
    outbound: OutboundBudget.make(services.options),
    ticks: SocketWriter.makeTicks(),
    presences: new WeakMap(),
    connections: new Set(),
    open: new Set(),
    startedAt: Date.now(),
    shuttingDown: false,
    started: false,
    readiness: new Map()
  }
}
