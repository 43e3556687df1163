/**
 * A Promise / callback client for applications that do not use Effect. It is a thin layer over `SympleClient`:
 * the same connection, roster and semantics.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as Stream from "effect/Stream"
import type * as Frame from "../protocol/Frame.js"
import type * as Peer from "../protocol/Peer.js"
import type { ClientOptions } from "./ClientConfig.js"
import { ClientClosed } from "./ClientError.js"
import type { ClientState } from "./ClientState.js"
import type * as Roster from "./Roster.js"
import * as SympleClient from "./SympleClient.js"

/**
 * What each event name delivers to its listeners.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientEvents {
  readonly state: ClientState
  readonly announce: SympleClient.Announce
  readonly frame: Frame.Frame
  readonly message: Frame.Message
  readonly command: Frame.Command
  readonly event: Frame.Event
  readonly presence: Frame.Presence
  readonly error: Frame.ErrorFrame
  readonly peerConnected: Peer.Peer
  /** A peer's record changed; after a reconnection, also a new session of a peer's user that took its place. */
  readonly peerUpdated: Peer.Peer
  readonly peerDisconnected: Peer.Peer
}

/**
 * @since 0.1.0
 * @category models
 */
export type CommandReply = SympleClient.CommandReply

/**
 * @since 0.1.0
 * @category models
 */
export interface Client {
  /** Starts the client (once) and resolves when it is online; rejects on an auth refusal or once it gives up. */
  readonly connect: () => Promise<Peer.Peer>
  /** Returns a function that removes the listener. */
  readonly on: <K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void) => () => void
  readonly off: <K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void) => void
  readonly send: <F extends Frame.Routed>(frame: F) => Promise<F>
  readonly respond: <F extends Frame.Routed>(
    frame: F,
    reply?: Partial<Omit<F, "type" | "id" | "to" | "from">>
  ) => Promise<F>
  readonly request: (frame: Frame.Routed, options?: { readonly timeout?: number | undefined }) => Promise<Frame.Routed>
  readonly sendPresence: (options?: SympleClient.PresenceOptions) => Promise<Frame.Presence>
  readonly joinRoom: (room: string) => Promise<void>
  readonly leaveRoom: (room: string) => Promise<void>
  /** Routes matching commands to `handler`; returns a function that removes the route. */
  readonly onCommand: (
    pattern: string,
    handler: (command: Frame.Command) => CommandReply | void | Promise<CommandReply | void>
  ) => () => void
  /** The online peers, this session included. */
  readonly roster: () => ReadonlyArray<Peer.Peer>
  readonly getPeer: (idOrAddress: string) => Peer.Peer | undefined
  readonly state: () => ClientState | undefined
  readonly peer: () => Peer.Peer | undefined
  readonly rooms: () => ReadonlyArray<string>
  readonly close: () => Promise<void>
  /** The underlying Effect client, once started. */
  readonly client: () => SympleClient.SympleClient | undefined
}

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromiseExit(effect).then((exit) =>
    Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause))
  )

/**
 * @since 0.1.0
 * @category constructors
 */
export const createClient = (
  options: ClientOptions,
  platform: { readonly webSocket?: Layer.Layer<Socket.WebSocketConstructor> | undefined } = {}
): Client => {
  const listeners = new Map<keyof ClientEvents, Set<(value: never) => void>>()
  const emit = <K extends keyof ClientEvents>(event: K, value: ClientEvents[K]) => {
    for (const listener of listeners.get(event) ?? []) {
      try {
        ;(listener as (value: ClientEvents[K]) => void)(value)
      } catch (error) {
        // A throwing listener must not stop the others, nor the client (nor crash the process).
        console.error(`symple: a "${event}" listener threw`, error)
      }
    }
  }
  const dispatch = (frame: Frame.Frame) => {
    emit("frame", frame)
    switch (frame.type) {
      case "message":
        return emit("message", frame)
      case "command":
        return emit("command", frame)
      case "event":
        return emit("event", frame)
      case "presence":
        return emit("presence", frame)
      case "error":
        return emit("error", frame)
    }
  }
  const dispatchChange = (change: Roster.Change) => {
    switch (change._tag) {
      case "Connected":
        return emit("peerConnected", change.peer)
      case "Updated":
        return emit("peerUpdated", change.peer)
      case "Disconnected":
        return emit("peerDisconnected", change.peer)
    }
  }

  let scope: Scope.Closeable | undefined
  let client: SympleClient.SympleClient | undefined
  let starting: Promise<SympleClient.SympleClient> | undefined
  let closed = false

  const launch = Effect.gen(function*() {
    const s = yield* Scope.make()
    scope = s
    const c = yield* SympleClient.make(options).pipe(
      Effect.provide(platform.webSocket ?? Socket.layerWebSocketConstructorGlobal),
      Scope.provide(s)
    )
    client = c
    // Subscribed before anything can arrive, so listeners see every frame and roster change.
    const frames = yield* Scope.provide(c.subscribe, s)
    const changes = yield* Scope.provide(c.roster.subscribe, s)
    const forever = <A>(subscription: PubSub.Subscription<A>, f: (a: A) => void) =>
      PubSub.take(subscription).pipe(
        Effect.flatMap((a) => Effect.sync(() => f(a))),
        Effect.forever,
        Effect.forkIn(s)
      )
    yield* forever(frames, dispatch)
    yield* forever(changes, dispatchChange)
    yield* c.state.pipe(
      Stream.runForEach((st) => Effect.sync(() => emit("state", st))),
      Effect.forkIn(s)
    )
    yield* c.announce.pipe(Stream.runForEach((a) => Effect.sync(() => emit("announce", a))), Effect.forkIn(s))
    return c
  })

  const start = (): Promise<SympleClient.SympleClient> => {
    if (starting !== undefined) return starting
    if (closed) return Promise.reject(new ClientClosed({ reason: "Closed" }))
    starting = run(launch)
    return starting
  }

  const withClient = <A, E>(f: (c: SympleClient.SympleClient) => Effect.Effect<A, E>): Promise<A> =>
    start().then((c) => run(f(c)))

  const routes = new Map<() => void, Scope.Closeable>()

  const facade: Client = {
    connect: () => withClient((c) => c.awaitOnline),
    on: (event, listener) => {
      const set = listeners.get(event) ?? new Set()
      set.add(listener as (value: never) => void)
      listeners.set(event, set)
      return () => facade.off(event, listener)
    },
    off: (event, listener) => {
      listeners.get(event)?.delete(listener as (value: never) => void)
    },
    send: (frame) => withClient((c) => c.send(frame)),
    respond: (frame, reply) => withClient((c) => c.respond(frame, reply)),
    request: (frame, opts) => withClient((c) => c.request(frame, { timeout: opts?.timeout })),
    sendPresence: (opts) => withClient((c) => c.sendPresence(opts)),
    joinRoom: (room) => withClient((c) => c.joinRoom(room)),
    leaveRoom: (room) => withClient((c) => c.leaveRoom(room)),
    onCommand: (pattern, handler) => {
      const routeScope = Effect.runSync(Scope.make())
      const remove = () => {
        routes.delete(remove)
        void Effect.runPromise(Scope.close(routeScope, Exit.void))
      }
      routes.set(remove, routeScope)
      void start().then((c) =>
        Effect.runPromise(
          c.onCommand(pattern, (command) => Effect.promise(async () => handler(command))).pipe(
            Scope.provide(routeScope)
          )
        )
      )
      return remove
    },
    roster: () => client === undefined ? [] : Effect.runSync(client.roster.snapshot),
    getPeer: (idOrAddress) =>
      client === undefined ? undefined : Option.getOrUndefined(Effect.runSync(client.roster.get(idOrAddress))),
    state: () => client === undefined ? undefined : Effect.runSync(client.currentState),
    peer: () => client === undefined ? undefined : Option.getOrUndefined(Effect.runSync(client.peer)),
    rooms: () => client === undefined ? [] : Effect.runSync(client.currentRooms),
    close: async () => {
      if (closed) return
      closed = true
      for (const remove of Array.from(routes.keys())) remove()
      if (starting === undefined) return
      const c = await starting
      await run(c.close)
      if (scope !== undefined) await run(Scope.close(scope, Exit.void))
    },
    client: () => client
  }
  return facade
}
