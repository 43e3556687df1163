/**
 * The single writer of membership: the State lives in a `Ref` and changes only through the pure transitions of
 * `State`. Readers (routing) take a plain snapshot.
 *
 * A `Ref` rather than a `SynchronizedRef`: every transition is synchronous, so `Ref.modify` already runs it
 * atomically, without the semaphore a `SynchronizedRef` takes on every update (a large share of a handshake).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type * as Peer from "../protocol/Peer.js"
import * as State from "./State.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PeerRegistry<H> {
  readonly ref: Ref.Ref<State.State<H>>
  /** The latest state, for synchronous readers on the hot path; written only by the transitions below. */
  current: State.State<H>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <H>(): Effect.Effect<PeerRegistry<H>> =>
  Effect.map(Ref.make(State.empty<H>()), (ref) => ({ ref, current: State.empty<H>() }))

/**
 * The latest state without going through an Effect (the socket listeners route frames synchronously).
 *
 * @since 0.1.0
 * @category getters
 */
export const unsafeSnapshot = <H>(registry: PeerRegistry<H>): State.State<H> => registry.current

const publish = <H>(registry: PeerRegistry<H>, state: State.State<H>): State.State<H> => {
  registry.current = state
  return state
}

/**
 * @since 0.1.0
 * @category getters
 */
export const snapshot = <H>(registry: PeerRegistry<H>): Effect.Effect<State.State<H>> =>
  Ref.get(registry.ref)

/**
 * Registers a session. `announce` runs before the new state becomes visible to readers, with the distinct peers
 * already sharing a room with the newcomer: what it queues for the newcomer (welcome, snapshot) is therefore
 * ahead of anything routed to it afterwards. Returns the new state, or `undefined` when the id is taken.
 *
 * @since 0.1.0
 * @category transitions
 */
export const connect = <H>(
  registry: PeerRegistry<H>,
  member: State.Member<H>,
  peer: Peer.Peer,
  rooms: ReadonlyArray<string>,
  options: {
    readonly virtual?: boolean | undefined
    readonly announce?: ((neighbours: ReadonlyArray<State.Session<H>>) => void) | undefined
  } = {}
): Effect.Effect<State.State<H> | undefined> =>
  Ref.modify(registry.ref, (state) => {
    if (State.session(state, member.id) !== undefined) return [undefined, state] as const
    const next = State.connect(state, member, peer, rooms, options.virtual === true)
    // Inside the update, so nothing can be routed to the newcomer before what `announce` queues for it.
    options.announce?.(State.neighbours(next, member.id, State.session(next, member.id)?.rooms ?? []))
    return [publish(registry, next), next] as const
  })

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
export const disconnect = <H>(
  registry: PeerRegistry<H>,
  id: string
): Effect.Effect<Removed<H> | undefined> =>
  Ref.modify(registry.ref, (state) => {
    const gone = State.session(state, id)
    if (gone === undefined) return [undefined, state]
    return [
      { session: gone, neighbours: State.neighbours(state, id, gone.rooms) },
      publish(registry, State.disconnect(state, id))
    ]
  })

/**
 * @since 0.1.0
 * @category transitions
 */
export const join = <H>(registry: PeerRegistry<H>, id: string, room: string): Effect.Effect<State.State<H>> =>
  Ref.updateAndGet(registry.ref, (state) => publish(registry, State.join(state, id, room)))

/**
 * @since 0.1.0
 * @category transitions
 */
export const leave = <H>(registry: PeerRegistry<H>, id: string, room: string): Effect.Effect<State.State<H>> =>
  Ref.updateAndGet(registry.ref, (state) => publish(registry, State.leave(state, id, room)))
