/**
 * The roster as an immutable value, kept through reconnections.
 *
 * When the connection is lost, everyone in the roster is kept and marked *pending*: nothing is announced. What
 * happens next depends on the `welcome`:
 *
 * - the session was resumed: the server kept it and replays what happened meanwhile, so every peer that was known
 *   before the loss is known again at once, without an event;
 * - a new session: pending peers are reconciled with what arrives (snapshots, presence, probe answers). A pending
 *   peer seen again stops being pending, silently (or with `Updated` if its record changed). A new session of a
 *   pending peer's user (after a server restart every session is new) takes that peer's place with an `Updated`
 *   change whose `previous` is the old session. Peers still pending when the grace period ends are removed then
 *   (`expire`), with `Disconnected`.
 *
 * Our own entry follows the `welcome`: kept when resumed, replaced by the new session (`Updated`) otherwise.
 *
 * @since 0.2.0
 */
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import type * as Peer from "../../protocol/Peer.js"
import * as Roster from "../Roster.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface RosterState {
  readonly peers: Roster.Peers
  /**
   * Ids held from before the last loss of connection and not seen since. The flag tells whether the peer was
   * already pending when the connection was lost (a resumed session confirms only the peers it knew).
   */
  readonly pending: ReadonlyMap<string, boolean>
  /** Our own entry. */
  readonly self: string | undefined
  /**
   * Our own earlier sessions (the last few): a server that has not yet noticed that one of them died may still
   * list it in a snapshot, or announce its end; it is never a peer to us.
   */
  readonly former: ReadonlyArray<string>
}

/**
 * @since 0.2.0
 * @category models
 */
export type Step = readonly [RosterState, ReadonlyArray<Roster.Change>]

/**
 * @since 0.2.0
 * @category constructors
 */
export const empty: RosterState = { peers: HashMap.empty(), pending: new Map(), self: undefined, former: [] }

const remembered = 8

const forget = (state: RosterState): ReadonlyArray<string> =>
  state.self === undefined || state.former.includes(state.self)
    ? state.former
    : [...state.former, state.self].slice(-remembered)

const unpend = (pending: ReadonlyMap<string, boolean>, id: string): ReadonlyMap<string, boolean> => {
  if (!pending.has(id)) return pending
  const out = new Map(pending)
  out.delete(id)
  return out
}

/**
 * The pending peer a new session of the same user takes the place of: one with the same name first, then the
 * lowest id (deterministic).
 */
const candidateFor = (state: RosterState, peer: Peer.Peer): Peer.Peer | undefined => {
  let best: Peer.Peer | undefined
  for (const id of state.pending.keys()) {
    if (id === state.self) continue
    const held = Option.getOrUndefined(HashMap.get(state.peers, id))
    if (held === undefined || held.user !== peer.user) continue
    if (best === undefined) {
      best = held
      continue
    }
    const sameName = held.name === peer.name
    const bestSameName = best.name === peer.name
    if ((sameName && !bestSameName) || (sameName === bestSameName && held.id < best.id)) best = held
  }
  return best
}

const replace = (state: RosterState, previous: Peer.Peer, peer: Peer.Peer): Step => [
  {
    ...state,
    peers: HashMap.set(HashMap.remove(state.peers, previous.id), peer.id, peer),
    pending: unpend(unpend(state.pending, previous.id), peer.id)
  },
  [Roster.Change.Updated({ peer, previous })]
]

/**
 * A peer's presence. Only the server speaks for this session: a presence about our own entry, or about one of our
 * earlier sessions, changes nothing.
 *
 * @since 0.2.0
 * @category combinators
 */
export const presence = (state: RosterState, peer: Peer.Peer): Step => {
  if (peer.id === state.self || state.former.includes(peer.id)) return [state, []]
  if (peer.online === true && !HashMap.has(state.peers, peer.id)) {
    const previous = candidateFor(state, peer)
    if (previous !== undefined) return replace(state, previous, peer)
  }
  const [peers, change] = Roster.apply(state.peers, peer)
  return [{ ...state, peers, pending: unpend(state.pending, peer.id) }, Option.toArray(change)]
}

/**
 * The connection was lost. With `keep`, everyone stays, pending; without, everyone is removed now (our own entry
 * too), as a roster without a grace period does.
 *
 * @since 0.2.0
 * @category combinators
 */
export const lose = (state: RosterState, keep: boolean): Step => {
  if (!keep) {
    const changes = Array.from(HashMap.values(state.peers), (peer) => Roster.Change.Disconnected({ peer }))
    return [{ ...empty, former: forget(state) }, changes]
  }
  const pending = new Map<string, boolean>()
  for (const id of HashMap.keys(state.peers)) pending.set(id, state.pending.has(id))
  return [{ ...state, pending }, []]
}

/**
 * A `welcome` made `self` our session. `resumed`: the server kept the session (same id), so the peers known when
 * the connection was lost are known again; otherwise they stay pending, and our previous entry gives its place
 * to the new session.
 *
 * @since 0.2.0
 * @category combinators
 */
export const welcome = (state: RosterState, self: Peer.Peer, resumed: boolean): Step => {
  const previous = state.self === undefined ? undefined : Option.getOrUndefined(HashMap.get(state.peers, state.self))
  let pending = unpend(state.pending, self.id)
  if (previous !== undefined) pending = unpend(pending, previous.id)
  if (resumed) pending = new Map(Array.from(pending).filter(([, stale]) => stale))
  const former = previous !== undefined && previous.id !== self.id ? forget(state) : state.former
  const base: RosterState = { ...state, pending, self: self.id, former: former.filter((id) => id !== self.id) }
  if (previous !== undefined && previous.id !== self.id) return replace(base, previous, self)
  const [peers, change] = Roster.apply(base.peers, self)
  return [{ ...base, peers }, Option.toArray(change)]
}

/**
 * The grace period is over: peers still pending are removed.
 *
 * @since 0.2.0
 * @category combinators
 */
export const expire = (state: RosterState): Step => {
  if (state.pending.size === 0) return [state, []]
  let peers = state.peers
  const changes: Array<Roster.Change> = []
  for (const id of state.pending.keys()) {
    const peer = Option.getOrUndefined(HashMap.get(peers, id))
    if (peer === undefined) continue
    peers = HashMap.remove(peers, id)
    changes.push(Roster.Change.Disconnected({ peer }))
  }
  return [{ ...state, peers, pending: new Map() }, changes]
}

/**
 * What must hold of every roster: keys are the records' ids, every record is online, pending peers are in the
 * roster, and our own entry is too. Returns the first violation.
 *
 * @since 0.2.0
 * @category invariants
 */
export const violation = (state: RosterState): string | undefined => {
  for (const [id, peer] of state.peers) {
    if (peer.id !== id) return `entry ${id} holds the record of ${peer.id}`
    if (peer.online !== true) return `entry ${id} is not online`
  }
  for (const id of state.pending.keys()) {
    if (!HashMap.has(state.peers, id)) return `pending ${id} is not in the roster`
  }
  if (state.self !== undefined && !HashMap.has(state.peers, state.self)) return "our own entry is missing"
  return undefined
}
