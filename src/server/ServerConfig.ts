/**
 * Server options, their defaults, and how to read them from the environment.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as HttpRouter from "effect/http/HttpRouter"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import type { IceServer } from "../protocol/IceServer.js"
import type { AuthHook } from "./Authenticator.js"
import type * as IceServers from "./IceServers.js"
import type { JoinHook } from "./JoinPolicy.js"

/**
 * HTTP routes for the server's port: a Layer of `effect/http/HttpRouter` routes, such as
 * `HttpRouter.add("GET", "/hello", handler)`, several merged with `Layer.mergeAll`. What the handlers need must be
 * provided first (`Layer.provide`); a handler may fail, which answers 500 (an unknown path gets 404). The server
 * builds the layer with a router of its own, alongside the built-in `GET /health`, `GET /ready` and `GET /metrics`
 * (and `GET /ice` when ICE servers are configured). `GET /` answers 426 (connect with a WebSocket) unless a route
 * serves it, as the demo page does (`DemoPage.layer`).
 *
 * @since 0.2.0
 * @category models
 */
export type Routes = Layer.Layer<never, never, HttpRouter.HttpRouter | HttpRouter.Request<"Error", unknown>>

/**
 * A certificate and its private key, each as PEM text or as the path of a PEM file.
 *
 * @since 0.2.0
 * @category models
 */
export interface Tls {
  readonly cert: string | Uint8Array
  readonly key: string | Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  /** Interface to bind. */
  readonly host: string
  /** Port to bind; 0 picks a free one (read it back from `SympleServer.port`). */
  readonly port: number
  /** Token mode: every `auth` must carry a token that `authenticate` accepts. */
  readonly authentication: boolean
  /** Decides who may connect, with which rooms and peer fields. Runs in both modes when given. */
  readonly authenticate: AuthHook | undefined
  /**
   * Whether peers may `join` and `leave` rooms after auth. Unset: on in anonymous mode; in token mode only when an
   * `authorizeJoin` hook (or a custom `JoinPolicy` layer) decides, since there rooms carry the hook's grants.
   */
  readonly dynamicRooms: boolean | undefined
  /**
   * Decides whether a peer may join a room (after the built-in rule that nobody joins another user's personal
   * room). Unset: every join the `dynamicRooms` setting allows.
   */
  readonly authorizeJoin: JoinHook | undefined
  /** Rooms one session may be in at once (its personal room included); over it, `join` gets error 400. */
  readonly maxRoomsPerPeer: number
  /** Longest room name in UTF-8 bytes, for `join` and `auth.rooms`; longer names get error 400. */
  readonly maxRoomNameLength: number
  /**
   * Open sockets allowed at once, authenticated or not; 0 = unlimited. Unset: the process's open-file limit less a
   * tenth (at least 64) kept for the listener, HTTP requests and the `503` answers themselves; unlimited where the
   * limit cannot be read.
   */
  readonly maxConnections: number | undefined
  /** Largest accepted frame in bytes; larger ones get `error 413` and close 1009. */
  readonly maxMessageSize: number
  /**
   * Hard cap enforced by the WebSocket layer before a frame is buffered (close 1009 without an error frame).
   * 0 = four times `maxMessageSize`, at least 1 MiB.
   */
  readonly maxPayload: number
  /** Frames a peer may send per `rateSeconds` (token bucket, starts full); 0 disables rate limiting. */
  readonly rateLimit: number
  readonly rateSeconds: number
  /** Time allowed between the socket opening and a successful `auth`. */
  readonly authTimeout: Duration.Input
  /** WebSocket ping period used to find dead peers; 0 disables pings. */
  readonly pingInterval: Duration.Input
  /** Outbound frames queued per peer; a peer whose queue overflows is closed with 1013. */
  readonly mailboxSize: number
  /**
   * Outbound bytes one peer may have waiting (its mailbox plus what its socket has buffered); a peer over it is
   * closed with 1013.
   */
  readonly maxQueuedBytes: number
  /**
   * Outbound bytes all peers together may have waiting; over it, the peers with the most waiting are closed with
   * 1013 until the total is back under it. 0 = no global budget.
   */
  readonly maxOutboundBytes: number
  /** Failed `auth` attempts a connection may make; the last one is followed by close 1008. 0 = unlimited. */
  readonly maxAuthFailures: number
  /** How long the answer to a failed `auth` is held back (later frames wait behind it). */
  readonly authFailureDelay: Duration.Input
  /** Frames a connection may send before it is authenticated; one more gets error 429 and close 1008. */
  readonly preAuthFrames: number
  /**
   * Time allowed to receive the HTTP headers of a request or upgrade (Node's `headersTimeout`), at most
   * `requestTimeout`; 0 = no limit. A connection that takes longer gets 408 and is closed.
   */
  readonly headersTimeout: Duration.Input
  /** Time allowed to receive a whole HTTP request (Node's `requestTimeout`); 0 = no limit. */
  readonly requestTimeout: Duration.Input
  /** Bytes buffered in a peer's socket above which its writer stops draining the mailbox until the socket drains. */
  readonly highWaterMark: number
  /** How long a closing peer (shutdown, refused, too slow) may take to acknowledge the close before it is dropped. */
  readonly shutdownTimeout: Duration.Input
  /**
   * How long a session whose connection ended without a close (the socket dropped, no answer to pings) is held for
   * its peer to resume it with the `resume` token of its last `welcome`: it keeps its id and rooms, its neighbours
   * see nothing, and what is routed to it waits. 0 disables resume (and `welcome` carries no token).
   */
  readonly resumeWindow: Duration.Input
  /** Frames held for a detached session; one more ends the session (as a slow consumer). */
  readonly resumeBufferSize: number
  /** Bytes held for a detached session; over it the session ends (as a slow consumer). 0 = no limit of its own. */
  readonly resumeBufferBytes: number
  /**
   * Extra HTTP routes served on the same port (`GET /health`, `/ready` and `/metrics` are built in; `GET /` is 426
   * unless routed): see `Routes`.
   */
  readonly routes: Routes | undefined
  /** Serve wss:// and https:// (instead of ws:// and http://) on the port, with this certificate. */
  readonly tls: Tls | undefined
  /**
   * ICE servers handed to every client as they are (STUN servers, or TURN servers with fixed credentials): in the
   * `welcome` (extension field `iceServers`) and from `GET /ice`. See `IceServers`.
   */
  readonly iceServers: ReadonlyArray<IceServer> | undefined
  /**
   * A TURN server that shares a secret with this one (coturn's `use-auth-secret`): each client gets credentials of
   * its own, minted for its user and valid for `ttl`, after the `iceServers`. See `IceServers`.
   */
  readonly turn: IceServers.TurnOptions | undefined
  /**
   * `redis://host:port` of the Redis that several server processes share to act as one (see `symple-ts/redis`);
   * unset: this process alone, everything in memory.
   */
  readonly redis: string | undefined
  /**
   * With `redis`: how long a node that stops sending heartbeats is still taken as alive; its sessions then go
   * offline to their neighbours on the other nodes.
   */
  readonly redisTtl: Duration.Input
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults: ServerOptions = {
  host: "0.0.0.0",
  port: 4500,
  authentication: false,
  authenticate: undefined,
  dynamicRooms: undefined,
  authorizeJoin: undefined,
  maxRoomsPerPeer: 100,
  maxRoomNameLength: 256,
  maxConnections: undefined,
  maxMessageSize: 65536,
  maxPayload: 0,
  rateLimit: 100,
  rateSeconds: 10,
  authTimeout: Duration.seconds(10),
  pingInterval: Duration.seconds(30),
  mailboxSize: 1024,
  maxQueuedBytes: 4 * 1024 * 1024,
  maxOutboundBytes: 256 * 1024 * 1024,
  maxAuthFailures: 3,
  authFailureDelay: Duration.millis(100),
  preAuthFrames: 10,
  headersTimeout: Duration.seconds(5),
  requestTimeout: Duration.seconds(10),
  highWaterMark: 1024 * 1024,
  shutdownTimeout: Duration.seconds(2),
  resumeWindow: Duration.seconds(30),
  resumeBufferSize: 1024,
  resumeBufferBytes: 1024 * 1024,
  routes: undefined,
  tls: undefined,
  iceServers: undefined,
  turn: undefined,
  redis: undefined,
  redisTtl: Duration.seconds(10)
}

/**
 * Options after defaults, with durations in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved extends ServerOptions {
  /** `dynamicRooms` as set, or what it means when unset (see `ServerOptions.dynamicRooms`). */
  readonly dynamicRooms: boolean
  /** `maxConnections` as set, or what it means when unset (see `ServerOptions.maxConnections`). */
  readonly maxConnections: number
  readonly authTimeoutMillis: number
  readonly authFailureDelayMillis: number
  readonly headersTimeoutMillis: number
  readonly requestTimeoutMillis: number
  readonly pingIntervalMillis: number
  readonly shutdownTimeoutMillis: number
  readonly resumeWindowMillis: number
  readonly hardPayloadLimit: number
}

/**
 * The soft limit on open files of this process, where the platform tells (Linux's `/proc/self/limits`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const openFileLimit = (): number | undefined => {
  try {
    const line = Fs.readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"))
    const soft = line === undefined ? Number.NaN : Number(line.slice("Max open files".length).trim().split(/\s+/)[0])
    return Number.isFinite(soft) && soft > 0 ? soft : undefined
  } catch {
    return undefined
  }
}

/**
 * The connections allowed under an open-file limit: a tenth of it, at least 64, stays free for everything else
 * (past the limit a process can accept nothing, not even `/health` or the `503` that refuses a connection).
 *
 * @since 0.1.0
 * @category constructors
 */
export const connectionsWithin = (fileLimit: number | undefined): number =>
  fileLimit === undefined ? 0 : Math.max(1, fileLimit - Math.max(64, Math.ceil(fileLimit / 10)))

const defined = <A extends object>(options: A): Partial<A> =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<A>

/**
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: Partial<ServerOptions> = {}): Resolved => {
  const merged: ServerOptions = { ...defaults, ...defined(options) }
  const millis = (d: Duration.Input) => Duration.toMillis(Duration.fromInputUnsafe(d))
  return {
    ...merged,
    dynamicRooms: merged.dynamicRooms ?? (!merged.authentication || merged.authorizeJoin !== undefined),
    maxConnections: merged.maxConnections ?? connectionsWithin(openFileLimit()),
    authTimeoutMillis: millis(merged.authTimeout),
    authFailureDelayMillis: millis(merged.authFailureDelay),
    headersTimeoutMillis: millis(merged.headersTimeout),
    requestTimeoutMillis: millis(merged.requestTimeout),
    pingIntervalMillis: millis(merged.pingInterval),
    shutdownTimeoutMillis: millis(merged.shutdownTimeout),
    resumeWindowMillis: millis(merged.resumeWindow),
    hardPayloadLimit: merged.maxPayload > 0
      ? Math.max(merged.maxPayload, merged.maxMessageSize)
      : Math.max(4 * merged.maxMessageSize, 1024 * 1024)
  }
}

const opt = <A>(config: Config.Config<A>) => Config.option(config)

const urlsOf = (text: string): ReadonlyArray<string> =>
  text.split(",").map((url) => url.trim()).filter((url) => url !== "")

/** Effect's `Config.Port` refuses 0, which is how a server asks for any free port. */
const port = Config.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })), "PORT")

const tlsFiles = Config.all({ cert: opt(Config.String("TLS_CERT")), key: opt(Config.String("TLS_KEY")) })

/** Each option's variable (its name under `SYMPLE_`), read as `Option.none()` when unset. */
const variables: { readonly [K in keyof ServerOptions]?: Config.Config<Option.Option<ServerOptions[K]>> } = {
  host: opt(Config.String("HOST")),
  port: opt(port),
  authentication: opt(Config.Boolean("AUTHENTICATION")),
  dynamicRooms: opt(Config.Boolean("DYNAMIC_ROOMS")),
  maxConnections: opt(Config.Int("MAX_CONNECTIONS")),
  maxMessageSize: opt(Config.Int("MAX_MESSAGE_SIZE")),
  rateLimit: opt(Config.Int("RATE_LIMIT")),
  rateSeconds: opt(Config.Number("RATE_SECONDS")),
  authTimeout: opt(Config.Int("AUTH_TIMEOUT")),
  pingInterval: opt(Config.Int("PING_INTERVAL")),
  mailboxSize: opt(Config.Int("MAILBOX_SIZE")),
  maxRoomsPerPeer: opt(Config.Int("MAX_ROOMS_PER_PEER")),
  maxRoomNameLength: opt(Config.Int("MAX_ROOM_NAME_LENGTH")),
  maxQueuedBytes: opt(Config.Int("MAX_QUEUED_BYTES")),
  maxOutboundBytes: opt(Config.Int("MAX_OUTBOUND_BYTES")),
  maxAuthFailures: opt(Config.Int("MAX_AUTH_FAILURES")),
  authFailureDelay: opt(Config.Int("AUTH_FAILURE_DELAY")),
  preAuthFrames: opt(Config.Int("PRE_AUTH_FRAMES")),
  headersTimeout: opt(Config.Int("HEADERS_TIMEOUT")),
  requestTimeout: opt(Config.Int("REQUEST_TIMEOUT")),
  maxPayload: opt(Config.Int("MAX_PAYLOAD")),
  highWaterMark: opt(Config.Int("HIGH_WATER_MARK")),
  shutdownTimeout: opt(Config.Int("SHUTDOWN_TIMEOUT")),
  resumeWindow: opt(Config.Int("RESUME_WINDOW")),
  resumeBufferSize: opt(Config.Int("RESUME_BUFFER_SIZE")),
  resumeBufferBytes: opt(Config.Int("RESUME_BUFFER_BYTES")),
  tls: tlsFiles.pipe(
    Config.mapEffect(({ cert, key }) =>
      Option.isSome(cert) && Option.isSome(key)
        ? Effect.succeed(Option.some<Tls>({ cert: cert.value, key: key.value }))
        : Option.isNone(cert) && Option.isNone(key)
        ? Effect.succeed(Option.none<Tls>())
        : Effect.fail(
          new Config.ConfigError(
            new ConfigProvider.SourceError({ message: "SYMPLE_TLS_CERT and SYMPLE_TLS_KEY go together: set both" })
          )
        )
    )
  ),
  iceServers: opt(Config.map(Config.String("ICE_SERVERS"), (text) => urlsOf(text).map((urls) => ({ urls })))),
  turn: opt(Config.map(
    Config.all({
      secret: Config.String("TURN_SECRET"),
      urls: Config.map(Config.String("TURN_URLS"), urlsOf),
      ttl: opt(Config.Int("TURN_TTL"))
    }),
    ({ secret, ttl, urls }): IceServers.TurnOptions => ({
      secret,
      urls,
      ...(Option.isSome(ttl) ? { ttl: Duration.millis(ttl.value) } : {})
    })
  )),
  redis: opt(Config.String("REDIS_URL")),
  redisTtl: opt(Config.Int("REDIS_TTL"))
}

const fromVariables = (
  chosen: Record<string, Config.Config<Option.Option<unknown>>>
): Config.Config<Partial<ServerOptions>> =>
  Config.all(chosen).pipe(
    Config.nested("SYMPLE"),
    Config.map((values) => {
      const out: Record<string, unknown> = {}
      for (const [key, value] of Object.entries(values)) {
        if (Option.isSome(value)) out[key] = value.value
      }
      return out as Partial<ServerOptions>
    })
  )

/**
 * Options from environment variables: `SYMPLE_HOST`, `SYMPLE_PORT` (0 picks a free port), `SYMPLE_AUTHENTICATION`,
 * `SYMPLE_DYNAMIC_ROOMS`, `SYMPLE_MAX_CONNECTIONS`, `SYMPLE_MAX_MESSAGE_SIZE`, `SYMPLE_RATE_LIMIT`,
 * `SYMPLE_RATE_SECONDS`, `SYMPLE_AUTH_TIMEOUT` (ms), `SYMPLE_PING_INTERVAL` (ms), `SYMPLE_MAILBOX_SIZE`,
 * `SYMPLE_MAX_ROOMS_PER_PEER`, `SYMPLE_MAX_ROOM_NAME_LENGTH`, `SYMPLE_MAX_QUEUED_BYTES`, `SYMPLE_MAX_OUTBOUND_BYTES`,
 * `SYMPLE_MAX_AUTH_FAILURES`, `SYMPLE_AUTH_FAILURE_DELAY` (ms), `SYMPLE_PRE_AUTH_FRAMES`,
 * `SYMPLE_HEADERS_TIMEOUT` (ms), `SYMPLE_REQUEST_TIMEOUT` (ms), `SYMPLE_MAX_PAYLOAD`, `SYMPLE_HIGH_WATER_MARK`,
 * `SYMPLE_SHUTDOWN_TIMEOUT` (ms), `SYMPLE_RESUME_WINDOW` (ms), `SYMPLE_RESUME_BUFFER_SIZE`,
 * `SYMPLE_RESUME_BUFFER_BYTES`, `SYMPLE_REDIS_TTL` (ms): each option's name in upper snake case (the
 * `symple-ts serve` flags rely on it); `SYMPLE_REDIS_URL` (the option `redis`); and `SYMPLE_TLS_CERT` with
 * `SYMPLE_TLS_KEY` (PEM text or file paths; one without the other is an error).
 * ICE: `SYMPLE_ICE_SERVERS` (comma-separated URLs, one server each, without credentials), and `SYMPLE_TURN_SECRET`
 * with `SYMPLE_TURN_URLS` (comma-separated) and `SYMPLE_TURN_TTL` (ms, optional) for `turn`.
 * Unset variables are absent from the result.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Partial<ServerOptions>> = fromVariables(variables)

/**
 * `config` without the variables of `options`: for a caller that has its own value for them (a command-line flag
 * that wins over its variable), so a bad value in such a variable is never read. Leaving out `tls` leaves out both
 * `SYMPLE_TLS_CERT` and `SYMPLE_TLS_KEY` (see `tlsVariables`).
 *
 * @since 0.2.0
 * @category config
 */
export const configWithout = (
  options: Iterable<keyof ServerOptions>
): Config.Config<Partial<ServerOptions>> => {
  const left: Record<string, Config.Config<Option.Option<unknown>>> = { ...variables }
  for (const option of options) delete left[option]
  return fromVariables(left)
}

/**
 * `SYMPLE_TLS_CERT` and `SYMPLE_TLS_KEY` each on its own (`config` reads them as a pair and refuses one alone): for a
 * caller that has its own value for one of them.
 *
 * @since 0.2.0
 * @category config
 */
export const tlsVariables: Config.Config<{
  readonly cert: Option.Option<string>
  readonly key: Option.Option<string>
}> = tlsFiles.pipe(Config.nested("SYMPLE"))

/**
 * `options` overridden by whatever the environment sets.
 *
 * @since 0.1.0
 * @category config
 */
export const fromEnv = (options: Partial<ServerOptions> = {}) =>
  Effect.map(config, (env): Partial<ServerOptions> => ({ ...options, ...env }))
