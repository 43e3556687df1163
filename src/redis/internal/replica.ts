/**
 * Owns this node's replica of the other nodes' sessions, held in the server's own registry: it applies what the
 * directory says (an event on the directory channel, a node's whole list from a `sync` or read from Redis, a node
 * gone, a session that moved between nodes) and tells local neighbours who came online or went offline (never for a
 * move). Its sessions have a `RemoteHandle`, so frames
 * sent to them go into their node's envelope.
 *
 * @since 0.2.0
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Broker from "../../server/Broker.js"
import type * as PeerRegistry from "../../server/PeerRegistry.js"
import * as State from "../../server/State.js"
import type { Entry } from "../RedisBroker.js"
import { byNode, toEvent } from "./directory.js"
import { type Outbox, RemoteHandle } from "./outbox.js"

/**
 * @since 0.2.0
 * @internal
 */
export class Replica {
  /** Ids that went offline while a resync was reading the directory: what it read of them is stale. */
  tombstones: Set<string> | undefined = undefined
  /**
   * A session moved from node `from` to node `to` (`Handovers.moved`): `true` when handled there, `false` to take
   * it as a connect of `to`'s.
   */
  moved: (to: string, from: string, id: string) => boolean = () => false

  constructor(
    readonly node: string,
    readonly local: Broker.Local,
    readonly runNow: <A, E>(effect: Effect.Effect<A, E>) => A,
    readonly outbox: Outbox,
    /** The outbox's rendered channels (`publishTo`): a node with no sessions left loses its own. */
    readonly channels: Map<string, Buffer>
  ) {}

  connect(from: string, entry: Entry): void {
    const registry = this.local.registry
    const id = entry.peer.id
    if (this.tombstones?.has(id) === true) return
    const current = State.session(registry.snapshotUnsafe(), id)
    if (current !== undefined) {
      if (current.member.handle.node === from) this.updateRooms(current, entry.rooms)
      return
    }
    const member = { id, user: entry.peer.user, handle: new RemoteHandle(from, id, this.outbox) }
    const state = this.runNow(registry.connect(member, entry.peer, entry.rooms, {
      virtual: entry.virtual,
      claimPersonalRoom: this.local.claimPersonalRoom,
      evicted: this.local.evicted
    }))
    const session = state === undefined ? undefined : State.session(state, id)
    if (state !== undefined && session !== undefined) {
      this.local.announce(session, State.neighbours(state, id, session.rooms), true)
    }
  }

  updateRooms(current: State.Session<PeerRegistry.Handle>, rooms: ReadonlyArray<string>): void {
    const registry = this.local.registry
    const wanted = new Set(rooms)
    for (const room of current.rooms) if (!wanted.has(room)) this.runNow(registry.leave(current.member.id, room))
    for (const room of rooms) if (!current.roomSet.has(room)) this.runNow(registry.join(current.member.id, room))
  }

  disconnect(from: string, id: string): void {
    this.tombstones?.add(id)
    const current = State.session(this.local.registry.snapshotUnsafe(), id)
    if (current === undefined || current.member.handle.node !== from) return
    const removed = this.runNow(this.local.registry.disconnect(id))
    if (removed !== undefined) this.local.announce(removed.session, removed.neighbours, false)
  }

  /** Makes the replica hold exactly the given sessions of a node. */
  reconcile(from: string, entries: ReadonlyArray<Entry>): void {
    if (entries.length === 0) this.channels.delete(from)
    const listed = new Set(entries.map((entry) => entry.peer.id))
    const held = byNode(this.local.registry.snapshotUnsafe()).get(from) ?? []
    for (const session of held) if (!listed.has(session.member.id)) this.disconnect(from, session.member.id)
    for (const entry of entries) this.connect(from, entry)
  }

  /** Applies a message of the directory channel (this node's own events are already in the registry). */
  readonly onDirectory = (text: string): void => {
    const event = toEvent(text)
    if (event === undefined || event.node === this.node) return
    switch (event.op) {
      case "connect":
        return this.connect(event.node, event.entry)
      case "disconnect":
        return this.disconnect(event.node, event.id)
      case "join":
      case "leave": {
        const registry = this.local.registry
        const current = State.session(registry.snapshotUnsafe(), event.id)
        if (current === undefined || current.member.handle.node !== event.node) return
        this.runNow(event.op === "join" ? registry.join(event.id, event.room) : registry.leave(event.id, event.room))
        return
      }
      case "sync":
        return this.reconcile(event.node, event.sessions)
      case "down":
        return this.reconcile(event.node, [])
      case "move":
        if (!this.moved(event.node, event.from, event.entry.peer.id)) this.connect(event.node, event.entry)
        return
    }
  }
}
