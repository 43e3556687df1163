/**
 * The Symple client: one WebSocket at a time, re-opened by a reconnection `Schedule`, with the connection state,
 * the roster and the incoming frames exposed as Streams. It resumes its session when the server offers it (the
 * `resume` extension of `welcome`), and keeps its roster through reconnections either way.
 *
 * Inside, the client is a pure transition machine (`internal/Machine.ts`, `internal/Transition.ts`) that
 * `internal/Client.ts` interprets one input at a time.
 *
 * Platform-neutral: the WebSocket constructor comes from `Socket.WebSocketConstructor` of `effect/socket/Socket` (the
 * browser's global with `Socket.layerWebSocketConstructorGlobal`, the `ws` package with
 * `NodeSympleClient.layerWebSocketConstructor`).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import type * as Stream from "effect/Stream"
import type * as Frame from "../protocol/Frame.js"
import type * as Peer from "../protocol/Peer.js"
import type * as ClientConfig from "./ClientConfig.js"
import type { AuthRefused, ClientClosed, RequestError } from "./ClientError.js"
import type { ClientState } from "./ClientState.js"
import * as internal from "./internal/Client.js"
import type * as Roster from "./Roster.js"

/**
 * The outcome of the handshake: 200 on `welcome`, otherwise the status of the server's `error` frame.
 *
 * @since 0.1.0
 * @category models
 */
export interface Announce {
  readonly status: number
  readonly message: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  /** Defaults to the client's `requestTimeout`. */
  readonly timeout?: Duration.Input | undefined
  /** Called for each 202 / 406 reply (progress, not final). */
  readonly onProgress?: ((reply: Frame.Routed) => Effect.Effect<void>) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PresenceOptions {
  readonly to?: string | ReadonlyArray<string> | undefined
  readonly probe?: boolean | undefined
}

/**
 * Fields merged into the response to a routed command (`status` defaults to 200).
 *
 * @since 0.1.0
 * @category models
 */
export type CommandReply = Partial<Omit<Frame.Command, "type" | "id" | "to" | "from">>

/**
 * A command route handler. Returning a reply answers a request with it; returning nothing leaves the answer to
 * the handler (for instance through `respond`). A failure answers a request with status 500.
 *
 * @since 0.1.0
 * @category models
 */
export type CommandHandler<E, R> = (command: Frame.Command) => Effect.Effect<CommandReply | void, E, R>

/**
 * @since 0.1.0
 * @category models
 */
export interface SympleClient {
  readonly url: string
  /** The current state first, then every transition. */
  readonly state: Stream.Stream<ClientState>
  readonly currentState: Effect.Effect<ClientState>
  /** The handshake outcome of every connection attempt that got an answer. */
  readonly announce: Stream.Stream<Announce>
  /** Waits for `Online` (now or after the next welcome); fails once the client can no longer get online. */
  readonly awaitOnline: Effect.Effect<Peer.Peer, ClientClosed | AuthRefused>
  /** This session's peer, while online. */
  readonly peer: Effect.Effect<Option.Option<Peer.Peer>>
  /** The `welcome` that opened this session, while online (its `iceServers` extension, when the server sent one). */
  readonly welcome: Effect.Effect<Option.Option<Frame.Welcome>>
  /** The rooms this session is in (`welcome.rooms`, then `join:ok` / `leave:ok`), emptied while offline. */
  readonly rooms: Stream.Stream<ReadonlyArray<string>>
  readonly currentRooms: Effect.Effect<ReadonlyArray<string>>
  /** The rooms the client asks for on every connection. */
  readonly desiredRooms: Effect.Effect<ReadonlyArray<string>>
  readonly roster: Roster.Roster
  /** Every valid frame received while online. */
  readonly frames: Stream.Stream<Frame.Frame>
  /**
   * A subscription to `frames` that is live as soon as this effect returns (no frame is missed after it); read it
   * with `PubSub.take`, `PubSub.takeAll` (waits for at least one) or `PubSub.takeUpTo`.
   */
  readonly subscribe: Effect.Effect<PubSub.Subscription<Frame.Frame>, never, Scope.Scope>
  readonly messages: Stream.Stream<Frame.Message>
  /** Commands with a `node`. */
  readonly commands: Stream.Stream<Frame.Command>
  /** Events with a `name`. */
  readonly events: Stream.Stream<Frame.Event>
  readonly presences: Stream.Stream<Frame.Presence>
  /** `error` frames received while online. */
  readonly errors: Stream.Stream<Frame.ErrorFrame>
  /**
   * Sends a routed frame, setting `from` to this session and an `id` when it has none (and `time` on an event
   * without one). Completes once the frame is written; while reconnecting it waits for the next session, and it
   * fails with `ClientClosed` if the client stops first. The v4 wire has no acknowledgements, so a frame written
   * at the instant the connection dies can still be lost in transit: use `request` for end-to-end confirmation.
   */
  readonly send: <F extends Frame.Routed>(frame: F) => Effect.Effect<F, ClientClosed>
  /** Answers a frame: same `id`, `to` = its `from`, `from` = this session. */
  readonly respond: <F extends Frame.Routed>(
    frame: F,
    reply?: Partial<Omit<F, "type" | "id" | "to" | "from">>
  ) => Effect.Effect<F, ClientClosed>
  /**
   * A transaction: sends `frame` as a request (an `id`, no `status`) and waits for the reply with the same `id`.
   * Status 200 succeeds; another final status or the timeout fails; 202 / 406 are progress.
   */
  readonly request: (
    frame: Frame.Routed,
    options?: RequestOptions
  ) => Effect.Effect<Frame.Routed, RequestError | ClientClosed>
  /** Sends this peer's presence (with the `createPresence` fields). */
  readonly sendPresence: (options?: PresenceOptions) => Effect.Effect<Frame.Presence, ClientClosed>
  /** Adds a desired room; while online, joins it and waits for `join:ok`. */
  readonly joinRoom: (room: string) => Effect.Effect<void, RequestError | ClientClosed>
  /** Removes a desired room; while online, leaves it and waits for `leave:ok`. */
  readonly leaveRoom: (room: string) => Effect.Effect<void, RequestError | ClientClosed>
  /** Routes commands whose node matches `pattern` (`Message.matches`) to `handler` while the scope is open. */
  readonly onCommand: <E, R>(
    pattern: string,
    handler: CommandHandler<E, R>
  ) => Effect.Effect<void, never, Scope.Scope | R>
  /**
   * Sends `{"type":"close"}` when online, closes the socket and stops reconnecting. Idempotent. The `beforeClose`
   * effects run first.
   */
  readonly close: Effect.Effect<void>
  /**
   * Runs `effect` when the client is closed (`close`, or its scope), before the `close` frame, while frames can still
   * go out (a call session hangs up its call there); registered for as long as the scope is open. Each is given at
   * most `requestTimeout`.
   */
  readonly beforeClose: (effect: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const SympleClient: Context.Service<SympleClient, SympleClient> = Context.Service<SympleClient>(
  "symple/SympleClient"
)

/**
 * Builds a client and starts connecting at once. Closing the scope closes the client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: ClientConfig.ClientOptions
) => Effect.Effect<SympleClient, never, Scope.Scope | Socket.WebSocketConstructor> = internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: ClientConfig.ClientOptions
): Layer.Layer<SympleClient, never, Socket.WebSocketConstructor> => Layer.effect(SympleClient, make(options))

/**
 * A client for browsers (and any runtime with a global `WebSocket`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGlobal = (options: ClientConfig.ClientOptions): Layer.Layer<SympleClient> =>
  layer(options).pipe(Layer.provide(Socket.layerWebSocketConstructorGlobal))
