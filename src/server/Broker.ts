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
 * A broker may also hand detached sessions between nodes (`Attached.handover`, `Local.handOver`): a resume token
 * that reaches another node than the one holding its session moves the session there, as if the peer had come back
 * to its own node. The single node has no such capability; the server asks for it only for sessions of other
 * nodes (see `internal/resume`).
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Frame from "../protocol/Frame.js"
import type * as Peer from "../protocol/Peer.js"
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
  /**
   * Another node asks for a detached session of this node: `token` and `user` are checked as a local resume checks
   * them (detached, same user, the current secret, within the window; the token then stops working). When they are
   * good the session stops being this node's without ending (no presence, no event, its buffer and timer gone) and
   * is reached through `handle` (the other node) from now on; its peer record, rooms and held frames are returned.
   * `undefined` when refused.
   */
  readonly handOver: (token: string, user: string, handle: PeerRegistry.Handle) => HandedOver | undefined
}

/**
 * A detached session as its node hands it over: the peer record its neighbours know, its rooms, and the frames
 * held for it (complete WebSocket frames, in order).
 *
 * @since 0.2.0
 * @category models
 */
export interface HandedOver {
  readonly id: string
  readonly peer: Peer.Peer
  readonly rooms: ReadonlyArray<string>
  readonly frames: ReadonlyArray<Uint8Array>
}

/**
 * A session another node handed over to this one (see `Attached.handover`). Until `take` or `drop`, the broker
 * holds what is routed to the session here.
 *
 * @since 0.2.0
 * @category models
 */
export interface Handed {
  readonly peer: Peer.Peer
  readonly rooms: ReadonlyArray<string>
  /**
   * The frames held on the other node, then those routed to the session since, in order. To be called in the same
   * synchronous step as the registry's `resume(id, handle)` that makes the session this node's (the broker then
   * tells the cluster that it moved): nothing can reach the session in between.
   */
  readonly take: () => ReadonlyArray<Uint8Array>
  /** The session is not wanted after all (its new connection went while it was on its way): it ends. */
  readonly drop: () => void
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
  /**
   * Optional: asks `node`, which holds session `id` (known from the directory), to hand it over to this node,
   * offering the resume token and the user the new connection authenticated as. Succeeds with the session, or with
   * `undefined` when the other node refuses or does not answer within the broker's bound (or `withinMillis`, if
   * shorter). Never fails.
   */
  readonly handover?: ((request: HandoverRequest) => Effect.Effect<Handed | undefined>) | undefined
}

/**
 * What a node asks of the node holding a session (`Attached.handover`). The token goes to that node alone.
 *
 * @since 0.2.0
 * @category models
 */
export interface HandoverRequest {
  readonly node: string
  readonly id: string
  readonly token: string
  readonly user: string
  /** The longest the asking connection can wait (its handshake's deadline). */
  readonly withinMillis: number
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
