/**
 * What waits for an answer from the other side, as an immutable value: requests waiting for their final reply (by
 * frame `id`), and room changes waiting for `join:ok` / `leave:ok` (by `join:<room>` / `leave:<room>`).
 *
 * Every function returns the tickets it answers; a ticket is answered once, then forgotten.
 *
 * @since 0.2.0
 */
import * as Exit from "effect/Exit"
import type * as Frame from "../../protocol/Frame.js"
import * as Message from "../../protocol/Message.js"
import { RequestError } from "../ClientError.js"
import type { Ticket } from "./Outbox.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Transactions {
  /** Request tickets by the `id` their reply will carry (two requests may share an id: both get the reply). */
  readonly requests: ReadonlyMap<string, ReadonlyArray<Ticket>>
  /** The `id` of each request ticket. */
  readonly ids: ReadonlyMap<Ticket, string>
  /** Room-change tickets by `join:<room>` / `leave:<room>`. */
  readonly rooms: ReadonlyMap<string, ReadonlyArray<Ticket>>
  /** The key of each room-change ticket. */
  readonly keys: ReadonlyMap<Ticket, string>
}

/**
 * An answer for a ticket: the reply (or nothing, for a room change) or the error.
 *
 * @since 0.2.0
 * @category models
 */
export type Answer = readonly [Ticket, Exit.Exit<Frame.Routed | void, RequestError>]

/**
 * @since 0.2.0
 * @category constructors
 */
export const empty: Transactions = { requests: new Map(), ids: new Map(), rooms: new Map(), keys: new Map() }

const add = <K, V>(map: ReadonlyMap<K, ReadonlyArray<V>>, key: K, value: V): ReadonlyMap<K, ReadonlyArray<V>> =>
  new Map(map).set(key, [...(map.get(key) ?? []), value])

const without = <K, V>(map: ReadonlyMap<K, V>, key: K): ReadonlyMap<K, V> => {
  if (!map.has(key)) return map
  const out = new Map(map)
  out.delete(key)
  return out
}

const removeFrom = <K>(
  map: ReadonlyMap<K, ReadonlyArray<Ticket>>,
  key: K,
  ticket: Ticket
): ReadonlyMap<K, ReadonlyArray<Ticket>> => {
  const rest = (map.get(key) ?? []).filter((t) => t !== ticket)
  return rest.length === 0 ? without(map, key) : new Map(map).set(key, rest)
}

/**
 * Whether the ticket still waits for an answer here.
 *
 * @since 0.2.0
 * @category getters
 */
export const isWaiting = (tx: Transactions, ticket: Ticket): boolean => tx.ids.has(ticket) || tx.keys.has(ticket)

/**
 * Every ticket that waits.
 *
 * @since 0.2.0
 * @category getters
 */
export const tickets = (tx: Transactions): ReadonlyArray<Ticket> => [...tx.ids.keys(), ...tx.keys.keys()]

/**
 * A request sent with `id` now waits for its reply.
 *
 * @since 0.2.0
 * @category combinators
 */
export const open = (tx: Transactions, id: string, ticket: Ticket): Transactions => ({
  ...tx,
  requests: add(tx.requests, id, ticket),
  ids: new Map(tx.ids).set(ticket, id)
})

/**
 * A routed frame came in. A reply (same `id`, a `status`) to waiting requests is progress (202, 406) or final:
 * 200 succeeds, any other status fails with `RequestError` reason `Status`. Requests whose frame is `unsent` (still
 * waiting to go out) are not answered by it: they wait for a reply to come after them.
 *
 * @since 0.2.0
 * @category combinators
 */
export const settle = (
  tx: Transactions,
  frame: Frame.Routed,
  unsent: (ticket: Ticket) => boolean = () => false
): {
  readonly tx: Transactions
  readonly progress: ReadonlyArray<Ticket>
  readonly answers: ReadonlyArray<Answer>
} => {
  const id = frame.id
  const status = frame.status
  const waiting = id === undefined ? undefined : tx.requests.get(id)
  if (id === undefined || status === undefined || waiting === undefined) return { tx, progress: [], answers: [] }
  // A reply cannot come before its request went out: such a frame answers none of the requests still to be sent.
  const sent = waiting.filter((ticket) => !unsent(ticket))
  if (sent.length === 0) return { tx, progress: [], answers: [] }
  if (!Message.isFinalStatus(status)) return { tx, progress: sent, answers: [] }
  const exit: Exit.Exit<Frame.Routed, RequestError> = Message.isSuccess(status)
    ? Exit.succeed(frame)
    : Exit.fail(new RequestError({ reason: "Status", id, status, response: frame }))
  const ids = new Map(tx.ids)
  for (const ticket of sent) ids.delete(ticket)
  const left = waiting.filter(unsent)
  return {
    tx: { ...tx, requests: left.length === 0 ? without(tx.requests, id) : new Map(tx.requests).set(id, left), ids },
    progress: [],
    answers: sent.map((ticket) => [ticket, exit] as const)
  }
}

/**
 * The ticket stops waiting: its sender gave up, or it timed out (then the answer is a `Timeout`).
 *
 * @since 0.2.0
 * @category combinators
 */
export const expire = (tx: Transactions, ticket: Ticket): readonly [Transactions, Answer | undefined] => {
  const id = tx.ids.get(ticket)
  if (id !== undefined) {
    const ids = new Map(tx.ids)
    ids.delete(ticket)
    return [
      { ...tx, requests: removeFrom(tx.requests, id, ticket), ids },
      [ticket, Exit.fail(new RequestError({ reason: "Timeout", id }))]
    ]
  }
  const key = tx.keys.get(ticket)
  if (key !== undefined) {
    const keys = new Map(tx.keys)
    keys.delete(ticket)
    return [
      { ...tx, rooms: removeFrom(tx.rooms, key, ticket), keys },
      [ticket, Exit.fail(new RequestError({ reason: "Timeout", id: key }))]
    ]
  }
  return [tx, undefined]
}

/**
 * A room change (`join:<room>` or `leave:<room>`) was sent and waits for its acknowledgement.
 *
 * @since 0.2.0
 * @category combinators
 */
export const awaitRoom = (tx: Transactions, key: string, ticket: Ticket): Transactions => ({
  ...tx,
  rooms: add(tx.rooms, key, ticket),
  keys: new Map(tx.keys).set(ticket, key)
})

const answerRooms = (
  tx: Transactions,
  key: string,
  exit: Exit.Exit<void, RequestError>
): readonly [Transactions, ReadonlyArray<Answer>] => {
  const waiting = tx.rooms.get(key)
  if (waiting === undefined) return [tx, []]
  const keys = new Map(tx.keys)
  for (const ticket of waiting) keys.delete(ticket)
  return [{ ...tx, rooms: without(tx.rooms, key), keys }, waiting.map((ticket) => [ticket, exit] as const)]
}

/**
 * `join:ok` / `leave:ok` came (key `join:<room>` / `leave:<room>`): the changes waiting for it succeed.
 *
 * @since 0.2.0
 * @category combinators
 */
export const acknowledge = (tx: Transactions, key: string): readonly [Transactions, ReadonlyArray<Answer>] =>
  answerRooms(tx, key, Exit.void)

/**
 * Every room change succeeds without its acknowledgement: the session ended, and the desired rooms carry the
 * intent to the next one.
 *
 * @since 0.2.0
 * @category combinators
 */
export const releaseRooms = (tx: Transactions): readonly [Transactions, ReadonlyArray<Answer>] => {
  const answers = [...tx.keys.keys()].map((ticket) => [ticket, Exit.void] as const)
  return [{ ...tx, rooms: new Map(), keys: new Map() }, answers]
}

/**
 * An `error` frame may refuse room changes. A server with fixed rooms answers join and leave with "Dynamic rooms
 * disabled" instead of an acknowledgement; that error names no room, so every room change in flight is refused (the
 * C++ and JavaScript servers send the same text). This package's server names the room when it refuses one join
 * (a limit, a personal room, the join policy), or when it takes the peer out of a room that became someone's
 * personal room. Returns the answers, and the rooms that are no longer desired.
 *
 * @since 0.2.0
 * @category combinators
 */
export const refuse = (
  tx: Transactions,
  frame: Frame.ErrorFrame
): readonly [Transactions, ReadonlyArray<Answer>, ReadonlyArray<string>] => {
  const status = frame.status ?? 400
  const fail = (key: string) => Exit.fail(new RequestError({ reason: "Status", id: key, status }))
  if (frame.message === "Dynamic rooms disabled") {
    let out = tx
    const answers: Array<Answer> = []
    const dropped: Array<string> = []
    for (const key of [...tx.rooms.keys()]) {
      const [next, answered] = answerRooms(out, key, fail(key))
      out = next
      answers.push(...answered)
      if (key.startsWith("join:")) dropped.push(key.slice("join:".length))
    }
    return [out, answers, dropped]
  }
  const refusal = frame.message === undefined ? undefined : Message.parseRoomRefusal(frame.message)
  if (refusal === undefined) return [tx, [], []]
  if (refusal.kind === "removed") return [tx, [], [refusal.room]]
  const key = `join:${refusal.room}`
  const [out, answers] = answerRooms(tx, key, fail(key))
  return [out, answers, [refusal.room]]
}

/**
 * Empties everything (the client stopped): the tickets whose senders must be told.
 *
 * @since 0.2.0
 * @category combinators
 */
export const drain = (tx: Transactions): readonly [Transactions, ReadonlyArray<Ticket>] => [empty, tickets(tx)]
