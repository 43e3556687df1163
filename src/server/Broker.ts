/**
 * Cross-process delivery and the cluster directory: what lets several server processes act as one. The default,
 * `layer`, is a single node: it changes nothing and costs nothing (the server keeps its registry as it is). The
 * Redis broker (`symple-ts/redis`) is the other one.
 *
 * A broker keeps the hot path synchronous: every node holds a replica of the cluster's directory in its own
 * registry. Sessions of other nodes are registered there like local ones, with a handle whose `node` names the
 * process that holds them and whose `send` hands the frame to the broker, so the router and the server API see the
 * whole cluster without a round trip per frame. Membership changes of local sessions reach the broker through the
 * registry it returns from `attach`; changes on other nodes are applied by the broker to the server's own registry
 * (through `Local`), which tells this node's peers about them (online / offline presence), so that every
 * neighbour hears of a peer exactly once, from its own node.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Frame from "../protocol/Frame.js"
import type * as PeerRegistry from "./PeerRegistry.js"
import type { ServerError } from "./ServerError.js"
import type * as State from "./State.js"

/**
 * The broker's state, for `/health` and readiness: `single` (no broker), `connected`, or `disconnected` (cross-node
 * frames are dropped and counted until the broker is back and the node has republished itself).
 *
 * @since 0.2.0
 * @category models
 */
export interface Status {
  readonly state: "single" | "connected" | "disconnected"
  /** This node's id in the cluster. */
  readonly node: string
  /** Other nodes with sessions in this node's replica. */
  readonly nodes: number
  /** Frames published to other nodes (once per node, whatever the number of recipients there). */
  readonly published: number
  /** Frames received from other nodes. */
  readonly received: number
  /** Cross-node deliveries dropped because the broker was unreachable (one per recipient). */
  readonly dropped: number
  /** Times this node has (re)synchronised its part of the directory. */
  readonly syncs: number
}

/**
 * What the server gives its broker: its own registry (remote changes are applied to it directly, never published
 * again) and how to reach this node's peers.
 *
 * @since 0.2.0
 * @category models
 */
export interface Local {
  readonly registry: Context.Service.Shape<typeof PeerRegistry.PeerRegistry>
  /** Personal rooms are claimed by authenticated users (see `PeerRegistry.ConnectOptions`). */
  readonly claimPersonalRoom: boolean
  /**
   * Hands a frame rendered on another node (`bytes`, a complete WebSocket frame) to the listed sessions of this
   * node; `frame` decodes it, for recipients that need the value (virtual peers). Returns the number of recipients.
   */
  readonly deliver: (ids: ReadonlyArray<string>, bytes: Uint8Array, frame: () => Frame.Frame) => number
  /** Tells the local ones among `sessions` that a peer came online (`true`) or went offline. */
  readonly announce: (
    peer: State.Session<PeerRegistry.Handle>,
    sessions: ReadonlyArray<State.Session<PeerRegistry.Handle>>,
    online: boolean
  ) => void
  /** Tells local sessions that they left a room that became another user's personal room. */
  readonly evicted: (sessions: ReadonlyArray<State.Session<PeerRegistry.Handle>>, room: string) => void
  /** Routes a frame from outside the peer network (as `inject` does) to this node's sessions only. */
  readonly inject: (frame: Frame.Frame) => number
}

/**
 * A broker attached to one server: the registry the server is to use (the one it was given, for a single node),
 * and `start`, run once the server's context exists and before it listens (a cluster broker joins the cluster
 * there: subscriptions, directory, heartbeats, all stopped when the scope closes).
 *
 * @since 0.2.0
 * @category models
 */
export interface Attached {
  readonly registry: Context.Service.Shape<typeof PeerRegistry.PeerRegistry>
  readonly start: (local: Local) => Effect.Effect<void, ServerError, Scope.Scope>
}

/**
 * @since 0.2.0
 * @category tags
 */
export class Broker extends Context.Service<Broker, {
  readonly attach: (
    registry: Context.Service.Shape<typeof PeerRegistry.PeerRegistry>
  ) => Effect.Effect<Attached, never, Scope.Scope>
  readonly status: Effect.Effect<Status>
}>()("symple/Broker") {}

/**
 * Whether a session is held by this node (its handle names no other node).
 *
 * @since 0.2.0
 * @category getters
 */
export const isLocal = (member: State.Member<PeerRegistry.Handle>): boolean => member.handle.node === undefined

const singleStatus: Status = {
  state: "single",
  node: "",
  nodes: 0,
  published: 0,
  received: 0,
  dropped: 0,
  syncs: 0
}

/**
 * The single node: the server's registry as it is, nothing published.
 *
 * @since 0.2.0
 * @category constructors
 */
export const singleNode: Context.Service.Shape<typeof Broker> = Broker.of({
  attach: (registry) => Effect.succeed({ registry, start: () => Effect.void }),
  status: Effect.succeed(singleStatus)
})

/**
 * The single node (the default).
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<Broker> = Layer.succeed(Broker, singleNode)
