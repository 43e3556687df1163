/**
 * Owns the server's answers to one peer: a frame for it alone, an error frame that leaves the connection open, and
 * an error frame followed by a close.
 *
 * @since 0.2.0
 * @internal
 */
import type * as Frame from "../../protocol/Frame.js"
import * as Message from "../../protocol/Message.js"
import type { Connection } from "./connection.js"
import { add } from "./counters.js"
import type { Hub } from "./hub.js"
import { encode } from "./socketWriter.js"

/**
 * A frame for this peer alone.
 *
 * @since 0.2.0
 * @internal
 */
export const reply = (connection: Connection, frame: Frame.Frame): boolean => {
  add(connection.hub.stats.framesOut, frame.type)
  return connection.offer(encode(frame))
}

/** An error frame before authentication is a failed handshake: counted by status. */
const countRefusal = (hub: Hub, connection: Connection, status: number): void => {
  hub.stats.refused++
  if (connection.online() === undefined) add(hub.stats.authFailures, String(status))
}

/**
 * Error frame, then close once it is written.
 *
 * @since 0.2.0
 * @internal
 */
export const refuse = (
  hub: Hub,
  connection: Connection,
  status: number,
  message: string,
  code: number
): "closing" => {
  countRefusal(hub, connection, status)
  add(hub.stats.framesOut, "error")
  if (connection.offer(encode(Message.error(status, message)))) connection.offer({ code, reason: message })
  return "closing"
}

/**
 * Error frame; the connection stays open.
 *
 * @since 0.2.0
 * @internal
 */
export const answer = (hub: Hub, connection: Connection, status: number, message: string): undefined => {
  countRefusal(hub, connection, status)
  reply(connection, Message.error(status, message))
  return undefined
}

/**
 * Error 400; the connection stays open.
 *
 * @since 0.2.0
 * @internal
 */
export const badRequest = (hub: Hub, connection: Connection, message: string): undefined =>
  answer(hub, connection, 400, message)
