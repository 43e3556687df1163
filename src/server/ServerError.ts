/**
 * Why a server could not start, or an API call was refused.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"

/**
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Data.TaggedError("ServerError")<{
  readonly reason: "Listen" | "Routes" | "Tls" | "DuplicatePeer" | "InvalidPeer"
  readonly message: string
  readonly cause?: unknown
}> {}
