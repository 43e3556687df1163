/**
 * What connections and the server share: recipients' handles, the encoding of a frame (once per send), and
 * fan-out of the encoded bytes to the recipients' mailboxes.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as PubSub from "effect/PubSub"
import type * as Frame from "../protocol/Frame.js"
import * as Message from "../protocol/Message.js"
import type * as Peer from "../protocol/Peer.js"
import type * as Authenticator from "./Authenticator.js"
import type * as JoinPolicy from "./JoinPolicy.js"
import type * as OutboundBudget from "./OutboundBudget.js"
import type * as PeerRegistry from "./PeerRegistry.js"
import * as Presence from "./Presence.js"
import type * as RateLimit from "./RateLimit.js"
import type * as Router from "./Router.js"
import type * as ServerConfig from "./ServerConfig.js"
import * as State from "./State.js"

/**
 * A recipient: a connection's mailbox, or a virtual peer's handler queue. `send` never blocks; a connection whose
 * mailbox is full, or that has too many bytes waiting, closes itself (1013). `bytes` is the frame as a complete
 * WebSocket text frame (see `wire`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Handle {
  readonly send: (bytes: Uint8Array, frame: Frame.Frame) => void
}

/**
 * @since 0.1.0
 * @category models
 */
export type ServerEvent = Data.TaggedEnum<{
  PeerConnected: { readonly peer: Peer.Peer; readonly rooms: ReadonlyArray<string>; readonly virtual: boolean }
  PeerDisconnected: { readonly peer: Peer.Peer; readonly virtual: boolean }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ServerEvent = Data.taggedEnum<ServerEvent>()

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
 * A live socket as the server tracks it (pings, capacity, shutdown).
 *
 * @since 0.1.0
 * @category models
 */
export interface Live {
  alive: boolean
  readonly ping: () => void
  readonly terminate: () => void
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Hub {
  readonly options: ServerConfig.Resolved
  readonly registry: PeerRegistry.PeerRegistry<Handle>
  readonly router: Context.Service.Shape<typeof Router.Router>
  readonly authenticator: Context.Service.Shape<typeof Authenticator.Authenticator>
  /** Whether authentication runs user code (a hook or a custom service) that could take its time. */
  readonly authenticatorMayWait: boolean
  readonly joinPolicy: Context.Service.Shape<typeof JoinPolicy.JoinPolicy>
  /** Where the sessions' rate-limit buckets live (`RateLimit.Store`, read once when the server starts). */
  readonly rateLimitStore: RateLimit.Store
  readonly events: PubSub.PubSub<ServerEvent>
  readonly stats: Stats
  /** Outbound bytes waiting for peers, against `maxQueuedBytes` and `maxOutboundBytes`. */
  readonly outbound: OutboundBudget.OutboundBudget
  /** Every accepted socket until its connection ends. */
  readonly connections: Set<Live>
  readonly startedAt: number
  /**
   * Runs an effect in the server's context (the application's Logger, Tracer and services), not the default
   * runtime's, also while the server stops: for work started from socket listeners that nothing waits for.
   */
  readonly run: (effect: Effect.Effect<void>) => void
  /** Forks a fiber supervised by the server (interrupted at shutdown). */
  readonly fork: (effect: Effect.Effect<void>) => void
  shuttingDown: boolean
}

/**
 * Renders a frame once for all its recipients.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (frame: Frame.Frame): Uint8Array => Buffer.from(JSON.stringify(frame))

/**
 * Renders a frame once for all its recipients as a complete, unmasked WebSocket text frame (header and payload in
 * one buffer). Server frames are never masked, so the same bytes are valid on every socket: a fan-out writes one
 * shared buffer per recipient, with no per-recipient framing and one write instead of two.
 *
 * @since 0.1.0
 * @category encoding
 */
export const wire = (frame: Frame.Frame): Uint8Array => wireText(JSON.stringify(frame))

/**
 * `wire` for a frame already rendered as JSON text.
 *
 * @since 0.1.0
 * @category encoding
 */
export const wireText = (text: string): Uint8Array => {
  const length = Buffer.byteLength(text)
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10
  const out = Buffer.allocUnsafe(header + length)
  out[0] = 0x81
  if (header === 2) out[1] = length
  else if (header === 4) {
    out[1] = 126
    out.writeUInt16BE(length, 2)
  } else {
    out[1] = 127
    out.writeUInt32BE(Math.floor(length / 0x100000000), 2)
    out.writeUInt32BE(length >>> 0, 6)
  }
  out.write(text, header, "utf8")
  return out
}

/**
 * A frame with its encoding, for frames that are sent many times over.
 *
 * @since 0.1.0
 * @category models
 */
export interface Encoded {
  readonly frame: Frame.Frame
  readonly bytes: Uint8Array
}

// Keyed by the peer record itself: records are immutable, so a changed peer is a new key and a stale encoding
// can never be served; a record nobody holds any more releases its entry.
const onlineCache = new WeakMap<Peer.Peer, Encoded>()

/**
 * A peer's online presence, encoded once per peer record: every snapshot that lists the peer reuses it (a storm of
 * N newcomers otherwise encodes N² presences).
 *
 * @since 0.1.0
 * @category encoding
 */
export const onlinePresence = (peer: Peer.Peer): Encoded => {
  let cached = onlineCache.get(peer)
  if (cached === undefined) {
    const frame = Presence.online(peer)
    cached = { frame, bytes: wire(frame) }
    onlineCache.set(peer, cached)
  }
  return cached
}

/**
 * Hands one frame (as `wire` renders it) to every member of a route. Returns the number of recipients.
 *
 * @since 0.1.0
 * @category delivery
 */
export const deliver = (
  stats: Stats,
  route: Router.Route<Handle>,
  bytes: Uint8Array,
  frame: Frame.Frame
): number => {
  const exclude = route.exclude
  let count = 0
  for (const member of route.members) {
    if (member.id === exclude) continue
    member.handle.send(bytes, frame)
    count++
  }
  stats.delivered += count
  return count
}

/**
 * Encodes a frame and delivers it to the given sessions (used for presence announcements).
 *
 * @since 0.1.0
 * @category delivery
 */
export const deliverToSessions = (
  stats: Stats,
  sessions: ReadonlyArray<State.Session<Handle>>,
  frame: Frame.Frame
): number => {
  if (sessions.length === 0) return 0
  return deliverEncoded(stats, sessions, wire(frame), frame)
}

/**
 * Delivers a frame already rendered by `wire` to the given sessions.
 *
 * @since 0.1.0
 * @category delivery
 */
export const deliverEncoded = (
  stats: Stats,
  sessions: ReadonlyArray<State.Session<Handle>>,
  bytes: Uint8Array,
  frame: Frame.Frame
): number => {
  for (const session of sessions) session.member.handle.send(bytes, frame)
  stats.delivered += sessions.length
  return sessions.length
}

/**
 * Tells sessions that they are no longer in a room that became a user's personal room (see
 * `PeerRegistry.unsafeConnect`): an error 403 that says why, then the `leave:ok` a client keeps its rooms by.
 *
 * @since 0.1.0
 * @category delivery
 */
export const evicted = (stats: Stats) => (sessions: ReadonlyArray<State.Session<Handle>>, room: string): void => {
  const notice = Message.error(403, Message.roomRefusal("removed", room, "another user's personal room"))
  const left: Frame.Frame = { type: "leave:ok", room }
  deliverEncoded(stats, sessions, wire(notice), notice)
  deliverEncoded(stats, sessions, wire(left), left)
}
