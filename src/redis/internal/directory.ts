/**
 * Owns the directory's records as they travel: a session (`Entry`) as the node's hash holds it and a membership
 * event (`Event`) as the directory channel carries it, read defensively (anything else is not one), and the
 * replica's sessions grouped by the node that holds them.
 *
 * @since 0.2.0
 * @internal
 */
import * as HashMap from "effect/HashMap"
import type * as Peer from "../../protocol/Peer.js"
import type * as PeerRegistry from "../../server/PeerRegistry.js"
import type * as State from "../../server/State.js"
import type { Entry, Event } from "../RedisBroker.js"

const isString = (value: unknown): value is string => typeof value === "string"

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * An entry read from Redis or a directory event; `undefined` when it is not one.
 *
 * @since 0.2.0
 * @internal
 */
export const toEntry = (value: unknown): Entry | undefined => {
  if (!isRecord(value) || !isRecord(value.peer)) return undefined
  const peer = value.peer
  if (!isString(peer.id) || peer.id === "" || !isString(peer.user) || peer.user === "") return undefined
  if (!Array.isArray(value.rooms) || !value.rooms.every(isString)) return undefined
  return { peer: peer as unknown as Peer.Peer, rooms: value.rooms, virtual: value.virtual === true }
}

/**
 * The event a message of the directory channel holds; `undefined` when it holds none.
 *
 * @since 0.2.0
 * @internal
 */
export const toEvent = (text: string): Event | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isRecord(value) || !isString(value.node)) return undefined
  const node = value.node
  switch (value.op) {
    case "connect": {
      const entry = toEntry(value.entry)
      return entry === undefined ? undefined : { op: "connect", node, entry }
    }
    case "disconnect":
      return isString(value.id) ? { op: "disconnect", node, id: value.id } : undefined
    case "join":
    case "leave":
      return isString(value.id) && isString(value.room)
        ? { op: value.op, node, id: value.id, room: value.room }
        : undefined
    case "sync": {
      if (!Array.isArray(value.sessions)) return undefined
      const sessions = value.sessions.map(toEntry).filter((e): e is Entry => e !== undefined)
      return { op: "sync", node, sessions }
    }
    case "down":
      return { op: "down", node }
    case "move": {
      const entry = toEntry(value.entry)
      return entry === undefined || !isString(value.from) ? undefined : { op: "move", node, from: value.from, entry }
    }
    default:
      return undefined
  }
}

/**
 * The entries of a node's sessions hash, as `HGETALL` returns it.
 *
 * @since 0.2.0
 * @internal
 */
export const toEntries = (stored: Record<string, string>): Array<Entry> => {
  const entries: Array<Entry> = []
  for (const text of Object.values(stored)) {
    try {
      const entry = toEntry(JSON.parse(text))
      if (entry !== undefined) entries.push(entry)
    } catch {
      // A malformed entry is skipped: its node's next sync rewrites it.
    }
  }
  return entries
}

/**
 * A session as the directory records it.
 *
 * @since 0.2.0
 * @internal
 */
export const entryOf = (session: State.Session<PeerRegistry.Handle>): Entry => ({
  peer: session.peer,
  rooms: session.rooms,
  virtual: session.virtual
})

/**
 * The sessions of the replica, by the node holding them (`""` for this node's own).
 *
 * @since 0.2.0
 * @internal
 */
export const byNode = (
  state: State.State<PeerRegistry.Handle>
): Map<string, Array<State.Session<PeerRegistry.Handle>>> => {
  const out = new Map<string, Array<State.Session<PeerRegistry.Handle>>>()
  for (const session of HashMap.values(state.sessions)) {
    const node = session.member.handle.node ?? ""
    let list = out.get(node)
    if (list === undefined) out.set(node, list = [])
    list.push(session)
  }
  return out
}
