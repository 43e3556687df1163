/**
 * One connection's life, as pure values and decisions: the phase the client is in, what a connection learnt from
 * the server (its verdict), why it ended, and the session-resume extension of `welcome`.
 *
 * Resume (an extension; servers without it never send the fields, and ignore `auth.resume`):
 * - `welcome` may carry `resume`, an opaque token for this session. The client keeps the last one.
 * - On reconnection the client sends it as `auth.resume`. A `welcome` with `resumed: true` and the same peer id is
 *   the same session: the server kept its rooms and buffered what was routed to it meanwhile.
 * - Anything else (no `resumed`, `resumed: false`, another id) is a new session.
 * - A token is dropped when the server shuts down, when a `welcome` brings none, and when the client stops.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Option from "effect/Option"
import type * as Frame from "../../protocol/Frame.js"
import type { Json } from "../../protocol/Json.js"
import type * as Peer from "../../protocol/Peer.js"
import { AuthRefused, type ClientClosed, ConnectionLost } from "../ClientError.js"
import { ClientState } from "../ClientState.js"

/**
 * Identifies one connection (one WebSocket); inputs about an older one are stale.
 *
 * @since 0.2.0
 * @category models
 */
export type Conn = number

/**
 * What a connection learnt that decides how it ends.
 *
 * @since 0.2.0
 * @category models
 */
export type Verdict = Data.TaggedEnum<{
  /** Authentication refused (401, 403): final, never retried. */
  Refused: { readonly status: number; readonly message: string }
  /** Another handshake failure (an error frame, a bad welcome, no welcome in time): retried. */
  Rejected: { readonly status: number; readonly message: string }
  /** The server's shutdown notice: a clean close, not resumable. */
  Shutdown: {}
  /** A frame over `maxFrameSize`: the client closed the connection. */
  TooLarge: { readonly bytes: number | undefined }
}>

/**
 * @since 0.2.0
 * @category constructors
 */
export const Verdict = Data.taggedEnum<Verdict>()

/**
 * - `Idle`: not started.
 * - `Connecting`: the socket is opening.
 * - `Authenticating`: the socket is open and `auth` was sent.
 * - `Online`: `welcome` received; `writable` until the socket refuses a write (it is closing).
 * - `Waiting`: the reconnection schedule is running.
 * - `Stopped`: final; everything fails with `error`.
 *
 * @since 0.2.0
 * @category models
 */
export type Phase = Data.TaggedEnum<{
  Idle: {}
  Connecting: { readonly conn: Conn; readonly attempt: number }
  Authenticating: { readonly conn: Conn; readonly attempt: number; readonly verdict: Verdict | undefined }
  Online: {
    readonly conn: Conn
    readonly self: Peer.Peer
    /** The `welcome` that opened the session (its extensions, such as `iceServers`, included). */
    readonly welcome: Frame.Welcome
    readonly writable: boolean
    readonly verdict: Verdict | undefined
  }
  Waiting: { readonly attempt: number; readonly lost: ConnectionLost }
  Stopped: { readonly error: ClientClosed }
}>

/**
 * @since 0.2.0
 * @category constructors
 */
export const Phase = Data.taggedEnum<Phase>()

/**
 * The connection a phase is about, if it has one.
 *
 * @since 0.2.0
 * @category getters
 */
export const connOf = (phase: Phase): Conn | undefined =>
  phase._tag === "Connecting" || phase._tag === "Authenticating" || phase._tag === "Online" ? phase.conn : undefined

/**
 * @since 0.2.0
 * @category guards
 */
export const isShutdownNotice = (event: Frame.Event): boolean =>
  event.name === "shutdown" || event.subtype === "shutdown"

/**
 * Keys a server may put in the peer record of `welcome` that do not belong in this peer's presence: a JavaScript
 * server echoes the whole `auth` frame into it (`"type":"auth"`, `rooms`, `"token":""`, and would echo `resume`).
 */
const foreignKeys = ["token", "rooms", "resume", "resumed"] as const

/**
 * Our own peer record, cleaned of what a server echoed from `auth` (see `../shared/reference/wire-survey.md`,
 * "Server-generated peer object"): no token, no rooms, no resume fields, `type` "Peer" instead of "auth", and
 * `online: true`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const sanitiseSelf = (peer: Peer.Peer): Peer.Peer => {
  const out: Record<string, Json> = { ...peer }
  for (const key of foreignKeys) delete out[key]
  if (out.type === "auth") out.type = "Peer"
  out.online = true
  return out as Peer.Peer
}

/**
 * The resume extension of a `welcome`, read from the parsed frame (the `Welcome` schema does not carry it).
 *
 * @since 0.2.0
 * @category decoding
 */
export const resumeFields = (parsed: unknown): { readonly token: string | undefined; readonly resumed: boolean } => {
  if (typeof parsed !== "object" || parsed === null) return { token: undefined, resumed: false }
  const record = parsed as { readonly resume?: unknown; readonly resumed?: unknown }
  return {
    token: typeof record.resume === "string" && record.resume !== "" ? record.resume : undefined,
    resumed: record.resumed === true
  }
}

const encoder = new TextEncoder()

/**
 * The size of an inbound frame in bytes (UTF-8 for text), counted exactly only when it could be over `limit`.
 *
 * @since 0.2.0
 * @category getters
 */
export const frameSize = (data: string | Uint8Array, limit: number): number => {
  if (typeof data !== "string") return data.byteLength
  // A UTF-16 unit is at most 3 UTF-8 bytes: short text needs no count.
  if (data.length * 3 <= limit) return data.length
  return encoder.encode(data).byteLength
}

/**
 * What the platform said about a socket that did not open: `ws` gives an error event with the reason (a refused
 * connection, an untrusted certificate); a browser's event says nothing.
 *
 * @since 0.2.0
 * @category getters
 */
export const openFailure = (cause: unknown): string | undefined => {
  if (!Cause.isCause(cause)) return undefined
  const error = Cause.findErrorOption(cause)
  if (Option.isNone(error)) return undefined
  const reason = (error.value as {
    readonly reason?: { readonly _tag?: unknown; readonly kind?: unknown; readonly cause?: unknown }
  })
    .reason
  if (reason?._tag !== "SocketOpenError") return undefined
  if (reason.kind === "Timeout") return "timed out"
  const event = reason.cause as
    | { readonly message?: unknown; readonly error?: { readonly message?: unknown } }
    | undefined
  const message = event?.error?.message ?? event?.message
  return typeof message === "string" && message !== "" ? message : undefined
}

/**
 * Why a connection ended, from its phase when the socket closed. An auth refusal ends the client.
 *
 * @since 0.2.0
 * @category constructors
 */
export const ending = (
  phase: Phase,
  close: { readonly code: number | undefined; readonly cause: unknown; readonly overLimit: boolean },
  maxFrameSize: number
): ConnectionLost | AuthRefused => {
  const opened = phase._tag === "Authenticating" || phase._tag === "Online"
  const wasOnline = phase._tag === "Online"
  const verdict = opened ? phase.verdict : undefined
  const { cause, code } = close
  if (verdict?._tag === "Refused") return new AuthRefused({ status: verdict.status, message: verdict.message })
  if (verdict?._tag === "TooLarge" || close.overLimit) {
    const bytes = verdict?._tag === "TooLarge" ? verdict.bytes : undefined
    return new ConnectionLost({ reason: "TooLarge", wasOnline, code, bytes, limit: maxFrameSize })
  }
  if (!opened) return new ConnectionLost({ reason: "Open", wasOnline: false, cause, detail: openFailure(cause) })
  if (verdict?._tag === "Rejected") {
    return new ConnectionLost({ reason: "Refused", wasOnline: false, status: verdict.status, code })
  }
  if (verdict?._tag === "Shutdown") return new ConnectionLost({ reason: "Shutdown", wasOnline, code })
  return new ConnectionLost({ reason: "Closed", wasOnline, code, cause })
}

/**
 * The state shown while the client is offline after `lost`: `Closed` after a clean close (a shutdown notice,
 * close code 1000 or 1001), otherwise `Error`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const offlineState = (lost: ConnectionLost, retrying: boolean): ClientState => {
  const clean = lost.reason === "Shutdown" ||
    (lost.reason === "Closed" && (lost.code === 1000 || lost.code === 1001))
  return clean ? ClientState.Closed() : ClientState.Error({ message: lost.message, status: lost.status, retrying })
}
