/**
 * Owns fan-out: handing one frame, encoded once, to every recipient of a route (connections' socket writers and
 * virtual peers' handler queues alike), and the frames the server announces to many (online presence, encoded once
 * per peer record and cached per server; evictions from a personal room).
 *
 * @since 0.2.0
 * @internal
 */
import type * as Frame from "../../protocol/Frame.js"
import * as Message from "../../protocol/Message.js"
import type * as Peer from "../../protocol/Peer.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import * as Presence from "../Presence.js"
import type * as Router from "../Router.js"
import type * as State from "../State.js"
import { add, type Counters } from "./counters.js"
import type { Hub } from "./hub.js"
import { encode } from "./socketWriter.js"

/**
 * A frame with its encoding, for frames that are sent many times over.
 *
 * @since 0.2.0
 * @internal
 */
export interface Encoded {
  readonly frame: Frame.Frame
  readonly bytes: Uint8Array
}

/**
 * Hands one frame (as `encode` renders it) to every member of a route but the excluded one. Returns the number of
 * recipients. The one way frames reach recipients: routed frames, the server API, presence and notices.
 *
 * @since 0.2.0
 * @internal
 */
export const deliver = (
  stats: Counters,
  route: Router.Route<PeerRegistry.Handle>,
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
  add(stats.framesOut, frame.type, count)
  return count
}

/**
 * The route to the given sessions that this node holds: what the server announces (presence, evictions) goes only
 * to its own peers, those of other nodes hear it from their own node (see `Broker`).
 *
 * @since 0.2.0
 * @internal
 */
export const toSessions = (
  sessions: ReadonlyArray<State.Session<PeerRegistry.Handle>>
): Router.Route<PeerRegistry.Handle> => {
  const members: Array<State.Member<PeerRegistry.Handle>> = []
  for (const session of sessions) if (session.member.handle.node === undefined) members.push(session.member)
  return { members, exclude: undefined }
}

const cachedPresence = (hub: Hub, peer: Peer.Peer, frame: Frame.Presence | undefined): Uint8Array => {
  let bytes = hub.presences.get(peer)
  if (bytes === undefined) {
    bytes = encode(frame ?? Presence.online(peer))
    hub.presences.set(peer, bytes)
  }
  return bytes
}

/**
 * A peer's online presence as `encode` renders it, encoded once per peer record: every snapshot that lists the peer
 * reuses it (a storm of N newcomers otherwise encodes N² presences).
 *
 * @since 0.2.0
 * @internal
 */
export const onlinePresenceBytes = (hub: Hub, peer: Peer.Peer): Uint8Array => cachedPresence(hub, peer, undefined)

/**
 * A peer's online presence, with its bytes from the cache of `onlinePresenceBytes`. The frame is made afresh, once
 * per announcement: kept in the cache, it would hold a copy of the peer's fields for the peer's whole life.
 *
 * @since 0.2.0
 * @internal
 */
export const onlinePresence = (hub: Hub, peer: Peer.Peer): Encoded => {
  const frame = Presence.online(peer)
  return { frame, bytes: cachedPresence(hub, peer, frame) }
}

/**
 * Tells sessions that they are no longer in a room that became a user's personal room (see
 * `PeerRegistry` `connect`): an error 403 that says why, then the `leave:ok` a client keeps its rooms by.
 *
 * @since 0.2.0
 * @internal
 */
export const evicted =
  (stats: Counters) => (sessions: ReadonlyArray<State.Session<PeerRegistry.Handle>>, room: string): void => {
    const notice = Message.error(403, Message.roomRefusal("removed", room, "another user's personal room"))
    const left: Frame.Frame = { type: "leave:ok", room }
    const route = toSessions(sessions)
    deliver(stats, route, encode(notice), notice)
    deliver(stats, route, encode(left), left)
  }
