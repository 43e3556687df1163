/**
 * Owns what happens to a frame of an online peer: admission, decoding, then routing (a routed frame), a membership
 * change (`join` / `leave`, see `membership`), a close, or an error frame. Routed frames are the hot path: `from` is
 * set, the frame is forwarded as received when it can be (or rendered again), the router resolves its recipients on
 * the registry's latest snapshot, with the sender's routes cached per snapshot, and fan-out hands the bytes on.
 *
 * @since 0.2.0
 * @internal
 */
import * as Result from "effect/Result"
import * as Frame from "../../protocol/Frame.js"
import * as Json from "../../protocol/Json.js"
import * as Peer from "../../protocol/Peer.js"
import type * as Authenticator from "../Authenticator.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import * as Presence from "../Presence.js"
import type * as RateLimit from "../RateLimit.js"
import * as Router from "../Router.js"
import * as State from "../State.js"
import * as Admission from "./admission.js"
import type { Connection } from "./connection.js"
import { add } from "./counters.js"
import { deliver } from "./fanOut.js"
import type { Hub } from "./hub.js"
import type { Outcome, Pending } from "./inbound.js"
import * as Membership from "./membership.js"
import { badRequest, refuse } from "./reply.js"
import { encode } from "./socketWriter.js"

/**
 * Routing context of an online peer.
 *
 * @since 0.2.0
 * @internal
 */
export interface Online {
  readonly id: string
  readonly peer: Peer.Peer
  readonly admission: RateLimit.Admission
  /** The secret of the session's resume token (see `resume`), replaced by every `welcome`; none with resume off. */
  resume: string | undefined
  /** What routing the peer's frames keeps, made by its first routed frame: an idle peer never needs it. */
  routing: Routing | undefined
}

/** What routing a peer's frames keeps from one frame to the next. */
class Routing {
  /** `,"from":"<address>"}`: closes a frame's text with the sender's address. Made by the first frame that needs it. */
  fromSuffix: string | undefined = undefined
  /** The peer's session in the snapshot `seen`: the registry changes far less often than frames arrive. */
  seen: State.State<PeerRegistry.Handle> | undefined = undefined
  me: State.Session<PeerRegistry.Handle> | undefined = undefined
  /** Routes resolved in the snapshot `seen`, by `to` (the router is a pure function of state, sender and `to`). */
  routes: Map<string, Router.Route<PeerRegistry.Handle>> | undefined = undefined
  /** `user|id`. */
  constructor(readonly address: string) {}
}

/**
 * The routing context of a session that has just been registered.
 *
 * @since 0.2.0
 * @internal
 */
export const online = (
  hub: Hub,
  id: string,
  accepted: Authenticator.Accepted,
  resume: string | undefined
): Online => {
  return {
    id,
    peer: accepted.peer,
    admission: Admission.forSession(hub, id, accepted.peer),
    resume,
    routing: undefined
  }
}

/** Beyond this many distinct destinations per snapshot, a peer's route cache starts over. */
const maxCachedRoutes = 64

/**
 * A cache key for the usual `to` values, naming the target rather than the text: a room or user name is itself
 * (it has no `|`); an address is `|@` and its id, since routing ignores the user part (otherwise varying that part
 * would miss the cache on every frame); none (own rooms) is `|*`; one room in an array is `|[` and the room. Only a
 * name lacks the `|`, and the character after it tells the other kinds apart, so no two kinds share a key.
 */
const routeKey = (to: unknown): string | undefined => {
  if (typeof to === "string") {
    // The id is what follows the first `|`, as `Address.parse` reads it.
    const bar = to.indexOf("|")
    return bar === -1 ? to : `|@${to.slice(bar + 1)}`
  }
  return to === undefined
    ? "|*"
    : Array.isArray(to) && to.length === 1 && typeof to[0] === "string"
    ? `|[${to[0]}`
    : undefined
}

/** A mutable view of a routed frame: the server sets `from` (and presence `data`) in place. */
type Writable = { -readonly [K in keyof Frame.Routed]: Frame.Routed[K] }

/**
 * The text to forward for a routed frame received as `text`, when it can be forwarded without rendering it again:
 * as it came when it already names the sender in `from`, or with `from` added at the end (where rendering the
 * frame would put it) when it has none. `undefined` when `from` names someone else, or when the text repeats a
 * top-level key: `JSON.parse` kept the last one, but a parser that keeps the first would read another frame (a
 * forged `from` ahead of the true one, a second `type`). Those are rendered again, with one of each key.
 *
 * Recipients parse the same text the server validated, so they read the same frame; only insignificant
 * whitespace and number spellings (`1.0`) can differ from a fresh rendering.
 */
const forwardText = (routing: Routing, frame: Frame.Routed, text: string): string | undefined => {
  const named = "from" in frame
  const address = routing.address
  if (named && frame.from !== address) return undefined
  if (Json.hasRepeatedKey(text, frame)) return undefined
  return named
    ? text
    : text.slice(0, text.lastIndexOf("}")) + (routing.fromSuffix ??= `,"from":${JSON.stringify(address)}}`)
}

/** A frame rendered again; `undefined` when it is nested too deeply for `JSON.stringify`, which recurses. */
const render = (frame: Frame.Routed): string | undefined => {
  try {
    return Frame.unsafeEncode(frame)
  } catch (error) {
    if (error instanceof RangeError) return undefined
    throw error
  }
}

/**
 * Routes a decoded frame from an online peer (`text` is what it was decoded from, if it came as text). Returns
 * `false` for frames that are not routed (membership changes, close, anything unexpected).
 */
const route = (
  hub: Hub,
  connection: Connection,
  online: Online,
  frame: Frame.Frame,
  text: string | undefined
): boolean => {
  switch (frame.type) {
    case "message":
    case "presence":
    case "command":
    case "event": {
      const state = hub.registry.snapshotUnsafe()
      const routing = online.routing ??= new Routing(Peer.address(online.peer))
      if (routing.seen !== state) {
        routing.seen = state
        routing.me = State.session(state, online.id)
        routing.routes = undefined
      }
      const me = routing.me
      if (me === undefined) return true
      // Presence data is rewritten by the server, so presence is always rendered again.
      const forward = text === undefined || frame.type === "presence" ? undefined : forwardText(routing, frame, text)
      const routed = frame as Writable
      routed.from = routing.address
      if (frame.type === "presence") routed.data = Presence.sanitizeData(frame.data, me.peer)
      // Rendered before routing: whether a frame is refused must not tell its sender whether anyone would get it.
      const out = forward ?? render(frame)
      if (out === undefined) {
        badRequest(hub, connection, "Frame cannot be forwarded: nested too deeply")
        return true
      }
      const key = routeKey(frame.to)
      let target = key === undefined ? undefined : routing.routes?.get(key)
      if (target === undefined) {
        target = hub.router.resolve(state, me, frame.to)
        if (key !== undefined) {
          if (routing.routes === undefined || routing.routes.size >= maxCachedRoutes) routing.routes = new Map()
          routing.routes.set(key, target)
        }
      }
      if (Router.isEmpty(target)) hub.stats.undeliverable++
      else deliver(hub.stats, target, encode(out), frame)
      return true
    }
    default:
      return false
  }
}

/**
 * Handles one frame of an online peer: admission, then routing, a membership change, or an error frame.
 *
 * @since 0.2.0
 * @internal
 */
export const handleFrame = (
  hub: Hub,
  connection: Connection,
  online: Online,
  item: string | Uint8Array
): Outcome | Pending => {
  hub.stats.received++
  if (!online.admission.admit()) {
    add(hub.stats.drops, "rate")
    return refuse(hub, connection, 429, "Rate limit exceeded", 1008)
  }
  const decoded = Frame.decode(item)
  if (Result.isFailure(decoded)) {
    add(hub.stats.framesIn, "invalid")
    return badRequest(hub, connection, decoded.failure.message)
  }
  const frame = decoded.success
  add(hub.stats.framesIn, frame.type)
  if (route(hub, connection, online, frame, typeof item === "string" ? item : undefined)) return undefined
  switch (frame.type) {
    case "join":
    case "leave": {
      const room = frame.room
      if (room === undefined || room === "") return undefined
      if (!hub.options.dynamicRooms) return badRequest(hub, connection, "Dynamic rooms disabled")
      return frame.type === "join"
        ? Membership.join(hub, connection, online, room)
        : Membership.leave(hub, connection, online, room)
    }
    case "close":
      connection.offer({ code: 1000, reason: "" })
      return "closing"
    case "auth":
      return badRequest(hub, connection, "Already authenticated")
    default:
      return badRequest(hub, connection, `Unexpected ${frame.type} frame`)
  }
}
