/**
 * Semantics of routed frames: responses, transactions, command nodes and events.
 *
 * @since 0.1.0
 */
import type * as Frame from "./Frame.js"

/**
 * A fresh random id: 16 characters of `[0-9A-Za-z]`, never a `|`. Used for message ids and session ids.
 *
 * @since 0.1.0
 * @category constructors
 */
export const randomId = (length = 16): string => {
  if (length > pool.length) return randomChars(globalThis.crypto.getRandomValues(new Uint8Array(length)), 0, length)
  if (poolOffset + length > pool.length) {
    globalThis.crypto.getRandomValues(pool)
    poolOffset = 0
  }
  const out = randomChars(pool, poolOffset, length)
  poolOffset += length
  return out
}

// Random bytes drawn in bulk: one call into the system's generator per 256 ids of the default length, not one per id
// (session ids are made on every connect, message ids on every send).
const pool = new Uint8Array(4096)
let poolOffset = pool.length

const randomChars = (bytes: Uint8Array, offset: number, length: number): string => {
  let out = ""
  for (let i = offset; i < offset + length; i++) out += alphabet[bytes[i]! % 62]
  return out
}
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/**
 * The reply to a routed frame: same `id`, `to` the original sender, `from` the responder when given.
 * Other fields stay as they were, as both reference clients do.
 *
 * @since 0.1.0
 * @category constructors
 */
export const respond = <F extends Frame.Routed>(
  frame: F,
  reply: Partial<Omit<F, "type" | "id" | "to">> = {},
  from?: string
): F => {
  const out: Record<string, unknown> = { ...frame, ...reply }
  if (frame.from === undefined) delete out.to
  else out.to = frame.from
  if (from === undefined) delete out.from
  else out.from = from
  return out as F
}

/**
 * A request is a routed frame with an `id` and no `status`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRequest = (frame: Frame.Routed): boolean => frame.id !== undefined && frame.status === undefined

/**
 * @since 0.1.0
 * @category guards
 */
export const isResponse = (frame: Frame.Routed): boolean => frame.status !== undefined

/**
 * 202 (accepted) and 406 (not acceptable) are progress reports; every other status ends a transaction.
 *
 * @since 0.1.0
 * @category guards
 */
export const isFinalStatus = (status: number): boolean => status !== 202 && status !== 406

/**
 * @since 0.1.0
 * @category guards
 */
export const isSuccess = (status: number): boolean => status === 200

/**
 * The segments of a command node (`media:video:quality`).
 *
 * @since 0.1.0
 * @category commands
 */
export const nodeSegments = (node: string): ReadonlyArray<string> => node.split(":")

/**
 * The n-th (1-based) segment of a command node, if there is one.
 *
 * @since 0.1.0
 * @category commands
 */
export const param = (node: string, n: number): string | undefined =>
  Number.isInteger(n) && n >= 1 ? nodeSegments(node)[n - 1] : undefined

/**
 * Wildcard matching of a command node against a pattern: `*` alone matches everything, `*` matches one segment,
 * a trailing `*` also matches deeper nodes, and other segments must be equal.
 *
 * @since 0.1.0
 * @category commands
 */
export const matches = (pattern: string, node: string): boolean => {
  if (pattern === "*") return true
  const want = nodeSegments(pattern)
  const have = nodeSegments(node)
  if (want.length > have.length) return false
  if (have.length > want.length && want[want.length - 1] !== "*") return false
  for (let i = 0; i < want.length; i++) {
    if (want[i] !== "*" && want[i] !== have[i]) return false
  }
  return true
}

/**
 * A command's action: `execute` when absent.
 *
 * @since 0.1.0
 * @category commands
 */
export const action = (command: Frame.Command): string => command.action ?? "execute"

/**
 * Unix time in seconds, as events carry it.
 *
 * @since 0.1.0
 * @category events
 */
export const unixSeconds = (millis: number = Date.now()): number => millis / 1000

/**
 * @since 0.1.0
 * @category constructors
 */
export const message = (fields: Omit<Frame.Message, "type"> = {}): Frame.Message => ({
  type: "message",
  id: randomId(),
  ...fields
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const command = (node: string, fields: Omit<Frame.Command, "type" | "node"> = {}): Frame.Command => ({
  type: "command",
  id: randomId(),
  node,
  action: "execute",
  ...fields
})

/**
 * An event stamped with its creation time (Unix seconds).
 *
 * @since 0.1.0
 * @category constructors
 */
export const event = (
  name: string,
  fields: Omit<Frame.Event, "type" | "name"> = {},
  millis: number = Date.now()
): Frame.Event => ({ type: "event", id: randomId(), name, time: unixSeconds(millis), ...fields })

/**
 * @since 0.1.0
 * @category constructors
 */
export const presence = (fields: Omit<Frame.Presence, "type"> = {}): Frame.Presence => ({
  type: "presence",
  id: randomId(),
  ...fields
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const error = (status: number, message: string): Frame.ErrorFrame => ({ type: "error", status, message })

/**
 * The message of an error that refuses a `join` (`"joined"`), or takes a peer out of a room (`"removed"`). Error
 * frames carry only a status and a message, so the room is named in it, JSON-quoted, for clients to match.
 *
 * @since 0.1.0
 * @category constructors
 */
export const roomRefusal = (kind: "join" | "removed", room: string, reason: string): string =>
  `${kind === "join" ? "Cannot join room" : "Removed from room"} ${JSON.stringify(room)}: ${reason}`

const roomRefusalPattern = /^(Cannot join room|Removed from room) ("(?:[^"\\]|\\.)*")/

/**
 * Reads a message made by `roomRefusal`; `undefined` for any other message.
 *
 * @since 0.1.0
 * @category getters
 */
export const parseRoomRefusal = (
  message: string
): { readonly kind: "join" | "removed"; readonly room: string } | undefined => {
  const match = roomRefusalPattern.exec(message)
  if (match === null) return undefined
  try {
    const room: unknown = JSON.parse(match[2]!)
    return typeof room === "string" ? { kind: match[1] === "Cannot join room" ? "join" : "removed", room } : undefined
  } catch {
    return undefined
  }
}
