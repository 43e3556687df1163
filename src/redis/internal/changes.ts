/**
 * Owns the way the changes of local sessions reach the cluster: the registry the server is given back (`attach`)
 * is its own, wrapped so that each change of a local session (connect, disconnect, join, leave) is written to the
 * node's sessions hash and announced on the directory channel, on the publishing connection, behind the frames
 * queued before it. A session another node handed over (see `handover`) is published as a `move` when the server
 * makes it local (`resume`). Changes made while Redis is away are not written: the node resyncs when it returns.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as State from "../../server/State.js"
import type { Event } from "../RedisBroker.js"
import { entryOf } from "./directory.js"
import type { Outbox } from "./outbox.js"
import { encodeCommand } from "./publisher.js"
import type { Keys, Registry, Status } from "./status.js"

/**
 * `registry`, publishing the changes of local sessions (sessions of other nodes are the replica's, never
 * published again).
 *
 * @since 0.2.0
 * @internal
 */
export const publishing = (
  registry: Registry,
  status: Status,
  outbox: Outbox,
  keys: Keys,
  /** The node a session taken over here came from (`Handovers.arrived`); `undefined` for any other resume. */
  arrived: (id: string) => string | undefined
): Registry => {
  const node = status.node

  /** Publishes a change of a local session (its hash entry, then the event); lost changes are resynced. */
  const publishChange = (id: string, event: Event) => {
    const publisher = status.publisher
    const own = status.registry
    if (publisher === undefined || !publisher.ready || own === undefined) return
    // Frames queued before the change go first, on the same connection: a receiver sees them in the order they
    // happened here.
    outbox.flush()
    const session = State.session(own.snapshotUnsafe(), id)
    publisher.send(
      encodeCommand(
        session === undefined
          ? ["HDEL", keys.sessions(node), id]
          : ["HSET", keys.sessions(node), id, JSON.stringify(entryOf(session))]
      ),
      0
    )
    publisher.send(encodeCommand(["PUBLISH", keys.directory, JSON.stringify(event)]), 0)
  }

  /** `join` or `leave`, published when it changed a local session's rooms. */
  const membership = (op: "join" | "leave") => (id: string, room: string) =>
    Effect.suspend(() => {
      const before = registry.snapshotUnsafe()
      return Effect.map(registry[op](id, room), (after) => {
        if (after !== before && State.session(after, id)?.member.handle.node === undefined) {
          publishChange(id, { op, node, id, room })
        }
        return after
      })
    })

  return {
    ...registry,
    resume: (id, handle) =>
      Effect.map(registry.resume(id, handle), (state) => {
        const from = arrived(id)
        const session = state === undefined ? undefined : State.session(state, id)
        if (from !== undefined && session !== undefined && session.member.handle.node === undefined) {
          publishChange(id, { op: "move", node, from, entry: entryOf(session) })
        }
        return state
      }),
    connect: (member, peer, rooms, connectOptions) =>
      Effect.map(registry.connect(member, peer, rooms, connectOptions), (state) => {
        if (state !== undefined && member.handle.node === undefined) {
          const session = State.session(state, member.id)
          if (session !== undefined) publishChange(member.id, { op: "connect", node, entry: entryOf(session) })
        }
        return state
      }),
    disconnect: (id) =>
      Effect.map(registry.disconnect(id), (removed) => {
        if (removed !== undefined && removed.session.member.handle.node === undefined) {
          publishChange(id, { op: "disconnect", node, id })
        }
        return removed
      }),
    join: membership("join"),
    leave: membership("leave")
  }
}
