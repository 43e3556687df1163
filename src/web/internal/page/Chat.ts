/**
 * Chat as the demo page speaks it: `message` frames with `subtype: "chat"` and `data.text`, the shape of the
 * JavaScript client (`../shared/reference/wire-survey.md` §4.4), to a room name or to a peer's full address. Pure:
 * what a frame means for the chat log, and the frame a chat line is sent as.
 *
 * @since 0.2.0
 */
import * as Option from "effect/Option"
import * as Address from "../../../protocol/Address.js"
import * as Call from "../../../protocol/Call.js"
import type * as Frame from "../../../protocol/Frame.js"
import { isObject } from "../../../protocol/Json.js"
import * as Message from "../../../protocol/Message.js"

/**
 * One line of the chat log: to a room (everyone in it reads it) or direct (to one session).
 *
 * @since 0.2.0
 * @category models
 */
export interface Line {
  readonly kind: "room" | "direct"
  /** The sender's full address. */
  readonly from: string
  /** The room, or the recipient's full address. */
  readonly to: string
  readonly text: string
}

/**
 * The text a message carries: `data.text` (the JavaScript client's chat), or `data` itself when it is a string.
 *
 * @since 0.2.0
 * @category decoding
 */
export const textOf = (data: unknown): Option.Option<string> => {
  if (typeof data === "string") return Option.some(data)
  return isObject(data) && typeof data.text === "string" ? Option.some(data.text) : Option.none()
}

/**
 * What a received message shows in the log: none for call signalling, frames without a sender or without text. A
 * message with no `to` (sent to everyone sharing a room) counts as a room line.
 *
 * @since 0.2.0
 * @category decoding
 */
export const lineOf = (frame: Frame.Message): Option.Option<Line> => {
  if (Option.isSome(Call.actionOf(frame.subtype)) || typeof frame.from !== "string") return Option.none()
  const from = frame.from
  const to = typeof frame.to === "string" ? frame.to : Array.isArray(frame.to) ? frame.to.join(", ") : ""
  const kind = typeof frame.to === "string" && Address.hasSeparator(frame.to) ? "direct" : "room"
  return Option.map(textOf(frame.data), (text): Line => ({ kind, from, to, text }))
}

/**
 * The frame for a chat line to `to` (a room name or a full `user|id` address).
 *
 * @since 0.2.0
 * @category encoding
 */
export const message = (to: string, text: string): Frame.Message =>
  Message.message({ to, subtype: "chat", data: { text } })
