/**
 * Failures a client user can observe.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Frame from "../protocol/Frame.js"

/**
 * The server refused the `auth` frame (status 401 or 403). A refusal is final: the client does not retry it.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthRefused extends Data.TaggedError("AuthRefused")<{
  readonly status: number
  readonly message: string
}> {}

/**
 * The client can no longer send: it was closed, its authentication was refused, it gave up reconnecting, or it
 * lost its connection with reconnection turned off. Frames waiting to be sent fail with this error rather than
 * being dropped.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientClosed extends Data.TaggedError("ClientClosed")<{
  readonly reason: "Closed" | "AuthRefused" | "GaveUp" | "Disconnected"
  readonly cause?: unknown
}> {
  override get message(): string {
    switch (this.reason) {
      case "Closed":
        return "The client was closed"
      case "AuthRefused":
        return "The server refused authentication"
      case "GaveUp":
        return "The client gave up reconnecting"
      case "Disconnected":
        return "The connection was lost and reconnection is off"
    }
  }
}

/**
 * A transaction (`request`) or an acknowledged room change that did not succeed: no final reply in time, or a
 * final reply whose status is not 200.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestError extends Data.TaggedError("RequestError")<{
  readonly reason: "Timeout" | "Status"
  readonly id: string
  readonly status?: number | undefined
  readonly response?: Frame.Routed | undefined
}> {
  override get message(): string {
    return this.reason === "Timeout"
      ? `No reply to ${this.id} in time`
      : `Request ${this.id} failed with status ${this.status}`
  }
}

/**
 * Why one connection ended. This is the input of the reconnection `Schedule`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionLost extends Data.TaggedError("ConnectionLost")<{
  readonly reason: "Open" | "Refused" | "Closed" | "Shutdown" | "TooLarge"
  /** Whether the connection got as far as `welcome`. */
  readonly wasOnline: boolean
  readonly code?: number | undefined
  readonly status?: number | undefined
  /** `TooLarge`: the size of the frame that went over `maxFrameSize`, when it was read. */
  readonly bytes?: number | undefined
  /** `TooLarge`: the `maxFrameSize` it went over. */
  readonly limit?: number | undefined
  readonly cause?: unknown
  /** What the platform said when the socket could not be opened (a refused connection, an untrusted certificate). */
  readonly detail?: string | undefined
}> {
  override get message(): string {
    switch (this.reason) {
      case "Open":
        return `Could not open the WebSocket${this.detail === undefined ? "" : `: ${this.detail}`}`
      case "Refused":
        return `The server answered the handshake with status ${this.status}`
      case "Closed":
        return `The connection closed${this.code === undefined ? "" : ` (code ${this.code})`}`
      case "Shutdown":
        return "The server shut down"
      case "TooLarge":
        return `The server sent a frame ${
          this.bytes === undefined ? "" : `of ${this.bytes} bytes `
        }over the client's maxFrameSize of ${this.limit} bytes`
    }
  }
}
