/**
 * The roster: the peers this client knows to be online, keyed by session id, kept from presence frames.
 *
 * Updates are idempotent: servers repeat presence (the JavaScript server once per shared room) and send snapshots
 * after `welcome` and `join:ok`, so a presence that changes nothing produces no event.
 *
 * The roster is kept through reconnections: when the connection is lost its peers stay, marked pending (`pending`),
 * without an event. A resumed session confirms them at once. After a new session, a pending peer seen again just
 * stops being pending; a new session of a pending peer's user takes its place with an `Updated` change whose
 * `previous` is the old session (after a server restart every session is new); the others are removed, with
 * `Disconnected`, when the client's `rosterGracePeriod` ends.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Address from "../protocol/Address.js"
import type { Json } from "../protocol/Json.js"
import * as Peer from "../protocol/Peer.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Peers = HashMap.HashMap<string, Peer.Peer>

/**
 * @since 0.1.0
 * @category models
 */
export type Change = Data.TaggedEnum<{
  Connected: { readonly peer: Peer.Peer }
  Updated: { readonly peer: Peer.Peer; readonly previous: Peer.Peer }
  Disconnected: { readonly peer: Peer.Peer }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const Change = Data.taggedEnum<Change>()

/**
 * The peer described by presence `data`, when it is usable: a string `id` (non-empty), a string `user` and a
 * boolean `online`, as the C++ client requires.
 *
 * @since 0.1.0
 * @category decoding
 */
export const peerOf = (data: unknown): Option.Option<Peer.Peer> =>
  Option.filter(
    Peer.decode(data),
    (peer) => peer.id !== "" && typeof peer.online === "boolean"
  )

/**
 * Applies one presence: online upserts, offline removes. Returns the new roster and what changed, if anything.
 *
 * @since 0.1.0
 * @category combinators
 */
export const apply = (peers: Peers, peer: Peer.Peer): readonly [Peers, Option.Option<Change>] => {
  const previous = HashMap.get(peers, peer.id)
  if (peer.online === true) {
    if (Option.isNone(previous)) return [HashMap.set(peers, peer.id, peer), Option.some(Change.Connected({ peer }))]
    if (jsonEqual(previous.value, peer)) return [peers, Option.none()]
    return [HashMap.set(peers, peer.id, peer), Option.some(Change.Updated({ peer, previous: previous.value }))]
  }
  if (Option.isNone(previous)) return [peers, Option.none()]
  return [HashMap.remove(peers, peer.id), Option.some(Change.Disconnected({ peer: previous.value }))]
}

/**
 * Structural equality of JSON values; key order does not matter.
 *
 * @since 0.1.0
 * @category utils
 */
export const jsonEqual = (a: Json | undefined, b: Json | undefined): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    return a.every((item, i) => jsonEqual(item, b[i]))
  }
  const ra = a as { readonly [key: string]: Json }
  const rb = b as { readonly [key: string]: Json }
  const keys = Object.keys(ra)
  if (keys.length !== Object.keys(rb).length) return false
  return keys.every((key) => Object.hasOwn(rb, key) && jsonEqual(ra[key], rb[key]))
}

/**
 * Finds a peer by session id, or by `user|id` (the user part must then match when present).
 *
 * @since 0.1.0
 * @category combinators
 */
export const find = (peers: Peers, idOrAddress: string): Option.Option<Peer.Peer> => {
  if (!Address.hasSeparator(idOrAddress)) return HashMap.get(peers, idOrAddress)
  const address = Address.parse(idOrAddress)
  return Option.filter(HashMap.get(peers, address.id), (peer) => address.user === "" || peer.user === address.user)
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Roster {
  /** The current roster first, then every new value. */
  readonly changes: Stream.Stream<Peers>
  readonly snapshot: Effect.Effect<ReadonlyArray<Peer.Peer>>
  readonly get: (idOrAddress: string) => Effect.Effect<Option.Option<Peer.Peer>>
  readonly getByHost: (host: string) => Effect.Effect<ReadonlyArray<Peer.Peer>>
  /** Every change, in order. */
  readonly updates: Stream.Stream<Change>
  /**
   * A subscription to the changes that is live as soon as this effect returns; read it with `PubSub.take`,
   * `PubSub.takeAll` (waits for at least one) or `PubSub.takeUpTo`.
   */
  readonly subscribe: Effect.Effect<PubSub.Subscription<Change>, never, Scope.Scope>
  readonly peerConnected: Stream.Stream<Peer.Peer>
  readonly peerDisconnected: Stream.Stream<Peer.Peer>
  /**
   * Peers held from before a reconnection and not seen since (they are in the roster too): after a new session,
   * they are confirmed by presence, replaced by a new session of their user, or removed when the grace period ends.
   */
  readonly pending: Effect.Effect<ReadonlyArray<Peer.Peer>>
}

/**
 * The writable side, kept by the client.
 *
 * @since 0.1.0
 * @category models
 */
export interface RosterHandle {
  readonly roster: Roster
  readonly ref: SubscriptionRef.SubscriptionRef<Peers>
  readonly changesHub: PubSub.PubSub<Change>
  readonly apply: (peer: Peer.Peer) => Effect.Effect<Option.Option<Change>>
  /** Removes everyone, announcing each removal. */
  readonly clear: Effect.Effect<void>
  /**
   * Publishes a roster computed elsewhere, synchronously: `peers` (of which `pending` are pending), then the
   * `changes` that led there, in order. For a single writer that does not also use `apply` or `clear`.
   */
  readonly showUnsafe: (peers: Peers, pending: ReadonlyArray<string>, changes: ReadonlyArray<Change>) => void
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<RosterHandle> = Effect.gen(function*() {
  const ref = yield* SubscriptionRef.make<Peers>(HashMap.empty())
  const changesHub = yield* PubSub.unbounded<Change>()
  // A change is announced once the roster holds it (a fiber woken by the announcement may run before the writer
  // goes on, and must find the roster up to date); the lock keeps announcements in the order they were applied.
  const lock = yield* Semaphore.make(1)
  const applyPeer = (peer: Peer.Peer): Effect.Effect<Option.Option<Change>> =>
    lock.withPermit(Effect.gen(function*() {
      const change = yield* SubscriptionRef.modify(ref, (peers) => {
        const [next, change] = apply(peers, peer)
        return [change, next] as const
      })
      if (Option.isSome(change)) yield* PubSub.publish(changesHub, change.value)
      return change
    }))
  let pendingIds: ReadonlyArray<string> = []
  const clear = lock.withPermit(Effect.gen(function*() {
    pendingIds = []
    const peers = yield* SubscriptionRef.getAndSet(ref, HashMap.empty<string, Peer.Peer>())
    for (const peer of HashMap.values(peers)) yield* PubSub.publish(changesHub, Change.Disconnected({ peer }))
  }))
  // As `SubscriptionRef.set` does, without its effect.
  const showUnsafe = (peers: Peers, pending: ReadonlyArray<string>, changes: ReadonlyArray<Change>) => {
    pendingIds = pending
    ref.value = peers
    PubSub.publishUnsafe(ref.pubsub, peers)
    for (const change of changes) PubSub.publishUnsafe(changesHub, change)
  }
  const updates = Stream.fromPubSub(changesHub)
  const roster: Roster = {
    changes: SubscriptionRef.changes(ref),
    snapshot: Effect.map(SubscriptionRef.get(ref), (peers) => Array.from(HashMap.values(peers))),
    get: (idOrAddress) => Effect.map(SubscriptionRef.get(ref), (peers) => find(peers, idOrAddress)),
    getByHost: (host) =>
      Effect.map(SubscriptionRef.get(ref), (peers) => Array.from(HashMap.values(peers)).filter((p) => p.host === host)),
    updates,
    subscribe: PubSub.subscribe(changesHub),
    peerConnected: Stream.filterMap(updates, (c) => c._tag === "Connected" ? Result.succeed(c.peer) : Result.failVoid),
    peerDisconnected: Stream.filterMap(
      updates,
      (c) => c._tag === "Disconnected" ? Result.succeed(c.peer) : Result.failVoid
    ),
    pending: Effect.map(
      SubscriptionRef.get(ref),
      (peers) => pendingIds.flatMap((id) => Option.toArray(HashMap.get(peers, id)))
    )
  }
  const handle: RosterHandle = { roster, ref, changesHub, apply: applyPeer, clear, showUnsafe }
  return handle
})
