/**
 * The server options that `symple-ts serve` takes on its command line: one flag per option, named after it
 * (`maxRoomsPerPeer` is `--max-rooms-per-peer`), and the `SYMPLE_*` variable `ServerConfig.config` reads for it
 * (`SYMPLE_MAX_ROOMS_PER_PEER`). Pure: the flags' values and the environment's go in, server options come out.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as ServerConfig from "../server/ServerConfig.js"

/**
 * How a flag's text is read: `ms` options are durations given in milliseconds, as their variables are.
 *
 * @since 0.2.0
 * @category models
 */
export type Kind = "string" | "int" | "number" | "boolean" | "ms"

/**
 * The options with a flag of their own: every option that is a plain value (the hooks and `routes` are for
 * programs; `tls` has two flags, `--tls-cert` and `--tls-key`; the ICE servers and TURN settings are lists and
 * records, read from their `SYMPLE_*` variables only).
 *
 * @since 0.2.0
 * @category models
 */
export type Flagged = Exclude<
  keyof ServerConfig.ServerOptions,
  "authenticate" | "authorizeJoin" | "routes" | "tls" | "iceServers" | "turn"
>

/**
 * @since 0.2.0
 * @category models
 */
export interface Setting {
  readonly kind: Kind
  /** What the option does, for `--help`. */
  readonly help: string
  /** The default, in words, where `ServerConfig.defaults` has none to print. */
  readonly fallback?: string | undefined
}

/**
 * Every flagged option, in the order `--help` lists them.
 *
 * @since 0.2.0
 * @category constants
 */
export const settings: { readonly [K in Flagged]: Setting } = {
  host: { kind: "string", help: "interface to bind" },
  port: { kind: "int", help: "port to bind; 0 picks a free one" },
  authentication: {
    kind: "boolean",
    help: "token mode: every auth needs a token that the application's hook accepts (from the command alone, with " +
      "no hook, every peer is refused)"
  },
  dynamicRooms: {
    kind: "boolean",
    help: "allow join / leave",
    fallback: "on in anonymous mode, off in token mode"
  },
  maxRoomsPerPeer: { kind: "int", help: "rooms one session may be in, its personal room included" },
  maxRoomNameLength: { kind: "int", help: "longest room name, in UTF-8 bytes" },
  maxConnections: {
    kind: "int",
    help: "open sockets allowed; 0 = unlimited",
    fallback: "the open-file limit less a tenth"
  },
  maxMessageSize: { kind: "int", help: "largest frame in bytes; over it: error 413 and close 1009" },
  maxPayload: { kind: "int", help: "WebSocket hard cap in bytes; 0 = max(4 x max-message-size, 1 MiB)" },
  rateLimit: { kind: "int", help: "frames per peer per rate-seconds (token bucket); 0 disables" },
  rateSeconds: { kind: "number", help: "the rate limit's window in seconds" },
  authTimeout: { kind: "ms", help: "ms from connecting to a successful auth" },
  pingInterval: { kind: "ms", help: "ms between WebSocket pings that find dead peers; 0 disables" },
  mailboxSize: { kind: "int", help: "frames queued for a slow peer before it is closed (1013)" },
  maxQueuedBytes: { kind: "int", help: "bytes waiting for one peer before it is closed (1013); 0 = no limit" },
  maxOutboundBytes: {
    kind: "int",
    help: "bytes waiting for all peers together; over it the slowest are closed (1013); 0 = no limit"
  },
  maxAuthFailures: { kind: "int", help: "refused auth attempts per connection, then close 1008; 0 = unlimited" },
  authFailureDelay: { kind: "ms", help: "ms before a refused auth is answered" },
  preAuthFrames: { kind: "int", help: "frames allowed before auth; one more: error 429 and close 1008" },
  headersTimeout: { kind: "ms", help: "ms to receive a request's (or upgrade's) headers; 0 = no limit" },
  requestTimeout: { kind: "ms", help: "ms to receive a whole request; 0 = no limit" },
  highWaterMark: { kind: "int", help: "socket bytes above which a peer's mailbox stops draining into it" },
  shutdownTimeout: { kind: "ms", help: "ms a closing peer has to acknowledge the close" },
  resumeWindow: {
    kind: "ms",
    help: "ms a session whose connection dropped is held for its peer to resume it; 0 disables resume"
  },
  resumeBufferSize: { kind: "int", help: "frames held for a detached session; one more ends it" },
  resumeBufferBytes: { kind: "int", help: "bytes held for a detached session; over it, it ends; 0 = no limit" }
}

/**
 * `maxRoomsPerPeer` -> `max-rooms-per-peer`.
 *
 * @since 0.2.0
 * @category names
 */
export const flagName = (option: string): string => option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

/**
 * `maxRoomsPerPeer` -> `SYMPLE_MAX_ROOMS_PER_PEER`, the name `ServerConfig.config` reads it under.
 *
 * @since 0.2.0
 * @category names
 */
export const variableName = (option: string): string =>
  `SYMPLE_${option.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`

const shown = (kind: Kind, value: unknown): string => {
  if (kind === "ms") return String(Duration.toMillis(Duration.fromInputUnsafe(value as Duration.Input)))
  return typeof value === "string" ? JSON.stringify(value) : String(value)
}

/**
 * The `--help` text of an option: what it does, its default and its variable.
 *
 * @since 0.2.0
 * @category help
 */
export const describe = (option: Flagged, defaults: ServerConfig.ServerOptions): string => {
  const setting = settings[option]
  const value = defaults[option]
  const fallback = setting.fallback ?? (value === undefined ? "none" : shown(setting.kind, value))
  return `${setting.help} (default: ${fallback}; ${variableName(option)})`
}

/**
 * Options that are counts, sizes or durations cannot be negative; a port is at most 65535; a rate window is
 * positive. Says what is wrong with the first bad value, naming it as the user gave it (flag or variable).
 *
 * @since 0.2.0
 * @category validation
 */
export const validate = (
  options: Partial<ServerConfig.ServerOptions>,
  givenAs: (option: Flagged) => string
): Result.Result<Partial<ServerConfig.ServerOptions>, string> => {
  for (const option of Object.keys(settings) as Array<Flagged>) {
    const value = options[option]
    if (typeof value !== "number") continue
    const kind = settings[option].kind
    if (!Number.isFinite(value) || value < 0) {
      return Result.fail(`${givenAs(option)} must be a number of at least 0, got ${value}`)
    }
    if (kind !== "number" && !Number.isInteger(value)) {
      return Result.fail(`${givenAs(option)} must be a whole number, got ${value}`)
    }
    if (option === "port" && value > 65535) return Result.fail(`${givenAs(option)} must be at most 65535, got ${value}`)
    if (option === "rateSeconds" && value === 0) return Result.fail(`${givenAs(option)} must be more than 0`)
  }
  return Result.succeed(options)
}

/**
 * The flags' values over the environment's: a flag that was given wins, one that was not leaves the variable's
 * value (or the default) in place.
 *
 * @since 0.2.0
 * @category constructors
 */
export const merge = (
  env: Partial<ServerConfig.ServerOptions>,
  flags: { readonly [K in Flagged]?: Option.Option<unknown> }
): Partial<ServerConfig.ServerOptions> => {
  const out: Record<string, unknown> = { ...env }
  for (const [option, value] of Object.entries(flags)) {
    if (value !== undefined && Option.isSome(value)) out[option] = value.value
  }
  return out as Partial<ServerConfig.ServerOptions>
}
