/**
 * The frames waiting to be written, in send order, as an immutable value.
 *
 * A frame leaves the outbox only once the socket took it (or its sender gave up, or the client stopped), so neither
 * a reconnection nor a write refused by a closing socket can lose one, and none is written twice: the head is
 * handed to the socket alone (`begin`), and stays at the head until the write is confirmed (`written`) or refused
 * (`refused`, then it waits for the next session).
 *
 * A frame is rendered when it is written, for the session that writes it: `from` is that session's address.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import type * as Frame from "../../protocol/Frame.js"
import type { Json, JsonObject } from "../../protocol/Json.js"
import * as Message from "../../protocol/Message.js"
import * as Peer from "../../protocol/Peer.js"

/**
 * Identifies one call of the client's API (a send, a request, a room change, a close) until it is answered.
 *
 * @since 0.2.0
 * @category models
 */
export type Ticket = number

/**
 * What to write, before it knows the session that writes it.
 *
 * @since 0.2.0
 * @category models
 */
export type Payload = Data.TaggedEnum<{
  /** A routed frame: `from` is set when written (its `id`, and an event's `time`, were set when it was sent). */
  Routed: { readonly frame: Frame.Routed }
  /** An answer to `frame`: same `id`, `to` = its `from`. */
  Respond: { readonly frame: Frame.Routed; readonly reply: Partial<Omit<Frame.Routed, "type" | "id" | "to">> }
  /** This session's presence. */
  Presence: { readonly to: string | ReadonlyArray<string> | undefined; readonly probe: boolean }
}>

/**
 * @since 0.2.0
 * @category constructors
 */
export const Payload = Data.taggedEnum<Payload>()

/**
 * @since 0.2.0
 * @category models
 */
export interface Item {
  readonly ticket: Ticket
  readonly payload: Payload
  /** Whether the write answers the ticket (a request's ticket waits for the reply instead). */
  readonly answers: boolean
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Outbox {
  readonly items: ReadonlyArray<Item>
  /** The head while the socket is writing it, rendered. */
  readonly writing: { readonly ticket: Ticket; readonly frame: Frame.Frame } | undefined
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const empty: Outbox = { items: [], writing: undefined }

/**
 * @since 0.2.0
 * @category combinators
 */
export const push = (outbox: Outbox, item: Item): Outbox => ({ ...outbox, items: [...outbox.items, item] })

/**
 * Takes a frame out because its sender gave up on it. The head being written stays until its write is confirmed.
 *
 * @since 0.2.0
 * @category combinators
 */
export const withdraw = (outbox: Outbox, ticket: Ticket): Outbox =>
  ticket === outbox.writing?.ticket || !outbox.items.some((item) => item.ticket === ticket)
    ? outbox
    : { ...outbox, items: outbox.items.filter((item) => item.ticket !== ticket) }

/**
 * Whether `ticket`'s frame is still waiting here to be written (being written included).
 *
 * @since 0.2.0
 * @category getters
 */
export const holds = (outbox: Outbox, ticket: Ticket): boolean => outbox.items.some((item) => item.ticket === ticket)

/**
 * The head, when it may be handed to the socket now (nothing is being written).
 *
 * @since 0.2.0
 * @category getters
 */
export const next = (outbox: Outbox): Item | undefined => outbox.writing === undefined ? outbox.items[0] : undefined

/**
 * The head, rendered as `frame`, is being written.
 *
 * @since 0.2.0
 * @category combinators
 */
export const begin = (outbox: Outbox, ticket: Ticket, frame: Frame.Frame): Outbox => ({
  ...outbox,
  writing: { ticket, frame }
})

/**
 * The head being written leaves the outbox: the socket took it, or it could not be written at all. Returns the
 * item and the frame written, or nothing when `ticket` was not the head being written (a stale confirmation
 * changes nothing).
 *
 * @since 0.2.0
 * @category combinators
 */
export const written = (
  outbox: Outbox,
  ticket: Ticket
): readonly [Outbox, { readonly item: Item; readonly frame: Frame.Frame } | undefined] => {
  const head = outbox.items[0]
  const writing = outbox.writing
  if (writing?.ticket !== ticket || head?.ticket !== ticket) return [outbox, undefined]
  return [{ items: outbox.items.slice(1), writing: undefined }, { item: head, frame: writing.frame }]
}

/**
 * The socket refused the head (it is closing): the head stays for the next session, which renders it again.
 *
 * @since 0.2.0
 * @category combinators
 */
export const refused = (outbox: Outbox): Outbox =>
  outbox.writing === undefined ? outbox : { ...outbox, writing: undefined }

/**
 * Empties the outbox (the client stopped): the items whose senders must be told.
 *
 * @since 0.2.0
 * @category combinators
 */
export const drain = (outbox: Outbox): readonly [Outbox, ReadonlyArray<Item>] => [empty, outbox.items]

/**
 * Application fields for this session's presence (the `createPresence` option). A hook that throws adds nothing:
 * presence, and the probe answers that keep other rosters right, must still go out.
 *
 * @since 0.2.0
 * @category models
 */
export type PresenceFields = (self: Peer.Peer) => JsonObject | undefined

/**
 * This session's presence: its peer record, the application's fields (the record's own keys win), `online: true`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const presence = (
  self: Peer.Peer,
  fields: PresenceFields | undefined,
  options: { readonly to?: string | ReadonlyArray<string> | undefined; readonly probe?: boolean | undefined } = {}
): Frame.Presence => {
  const extra: Record<string, Json> = {}
  try {
    Object.assign(extra, fields?.(self))
  } catch {
    // See PresenceFields.
  }
  for (const key of Peer.reservedKeys) delete extra[key]
  return Message.presence({
    from: Peer.address(self),
    data: { ...self, ...extra, online: true },
    ...(options.to === undefined ? {} : { to: options.to }),
    ...(options.probe === true ? { probe: true } : {})
  })
}

/**
 * The frame a payload becomes when `self` writes it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const render = (payload: Payload, self: Peer.Peer, fields: PresenceFields | undefined): Frame.Frame => {
  switch (payload._tag) {
    case "Routed":
      return { ...payload.frame, from: Peer.address(self) }
    case "Respond":
      return Message.respond(payload.frame, payload.reply, Peer.address(self))
    case "Presence":
      return presence(self, fields, payload)
  }
}
