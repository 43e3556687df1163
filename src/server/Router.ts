/**
 * Routing policy: who receives a routed frame, from the sender, its `to`, and a State snapshot.
 *
 * | `to` | recipients |
 * |---|---|
 * | `"user\|id"` | that session (by id), if it shares a room with the sender |
 * | `"name"` | members of room `name` sharing a room with the sender; also the session whose id is `name` |
 * | `["r1", "r2"]` | members of the listed rooms the sender belongs to |
 * | absent | every peer sharing any room with the sender |
 * | anything else | nobody |
 *
 * Recipients are distinct, and the sender is excluded unless it addressed its own full address.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Address from "../protocol/Address.js"
import * as State from "./State.js"

/**
 * The members to deliver to, skipping `exclude`. `members` may be a room's own array from the State (which is
 * never mutated), so a single-room fan-out allocates nothing.
 *
 * @since 0.1.0
 * @category models
 */
export interface Route<H> {
  readonly members: ReadonlyArray<State.Member<H>>
  readonly exclude: string | undefined
}

const nobody: Route<never> = { members: [], exclude: undefined }

/**
 * @since 0.1.0
 * @category getters
 */
export const isEmpty = <H>(route: Route<H>): boolean =>
  route.members.length === 0 || (route.members.length === 1 && route.members[0]!.id === route.exclude)

const distinct = <H>(groups: ReadonlyArray<ReadonlyArray<State.Member<H>>>, exclude: string): Route<H> => {
  const seen = new Set<string>([exclude])
  const out: Array<State.Member<H>> = []
  for (const group of groups) {
    for (const member of group) {
      if (!seen.has(member.id)) {
        seen.add(member.id)
        out.push(member)
      }
    }
  }
  return { members: out, exclude: undefined }
}

/** Rooms the sender is in: every group contains the sender, so a group of one has nobody else. */
const fromOwnRooms = <H>(state: State.State<H>, sender: State.Session<H>, rooms: Iterable<string>): Route<H> => {
  let first: ReadonlyArray<State.Member<H>> | undefined
  let groups: Array<ReadonlyArray<State.Member<H>>> | undefined
  for (const room of rooms) {
    const group = State.members(state, room)
    if (group.length < 2) continue
    if (first === undefined) first = group
    else (groups ??= [first]).push(group)
  }
  if (first === undefined) return nobody
  if (groups === undefined) return { members: first, exclude: sender.member.id }
  return distinct(groups, sender.member.id)
}

const direct = <H>(state: State.State<H>, sender: State.Session<H>, id: string): Route<H> => {
  if (id === sender.member.id) return { members: [sender.member], exclude: undefined }
  const target = State.session(state, id)
  return target !== undefined && State.shareRoom(sender, target)
    ? { members: [target.member], exclude: undefined }
    : nobody
}

const named = <H>(state: State.State<H>, sender: State.Session<H>, name: string): Route<H> => {
  const room = State.members(state, name)
  const live = name === sender.member.id ? undefined : State.session(state, name)
  const byId = live !== undefined && State.shareRoom(sender, live) ? live.member : undefined
  if (State.inRoom(sender, name)) {
    if (byId === undefined) return room.length < 2 ? nobody : { members: room, exclude: sender.member.id }
    return distinct([room, [byId]], sender.member.id)
  }
  const out: Array<State.Member<H>> = []
  for (const member of room) {
    const other = State.session(state, member.id)
    if (other !== undefined && member.id !== sender.member.id && State.shareRoom(sender, other)) out.push(member)
  }
  if (byId !== undefined && !out.some((m) => m.id === byId.id)) out.push(byId)
  return out.length === 0 ? nobody : { members: out, exclude: undefined }
}

/**
 * The recipients of a frame sent by `sender` with the given `to` value.
 *
 * @since 0.1.0
 * @category routing
 */
export const resolve = <H>(state: State.State<H>, sender: State.Session<H>, to: unknown): Route<H> => {
  if (to === undefined) return fromOwnRooms(state, sender, sender.rooms)
  if (typeof to === "string") {
    return Address.hasSeparator(to) ? direct(state, sender, Address.parse(to).id) : named(state, sender, to)
  }
  if (Array.isArray(to)) {
    const rooms = new Set<string>()
    for (const room of to) if (typeof room === "string" && State.inRoom(sender, room)) rooms.add(room)
    return fromOwnRooms(state, sender, rooms)
  }
  return nobody
}

/**
 * Recipients of a frame injected from outside the peer network (the server API, or a Redis `symple:broadcast`
 * publisher): no sender, so no shared-room rule. `"user|id"` is that session, `"name"` the members of room `name`
 * (and the session with that id), an array the members of those rooms; anything else, including no `to`, reaches
 * nobody.
 *
 * @since 0.1.0
 * @category routing
 */
export const resolveInjected = <H>(state: State.State<H>, to: unknown): Route<H> => {
  if (typeof to === "string") {
    if (Address.hasSeparator(to)) {
      const target = State.session(state, Address.parse(to).id)
      return target === undefined ? nobody : { members: [target.member], exclude: undefined }
    }
    const live = State.session(state, to)
    const room = State.members(state, to)
    if (live === undefined) return { members: room, exclude: undefined }
    return distinct([room, [live.member]], "")
  }
  if (Array.isArray(to)) {
    const rooms = new Set<string>()
    for (const room of to) if (typeof room === "string" && room !== "") rooms.add(room)
    return distinct([...rooms].map((room) => State.members(state, room)), "")
  }
  return nobody
}

/**
 * The routing policy as a service, so that it can be replaced. Both functions must be pure functions of their
 * arguments. `resolve` routes a peer's frames: a `"user|id"` address must route by its id alone (as the protocol
 * says), since the server reuses a sender's routes for as long as the state stays the same, keyed by target, so
 * `"x|id"` and `"y|id"` share one resolved route. `resolveInjected` routes what the application injects
 * (`SympleServer.inject`), which has no sender.
 *
 * @since 0.1.0
 * @category tags
 */
export class Router extends Context.Service<Router, {
  readonly resolve: <H>(state: State.State<H>, sender: State.Session<H>, to: unknown) => Route<H>
  readonly resolveInjected: <H>(state: State.State<H>, to: unknown) => Route<H>
}>()("symple/Router") {}

/**
 * The protocol's routing table, with any of its functions replaced.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  overrides: Partial<Context.Service.Shape<typeof Router>> = {}
): Context.Service.Shape<typeof Router> => Router.of({ resolve, resolveInjected, ...overrides })

/**
 * The protocol's routing table.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Router> = Layer.succeed(Router, make())
