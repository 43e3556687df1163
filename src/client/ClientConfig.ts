/**
 * Client options, their defaults, and the frames derived from them (`auth`, the default reconnection schedule).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import type * as Frame from "../protocol/Frame.js"
import type { JsonObject } from "../protocol/Json.js"
import type * as Peer from "../protocol/Peer.js"
import type { ConnectionLost } from "./ClientError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** Full server URL; a leading `http` is replaced with `ws` (as the JavaScript client does). */
  readonly url?: string | undefined
  /** Used when `url` is absent. Default `localhost`. */
  readonly host?: string | undefined
  /** Used when `url` is absent. Default 4500. */
  readonly port?: number | undefined
  /** `wss` instead of `ws` when `url` is absent. */
  readonly secure?: boolean | undefined
  readonly user: string
  readonly name?: string | undefined
  /** Sent as `auth.data.peerType`. */
  readonly type?: string | undefined
  readonly token?: string | undefined
  /** Extra fields for `auth.data` (they become fields of this peer on a conforming server). */
  readonly data?: JsonObject | undefined
  /** Rooms this client wants to be in; kept across reconnections and updated by `joinRoom` / `leaveRoom`. */
  readonly rooms?: ReadonlyArray<string> | undefined
  /** Default true. */
  readonly reconnection?: boolean | undefined
  /** First reconnection delay; later ones grow exponentially (jittered) up to `reconnectMaxDelay`. Default 3 s. */
  readonly reconnectDelay?: Duration.Input | undefined
  /** Default 30 s (never below `reconnectDelay`). */
  readonly reconnectMaxDelay?: Duration.Input | undefined
  /** Reconnection attempts after each loss of connection; 0 means unlimited. Default 0. */
  readonly reconnectAttempts?: number | undefined
  /** Replaces the default reconnection policy. It is reset each time the client gets online. */
  readonly reconnectSchedule?: Schedule.Schedule<unknown, ConnectionLost> | undefined
  /** How long opening the WebSocket may take, then how long the server may take to answer `auth`. Default 10 s. */
  readonly openTimeout?: Duration.Input | undefined
  /** Default timeout of `request`, `joinRoom` and `leaveRoom`. Default 10 s. */
  readonly requestTimeout?: Duration.Input | undefined
  /** Adds application fields to every presence this client sends (the peer's own fields win). */
  readonly createPresence?: ((peer: Peer.Peer) => JsonObject) | undefined
  /** Answer command requests that no `onCommand` route matches with status 404. Default true. */
  readonly answerUnhandledCommands?: boolean | undefined
  /**
   * How long peers known before a reconnection may stay in the roster, marked pending, without being seen again
   * after a `welcome` that did not resume the session. 0 empties the roster whenever the connection is lost.
   * Default 10 s.
   */
  readonly rosterGracePeriod?: Duration.Input | undefined
  /** Bytes of one inbound frame; a larger one closes the connection (`ConnectionLost` reason `TooLarge`). 0 = no limit.
   * Default 1 MiB. */
  readonly maxFrameSize?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ResolvedConfig {
  readonly url: string
  readonly user: string
  readonly name: string | undefined
  readonly type: string | undefined
  readonly token: string | undefined
  readonly data: JsonObject | undefined
  readonly rooms: ReadonlyArray<string>
  readonly reconnection: boolean
  readonly reconnectSchedule: Schedule.Schedule<unknown, ConnectionLost>
  readonly openTimeout: Duration.Duration
  readonly requestTimeout: Duration.Duration
  readonly createPresence: ((peer: Peer.Peer) => JsonObject) | undefined
  readonly answerUnhandledCommands: boolean
  readonly rosterGracePeriod: Duration.Duration
  readonly maxFrameSize: number
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  host: "localhost",
  port: 4500,
  reconnectDelay: Duration.seconds(3),
  reconnectMaxDelay: Duration.seconds(30),
  openTimeout: Duration.seconds(10),
  requestTimeout: Duration.seconds(10),
  rosterGracePeriod: Duration.seconds(10),
  maxFrameSize: 1024 * 1024
} as const

/**
 * @since 0.1.0
 * @category constructors
 */
export const url = (options: Pick<ClientOptions, "url" | "host" | "port" | "secure">): string => {
  if (options.url !== undefined) return options.url.replace(/^http/i, "ws")
  const host = options.host ?? defaults.host
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host
  return `${options.secure === true ? "wss" : "ws"}://${bracketed}:${options.port ?? defaults.port}/`
}

/**
 * Exponential from `delay` (factor 2), capped at `maxDelay`, jittered (x0.8..x1.2), and limited to `attempts`
 * recurrences when `attempts > 0`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const reconnectSchedule = (
  delay: Duration.Input,
  maxDelay: Duration.Input,
  attempts: number
): Schedule.Schedule<unknown, ConnectionLost> => {
  const base = Duration.fromInputUnsafe(delay)
  const cap = Duration.max(base, Duration.fromInputUnsafe(maxDelay))
  // `min` keeps the shorter delay (the exponential one, capped); `max` with `recurs` stops after `attempts`.
  const capped = Schedule.jittered(Schedule.min([Schedule.exponential(base, 2), Schedule.spaced(cap)]))
  return attempts > 0 ? Schedule.max([capped, Schedule.recurs(attempts)]) : capped
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: ClientOptions): ResolvedConfig => ({
  url: url(options),
  user: options.user,
  name: options.name,
  type: options.type,
  token: options.token,
  data: options.data,
  rooms: dedupe(options.rooms ?? []),
  reconnection: options.reconnection ?? true,
  reconnectSchedule: options.reconnectSchedule ?? reconnectSchedule(
    options.reconnectDelay ?? defaults.reconnectDelay,
    options.reconnectMaxDelay ?? defaults.reconnectMaxDelay,
    Math.max(0, Math.floor(options.reconnectAttempts ?? 0))
  ),
  openTimeout: Duration.fromInputUnsafe(options.openTimeout ?? defaults.openTimeout),
  requestTimeout: Duration.fromInputUnsafe(options.requestTimeout ?? defaults.requestTimeout),
  createPresence: options.createPresence,
  answerUnhandledCommands: options.answerUnhandledCommands ?? true,
  rosterGracePeriod: Duration.fromInputUnsafe(options.rosterGracePeriod ?? defaults.rosterGracePeriod),
  maxFrameSize: Math.max(0, Math.floor(options.maxFrameSize ?? defaults.maxFrameSize))
})

const dedupe = (rooms: ReadonlyArray<string>): ReadonlyArray<string> =>
  Array.from(new Set(rooms.filter((room) => room !== "")))

/**
 * An `auth` frame that may carry the session-resume extension: `resume` is the token of the last `welcome`.
 *
 * @since 0.2.0
 * @category models
 */
export type Auth = Frame.Auth & { readonly resume?: string }

/**
 * The `auth` frame, as the C++ client builds it: no empty `name` or `token`, `data.peerType` when a type is set,
 * and `rooms` (the desired rooms) when there are any; plus `resume` when the client holds a resume token (a server
 * without the extension ignores the field).
 *
 * @since 0.1.0
 * @category constructors
 */
export const authFrame = (
  config: ResolvedConfig,
  desiredRooms: ReadonlyArray<string>,
  resume?: string | undefined
): Auth => {
  const data: Record<string, JsonObject[string]> = { ...config.data }
  if (config.type !== undefined && config.type !== "") data.peerType = config.type
  return {
    type: "auth",
    user: config.user,
    ...(config.name !== undefined && config.name !== "" ? { name: config.name } : {}),
    ...(config.token !== undefined && config.token !== "" ? { token: config.token } : {}),
    ...(Object.keys(data).length > 0 ? { data } : {}),
    ...(desiredRooms.length > 0 ? { rooms: desiredRooms } : {}),
    ...(resume !== undefined && resume !== "" ? { resume } : {})
  }
}
