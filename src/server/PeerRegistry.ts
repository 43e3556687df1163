/**
 * The single writer of membership: the State changes only through the pure transitions of `State`, and readers
 * (routing) take a plain snapshot.
 *
 * A cell rather than an Effect `Ref`: every transition is synchronous and JavaScript runs one at a time, so a
 * transition is atomic as it is, and the socket listeners (which run outside any fiber) can apply it directly.
 * Each transition comes in two forms: `unsafe*` for synchronous callers, and an Effect for everyone else.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Frame from "../protocol/Frame.js"
import type * as Peer from "../protocol/Peer.js"
import * as State from "./State.js"

/**
 * How the server reaches a session: a connection's socket writer, or a virtual peer's handler queue. `send` never
 * blocks; a connection whose mailbox is full, or that has too many bytes waiting, closes itself (1013). `bytes` is
 * the frame rendered once as a complete WebSocket text frame, shared by every recipient.
 *
 * @since 0.2.0
 * @category models
 */
export interface Handle {
  readonly send: (bytes: Uint8Array, frame: Frame.Frame) => void
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PeerRegistry<H> {
  /** The latest state; written only by the transitions below. */
  current: State.State<H>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <H>(): Effect.Effect<PeerRegistry<H>> => Effect.sync(() => ({ current: State.empty<H>() }))

/**
 * The latest state without going through an Effect (the socket listeners route frames synchronously).
 *
 * @since 0.1.0
 * @category getters
 */
export const unsafeSnapshot = <H>(registry: PeerRegistry<H>): State.State<H> => registry.current

/**
 * @since 0.1.0
 * @category getters
 */
export const snapshot = <H>(registry: PeerRegistry<H>): Effect.Effect<State.State<H>> =>
  Effect.sync(() => registry.current)

/**
 * Registers a session. `announce` runs before the new state becomes visible to readers, with the distinct peers
 * already sharing a room with the newcomer, and its session (the rooms it is in): what it queues for the newcomer
 * (welcome, snapshot) is therefore
 * ahead of anything routed to it afterwards. Returns the new state, or `undefined` when the id is taken.
 *
 * Personal rooms are the user's alone: rooms named after another user who has a session are not joined, and with
 * `claimPersonalRoom` the sessions of other users in the newcomer's own personal room leave it (`evicted` is told
 * who, before the new state is published).
 *
 * @since 0.1.0
 * @category transitions
 */
export const unsafeConnect = <H>(
  registry: PeerRegistry<H>,
  member: State.Member<H>,
  peer: Peer.Peer,
  rooms: ReadonlyArray<string>,
  options: {
    readonly virtual?: boolean | undefined
    readonly announce?:
      | ((neighbours: ReadonlyArray<State.Session<H>>, session: State.Session<H>) => void)
      | undefined
    readonly claimPersonalRoom?: boolean | undefined
    readonly evicted?: ((sessions: ReadonlyArray<State.Session<H>>, room: string) => void) | undefined
  } = {}
): State.State<H> | undefined => {
  const state = registry.current
  const own = rooms.filter((room) => !State.isPersonalRoomOfOther(state, member.user, room))
  let next = State.connect(state, member, peer, own, options.virtual === true)
  // `connect` leaves the state as it was only when the id is taken.
  if (next === state) return undefined
  if (options.claimPersonalRoom === true) {
    const claimed = State.claimPersonalRoom(next, member.user)
    next = claimed.state
    if (claimed.evicted.length > 0) options.evicted?.(claimed.evicted, member.user)
  }
  // Before publishing, so nothing can be routed to the newcomer ahead of what `announce` queues for it.
  if (options.announce !== undefined) {
    const session = State.session(next, member.id)!
    options.announce(State.neighbours(next, member.id, session.rooms), session)
  }
  return registry.current = next
}

/**
 * @since 0.1.0
 * @category transitions
 */
export const connect = <H>(
  registry: PeerRegistry<H>,
  member: State.Member<H>,
  peer: Peer.Peer,
  rooms: ReadonlyArray<string>,
  options: { readonly virtual?: boolean | undefined; readonly claimPersonalRoom?: boolean | undefined } = {}
): Effect.Effect<State.State<H> | undefined> => Effect.sync(() => unsafeConnect(registry, member, peer, rooms, options))

/**
 * @since 0.1.0
 * @category models
 */
export interface Removed<H> {
  readonly session: State.Session<H>
  readonly neighbours: ReadonlyArray<State.Session<H>>
}

/**
 * Removes a session; returns it and the peers that shared a room with it (they get the offline presence).
 *
 * @since 0.1.0
 * @category transitions
 */
export const unsafeDisconnect = <H>(registry: PeerRegistry<H>, id: string): Removed<H> | undefined => {
  const state = registry.current
  const gone = State.session(state, id)
  if (gone === undefined) return undefined
  registry.current = State.disconnect(state, id)
  return { session: gone, neighbours: State.neighbours(state, id, gone.rooms) }
}

/**
 * @since 0.1.0
 * @category transitions
 */
export const disconnect = <H>(registry: PeerRegistry<H>, id: string): Effect.Effect<Removed<H> | undefined> =>
  Effect.sync(() => unsafeDisconnect(registry, id))

/**
 * @since 0.1.0
 * @category transitions
 */
export const unsafeJoin = <H>(registry: PeerRegistry<H>, id: string, room: string): State.State<H> =>
  registry.current = State.join(registry.current, id, room)

/**
 * @since 0.1.0
 * @category transitions
 */
export const unsafeLeave = <H>(registry: PeerRegistry<H>, id: string, room: string): State.State<H> =>
  registry.current = State.leave(registry.current, id, room)
