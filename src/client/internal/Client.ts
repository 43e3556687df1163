/**
 * The interpreter of the client's transition machine (`./Machine.ts`, `./Transition.ts`): one fiber takes one input at a time, runs
 * the transition, and carries out its commands in order. Everything else here turns the world into inputs (API
 * calls, socket events, timers, the reconnection schedule) and commands into effects (socket writes, Streams).
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberHandle from "effect/FiberHandle"
import * as FiberMap from "effect/FiberMap"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Frame from "../../protocol/Frame.js"
import * as Message from "../../protocol/Message.js"
import type * as Peer from "../../protocol/Peer.js"
import * as ClientConfig from "../ClientConfig.js"
import { AuthRefused, ClientClosed, type RequestError } from "../ClientError.js"
import { ClientState } from "../ClientState.js"
import * as Roster from "../Roster.js"
import type {
  Announce,
  CommandHandler,
  CommandReply,
  PresenceOptions,
  RequestOptions,
  SympleClient
} from "../SympleClient.js"
import { Command, Input, type Step, timerKey } from "./Machine.js"
import * as Machine from "./Machine.js"
import { Payload, type Ticket } from "./Outbox.js"
import type { Conn } from "./Session.js"
import { transition } from "./Transition.js"

interface Envelope {
  readonly input: Input
  /** Completed once the input is handled: a socket's reader waits for it before reading on (backpressure). */
  readonly done?: Deferred.Deferred<void> | undefined
}

interface Waiter {
  readonly deferred: Deferred.Deferred<unknown, ClientClosed | RequestError>
  readonly onProgress: ((reply: Frame.Routed) => Effect.Effect<void>) | undefined
}

const OPEN = 1

/**
 * Whether the socket failed on a frame over its own size limit: the `ws` package's error event for a frame over
 * `maxPayload` (the Node client sets it to `maxFrameSize`, so that such a frame is never buffered whole).
 */
const isOverLimit = (reason: Socket.SocketError["reason"]): boolean => {
  if (reason._tag !== "SocketReadError") return false
  const event = reason.cause as { readonly error?: { readonly code?: unknown } } | null | undefined
  return event?.error?.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"
}

/**
 * Every close fails the reader's pull (a clean one too), with its code: the code is what this returns, and a
 * failure that is not a close is kept as the cause.
 */
const closeOf = (exit: Exit.Exit<void, Socket.SocketError>) => {
  if (Exit.isSuccess(exit)) return { code: undefined, cause: undefined, overLimit: false }
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isSome(error) && error.value.reason._tag === "SocketCloseError") {
    return { code: error.value.reason.code, cause: undefined, overLimit: false }
  }
  return { code: undefined, cause: exit.cause, overLimit: Option.isSome(error) && isOverLimit(error.value.reason) }
}

/** A routed frame as sent: an `id` when it has none, and a `time` on an event without one. */
const stamped = <F extends Frame.Routed>(frame: F): F => {
  const out: Record<string, unknown> = { ...frame }
  if (out.id === undefined) out.id = Message.randomId()
  if (frame.type === "event" && out.time === undefined) out.time = Message.unixSeconds()
  return out as F
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: ClientConfig.ClientOptions
): Effect.Effect<SympleClient, never, Scope.Scope | Socket.WebSocketConstructor> =>
  Effect.gen(function*() {
    const config = ClientConfig.resolve(options)
    const context: Machine.Context = { config }
    const state = yield* SubscriptionRef.make<ClientState>(ClientState.Closed())
    const rooms = yield* SubscriptionRef.make<ReadonlyArray<string>>([])
    const inbound = yield* PubSub.unbounded<Frame.Frame>()
    const announces = yield* PubSub.unbounded<Announce>()
    const roster = yield* Roster.make
    const terminal = yield* Deferred.make<never, ClientClosed>()
    const runFork = yield* FiberSet.makeRuntime<never>()
    const inputs = yield* Queue.unbounded<Envelope>()
    const timers = yield* FiberMap.make<string>()
    const connection = yield* FiberHandle.make()
    const backoff = yield* FiberHandle.make()
    const construct = yield* Socket.WebSocketConstructor

    // The machine's state after the last input, for the synchronous getters.
    let machine = Machine.initial(context)
    // Set once the client stopped: calls fail at once instead of queueing.
    let closedWith: ClientClosed | undefined
    const waiting = new Map<Ticket, Waiter>()
    const routes = new Map<number, (command: Frame.Command) => void>()
    let lastTicket = 0
    let lastRoute = 0
    let nextDelay = yield* Schedule.toStepWithSleep(config.reconnectSchedule)
    // The socket of the current connection, kept so that writes never wait: a frame is either handed to an open
    // socket now or stays in the outbox for the next session.
    let current: { readonly conn: Conn; readonly ws: Socket.WebSocketLike } | undefined

    const post = (input: Input) => {
      Queue.offerUnsafe(inputs, { input })
    }

    // --- the socket ---------------------------------------------------------------------------------------------

    const socketFor = (conn: Conn) =>
      Socket.fromWebSocket(
        Effect.acquireRelease(
          Effect.try({
            try: () => {
              const ws = construct(config.url)
              current = { conn, ws }
              return ws
            },
            catch: (cause) => new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) })
          }),
          (ws) =>
            Effect.sync(() => {
              if (current?.ws === ws) current = undefined
              if (ws.readyState < 2) ws.close(1000)
            })
        ),
        // `fromWebSocket` asks for binary frames as ArrayBuffers, so they arrive in order with text frames.
        { openTimeout: config.openTimeout }
      )

    // One connection: acquiring the reader opens the socket and waits for it to be open (or fails after
    // `openTimeout`); every frame is handed to the machine, which takes them in order; the pull fails once the
    // socket closes, after every frame received before the close.
    const connect = (conn: Conn) =>
      Effect.scoped(Effect.gen(function*() {
        const socket = yield* socketFor(conn)
        const exit = yield* Effect.exit(Effect.gen(function*() {
          const reader = yield* socket.reader
          post(Input.Opened({ conn }))
          while (true) {
            const chunk = yield* reader.pull
            const done = yield* Deferred.make<void>()
            chunk.forEach((data, i) => {
              Queue.offerUnsafe(inputs, {
                input: Input.Received({ conn, data }),
                done: i === chunk.length - 1 ? done : undefined
              })
            })
            yield* Deferred.await(done)
          }
        }))
        post(Input.Closed({ conn, ...closeOf(exit) }))
      }))

    const socketOf = (conn: Conn): Socket.WebSocketLike | undefined => {
      const socket = current
      return socket !== undefined && socket.conn === conn && socket.ws.readyState === OPEN ? socket.ws : undefined
    }

    const closeSocket = (conn: Conn, code: number) => {
      const socket = current
      if (socket === undefined || socket.conn !== conn || socket.ws.readyState >= 2) return
      try {
        socket.ws.close(code)
      } catch {
        // Browsers accept only 1000 and 3000-4999 from a script.
        socket.ws.close(1000)
      }
    }

    // --- commands -----------------------------------------------------------------------------------------------

    const answer = (ticket: Ticket, exit: Exit.Exit<unknown, ClientClosed | RequestError>) => {
      const waiter = waiting.get(ticket)
      if (waiter === undefined) return
      waiting.delete(ticket)
      Deferred.doneUnsafe(waiter.deferred, exit)
    }

    /** Carries out one command; a `Deliver` returns its outcome, the next input. */
    const run = (command: Command): Effect.Effect<Input | undefined> => {
      switch (command._tag) {
        case "Open":
          return FiberHandle.run(connection, connect(command.conn)).pipe(Effect.as(undefined))
        case "Write":
          return Effect.sync(() => {
            const ws = socketOf(command.conn)
            if (ws === undefined) return undefined
            try {
              ws.send(Frame.unsafeEncode(command.frame))
            } catch {
              // A frame that cannot be encoded (application data that is not JSON) is not sent; nothing waits for it.
            }
            return undefined
          })
        case "Deliver":
          return Effect.sync(() => {
            const { frame, ticket } = command
            let text: string
            try {
              text = Frame.unsafeEncode(frame)
            } catch (defect) {
              return Input.Written({ ticket, outcome: { defect } })
            }
            const ws = socketOf(command.conn)
            if (ws === undefined) return Input.Written({ ticket, outcome: "refused" })
            ws.send(text)
            return Input.Written({ ticket, outcome: "written" })
          })
        case "CloseSocket":
          return Effect.sync(() => {
            closeSocket(command.conn, command.code)
            return undefined
          })
        case "StartTimer": {
          const timer = command.timer
          return FiberMap.run(
            timers,
            timerKey(timer),
            Effect.sleep(command.after).pipe(Effect.andThen(Effect.sync(() => post(Input.Timeout({ timer })))))
          ).pipe(Effect.as(undefined))
        }
        case "CancelTimer":
          return FiberMap.remove(timers, timerKey(command.timer)).pipe(Effect.as(undefined))
        case "Backoff":
          return Effect.gen(function*() {
            // Effect 4 schedules have no `reset`: a new step starts the backoff over.
            if (command.restart) nextDelay = yield* Schedule.toStepWithSleep(config.reconnectSchedule)
            const delay = nextDelay(command.lost)
            // Sleeps for the schedule's delay; fails (with `Cause.Done`) once the schedule is over.
            yield* FiberHandle.run(
              backoff,
              Effect.result(delay).pipe(
                Effect.flatMap((result) =>
                  Effect.sync(() => post(Result.isFailure(result) ? Input.GiveUp() : Input.Retry()))
                )
              )
            )
            return undefined
          })
        case "Answer":
          return Effect.sync(() => {
            answer(command.ticket, command.exit)
            return undefined
          })
        case "Progress":
          return Effect.sync(() => {
            const onProgress = waiting.get(command.ticket)?.onProgress
            if (onProgress !== undefined) runFork(onProgress(command.reply))
            return undefined
          })
        case "RunRoute":
          return Effect.sync(() => {
            routes.get(command.route)?.(command.command)
            return undefined
          })
        case "ShowState":
          return SubscriptionRef.set(state, command.state).pipe(Effect.as(undefined))
        case "ShowRooms":
          return SubscriptionRef.set(rooms, command.rooms).pipe(Effect.as(undefined))
        case "ShowRoster":
          return roster.show(command.peers, command.pending, command.changes).pipe(Effect.as(undefined))
        case "Announce":
          return PubSub.publish(announces, { status: command.status, message: command.message }).pipe(
            Effect.as(undefined)
          )
        case "Inbound":
          return PubSub.publish(inbound, command.frame).pipe(Effect.as(undefined))
        case "Stop":
          return Effect.gen(function*() {
            closedWith ??= command.error
            yield* Deferred.fail(terminal, closedWith)
            yield* FiberHandle.clear(backoff)
            yield* FiberMap.clear(timers)
            yield* FiberHandle.clear(connection)
            return undefined
          })
      }
    }

    // An input, then the outcomes of its writes, before the next input.
    const drive = (envelope: Envelope) =>
      Effect.gen(function*() {
        const queue: Array<Input> = [envelope.input]
        while (queue.length > 0) {
          const step: Step = transition(context, machine, queue.shift()!)
          machine = step.state
          for (const command of step.commands) {
            const outcome = yield* run(command)
            if (outcome !== undefined) queue.push(outcome)
          }
        }
        if (envelope.done !== undefined) Deferred.doneUnsafe(envelope.done, Exit.void)
      })

    const machineFiber = yield* Queue.take(inputs).pipe(Effect.flatMap(drive), Effect.forever, Effect.forkScoped)
    post(Input.Start())

    // --- calls --------------------------------------------------------------------------------------------------

    /** Submits an API call and waits for its answer; a caller that stops waiting withdraws it. */
    const call = <A, E extends ClientClosed | RequestError>(
      input: (ticket: Ticket) => Input,
      onProgress?: ((reply: Frame.Routed) => Effect.Effect<void>) | undefined
    ): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        if (closedWith !== undefined) return Effect.fail(closedWith as E)
        const ticket = ++lastTicket
        const deferred = Deferred.makeUnsafe<unknown, ClientClosed | RequestError>()
        waiting.set(ticket, { deferred, onProgress })
        post(input(ticket))
        return (Deferred.await(deferred) as Effect.Effect<A, E>).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              if (waiting.delete(ticket)) post(Input.Withdraw({ ticket }))
            })
          )
        )
      })

    const close: Effect.Effect<void> = Effect.suspend(() => {
      const ticket = ++lastTicket
      const deferred = Deferred.makeUnsafe<unknown, ClientClosed | RequestError>()
      waiting.set(ticket, { deferred, onProgress: undefined })
      post(Input.Close({ ticket }))
      // The machine may be gone already (the client's scope is closing).
      return Effect.raceFirst(Effect.ignore(Deferred.await(deferred)), Effect.ignore(Fiber.await(machineFiber)))
    }).pipe(Effect.uninterruptible)

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* close
        yield* Fiber.interrupt(machineFiber)
        closedWith ??= new ClientClosed({ reason: "Closed" })
        for (const ticket of Array.from(waiting.keys())) answer(ticket, Exit.fail(closedWith))
      })
    )

    const send = <F extends Frame.Routed>(frame: F): Effect.Effect<F, ClientClosed> =>
      call((ticket) => Input.Send({ ticket, payload: Payload.Routed({ frame: stamped(frame) }) }))

    const respond = <F extends Frame.Routed>(
      frame: F,
      reply: Partial<Omit<F, "type" | "id" | "to" | "from">> = {}
    ): Effect.Effect<F, ClientClosed> =>
      call((ticket) =>
        Input.Send({
          ticket,
          payload: Payload.Respond({ frame, reply: reply as Partial<Omit<Frame.Routed, "type" | "id" | "to">> })
        })
      )

    const request = (frame: Frame.Routed, opts: RequestOptions = {}) => {
      const { status: _status, ...rest } = frame
      const timeout = opts.timeout === undefined ? config.requestTimeout : opts.timeout
      return Effect.suspend(() => {
        const sent = stamped(rest as Frame.Routed)
        return call<Frame.Routed, RequestError | ClientClosed>(
          (ticket) => Input.Request({ ticket, frame: sent, timeout: Duration.fromInputUnsafe(timeout) }),
          opts.onProgress
        )
      })
    }

    const onCommand = <E, R>(pattern: string, handler: CommandHandler<E, R>) =>
      Effect.gen(function*() {
        const runRoute = yield* FiberSet.makeRuntime<R>()
        const reply = (command: Frame.Command, fields: CommandReply) =>
          Message.isRequest(command) ? Effect.asVoid(respond(command, { status: 200, ...fields })) : Effect.void
        const route = ++lastRoute
        routes.set(route, (command) => {
          runRoute(
            Effect.suspend(() => handler(command)).pipe(
              Effect.matchCauseEffect({
                onSuccess: (fields) => fields === undefined ? Effect.void : reply(command, fields),
                onFailure: () => reply(command, { status: 500 })
              }),
              Effect.ignore
            )
          )
        })
        post(Input.AddRoute({ route, pattern }))
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            routes.delete(route)
            post(Input.RemoveRoute({ route }))
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
      peer: Effect.sync(() => machine.phase._tag === "Online" ? Option.some(machine.phase.self) : Option.none()),
      rooms: SubscriptionRef.changes(rooms),
      currentRooms: SubscriptionRef.get(rooms),
      desiredRooms: Effect.sync(() => machine.desired),
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
      sendPresence: (opts: PresenceOptions = {}) =>
        call((ticket) =>
          Input.Send({ ticket, payload: Payload.Presence({ to: opts.to, probe: opts.probe === true }) })
        ),
      joinRoom: (room) => call((ticket) => Input.Room({ ticket, change: "join", room })),
      leaveRoom: (room) => call((ticket) => Input.Room({ ticket, change: "leave", room })),
      onCommand,
      close
    }
    return client
  })
