/**
 * The interpreter of the client's transition machine (`./Machine.ts`, `./Transition.ts`): one input at a time, it
 * runs the transition and carries out its commands in order. Everything else here turns the world into inputs (API
 * calls, socket events, timers, the reconnection schedule) and commands into effects (socket writes, Streams).
 *
 * Every command is carried out synchronously (a socket write, a publication, forking or interrupting a fiber), so
 * handling an input is a plain function call that nothing can interleave with. Inputs are handled in the order
 * they are submitted: queued for the client's own fiber when another input is ahead of them, otherwise at once by
 * the fiber that brings them. Every hand-over between fibers costs a turn of the event loop (Effect's scheduler
 * runs woken fibers from `setImmediate`): a send handled by the fiber that makes it is written and answered without
 * one. Inputs that come from fibers the machine may stop (a socket's end, timers, the reconnection schedule) always
 * go through the queue.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
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
  readonly done: Deferred.Deferred<void> | undefined
}

type Answer = Extract<Command, { readonly _tag: "Answer" }>

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
    // Every fiber the client starts lives in the client's scope.
    const runFork = yield* FiberSet.makeRuntime<never>()
    const inputs = yield* Queue.unbounded<Envelope>()
    const construct = yield* Socket.WebSocketConstructor
    const timers = new Map<string, Fiber.Fiber<unknown>>()
    let connection: Fiber.Fiber<unknown> | undefined
    let backoff: Fiber.Fiber<unknown> | undefined

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

    // Inputs submitted and not yet handled; while there are any, new ones queue behind them.
    let backlog = 0

    const post = (input: Input, done?: Deferred.Deferred<void>) => {
      backlog += 1
      Queue.offerUnsafe(inputs, { input, done })
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
            for (const data of chunk) yield* submit(Input.Received({ conn, data }), true)
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

    /** Sets a SubscriptionRef as `SubscriptionRef.set` does, without its effect (only the machine writes these). */
    const setRef = <A>(ref: SubscriptionRef.SubscriptionRef<A>, value: A) => {
      ref.value = value
      PubSub.publishUnsafe(ref.pubsub, value)
    }

    /** Carries out a command; returns the input it reports at once (a `Deliver`'s outcome), if any. */
    const perform = (command: Command, answers: Array<Answer>): Input | undefined => {
      switch (command._tag) {
        case "Open":
          connection?.interruptUnsafe()
          connection = runFork(connect(command.conn))
          return undefined
        case "Write": {
          const ws = socketOf(command.conn)
          if (ws === undefined) return undefined
          try {
            ws.send(Frame.unsafeEncode(command.frame))
          } catch {
            // A frame that cannot be encoded (application data that is not JSON) is not sent; nothing waits for it.
          }
          return undefined
        }
        case "Deliver": {
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
        }
        case "CloseSocket":
          closeSocket(command.conn, command.code)
          return undefined
        case "StartTimer": {
          const timer = command.timer
          const key = timerKey(timer)
          timers.get(key)?.interruptUnsafe()
          const fiber = runFork(
            Effect.sleep(command.after).pipe(
              Effect.andThen(Effect.sync(() => {
                timers.delete(key)
                post(Input.Timeout({ timer }))
              }))
            )
          )
          timers.set(key, fiber)
          return undefined
        }
        case "CancelTimer": {
          const key = timerKey(command.timer)
          timers.get(key)?.interruptUnsafe()
          timers.delete(key)
          return undefined
        }
        case "Backoff": {
          const { lost, restart } = command
          backoff?.interruptUnsafe()
          backoff = runFork(Effect.gen(function*() {
            // Effect 4 schedules have no `reset`: a new step starts the backoff over.
            if (restart) nextDelay = yield* Schedule.toStepWithSleep(config.reconnectSchedule)
            // Sleeps for the schedule's delay; fails (with `Cause.Done`) once the schedule is over.
            const delay = yield* Effect.result(nextDelay(lost))
            post(Result.isFailure(delay) ? Input.GiveUp() : Input.Retry())
          }))
          return undefined
        }
        case "Answer":
          answers.push(command)
          return undefined
        case "Progress": {
          const onProgress = waiting.get(command.ticket)?.onProgress
          if (onProgress !== undefined) runFork(onProgress(command.reply))
          return undefined
        }
        case "RunRoute":
          routes.get(command.route)?.(command.command)
          return undefined
        case "ShowState":
          setRef(state, command.state)
          return undefined
        case "ShowRooms":
          setRef(rooms, command.rooms)
          return undefined
        case "ShowRoster":
          roster.showUnsafe(command.peers, command.pending, command.changes)
          return undefined
        case "Announce":
          PubSub.publishUnsafe(announces, { status: command.status, message: command.message })
          return undefined
        case "Inbound":
          PubSub.publishUnsafe(inbound, command.frame)
          return undefined
        case "Stop":
          closedWith ??= command.error
          Deferred.doneUnsafe(terminal, Exit.fail(closedWith))
          backoff?.interruptUnsafe()
          for (const fiber of timers.values()) fiber.interruptUnsafe()
          timers.clear()
          connection?.interruptUnsafe()
          return undefined
      }
    }

    // An input, then the outcomes of its writes, before the next input. The callers it answers are woken last, once
    // the input is handled: a woken fiber may run at once, and its next call must find nothing ahead of it.
    const drive = (input: Input): void => {
      const answers: Array<Answer> = []
      try {
        const queue: Array<Input> = [input]
        while (queue.length > 0) {
          const step: Step = transition(context, machine, queue.shift()!)
          machine = step.state
          for (const command of step.commands) {
            const outcome = perform(command, answers)
            if (outcome !== undefined) queue.push(outcome)
          }
        }
      } finally {
        backlog -= 1
        for (const { exit, ticket } of answers) answer(ticket, exit)
      }
    }

    /**
     * Handles an input now when nothing is ahead of it, else queues it; `wait`: until it is handled (a socket's
     * reader reads on only then).
     */
    const submit = (input: Input, wait: boolean): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (backlog === 0) {
          backlog += 1
          drive(input)
          return Effect.void
        }
        if (!wait) {
          post(input)
          return Effect.void
        }
        const done = Deferred.makeUnsafe<void>()
        post(input, done)
        return Deferred.await(done)
      })

    const machineFiber = yield* Queue.take(inputs).pipe(
      Effect.flatMap(({ done, input }) =>
        Effect.sync(() => {
          drive(input)
          if (done !== undefined) Deferred.doneUnsafe(done, Exit.void)
        })
      ),
      Effect.forever,
      Effect.forkScoped
    )
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
        return submit(input(ticket), false).pipe(
          Effect.andThen(Deferred.await(deferred) as Effect.Effect<A, E>),
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              if (waiting.delete(ticket)) post(Input.Withdraw({ ticket }))
            })
          )
        )
      })

    // Run once, by the first close, while frames can still go out (a call session hangs up there).
    const closing = new Set<Effect.Effect<void>>()
    let closingRan = false
    const runClosing = Effect.suspend(() => {
      if (closingRan) return Effect.void
      closingRan = true
      return Effect.forEach(
        Array.from(closing),
        (effect) => effect.pipe(Effect.timeout(config.requestTimeout), Effect.ignore),
        { concurrency: "unbounded", discard: true }
      )
    })

    const close: Effect.Effect<void> = Effect.andThen(
      runClosing,
      Effect.suspend(() => {
        const ticket = ++lastTicket
        const deferred = Deferred.makeUnsafe<unknown, ClientClosed | RequestError>()
        waiting.set(ticket, { deferred, onProgress: undefined })
        post(Input.Close({ ticket }))
        // The machine may be gone already (the client's scope is closing).
        return Effect.raceFirst(Effect.ignore(Deferred.await(deferred)), Effect.ignore(Fiber.await(machineFiber)))
      })
    ).pipe(Effect.uninterruptible)

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
      welcome: Effect.sync(() => machine.phase._tag === "Online" ? Option.some(machine.phase.welcome) : Option.none()),
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
      close,
      beforeClose: (effect) =>
        Effect.acquireRelease(
          Effect.sync(() => closing.add(effect)),
          () => Effect.sync(() => closing.delete(effect))
        ).pipe(Effect.asVoid)
    }
    return client
  })
