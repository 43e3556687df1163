/**
 * Owns virtual peers: in-process peers registered like sessions (announced, in snapshots, routable), whose frames
 * go to a handler, one at a time, in a fiber of the server's.
 *
 * @since 0.2.0
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Frame from "../../protocol/Frame.js"
import type { Json } from "../../protocol/Json.js"
import type * as Peer from "../../protocol/Peer.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import * as Presence from "../Presence.js"
import { ServerError } from "../ServerError.js"
import { ServerEvent } from "../ServerEvent.js"
import * as State from "../State.js"
import type { VirtualPeer } from "../SympleServer.js"
import { deliver, onlinePresence, toSessions } from "./fanOut.js"
import type { Hub } from "./hub.js"
import { encode } from "./socketWriter.js"

const virtualHandlerQueue = 1024

/**
 * @since 0.2.0
 * @internal
 */
export interface VirtualPeers {
  readonly add: (
    peer: VirtualPeer,
    rooms: ReadonlyArray<string>,
    handler: (frame: Frame.Frame) => Effect.Effect<void>
  ) => Effect.Effect<Peer.Peer, ServerError>
  readonly remove: (id: string) => Effect.Effect<boolean>
}

/**
 * The server's virtual peers; their handlers stop when the scope closes.
 *
 * @since 0.2.0
 * @internal
 */
export const make = (hub: Hub): Effect.Effect<VirtualPeers, never, Scope.Scope> =>
  Effect.map(FiberMap.make<string>(), (handlers) => {
    const add: VirtualPeers["add"] = (description, rooms, onFrame) =>
      Effect.gen(function*() {
        if (typeof description.id !== "string" || description.id === "" || description.id.includes("|")) {
          return yield* new ServerError({ reason: "InvalidPeer", message: "A virtual peer needs an id without '|'" })
        }
        if (typeof description.user !== "string" || description.user === "") {
          return yield* new ServerError({ reason: "InvalidPeer", message: "A virtual peer needs a user" })
        }
        const fields: Record<string, Json> = {}
        for (const [key, value] of Object.entries(description)) if (value !== undefined) fields[key] = value
        const peer = {
          ...fields,
          id: description.id,
          user: description.user,
          name: description.name ?? description.user,
          type: description.type ?? "Peer",
          online: true
        } as Peer.Peer
        const inbox = yield* Queue.dropping<Frame.Frame>(virtualHandlerQueue)
        const member: State.Member<PeerRegistry.Handle> = {
          id: peer.id,
          user: peer.user,
          handle: { send: (_bytes, frame) => void Queue.offerUnsafe(inbox, frame) }
        }
        const joined = [peer.user, ...rooms.filter((room) => room !== "" && room !== peer.user)]
        const state = yield* hub.registry.connect(member, peer, joined, { virtual: true })
        if (state === undefined) {
          return yield* new ServerError({ reason: "DuplicatePeer", message: `A peer with id ${peer.id} exists` })
        }
        yield* Queue.take(inbox).pipe(
          Effect.flatMap((frame) =>
            Effect.catchCause(onFrame(frame), (cause) => Effect.logWarning(Cause.pretty(cause)))
          ),
          Effect.forever,
          FiberMap.run(handlers, peer.id)
        )
        const me = State.session(state, peer.id)!
        const presence = onlinePresence(hub, peer)
        deliver(hub.stats, toSessions(State.neighbours(state, peer.id, me.rooms)), presence.bytes, presence.frame)
        yield* PubSub.publish(hub.events, ServerEvent.PeerConnected({ peer, rooms: me.rooms, virtual: true }))
        return peer
      })

    const remove: VirtualPeers["remove"] = (id) =>
      Effect.gen(function*() {
        const current = State.session(yield* hub.registry.snapshot, id)
        if (current === undefined || !current.virtual) return false
        const removed = yield* hub.registry.disconnect(id)
        yield* FiberMap.remove(handlers, id)
        if (removed === undefined) return false
        if (removed.neighbours.length > 0) {
          const offline = Presence.offline(removed.session.peer)
          deliver(hub.stats, toSessions(removed.neighbours), encode(offline), offline)
        }
        yield* PubSub.publish(hub.events, ServerEvent.PeerDisconnected({ peer: removed.session.peer, virtual: true }))
        return true
      })

    return { add, remove }
  })
