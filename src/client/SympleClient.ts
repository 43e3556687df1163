/**
 * The Symple client: one WebSocket for the client's whole life, re-opened by a reconnection `Schedule`, with the
 * connection state, the roster and the incoming frames exposed as Streams.
 *
 * Platform-neutral: the WebSocket constructor comes from `Socket.WebSocketConstructor` of `effect/socket/Socket` (the
 * browser's global with `Socket.layerWebSocketConstructorGlobal`, the `ws` package with
 * `NodeSympleClient.layerWebSocketConstructor`).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Address from "../protocol/Address.js"
import * as Frame from "../protocol/Frame.js"
import type { Json } from "../protocol/Json.js"
import * as Message from "../protocol/Message.js"
import * as Peer from "../protocol/Peer.js"
import * as ClientConfig from "./ClientConfig.js"
import { AuthRefused, ClientClosed, ConnectionLost, RequestError } from "./ClientError.js"
import { ClientState } from "./ClientState.js"
import * as Roster from "./Roster.js"

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

interface Outgoing {
  readonly build: (self: Peer.Peer) => Frame.Frame
  readonly done: Deferred.Deferred<Frame.Frame, ClientClosed>
  cancelled: boolean
}

interface Transaction {
  readonly deferred: Deferred.Deferred<Frame.Routed, RequestError | ClientClosed>
  readonly onProgress: ((reply: Frame.Routed) => Effect.Effect<void>) | undefined
}

interface Route {
  readonly pattern: string
  readonly run: (command: Frame.Command) => void
}

/** What one connection learnt, filled in by its frame processor. */
interface Session {
  opened: boolean
  online: boolean
  shutdown: boolean
  refused: Announce | undefined
  rejected: Announce | undefined
}

const OPEN = 1

const isShutdownNotice = (event: Frame.Event) => event.name === "shutdown" || event.subtype === "shutdown"

/**
 * Builds a client and starts connecting at once. Closing the scope closes the client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: ClientConfig.ClientOptions
): Effect.Effect<SympleClient, never, Scope.Scope | Socket.WebSocketConstructor> =>
  Effect.gen(function*() {
    const config = ClientConfig.resolve(options)
    const state = yield* SubscriptionRef.make<ClientState>(ClientState.Closed())
    const rooms = yield* SubscriptionRef.make<ReadonlyArray<string>>([])
    const inbound = yield* PubSub.unbounded<Frame.Frame>()
    const announces = yield* PubSub.unbounded<Announce>()
    const roster = yield* Roster.make
    const terminal = yield* Deferred.make<never, ClientClosed>()
    const runFork = yield* FiberSet.makeRuntime<never>()
    const transactions = new Map<string, Transaction>()
    const roomAcks = new Map<string, Array<Deferred.Deferred<void, RequestError>>>()
    const routes: Array<Route> = []
    const closing = new Set<Effect.Effect<void>>()
    let desired: ReadonlyArray<string> = config.rooms
    let self: Peer.Peer | undefined
    let welcomed: Frame.Welcome | undefined
    let closedWith: ClientClosed | undefined
    let terminated = false
    let userClosed = false

    // --- the socket -------------------------------------------------------------------------------------------

    // The raw WebSocket of the current connection is kept so that writes never wait: a frame is either handed to
    // an open socket now or stays queued for the next session (the platform writer would hold it across a
    // reconnection and deliver it before `auth`).
    let current: Socket.WebSocketLike | undefined
    const construct = yield* Socket.WebSocketConstructor
    // Each acquisition of `socket.reader` opens a new WebSocket (and waits until it is open); closing the scope of
    // that acquisition closes it. `fromWebSocket` asks for binary frames as ArrayBuffers, so they arrive in order
    // with text frames (a Blob would be read asynchronously).
    const socket = yield* Socket.fromWebSocket(
      Effect.acquireRelease(
        Effect.try({
          try: () => {
            const ws = construct(config.url)
            current = ws
            return ws
          },
          catch: (cause) => new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) })
        }),
        (ws) =>
          Effect.sync(() => {
            if (current === ws) current = undefined
            if (ws.readyState < 2) ws.close(1000)
          })
      ),
      { openTimeout: config.openTimeout }
    )

    const sendText = (text: string): boolean => {
      const ws = current
      if (ws === undefined || ws.readyState !== OPEN) return false
      ws.send(text)
      return true
    }
    const sendFrame = (frame: Frame.Frame): boolean => sendText(Frame.unsafeEncode(frame))

    // --- outgoing frames ----------------------------------------------------------------------------------------

    // Frames not yet written, in send order. A frame leaves only once written (or failed, or abandoned by its
    // sender), so neither a reconnection nor an interrupted writer can lose one.
    const outstanding = new Set<Outgoing>()
    // Wakes the writer; sliding(1) so that a wake-up given before the writer waits is not lost.
    const wake = yield* Queue.sliding<void>(1)

    const failQueued = (error: ClientClosed) =>
      Effect.gen(function*() {
        const items = Array.from(outstanding)
        outstanding.clear()
        for (const item of items) yield* Deferred.fail(item.done, error)
      })

    const enqueue = (build: (self: Peer.Peer) => Frame.Frame): Effect.Effect<Frame.Frame, ClientClosed> =>
      Effect.gen(function*() {
        if (closedWith !== undefined) return yield* Effect.fail(closedWith)
        const me = self
        // Fast path: online with nothing waiting, so writing now keeps the order.
        if (me !== undefined && outstanding.size === 0) {
          const frame = build(me)
          if (sendFrame(frame)) return frame
        }
        const done = yield* Deferred.make<Frame.Frame, ClientClosed>()
        const item: Outgoing = { build, done, cancelled: false }
        outstanding.add(item)
        // The client may have stopped since the check above: nothing may stay outstanding after that.
        if (closedWith !== undefined) yield* failQueued(closedWith)
        yield* Queue.offer(wake, undefined)
        return yield* Deferred.await(done).pipe(Effect.onInterrupt(() =>
          Effect.sync(() => {
            item.cancelled = true
            outstanding.delete(item)
          })
        ))
      })

    const pump = Effect.gen(function*() {
      while (true) {
        const item = outstanding.values().next().value
        if (item === undefined) {
          yield* Queue.take(wake)
          continue
        }
        if (item.cancelled || (yield* Deferred.isDone(item.done))) {
          outstanding.delete(item)
          continue
        }
        const me = self
        if (me === undefined) return yield* Effect.never
        const built = Result.try(() => item.build(me))
        if (Result.isFailure(built)) {
          outstanding.delete(item)
          yield* Deferred.die(item.done, built.failure)
          continue
        }
        // A refused write means the connection is going down: the frame stays for the next session.
        if (!sendFrame(built.success)) return yield* Effect.never
        outstanding.delete(item)
        yield* Deferred.succeed(item.done, built.success)
      }
    })

    const address = (me: Peer.Peer) => Peer.address(me)

    const completeRouted = <F extends Frame.Routed>(frame: F, me: Peer.Peer): F => {
      const out: Record<string, unknown> = { ...frame, from: address(me) }
      if (out.id === undefined) out.id = Message.randomId()
      if (frame.type === "event" && out.time === undefined) out.time = Message.unixSeconds()
      return out as F
    }

    const presenceFrame = (me: Peer.Peer, opts: PresenceOptions = {}): Frame.Presence => {
      const extra: Record<string, Json> = {}
      try {
        Object.assign(extra, config.createPresence?.(me))
      } catch {
        // A failing hook must not stop presence (nor the probe answers that keep other rosters right).
      }
      for (const key of Peer.reservedKeys) delete extra[key]
      return Message.presence({
        from: address(me),
        data: { ...me, ...extra, online: true },
        ...(opts.to === undefined ? {} : { to: opts.to }),
        ...(opts.probe === true ? { probe: true } : {})
      })
    }

    // --- incoming frames ----------------------------------------------------------------------------------------

    const announce = (status: number, message: string) => PubSub.publish(announces, { status, message })

    const resolveRoomAcks = (key: string) => {
      const waiters = roomAcks.get(key)
      roomAcks.delete(key)
      for (const deferred of waiters ?? []) Deferred.doneUnsafe(deferred, Exit.void)
    }

    const failRoomAck = (key: string, status: number) => {
      const waiters = roomAcks.get(key)
      roomAcks.delete(key)
      if (key.startsWith("join:")) desired = desired.filter((r) => `join:${r}` !== key)
      const error = new RequestError({ reason: "Status", id: key, status })
      for (const deferred of waiters ?? []) Deferred.doneUnsafe(deferred, Exit.fail(error))
    }

    // A server with fixed rooms answers join and leave with "Dynamic rooms disabled" instead of an ack; that error
    // names no room, so every room change in flight is refused (the C++ and JavaScript servers send the same text).
    // This server names the room when it refuses one join (a limit, a personal room, the join policy), or when it
    // takes the peer out of a room that became someone's personal room.
    const refuseRoomAcks = (frame: Frame.ErrorFrame) => {
      const status = frame.status ?? 400
      if (frame.message === "Dynamic rooms disabled") {
        for (const key of [...roomAcks.keys()]) failRoomAck(key, status)
        return
      }
      const refusal = frame.message === undefined ? undefined : Message.parseRoomRefusal(frame.message)
      if (refusal === undefined) return
      if (refusal.kind === "removed") desired = desired.filter((r) => r !== refusal.room)
      else failRoomAck(`join:${refusal.room}`, status)
    }

    const settle = (frame: Frame.Routed) => {
      if (frame.id === undefined || frame.status === undefined) return
      const tx = transactions.get(frame.id)
      if (tx === undefined) return
      if (!Message.isFinalStatus(frame.status)) {
        if (tx.onProgress !== undefined) runFork(tx.onProgress(frame))
        return
      }
      transactions.delete(frame.id)
      Deferred.doneUnsafe(
        tx.deferred,
        Message.isSuccess(frame.status)
          ? Exit.succeed(frame)
          : Exit.fail(new RequestError({ reason: "Status", id: frame.id, status: frame.status, response: frame }))
      )
    }

    const goOnline = (welcome: Frame.Welcome, session: Session, sessionScope: Scope.Scope) =>
      Effect.gen(function*() {
        const me: Peer.Peer = { ...welcome.peer, online: true }
        self = me
        welcomed = welcome
        session.online = true
        // The session's own frames go first: the joins of desired rooms the welcome left out, then the presence
        // probe. Publishing below may run a woken fiber at once (Effect 4), and what it sends must follow them.
        for (const room of desired) {
          if (!welcome.rooms.includes(room)) sendFrame({ type: "join", room })
        }
        sendFrame(presenceFrame(me, { probe: true }))
        yield* roster.apply(me)
        yield* SubscriptionRef.set(rooms, welcome.rooms)
        yield* announce(200, "Welcome")
        yield* SubscriptionRef.set(state, ClientState.Online({ peer: me }))
        yield* Effect.forkIn(pump, sessionScope)
      })

    const onPresence = (frame: Frame.Presence) =>
      Effect.gen(function*() {
        const me = self
        const peer = Roster.peerOf(frame.data)
        // Only the server speaks for this session: a presence about ourselves never changes our entry.
        if (Option.isSome(peer) && peer.value.id !== me?.id) yield* roster.apply(peer.value)
        if (
          me !== undefined && frame.probe === true && typeof frame.from === "string" &&
          Address.isFull(Address.parse(frame.from)) && frame.from !== address(me)
        ) {
          sendFrame(presenceFrame(me, { to: frame.from }))
        }
      })

    const onCommandFrame = (command: Frame.Command & { readonly node: string }) => {
      const route = routes.find((r) => Message.matches(r.pattern, command.node))
      if (route !== undefined) return route.run(command)
      const me = self
      if (config.answerUnhandledCommands && Message.isRequest(command) && me !== undefined) {
        sendFrame(Message.respond(command, { status: 404 }, address(me)))
      }
    }

    const handle = (frame: Frame.Frame, session: Session, sessionScope: Scope.Scope): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (!session.online) {
          if (frame.type === "welcome") {
            if (frame.status === 200 && frame.peer.id !== "") return yield* goOnline(frame, session, sessionScope)
            session.rejected = { status: frame.status, message: "Invalid welcome" }
            yield* announce(frame.status, "Invalid welcome")
          } else if (frame.type === "error") {
            const answer = { status: frame.status ?? 500, message: frame.message ?? "Unknown error" }
            if (answer.status === 401 || answer.status === 403) session.refused = answer
            else session.rejected = answer
            yield* announce(answer.status, answer.message)
          } else {
            return
          }
          current?.close(1000)
          return
        }
        switch (frame.type) {
          case "presence":
            yield* onPresence(frame)
            break
          case "message":
            settle(frame)
            break
          case "command":
            if (frame.node === undefined) return
            settle(frame)
            onCommandFrame({ ...frame, node: frame.node })
            break
          case "event":
            if (isShutdownNotice(frame)) session.shutdown = true
            if (frame.name === undefined) return
            settle(frame)
            break
          case "join:ok":
            yield* SubscriptionRef.update(rooms, (rs) => rs.includes(frame.room) ? rs : [...rs, frame.room])
            resolveRoomAcks(`join:${frame.room}`)
            break
          case "leave:ok":
            yield* SubscriptionRef.update(rooms, (rs) => rs.filter((r) => r !== frame.room))
            resolveRoomAcks(`leave:${frame.room}`)
            break
          case "error":
            refuseRoomAcks(frame)
            break
          default:
            return
        }
        yield* PubSub.publish(inbound, frame)
      })

    // --- one connection -----------------------------------------------------------------------------------------

    const leaveOnline = Effect.gen(function*() {
      self = undefined
      welcomed = undefined
      yield* roster.clear
      yield* SubscriptionRef.set(rooms, [])
      // The intent is kept in the desired rooms and applied on the next welcome.
      for (const key of Array.from(roomAcks.keys())) resolveRoomAcks(key)
    })

    // A server that accepts the socket but never answers `auth` must not hold the client forever.
    const handshakeTimer = (session: Session) =>
      Effect.sleep(config.openTimeout).pipe(
        Effect.andThen(Effect.sync(() => {
          if (session.online || session.refused !== undefined) return
          session.rejected ??= { status: 408, message: "No welcome in time" }
          current?.close(1000)
        }))
      )

    // Every close fails the reader's pull (a clean one too), with its code: the code is what this returns, and a
    // failure that is not a close is kept as the cause.
    const closeOf = (exit: Exit.Exit<never, Socket.SocketError>) => {
      if (Exit.isSuccess(exit)) return { code: undefined, cause: undefined }
      const error = Cause.findErrorOption(exit.cause)
      return Option.isSome(error) && error.value.reason._tag === "SocketCloseError"
        ? { code: error.value.reason.code, cause: undefined }
        : { code: undefined, cause: exit.cause }
    }

    const connectOnce = (attempt: number): Effect.Effect<ConnectionLost | AuthRefused> =>
      Effect.scoped(Effect.gen(function*() {
        const sessionScope = yield* Effect.scope
        const session: Session = {
          opened: false,
          online: false,
          shutdown: false,
          refused: undefined,
          rejected: undefined
        }
        yield* Effect.addFinalizer(() => session.online ? leaveOnline : Effect.void)
        yield* SubscriptionRef.set(state, ClientState.Connecting({ attempt }))
        const exit = yield* Effect.exit(Effect.gen(function*() {
          // Acquiring the reader opens the socket and waits for it to be open (or fails after `openTimeout`).
          const reader = yield* socket.reader
          session.opened = true
          yield* SubscriptionRef.set(state, ClientState.Authenticating({ attempt }))
          sendFrame(ClientConfig.authFrame(config, desired))
          yield* Effect.forkIn(handshakeTimer(session), sessionScope)
          // Frames are handled one at a time, in order, by this fiber; the pull fails once the socket closes,
          // after every frame received before the close.
          while (true) {
            const chunk = yield* reader.pull
            for (const raw of chunk) {
              const frame = Frame.decode(raw)
              if (Result.isSuccess(frame)) yield* handle(frame.success, session, sessionScope)
            }
          }
        }))
        const { cause, code } = closeOf(exit)
        if (session.refused !== undefined) return new AuthRefused(session.refused)
        if (!session.opened) {
          return new ConnectionLost({
            reason: "Open",
            wasOnline: false,
            cause: Exit.isFailure(exit) ? exit.cause : undefined
          })
        }
        if (session.rejected !== undefined) {
          return new ConnectionLost({ reason: "Refused", wasOnline: false, status: session.rejected.status, code })
        }
        if (session.shutdown) return new ConnectionLost({ reason: "Shutdown", wasOnline: session.online, code })
        return new ConnectionLost({ reason: "Closed", wasOnline: session.online, code, cause })
      }))

    // --- the life of the client ---------------------------------------------------------------------------------

    const terminate = (error: ClientClosed) =>
      Effect.gen(function*() {
        if (terminated) return
        terminated = true
        closedWith ??= error
        yield* Deferred.fail(terminal, closedWith)
        yield* failQueued(closedWith)
        for (const tx of transactions.values()) Deferred.doneUnsafe(tx.deferred, Exit.fail(closedWith))
        transactions.clear()
      })

    // The last state of a client that stops: sends fail from the moment the state is published, even in a fiber
    // that the state change wakes at once.
    const stop = (error: ClientClosed, last: ClientState) =>
      Effect.gen(function*() {
        closedWith ??= error
        yield* SubscriptionRef.set(state, last)
        yield* terminate(error)
      })

    const loop = Effect.gen(function*() {
      // Effect 4 schedules have no `reset`: a new step starts the backoff over.
      let next = yield* Schedule.toStepWithSleep(config.reconnectSchedule)
      let attempt = 0
      while (true) {
        attempt += 1
        const ended = yield* connectOnce(attempt)
        if (ended._tag === "AuthRefused") {
          return yield* stop(
            new ClientClosed({ reason: "AuthRefused", cause: ended }),
            ClientState.Error({ message: ended.message, status: ended.status, retrying: false })
          )
        }
        if (ended.wasOnline) {
          next = yield* Schedule.toStepWithSleep(config.reconnectSchedule)
          attempt = 0
        }
        const clean = ended.reason === "Shutdown" ||
          (ended.reason === "Closed" && (ended.code === 1000 || ended.code === 1001))
        const failed = (retrying: boolean) =>
          ClientState.Error({ message: ended.message, status: ended.status, retrying })
        const lost = clean ? ClientState.Closed() : failed(config.reconnection)
        if (!config.reconnection) return yield* stop(new ClientClosed({ reason: "Disconnected", cause: ended }), lost)
        yield* SubscriptionRef.set(state, lost)
        // Sleeps for the schedule's delay; fails (with `Cause.Done`) once the schedule is over.
        const delay = yield* Effect.result(next(ended))
        if (Result.isFailure(delay)) {
          return yield* stop(new ClientClosed({ reason: "GaveUp", cause: ended }), failed(false))
        }
      }
    })

    const loopFiber = yield* Effect.forkScoped(loop)

    const close: Effect.Effect<void> = Effect.gen(function*() {
      if (userClosed) return
      userClosed = true
      yield* Effect.forEach(
        Array.from(closing),
        (effect) => effect.pipe(Effect.timeout(config.requestTimeout), Effect.ignore),
        { concurrency: "unbounded", discard: true }
      )
      if (self !== undefined) sendFrame({ type: "close" })
      yield* Fiber.interrupt(loopFiber)
      yield* terminate(new ClientClosed({ reason: "Closed" }))
      yield* SubscriptionRef.set(state, ClientState.Closed())
    }).pipe(Effect.uninterruptible)
    yield* Effect.addFinalizer(() => close)

    // --- the public API -----------------------------------------------------------------------------------------

    const send = <F extends Frame.Routed>(frame: F): Effect.Effect<F, ClientClosed> =>
      enqueue((me) => completeRouted(frame, me)) as Effect.Effect<F, ClientClosed>

    const respond = <F extends Frame.Routed>(
      frame: F,
      reply: Partial<Omit<F, "type" | "id" | "to" | "from">> = {}
    ): Effect.Effect<F, ClientClosed> =>
      enqueue((me) =>
        Message.respond(frame, reply as Partial<Omit<F, "type" | "id" | "to">>, address(me))
      ) as Effect.Effect<F, ClientClosed>

    const request = (frame: Frame.Routed, opts: RequestOptions = {}) =>
      Effect.gen(function*() {
        const id = frame.id ?? Message.randomId()
        const deferred = yield* Deferred.make<Frame.Routed, RequestError | ClientClosed>()
        transactions.set(id, { deferred, onProgress: opts.onProgress })
        const { status: _status, ...rest } = frame
        return yield* send({ ...rest, id } as Frame.Routed).pipe(
          Effect.andThen(Deferred.await(deferred)),
          Effect.timeoutOrElse({
            duration: opts.timeout ?? config.requestTimeout,
            orElse: () => Effect.fail(new RequestError({ reason: "Timeout", id }))
          }),
          Effect.ensuring(Effect.sync(() => {
            if (transactions.get(id)?.deferred === deferred) transactions.delete(id)
          }))
        )
      })

    const roomChange = (type: "join" | "leave", room: string) =>
      Effect.gen(function*() {
        if (closedWith !== undefined) return yield* Effect.fail(closedWith)
        desired = type === "join"
          ? (desired.includes(room) ? desired : [...desired, room])
          : desired.filter((r) => r !== room)
        const key = `${type}:${room}`
        const deferred = yield* Deferred.make<void, RequestError>()
        roomAcks.set(key, [...(roomAcks.get(key) ?? []), deferred])
        // Offline, the desired rooms are enough: they are applied on the next welcome.
        if (self === undefined || !sendFrame({ type, room })) resolveRoomAcks(key)
        yield* Deferred.await(deferred).pipe(
          Effect.timeoutOrElse({
            duration: config.requestTimeout,
            orElse: () => Effect.fail(new RequestError({ reason: "Timeout", id: key }))
          }),
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              const rest = (roomAcks.get(key) ?? []).filter((d) => d !== deferred)
              if (rest.length === 0) roomAcks.delete(key)
              else roomAcks.set(key, rest)
            })
          )
        )
      })

    const onCommand = <E, R>(pattern: string, handler: CommandHandler<E, R>) =>
      Effect.gen(function*() {
        const run = yield* FiberSet.makeRuntime<R>()
        const answer = (command: Frame.Command, reply: CommandReply) =>
          Message.isRequest(command) ? Effect.asVoid(respond(command, { status: 200, ...reply })) : Effect.void
        const route: Route = {
          pattern,
          run: (command) => {
            run(
              Effect.suspend(() => handler(command)).pipe(
                Effect.matchCauseEffect({
                  onSuccess: (reply) => reply === undefined ? Effect.void : answer(command, reply),
                  onFailure: () => answer(command, { status: 500 })
                }),
                Effect.ignore
              )
            )
          }
        }
        routes.push(route)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            const index = routes.indexOf(route)
            if (index !== -1) routes.splice(index, 1)
          })
        )
      })

    const frames = Stream.fromPubSub(inbound)
    const only = <T extends Frame.Type>(type: T) =>
      Stream.filter(frames, (f): f is Extract<Frame.Frame, { readonly type: T }> => f.type === type)

    const awaitOnline: Effect.Effect<Peer.Peer, ClientClosed | AuthRefused> = Effect.raceFirst(
      SubscriptionRef.changes(state).pipe(
        Stream.filterMap((s) => s._tag === "Online" ? Result.succeed(s.peer) : Result.failVoid),
        Stream.runHead,
        Effect.flatMap((head) => Effect.fromOption(head)),
        Effect.orDie
      ),
      Deferred.await(terminal).pipe(
        Effect.catch((closed) =>
          Effect.fail<ClientClosed | AuthRefused>(closed.cause instanceof AuthRefused ? closed.cause : closed)
        )
      )
    )

    const client: SympleClient = {
      url: config.url,
      state: SubscriptionRef.changes(state),
      currentState: SubscriptionRef.get(state),
      announce: Stream.fromPubSub(announces),
      awaitOnline,
      peer: Effect.sync(() => Option.fromUndefinedOr(self)),
      welcome: Effect.sync(() => Option.fromUndefinedOr(welcomed)),
      rooms: SubscriptionRef.changes(rooms),
      currentRooms: SubscriptionRef.get(rooms),
      desiredRooms: Effect.sync(() => desired),
      roster: roster.roster,
      frames,
      subscribe: PubSub.subscribe(inbound),
      messages: only("message"),
      commands: only("command"),
      events: only("event"),
      presences: only("presence"),
      errors: only("error"),
      send,
      respond,
      request,
      sendPresence: (opts) => enqueue((me) => presenceFrame(me, opts)) as Effect.Effect<Frame.Presence, ClientClosed>,
      joinRoom: (room) => roomChange("join", room),
      leaveRoom: (room) => roomChange("leave", room),
      onCommand,
      close,
      beforeClose: (effect) =>
        Effect.acquireRelease(
          Effect.sync(() => closing.add(effect)),
          () => Effect.sync(() => closing.delete(effect))
        ).pipe(Effect.asVoid)
    }
    return client
  })

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
