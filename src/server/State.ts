/**
 * The registry as one immutable value: sessions, rooms and the user index, changed only by the pure
 * transitions below. Routing reads a snapshot of it without locking.
 *
 * A room maps to an array of its members (join order). Each member carries an opaque handle `H` (the
 * connection's mailbox in the server, anything in tests) so that fan-out needs no further lookup. A session keeps
 * its rooms in join order (snapshots and presence go out in that order), and routing asks "is this session in room
 * r?" for every frame. A peer chooses how many rooms it is in, so that question must not cost more with every room:
 * beyond a few rooms it is answered by a set of them, built on first use (most sessions are in a few rooms, where
 * scanning the array costs no more than a lookup, and a set of two rooms takes over 200 bytes).
 *
 * Sized for many idle sessions: every array a transition builds is allocated at its length (an array grown by
 * `push` or spread keeps spare slots, 128 bytes more for one element).
 *
 * @since 0.1.0
 */
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import type * as Peer from "../protocol/Peer.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Member<H> {
  readonly id: string
  readonly user: string
  readonly handle: H
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Session<H> {
  readonly member: Member<H>
  readonly peer: Peer.Peer
  /** Rooms in join order; the personal room first unless it was left. */
  readonly rooms: ReadonlyArray<string>
  /**
   * The same rooms as a set, built on first use (`inRoom` and `shareRoom` use it only for sessions in more than a
   * few rooms). Never mutated: a transition that changes the rooms makes a new session.
   */
  readonly roomSet: ReadonlySet<string>
  readonly virtual: boolean
  /**
   * The session's connection dropped and the session is held for its peer to resume it: it keeps its id and its
   * rooms, and its handle holds what is routed to it meanwhile (see `detach`).
   *
   * @since 0.2.0
   */
  readonly detached: boolean
}

/** Up to this many rooms, a session's membership is tested by scanning its array. */
const scanAtMost = 8

const Virtual = 1
const Detached = 2

/**
 * A session as the transitions make it: the set of its rooms is built when first asked for, and its two flags share
 * a field (one record per session: a field less is 8 bytes less per session).
 */
class SessionRecord<H> implements Session<H> {
  #roomSet: ReadonlySet<string> | undefined = undefined
  readonly #flags: number
  constructor(
    readonly member: Member<H>,
    readonly peer: Peer.Peer,
    readonly rooms: ReadonlyArray<string>,
    virtual: boolean,
    detached: boolean
  ) {
    this.#flags = (virtual ? Virtual : 0) | (detached ? Detached : 0)
  }
  get virtual(): boolean {
    return (this.#flags & Virtual) !== 0
  }
  get detached(): boolean {
    return (this.#flags & Detached) !== 0
  }
  get roomSet(): ReadonlySet<string> {
    return this.#roomSet ??= new Set(this.rooms)
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface State<H> {
  readonly sessions: HashMap.HashMap<string, Session<H>>
  readonly rooms: HashMap.HashMap<string, ReadonlyArray<Member<H>>>
  readonly users: HashMap.HashMap<string, ReadonlyArray<string>>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const empty = <H>(): State<H> => ({ sessions: HashMap.empty(), rooms: HashMap.empty(), users: HashMap.empty() })

const noMembers: ReadonlyArray<never> = []

/**
 * @since 0.1.0
 * @category getters
 */
export const session = <H>(state: State<H>, id: string): Session<H> | undefined =>
  Option.getOrUndefined(HashMap.get(state.sessions, id))

/**
 * @since 0.1.0
 * @category getters
 */
export const members = <H>(state: State<H>, room: string): ReadonlyArray<Member<H>> =>
  Option.getOrElse(HashMap.get(state.rooms, room), () => noMembers)

/**
 * @since 0.1.0
 * @category getters
 */
export const sessionsOfUser = <H>(state: State<H>, user: string): ReadonlyArray<string> =>
  Option.getOrElse(HashMap.get(state.users, user), () => noMembers)

/**
 * @since 0.1.0
 * @category getters
 */
export const size = <H>(state: State<H>): number => HashMap.size(state.sessions)

/**
 * Whether a session is in a room: one set lookup, or a scan of at most a few rooms.
 *
 * @since 0.1.0
 * @category getters
 */
export const inRoom = <H>(session: Session<H>, room: string): boolean =>
  session.rooms.length <= scanAtMost ? session.rooms.includes(room) : session.roomSet.has(room)

/**
 * Whether two sessions are together in at least one room. Costs at most one set lookup per room of the session
 * with fewer rooms: both peers choose their rooms, so the cost of a direct frame must not grow with the product.
 *
 * @since 0.1.0
 * @category getters
 */
export const shareRoom = <H>(a: Session<H>, b: Session<H>): boolean => {
  const [small, large] = a.rooms.length <= b.rooms.length ? [a, b] : [b, a]
  for (const room of small.rooms) if (inRoom(large, room)) return true
  return false
}

/**
 * The distinct other sessions sharing at least one of the given rooms with `id`, in room order.
 *
 * @since 0.1.0
 * @category getters
 */
export const neighbours = <H>(state: State<H>, id: string, rooms: ReadonlyArray<string>): ReadonlyArray<Session<H>> => {
  const seen = new Set<string>([id])
  const out: Array<Session<H>> = []
  for (const room of rooms) {
    for (const member of members(state, room)) {
      if (seen.has(member.id)) continue
      seen.add(member.id)
      const other = session(state, member.id)
      if (other !== undefined) out.push(other)
    }
  }
  return out
}

/** `xs` and `x`, in an array of exactly that length (`concat` allocates the result at its length). */
const appended = <A>(xs: ReadonlyArray<A>, x: A): ReadonlyArray<A> => xs.concat([x])

const addMember = <H>(state: State<H>, room: string, member: Member<H>): State<H> => ({
  ...state,
  rooms: HashMap.set(state.rooms, room, appended(members(state, room), member))
})

const removeMember = <H>(state: State<H>, room: string, id: string): State<H> => {
  const rest = members(state, room).filter((m) => m.id !== id)
  return {
    ...state,
    rooms: rest.length === 0 ? HashMap.remove(state.rooms, room) : HashMap.set(state.rooms, room, rest)
  }
}

/** The distinct non-empty rooms in first-seen order. */
const uniqueRooms = (rooms: Iterable<string>): ReadonlyArray<string> => {
  const out: Array<string> = []
  const seen = new Set<string>()
  for (const room of rooms) {
    if (room !== "" && !seen.has(room)) {
      seen.add(room)
      out.push(room)
    }
  }
  return out.slice()
}

/**
 * Registers a session in the given rooms (empty names and repeats are skipped). An id already present leaves
 * the state unchanged: ids are never reused.
 *
 * @since 0.1.0
 * @category transitions
 */
export const connect = <H>(
  state: State<H>,
  member: Member<H>,
  peer: Peer.Peer,
  rooms: Iterable<string>,
  virtual = false
): State<H> => {
  if (HashMap.has(state.sessions, member.id)) return state
  const joined = uniqueRooms(rooms)
  let next: State<H> = {
    ...state,
    sessions: HashMap.set(state.sessions, member.id, new SessionRecord(member, peer, joined, virtual, false)),
    users: HashMap.set(state.users, member.user, appended(sessionsOfUser(state, member.user), member.id))
  }
  for (const room of joined) next = addMember(next, room, member)
  return next
}

/**
 * Removes a session from every room and index. Unknown ids leave the state unchanged.
 *
 * @since 0.1.0
 * @category transitions
 */
export const disconnect = <H>(state: State<H>, id: string): State<H> => {
  const gone = session(state, id)
  if (gone === undefined) return state
  let next: State<H> = state
  for (const room of gone.rooms) next = removeMember(next, room, id)
  const others = sessionsOfUser(next, gone.member.user).filter((other) => other !== id)
  return {
    ...next,
    sessions: HashMap.remove(next.sessions, id),
    users: others.length === 0
      ? HashMap.remove(next.users, gone.member.user)
      : HashMap.set(next.users, gone.member.user, others)
  }
}

/**
 * @since 0.1.0
 * @category transitions
 */
export const join = <H>(state: State<H>, id: string, room: string): State<H> => {
  const current = session(state, id)
  if (current === undefined || room === "" || inRoom(current, room)) return state
  const next = addMember(state, room, current.member)
  const rooms = appended(current.rooms, room)
  return {
    ...next,
    sessions: HashMap.set(next.sessions, id, withRooms(current, rooms))
  }
}

/** The session with other rooms (a new record, whose set of rooms is built when first asked for). */
const withRooms = <H>(current: Session<H>, rooms: ReadonlyArray<string>): Session<H> =>
  new SessionRecord(current.member, current.peer, rooms, current.virtual, current.detached)

/**
 * @since 0.1.0
 * @category transitions
 */
export const leave = <H>(state: State<H>, id: string, room: string): State<H> => {
  const current = session(state, id)
  if (current === undefined || !inRoom(current, room)) return state
  const next = removeMember(state, room, id)
  const rooms = current.rooms.filter((r) => r !== room)
  return {
    ...next,
    sessions: HashMap.set(next.sessions, id, withRooms(current, rooms))
  }
}

/**
 * Whether `room` is the personal room of a user other than `user` who has a session: nobody else may join it.
 *
 * @since 0.1.0
 * @category getters
 */
export const isPersonalRoomOfOther = <H>(state: State<H>, user: string, room: string): boolean =>
  room !== user && HashMap.has(state.users, room)

/**
 * Makes the room named after `user` theirs alone: every session of another user leaves it. (Someone may have
 * joined it while that user had no session.) Returns the new state and the sessions that left.
 *
 * @since 0.1.0
 * @category transitions
 */
export const claimPersonalRoom = <H>(
  state: State<H>,
  user: string
): { readonly state: State<H>; readonly evicted: ReadonlyArray<Session<H>> } => {
  const others = members(state, user).filter((member) => member.user !== user)
  if (others.length === 0) return { state, evicted: noMembers }
  let next = state
  const evicted: Array<Session<H>> = []
  for (const member of others) {
    const current = session(next, member.id)
    if (current === undefined) continue
    evicted.push(current)
    next = leave(next, member.id, user)
  }
  return { state: next, evicted }
}

/** The session `id` reached through `handle` from now on, everywhere its member appears, and its `detached` flag. */
const rehandle = <H>(state: State<H>, id: string, handle: H, detached: boolean): State<H> => {
  const current = session(state, id)
  if (current === undefined || current.virtual) return state
  if (current.member.handle === handle && current.detached === detached) return state
  const member: Member<H> = { id: current.member.id, user: current.member.user, handle }
  let rooms = state.rooms
  for (const room of current.rooms) {
    rooms = HashMap.set(rooms, room, members(state, room).map((m) => m.id === id ? member : m))
  }
  const next = new SessionRecord(member, current.peer, current.rooms, current.virtual, detached)
  return { ...state, rooms, sessions: HashMap.set(state.sessions, id, next) }
}

/**
 * The session's connection is gone but the session is kept (for its peer to resume it): it stays in the registry
 * and in every room, with `detached` set, and `handle` now reaches it (it holds what is routed to it). Unknown ids
 * and virtual sessions leave the state unchanged.
 *
 * @since 0.2.0
 * @category transitions
 */
export const detach = <H>(state: State<H>, id: string, handle: H): State<H> => rehandle(state, id, handle, true)

/**
 * A session is reached through `handle` again (a new connection resumed it): `detached` is cleared, its id, peer and
 * rooms are unchanged. Unknown ids and virtual sessions leave the state unchanged.
 *
 * @since 0.2.0
 * @category transitions
 */
export const resume = <H>(state: State<H>, id: string, handle: H): State<H> => rehandle(state, id, handle, false)
