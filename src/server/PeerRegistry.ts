/**
 * The single writer of membership: the registry's `State` lives in an Effect `SubscriptionRef`, and changes only
 * through the pure transitions of `State`, applied through the Ref. Every change is published: `changes` streams
 * the states (the current one first), and `snapshotUnsafe` reads the latest one synchronously, which is how the
 * socket listeners route frames without an effect step per frame. Nothing else writes the state.
 *
 * Transitions complete synchronously (each is one `SubscriptionRef` step), so the server applies those that its
 * socket listeners start in place, with `Effect.runSyncWith` on the server's own context. A registry provided by
 * the application must keep that property.
 *
 * Each server needs a registry of its own: `layer` builds a new one wherever it is provided (`Layer.fresh`). To
 * watch the server's registry, provide it to both, e.g. `SympleServer.layerWithoutDefaults(options).pipe(
 * Layer.provideMerge(PeerRegistry.layer))`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
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
 * What `connect` is told, and does, besides registering the session.
 *
 * - `announce` runs before the new state becomes visible to readers, with the distinct peers already sharing a room
 *   with the newcomer, and its session (the rooms it is in): what it queues for the newcomer (welcome, snapshot) is
 *   therefore ahead of anything routed to it afterwards.
 * - Personal rooms are the user's alone: rooms named after another user who has a session are not joined, and with
 *   `claimPersonalRoom` the sessions of other users in the newcomer's own personal room leave it (`evicted` is told
 *   who, before the new state is published).
 *
 * @since 0.2.0
 * @category models
 */
export interface ConnectOptions {
  readonly virtual?: boolean | undefined
  readonly announce?:
    | ((neighbours: ReadonlyArray<State.Session<Handle>>, session: State.Session<Handle>) => void)
    | undefined
  readonly claimPersonalRoom?: boolean | undefined
  readonly evicted?: ((sessions: ReadonlyArray<State.Session<Handle>>, room: string) => void) | undefined
}

/**
 * A session removed by `disconnect`, and the peers that shared a room with it (they get the offline presence).
 *
 * @since 0.1.0
 * @category models
 */
export interface Removed {
  readonly session: State.Session<Handle>
  readonly neighbours: ReadonlyArray<State.Session<Handle>>
}

/**
 * @since 0.2.0
 * @category tags
 */
export class PeerRegistry extends Context.Service<PeerRegistry, {
  /** The latest published state, read without an effect (the socket listeners route frames synchronously). */
  readonly snapshotUnsafe: () => State.State<Handle>
  readonly snapshot: Effect.Effect<State.State<Handle>>
  /** The current state, then every state published after it. */
  readonly changes: Stream.Stream<State.State<Handle>>
  /** Registers a session (see `ConnectOptions`). Returns the new state, or `undefined` when the id is taken. */
  readonly connect: (
    member: State.Member<Handle>,
    peer: Peer.Peer,
    rooms: ReadonlyArray<string>,
    options?: ConnectOptions
  ) => Effect.Effect<State.State<Handle> | undefined>
  /** Removes a session; `undefined` when there was none with that id. */
  readonly disconnect: (id: string) => Effect.Effect<Removed | undefined>
  readonly join: (id: string, room: string) => Effect.Effect<State.State<Handle>>
  readonly leave: (id: string, room: string) => Effect.Effect<State.State<Handle>>
  /**
   * Keeps a session whose connection dropped, in its rooms, reached through `handle` (which holds what is routed to
   * it) until it is resumed or disconnected (`State.detach`); `undefined` when there is no such session.
   */
  readonly detach: (id: string, handle: Handle) => Effect.Effect<State.State<Handle> | undefined>
  /** A detached session reached through a new connection's `handle` (`State.resume`); `undefined` when none. */
  readonly resume: (id: string, handle: Handle) => Effect.Effect<State.State<Handle> | undefined>
}>()("symple/PeerRegistry") {}

const unchanged = Option.none<never>()

/**
 * A new, empty registry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Context.Service.Shape<typeof PeerRegistry>> = Effect.map(
  SubscriptionRef.make(State.empty<Handle>()),
  (ref) =>
    PeerRegistry.of({
      snapshotUnsafe: () => ref.value,
      snapshot: SubscriptionRef.get(ref),
      changes: SubscriptionRef.changes(ref),
      connect: (member, peer, rooms, options = {}) =>
        SubscriptionRef.modifySome(ref, (state) => {
          const own = rooms.filter((room) => !State.isPersonalRoomOfOther(state, member.user, room))
          let next = State.connect(state, member, peer, own, options.virtual === true)
          // `connect` leaves the state as it was only when the id is taken.
          if (next === state) return [undefined, unchanged]
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
          return [next, Option.some(next)]
        }),
      disconnect: (id) =>
        SubscriptionRef.modifySome(ref, (state) => {
          const gone = State.session(state, id)
          if (gone === undefined) return [undefined, unchanged]
          const removed: Removed = { session: gone, neighbours: State.neighbours(state, id, gone.rooms) }
          return [removed, Option.some(State.disconnect(state, id))]
        }),
      join: (id, room) => SubscriptionRef.modifySome(ref, (state) => changed(state, State.join(state, id, room))),
      leave: (id, room) => SubscriptionRef.modifySome(ref, (state) => changed(state, State.leave(state, id, room))),
      detach: (id, handle) =>
        SubscriptionRef.modifySome(ref, (state) => changedOrNone(state, State.detach(state, id, handle))),
      resume: (id, handle) =>
        SubscriptionRef.modifySome(ref, (state) => changedOrNone(state, State.resume(state, id, handle)))
    })
)

/** A transition's result, published only when it changed the state. */
const changed = <S>(
  state: S,
  next: S
): readonly [S, Option.Option<S>] => [next, next === state ? unchanged : Option.some(next)]

/** A transition's result when it changed the state, published; `undefined` (nothing published) otherwise. */
const changedOrNone = <S>(
  state: S,
  next: S
): readonly [S | undefined, Option.Option<S>] => next === state ? [undefined, unchanged] : [next, Option.some(next)]

/**
 * A new registry wherever it is provided.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<PeerRegistry> = Layer.fresh(Layer.effect(PeerRegistry, make))
