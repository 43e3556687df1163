/**
 * Owns session resume and a session's end. Every `welcome` carries `resume`, a token for that session (an extension
 * of the protocol; peers that do not know it ignore it). A connection that ends without a close (the socket
 * dropped, no answer to pings) leaves its session detached for `resumeWindow`: in the registry and its rooms, its
 * neighbours told nothing, what is routed to it held (bounded by `resumeBufferSize` and `resumeBufferBytes`, and
 * counted against `maxOutboundBytes`). An `auth` of the same user offering the token within the window takes the
 * session over: the same id, rooms and rate-limit bucket, `resumed: true` in the `welcome`, then what was held, in
 * order. When the window ends, or the buffer overflows (as for a slow consumer), the session ends as any other: one
 * offline presence to its neighbours.
 *
 * A token is `<secret>.<session id>`: the secret is 144 random bits drawn from the system's generator, compared in
 * constant time, and replaced by every `welcome`, so that a token works once; it is sent to its peer alone.
 *
 * In a cluster, a token may reach another node than the one holding its session (a load balancer moved the
 * client). That node asks the holder for the session through the broker (`Broker.Attached.handover`, only for a
 * session its replica places on another node, of the same user): the holder checks the token as here (`handOver`)
 * and hands over the session, its rooms and its held frames; the asking node takes it over as a local resume does
 * (`takeOver`). The `auth` waits for the answer, bounded by the broker and by the handshake's deadline; a refusal
 * or no answer gives a new session, `resumed: false`.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as PubSub from "effect/PubSub"
import * as Crypto from "node:crypto"
import type * as Frame from "../../protocol/Frame.js"
import type * as Json from "../../protocol/Json.js"
import type * as Broker from "../Broker.js"
import * as IceServers from "../IceServers.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import * as Presence from "../Presence.js"
import { ServerEvent } from "../ServerEvent.js"
import * as State from "../State.js"
import * as Admission from "./admission.js"
import type { Connection } from "./connection.js"
import * as Dispatch from "./dispatch.js"
import { deliver, toSessions } from "./fanOut.js"
import type { Hub } from "./hub.js"
import * as OutboundBudget from "./outboundBudget.js"
import { reply } from "./reply.js"
import { encode } from "./socketWriter.js"

const secretBytes = 18
// Random bytes drawn in bulk (one call into the system's generator per 256 secrets): a call per secret would cost
// about 3 µs per connection, twenty times as much.
let pool = Buffer.alloc(0)
let poolOffset = 0

/**
 * A new secret for a session's resume token, or `undefined` when resume is disabled.
 *
 * @since 0.2.0
 * @internal
 */
export const newSecret = (hub: Hub): string | undefined => {
  if (hub.options.resumeWindowMillis <= 0) return undefined
  if (poolOffset + secretBytes > pool.length) {
    pool = Crypto.randomBytes(secretBytes * 256)
    poolOffset = 0
  }
  const out = pool.toString("base64url", poolOffset, poolOffset + secretBytes)
  pool.fill(0, poolOffset, poolOffset + secretBytes)
  poolOffset += secretBytes
  return out
}

/**
 * The token offered by an `auth` frame, if any (a field outside the `Auth` schema, read from the parsed frame).
 *
 * @since 0.2.0
 * @internal
 */
export const offered = (auth: Json.JsonObject): string | undefined =>
  typeof auth.resume === "string" && auth.resume !== "" ? auth.resume : undefined

/** The resume extension of `welcome`. */
interface WelcomeExtension {
  readonly resume?: string
  readonly resumed?: boolean
}

/**
 * A session's `welcome`: its token when resume is enabled, and `resumed` (given when the `auth` offered a token).
 *
 * @since 0.2.0
 * @internal
 */
export const welcome = (
  hub: Hub,
  online: Dispatch.Online,
  rooms: ReadonlyArray<string>,
  resumed: boolean | undefined
): Frame.Frame => {
  const secret = online.resume
  const frame: Frame.Welcome & WelcomeExtension = {
    type: "welcome",
    protocol: "symple/4",
    status: 200,
    peer: online.peer,
    rooms,
    ...(secret === undefined ? {} : { resume: `${secret}.${online.id}` }),
    ...(resumed === undefined || hub.options.resumeWindowMillis <= 0 ? {} : { resumed }),
    // Extension: ICE servers, with TURN credentials minted for this user.
    ...(IceServers.isConfigured(hub.options)
      ? { iceServers: IceServers.forUser(hub.options, online.peer.user, Date.now()) }
      : {})
  }
  return frame
}

/**
 * A detached session: the registry's handle for it while its peer is away. It holds what is routed to it, and
 * counts it against the server's outbound budget (`shed` ends it, as for a slow consumer).
 *
 * @since 0.2.0
 * @internal
 */
export class Detached implements PeerRegistry.Handle, OutboundBudget.Waiting {
  frames: Array<Uint8Array> = []
  /** Bytes held. */
  waiting = 0
  timer: ReturnType<typeof setTimeout> | undefined = undefined
  /** Resumed, expired or overflowed: holds nothing more. */
  finished = false

  constructor(readonly hub: Hub, readonly online: Dispatch.Online) {}

  send(bytes: Uint8Array): void {
    if (this.finished) return
    const options = this.hub.options
    const over = options.resumeBufferBytes > 0 && this.waiting + bytes.length > options.resumeBufferBytes
    if (this.frames.length >= options.resumeBufferSize || over) return this.shed()
    this.frames.push(bytes)
    const budget = this.hub.outbound
    const before = this.waiting
    this.waiting = before + bytes.length
    OutboundBudget.update(budget, this, before, this.waiting)
    if (OutboundBudget.isOver(budget)) OutboundBudget.shedSlowest(budget)
  }

  /** Nothing leaves a detached session's buffer until it is resumed. */
  recount(): void {}

  /** Too much held: the session ends, with its offline presence. */
  shed(): void {
    if (this.finish() === undefined) return
    this.hub.stats.slowConsumers++
    // Not in place: a frame may reach this session from within a registry transition (a personal room claimed by a
    // newcomer), and transitions must not nest.
    queueMicrotask(() => end(this.hub, this.online))
  }

  /** Stops holding: the timer, the buffer (returned) and its bytes in the budget go. `undefined` if already done. */
  finish(): Array<Uint8Array> | undefined {
    if (this.finished) return undefined
    this.finished = true
    clearTimeout(this.timer)
    const frames = this.frames
    this.frames = []
    if (this.waiting !== 0) {
      OutboundBudget.update(this.hub.outbound, this, this.waiting, 0)
      this.waiting = 0
    }
    return frames
  }
}

function expire(held: Detached): void {
  if (held.finish() !== undefined) end(held.hub, held.online)
}

/** setTimeout's longest delay; a longer one would fire at once. */
const longestTimer = 2 ** 31 - 1

/**
 * Detaches the session of a connection that ended without a close, for its peer to resume it. `false` when it
 * cannot be held (resume disabled, the server stopping, no such session): the caller ends it.
 *
 * @since 0.2.0
 * @internal
 */
export const hold = (hub: Hub, online: Dispatch.Online): boolean => {
  const window = hub.options.resumeWindowMillis
  if (hub.shuttingDown || online.resume === undefined || window <= 0) return false
  const held = new Detached(hub, online)
  if (hub.runNow(hub.registry.detach(online.id, held)) === undefined) return false
  held.timer = setTimeout(expire, Math.min(window, longestTimer), held)
  return true
}

const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && Crypto.timingSafeEqual(x, y)
}

/**
 * The detached session a token names, if the token is its current one and `user` is its user.
 *
 * @since 0.2.0
 * @internal
 */
export const claim = (hub: Hub, token: string, user: string): Detached | undefined => {
  const dot = token.indexOf(".")
  if (dot <= 0) return undefined
  const session = State.session(hub.registry.snapshotUnsafe(), token.slice(dot + 1))
  if (session === undefined || !session.detached || session.member.user !== user) return undefined
  const held = session.member.handle
  if (!(held instanceof Detached) || held.finished || held.online.resume === undefined) return undefined
  return sameSecret(held.online.resume, token.slice(0, dot)) ? held : undefined
}

/**
 * A new connection takes over a detached session: `welcome` (`resumed: true`, a new token), then what was held, in
 * order, then the registry routes to the connection. Neighbours are told nothing.
 *
 * @since 0.2.0
 * @internal
 */
export const resume = (hub: Hub, connection: Connection, held: Detached): void => {
  const frames = held.finish() ?? []
  const online = held.online
  online.resume = newSecret(hub)
  reattach(hub, connection, online, State.session(hub.registry.snapshotUnsafe(), online.id)?.rooms ?? [], frames)
}

/**
 * Puts a resumed session online on `connection`: `welcome` with `resumed: true`, what was held for it, in order, and
 * from then on the registry routes its frames to the connection.
 */
const reattach = (
  hub: Hub,
  connection: Connection,
  online: Dispatch.Online,
  rooms: ReadonlyArray<string>,
  frames: ReadonlyArray<Uint8Array>
): void => {
  connection.goOnline(online)
  reply(connection, welcome(hub, online, rooms, true))
  for (const bytes of frames) connection.offer(bytes)
  // Nothing has been routed since the frames were taken (this runs without a break): from now on frames go to the
  // connection, behind them.
  hub.runNow(hub.registry.resume(online.id, connection))
}

/**
 * Hands a detached session over to another node (`Broker.Local.handOver`): the token is checked as `claim` checks
 * it, and the session stops being this node's without ending: no presence, no event, its bucket released here, and
 * `handle` (the other node) reaches it from now on, in its rooms.
 *
 * @since 0.2.0
 * @internal
 */
export const handOver = (
  hub: Hub,
  token: string,
  user: string,
  handle: PeerRegistry.Handle
): Broker.HandedOver | undefined => {
  const held = claim(hub, token, user)
  if (held === undefined) return undefined
  const frames = held.finish() ?? []
  const online = held.online
  online.resume = undefined
  const state = hub.runNow(hub.registry.resume(online.id, handle))
  Admission.release(hub, online.admission)
  const rooms = state === undefined ? [] : State.session(state, online.id)?.rooms ?? []
  return { id: online.id, peer: online.peer, rooms, frames }
}

/** Below this, the handshake's deadline is too close to ask another node for a session. */
const deadlineMargin = 50

/**
 * When `token` names a session of `user` that the registry places on another node, and the broker can hand
 * sessions over: asks that node for it, and takes it over (`true`), or answers `false` (refused, no answer in time,
 * or the connection went meanwhile) for the caller to make a new session. `undefined` when there is nothing to ask.
 *
 * @since 0.2.0
 * @internal
 */
export const remote = (
  hub: Hub,
  connection: Connection,
  token: string,
  user: string
): Effect.Effect<boolean> | undefined => {
  const handover = hub.handover
  const dot = token.indexOf(".")
  if (handover === undefined || dot <= 0) return undefined
  const id = token.slice(dot + 1)
  const session = State.session(hub.registry.snapshotUnsafe(), id)
  const node = session?.member.handle.node
  if (session === undefined || node === undefined || session.virtual || session.member.user !== user) return undefined
  // The deadline's timer would refuse the connection (408) while it waits: the handover must end before it.
  const withinMillis = connection.openedAt + hub.options.authTimeoutMillis - Date.now() - deadlineMargin
  if (withinMillis <= 0) return undefined
  return Effect.map(handover({ node, id, token, user, withinMillis }), (handed) => {
    if (handed === undefined) return false
    if (connection.ended()) {
      handed.drop()
      return true
    }
    return takeOver(hub, connection, id, handed)
  })
}

/**
 * A new connection takes over a session another node handed over: as `resume` does, with what the broker held.
 * `false` (the session dropped) when the registry no longer knows the session.
 */
const takeOver = (hub: Hub, connection: Connection, id: string, handed: Broker.Handed): boolean => {
  const session = State.session(hub.registry.snapshotUnsafe(), id)
  if (session === undefined) {
    handed.drop()
    return false
  }
  reattach(hub, connection, Dispatch.online(hub, id, handed, newSecret(hub)), session.rooms, handed.take())
  return true
}

/**
 * A session ends (its connection closed, or its resume window passed): it leaves the registry, the peers sharing a
 * room with it get its offline presence (unless the server is stopping), the application its `PeerDisconnected`,
 * and its rate-limit bucket is forgotten.
 *
 * @since 0.2.0
 * @internal
 */
export const end = (hub: Hub, online: Dispatch.Online): void => {
  const removed = hub.runNow(hub.registry.disconnect(online.id))
  if (removed !== undefined && removed.neighbours.length > 0 && !hub.shuttingDown) {
    const offline = Presence.offline(removed.session.peer)
    deliver(hub.stats, toSessions(removed.neighbours), encode(offline), offline)
  }
  PubSub.publishUnsafe(hub.events, ServerEvent.PeerDisconnected({ peer: online.peer, virtual: false }))
  Admission.release(hub, online.admission)
}

/**
 * The server is stopping: detached sessions end now (no presence: everyone is leaving).
 *
 * @since 0.2.0
 * @internal
 */
export const endAll = (hub: Hub): void => {
  for (const session of HashMap.values(hub.registry.snapshotUnsafe().sessions)) {
    const held = session.member.handle
    if (session.detached && held instanceof Detached && held.finish() !== undefined) end(hub, held.online)
  }
}
