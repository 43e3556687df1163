/**
 * Owns `join` and `leave` of an online peer: the server's own rules (room limits; nobody joins another user's
 * personal room), then the application's join policy, then the registry transition, `join:ok` / `leave:ok`, and the
 * presence snapshot of the room joined. A policy that has to run effects is waited for like a slow authentication:
 * what the peer sends meanwhile waits behind it.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Message from "../../protocol/Message.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import * as State from "../State.js"
import type { Connection } from "./connection.js"
import { add } from "./counters.js"
import type { Online } from "./dispatch.js"
import { onlinePresenceBytes } from "./fanOut.js"
import type { Hub } from "./hub.js"
import type { Outcome, Pending } from "./inbound.js"
import { answer, reply } from "./reply.js"

/** An effect that is already its result (what `Effect.succeed` and `Effect.fail` return). */
const isExit = <A, E>(effect: Effect.Effect<A, E>): effect is Exit.Exit<A, E> => Exit.isExit(effect)

/**
 * A `join`: the server's rules, then the join policy (waited for when it runs effects).
 *
 * @since 0.2.0
 * @internal
 */
export const join = (hub: Hub, connection: Connection, online: Online, room: string): Outcome | Pending => {
  const refusal = joinRefusal(hub, online, room)
  if (refusal !== undefined) return answer(hub, connection, refusal.status, refusal.message)
  // Rejoining one's own personal room, or a room one is in, needs nobody's permission.
  const me = State.session(hub.registry.snapshotUnsafe(), online.id)
  if (room === online.peer.user || (me !== undefined && State.inRoom(me, room))) {
    return joined(hub, connection, online, room)
  }
  const decision = hub.joinPolicy.authorizeJoin(online.peer, room)
  if (isExit(decision)) return authorizedJoin(hub, connection, online, room, Exit.isSuccess(decision) && decision.value)
  return {
    pending: Effect.map(
      decision,
      (allowed) => connection.ended() ? undefined : authorizedJoin(hub, connection, online, room, allowed)
    )
  }
}

/**
 * A `leave`: always allowed.
 *
 * @since 0.2.0
 * @internal
 */
export const leave = (hub: Hub, connection: Connection, online: Online, room: string): Outcome => {
  hub.runNow(hub.registry.leave(online.id, room))
  reply(connection, { type: "leave:ok", room })
  return undefined
}

const authorizedJoin = (
  hub: Hub,
  connection: Connection,
  online: Online,
  room: string,
  allowed: boolean
): Outcome => {
  if (!allowed) return answer(hub, connection, 403, joinRefused(room, "not allowed"))
  // The registry may have changed while the policy decided.
  const refusal = joinRefusal(hub, online, room)
  return refusal === undefined
    ? joined(hub, connection, online, room)
    : answer(hub, connection, refusal.status, refusal.message)
}

const joined = (hub: Hub, connection: Connection, online: Online, room: string): Outcome => {
  const state = hub.runNow(hub.registry.join(online.id, room))
  reply(connection, { type: "join:ok", room })
  snapshotOf(hub, connection, online, state, room)
  return undefined
}

/** The online presence of every other member of `room`, for the peer that has just joined it. */
const snapshotOf = (
  hub: Hub,
  connection: Connection,
  online: Online,
  state: State.State<PeerRegistry.Handle>,
  room: string
) => {
  for (const other of State.members(state, room)) {
    // The session's id, which a resumed connection's own id is not.
    if (other.id === online.id) continue
    const session = State.session(state, other.id)
    if (session === undefined) continue
    connection.offer(onlinePresenceBytes(hub, session.peer))
    add(hub.stats.framesOut, "presence")
  }
}

const joinRefused = (room: string, reason: string): string => Message.roomRefusal("join", room, reason)

const joinRefusal = (
  hub: Hub,
  online: Online,
  room: string
): { readonly status: number; readonly message: string } | undefined => {
  const state = hub.registry.snapshotUnsafe()
  const me = State.session(state, online.id)
  if (me === undefined || State.inRoom(me, room)) return undefined
  const options = hub.options
  if (Buffer.byteLength(room) > options.maxRoomNameLength) {
    return { status: 400, message: joinRefused(room, `name over ${options.maxRoomNameLength} bytes`) }
  }
  if (me.rooms.length >= options.maxRoomsPerPeer) {
    return { status: 400, message: joinRefused(room, `already in ${options.maxRoomsPerPeer} rooms, the limit`) }
  }
  if (State.isPersonalRoomOfOther(state, online.peer.user, room)) {
    return { status: 403, message: joinRefused(room, "another user's personal room") }
  }
  return undefined
}
