/**
 * One connection's whole life: handshake, reader, writer, teardown.
 *
 * The socket's listeners are attached synchronously when the upgrade completes (`accept`), so no frame can arrive
 * before someone listens. The connection fiber (`run`) owns the life cycle: handshake, registration, membership
 * changes, and cleanup in finalizers (so it also runs when the server interrupts the fiber).
 *
 * Hot path: waking a fiber costs about 10 µs, several times the cost of routing a frame, so once a peer is online,
 * frames are admitted (rate limit) and routed frames handled right in the socket listener (decode, route on the
 * registry's latest snapshot, encode once, hand to recipients) as long as the fiber has nothing queued; everything
 * else, and everything behind it, goes through the fiber in order.
 *
 * Outbound, a frame is written at once while the peer's mailbox is empty and its socket not backed up (writes of
 * one tick are corked into one syscall); otherwise it waits in the bounded mailbox, which a writer fiber (started
 * on demand) drains in batches once the socket drains. A peer whose mailbox overflows is closed with 1013.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type { Duplex } from "node:stream"
import type { RawData, WebSocket } from "ws"
import * as Frame from "../protocol/Frame.js"
import * as Json from "../protocol/Json.js"
import * as Message from "../protocol/Message.js"
import * as Peer from "../protocol/Peer.js"
import * as Delivery from "./Delivery.js"
import * as PeerRegistry from "./PeerRegistry.js"
import * as Presence from "./Presence.js"
import * as RateLimit from "./RateLimit.js"
import * as Router from "./Router.js"
import * as State from "./State.js"

const Closed = 0
const Oversize = 1
const TimedOut = 2
const Kicked = 3
const Limited = 4
type Signal = typeof Closed | typeof Oversize | typeof TimedOut | typeof Kicked | typeof Limited
/** An inbound frame, or what happened to the socket. */
export type Inbound = string | Uint8Array | Signal

interface CloseRequest {
  readonly code: number
  readonly reason: string
}
type Outbound = Uint8Array | CloseRequest

/** Inbound frames waiting for the fiber beyond this many pause the socket until it catches up. */
const pauseAbove = 512
const resumeBelow = 64
const readBatch = 64
const writeBatch = 256

const textFrame = { binary: false } as const

const ignore = () => {}

/**
 * Write coalescing. `ticks` counts ticks in which something was written; sockets corked during this tick are
 * uncorked together by the one `nextTick` that ends it, so a tick's writes to a socket leave together.
 */
const corked: Array<Duplex> = []
let ticks = 0
let tickScheduled = false
const endTick = () => {
  ticks++
  tickScheduled = false
  for (const socket of corked) socket.uncork()
  corked.length = 0
}
/** The current tick's number, making sure the tick is ended (and its corked sockets flushed). */
const currentTick = (): number => {
  if (!tickScheduled) {
    tickScheduled = true
    process.nextTick(endTick)
  }
  return ticks
}

/**
 * The shutdown notice every peer gets before close 1001.
 *
 * @since 0.1.0
 * @category constants
 */
export const shutdownNotice: Frame.Event = {
  type: "event",
  name: "shutdown",
  subtype: "shutdown",
  message: "Server shutting down"
}
const shutdownBytes = Delivery.encode(shutdownNotice)

/** Routing context of an online peer, set by the connection fiber once registered. */
interface Online {
  readonly id: string
  readonly address: string
  readonly admission: RateLimit.Admission
  /** The peer's session in the snapshot `seen`: the registry changes far less often than frames arrive. */
  seen: State.State<Delivery.Handle> | undefined
  me: State.Session<Delivery.Handle> | undefined
}

/**
 * What the socket's listeners hand to the connection fiber, in order. Unbounded (the listener pauses the socket
 * when it grows) and single-consumer. A plain array and one wake-up callback rather than an Effect `Queue`: an
 * idle connection's fiber waits here, and a fiber suspended in `Queue.take` holds about 3 KiB more than one
 * suspended in a bare `Effect.async`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Inbox {
  readonly push: (item: Inbound) => void
  /** Takes what is waiting, at most `max` items; waits (interruptibly) while nothing is. */
  readonly takeUpTo: (max: number) => Effect.Effect<ReadonlyArray<Inbound>>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeInbox = (): Inbox => {
  let items: Array<Inbound> = []
  let head = 0
  let wake: ((effect: Effect.Effect<void>) => void) | undefined
  const clear = Effect.sync(() => {
    wake = undefined
  })
  // Checks again on registration: the fiber may have yielded between finding nothing and waiting.
  const ready = Effect.async<void>((resume) => {
    if (head < items.length) return resume(Effect.void)
    wake = resume
    return clear
  })
  const take = (max: number): ReadonlyArray<Inbound> => {
    const end = Math.min(items.length, head + max)
    const out = items.slice(head, end)
    if (end === items.length) {
      items = []
      head = 0
    } else head = end
    return out
  }
  return {
    push: (item) => {
      items.push(item)
      const resume = wake
      if (resume !== undefined) {
        wake = undefined
        resume(Effect.void)
      }
    },
    takeUpTo: (max) => {
      const again: Effect.Effect<ReadonlyArray<Inbound>> = Effect.suspend(() =>
        head < items.length ? Effect.succeed(take(max)) : Effect.zipRight(ready, again)
      )
      return again
    }
  }
}

/**
 * A socket accepted by the server, with its queues.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly id: string
  readonly ws: WebSocket
  readonly socket: Duplex
  readonly host: string | undefined
  readonly live: Delivery.Live
  readonly inbound: Inbox
  /** Succeeds once the socket is closed. */
  readonly closed: Effect.Effect<void>
  readonly handle: Delivery.Handle
  /** Sends bytes or a close, in order; `false` (and the peer is being closed with 1013) when the mailbox is full. */
  readonly offer: (item: Outbound) => boolean
  /** Closes the socket right away, bypassing the mailbox. */
  readonly kick: (code: number, reason: string) => void
  /** Called by the fiber: `n` inbound items were taken off the queue. */
  readonly taken: (n: number) => void
  /**
   * Called by the fiber once the peer is registered; returns how many frames were already waiting for the fiber
   * (they were not admitted by the listener).
   */
  readonly goOnline: (online: Online) => number
}

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

const errorBytes = (status: number, message: string) => Delivery.wire(Message.error(status, message))

/** A mutable view of a routed frame: the server sets `from` (and presence `data`) in place. */
type Writable = { -readonly [K in keyof Frame.Routed]: Frame.Routed[K] }

/**
 * Routes a decoded frame from an online peer. Returns `false` for frames that need the connection fiber
 * (membership changes, close, anything unexpected).
 */
const route = (hub: Delivery.Hub, online: Online, frame: Frame.Frame): boolean => {
  switch (frame.type) {
    case "message":
    case "presence":
    case "command":
    case "event": {
      const state = PeerRegistry.unsafeSnapshot(hub.registry)
      if (online.seen !== state) {
        online.seen = state
        online.me = State.session(state, online.id)
      }
      const me = online.me
      if (me === undefined) return true
      const routed = frame as Writable
      routed.from = online.address
      if (frame.type === "presence") routed.data = Presence.sanitizeData(frame.data, me.peer)
      const target = hub.router.resolve(state, me, frame.to)
      if (Router.isEmpty(target)) hub.stats.undeliverable++
      else Delivery.deliver(hub.stats, target, Delivery.wire(frame), frame)
      return true
    }
    default:
      return false
  }
}

/**
 * Takes ownership of a freshly upgraded socket. Synchronous: must run in the upgrade callback.
 *
 * @since 0.1.0
 * @category constructors
 */
export const accept = (hub: Delivery.Hub, ws: WebSocket, socket: Duplex, host: string | undefined): Connection => {
  const inbound = makeInbox()
  // Created on the first backlog: most peers never need one.
  let mailbox: Queue.Queue<Outbound> | undefined
  const maxMessageSize = hub.options.maxMessageSize
  const highWaterMark = hub.options.highWaterMark
  const stats = hub.stats
  let backlog = 0
  let paused = false
  let kicked = false
  let queued = 0
  let writing = false
  let corkedAt = -1
  let wroteAt = -1
  let online: Online | undefined
  let limited = false

  const kick = (code: number, reason: string) => {
    if (kicked) return
    kicked = true
    ws.close(code, reason)
    inbound.push(Kicked)
  }

  // Outbound bytes are complete WebSocket frames (`Delivery.wire`), written to the socket as they are. Nothing
  // after a close frame: once closing, the socket takes no more data (as `ws.send` would refuse it).
  const write = (bytes: Uint8Array) => {
    if (ws.readyState === 1) socket.write(bytes)
  }

  // The writer fiber exists only while the mailbox holds something: an idle peer costs no fiber for it, nor the
  // writer's effects (built on the first backlog).
  let drain: Effect.Effect<void> | undefined
  const makeDrain = (): Effect.Effect<void> => {
    const waitDrain = Effect.async<void>((resume) => {
      const done = () => {
        socket.off("drain", done)
        socket.off("close", done)
        resume(Effect.void)
      }
      socket.on("drain", done)
      socket.on("close", done)
      return Effect.sync(() => {
        socket.off("drain", done)
        socket.off("close", done)
      })
    })
    const takeBatch = Effect.suspend(() => Queue.takeUpTo(mailbox!, writeBatch))
    const writeBatchOf: Effect.Effect<void> = Effect.flatMap(takeBatch, (batch) => {
      socket.cork()
      for (const item of Chunk.toReadonlyArray(batch)) {
        if (item instanceof Uint8Array) write(item)
        else ws.close(item.code, item.reason)
      }
      socket.uncork()
      queued -= Chunk.size(batch)
      if (queued > 0) return loop
      writing = false
      return Effect.void
    })
    // Stop draining while the socket holds too much: the mailbox then fills, and a peer that does not read is
    // closed with 1013 instead of growing the process without bound.
    const loop: Effect.Effect<void> = Effect.suspend(() =>
      socket.writableLength > highWaterMark && !socket.destroyed
        ? Effect.zipRight(waitDrain, writeBatchOf)
        : writeBatchOf
    )
    return loop
  }

  const offer = (item: Outbound): boolean => {
    if (kicked) return false
    if (queued === 0 && socket.writableLength <= highWaterMark) {
      // The first write of a tick goes straight out; a second one in the same tick corks the socket until the
      // tick ends, so that a burst leaves in one syscall while a lone frame pays no cork and no extra tick.
      const tick = currentTick()
      if (wroteAt !== tick) wroteAt = tick
      else if (corkedAt !== tick) {
        corkedAt = tick
        socket.cork()
        corked.push(socket)
      }
      if (item instanceof Uint8Array) write(item)
      else ws.close(item.code, item.reason)
      return true
    }
    mailbox ??= Effect.runSync(Queue.dropping<Outbound>(hub.options.mailboxSize))
    if (!Queue.unsafeOffer(mailbox, item)) {
      stats.slowConsumers++
      kick(1013, "Too many pending messages")
      return false
    }
    queued++
    if (!writing) {
      writing = true
      hub.fork(drain ??= makeDrain())
    }
    return true
  }
  const toFiber = (item: Inbound) => {
    inbound.push(item)
    if (++backlog > pauseAbove && !paused) {
      paused = true
      ws.pause()
    }
  }
  const live: Delivery.Live = {
    alive: true,
    ping: () => ws.ping(),
    terminate: () => ws.terminate()
  }
  ws.on("message", (data: RawData, isBinary: boolean) => {
    const bytes = toBuffer(data)
    if (bytes.length > maxMessageSize) return toFiber(Oversize)
    const item = isBinary ? bytes : bytes.toString("utf8")
    if (online === undefined) return toFiber(item)
    if (limited || kicked) return
    stats.received++
    if (online.admission.admit(1) === 0) {
      // Refused in order, after whatever the fiber still has to handle.
      limited = true
      return toFiber(Limited)
    }
    if (backlog > 0) return toFiber(item)
    const decoded = Frame.decode(item)
    if (Either.isLeft(decoded)) {
      stats.refused++
      offer(errorBytes(decoded.left.status, decoded.left.message))
      return
    }
    if (!route(hub, online, decoded.right)) toFiber(item)
  })
  ws.on("pong", () => {
    live.alive = true
  })
  // Errors are followed by "close"; without a listener they would be thrown.
  ws.on("error", ignore)
  let isClosed = false
  let onClosed: (() => void) | undefined
  ws.on("close", () => {
    isClosed = true
    inbound.push(Closed)
    onClosed?.()
  })
  const closed = Effect.async<void>((resume) => {
    if (isClosed) return resume(Effect.void)
    onClosed = () => resume(Effect.void)
    return Effect.sync(() => {
      onClosed = undefined
    })
  })
  socket.on("error", ignore)
  hub.connections.add(live)
  return {
    id: Message.randomId(),
    ws,
    socket,
    host,
    live,
    inbound,
    closed,
    offer,
    kick,
    handle: { send: (bytes) => void offer(bytes) },
    taken: (n) => {
      backlog -= n
      if (paused && backlog < resumeBelow) {
        paused = false
        ws.resume()
      }
    },
    goOnline: (value) => {
      online = value
      return backlog
    }
  }
}

type Ending = "closed" | "closing"

const reply = (connection: Connection, frame: Frame.Frame) => connection.offer(Delivery.wire(frame))

/** Error frame, then close once it is written. */
const refuse = (hub: Delivery.Hub, connection: Connection, status: number, message: string, code: number): Ending => {
  hub.stats.refused++
  if (connection.offer(errorBytes(status, message))) connection.offer({ code, reason: message })
  return "closing"
}

const badRequest = (hub: Delivery.Hub, connection: Connection, message: string) => {
  hub.stats.refused++
  reply(connection, Message.error(400, message))
}

const awaitClose = (hub: Delivery.Hub, connection: Connection) =>
  connection.closed.pipe(
    // A peer that does not finish the close handshake (e.g. it stopped reading) is dropped.
    Effect.timeout(hub.options.shutdownTimeoutMillis),
    Effect.catchAll(() => Effect.sync(() => connection.ws.terminate()))
  )

/** An effect that is already its result (what `Effect.succeed` returns). */
const isExit = <A, E>(effect: Effect.Effect<A, E>): effect is Exit.Exit<A, E> => Exit.isExit(effect)

interface Accepted {
  readonly peer: Peer.Peer
  readonly rooms: ReadonlyArray<string>
}

/**
 * Until a successful `auth` (or the end); the timer keeps running across failed attempts. A plain loop rather than
 * a generator, and a plain timer rather than a fiber: per handshake, each costs more than the rest of the work.
 * The caller clears the timer (`timer.cancel`), also when the fiber is interrupted.
 */
const handshake = (
  hub: Delivery.Hub,
  connection: Connection,
  timer: { cancel: () => void }
): Effect.Effect<Ending | Accepted> => {
  const deadline = Date.now() + hub.options.authTimeoutMillis
  const handle = setTimeout(() => connection.inbound.push(TimedOut), hub.options.authTimeoutMillis)
  timer.cancel = () => clearTimeout(handle)
  const next = (item: Inbound): Effect.Effect<Ending | Accepted> => {
    if (typeof item === "number") {
      if (item === Closed) return Effect.succeed("closed")
      if (item === Kicked) return Effect.succeed("closing")
      if (item === Oversize) return Effect.succeed(refuse(hub, connection, 413, "Message too large", 1009))
      if (item === TimedOut) return Effect.succeed(refuse(hub, connection, 408, "Authentication timeout", 1008))
      return loop
    }
    connection.taken(1)
    const parsed = Either.flatMap(
      typeof item === "string" ? Either.right(item) : Frame.textFromBytes(item),
      Frame.parseJson
    )
    if (Either.isLeft(parsed)) {
      badRequest(hub, connection, parsed.left.message)
      return loop
    }
    const value = parsed.right
    if (!Json.isObject(value)) {
      const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`
      badRequest(hub, connection, `Expected a JSON object, got ${kind}`)
      return loop
    }
    if (value.type !== "auth") return Effect.succeed(refuse(hub, connection, 401, "Not authenticated", 1008))
    if (typeof value.user !== "string" || value.user === "") {
      hub.stats.refused++
      reply(connection, Message.error(401, "Missing user field"))
      return loop
    }
    const decoded = Frame.decodeUnknown(value)
    if (Either.isLeft(decoded)) {
      badRequest(hub, connection, decoded.left.message)
      return loop
    }
    const auth = decoded.right as Frame.Auth
    const attempt = hub.authenticator.authenticate(auth, { id: connection.id, host: connection.host })
    // The built-in check answers with a plain success: no effect steps for it on every handshake.
    if (isExit(attempt) && Exit.isSuccess(attempt)) {
      clearTimeout(handle)
      return Effect.succeed(attempt.value)
    }
    const authenticate = Effect.either(attempt)
    // A hook that hangs must not outlive the handshake's deadline (the built-in anonymous check cannot hang).
    const decision = hub.authenticatorMayWait
      ? Effect.timeoutOption(authenticate, Math.max(0, deadline - Date.now()))
      : Effect.map(authenticate, Option.some)
    return Effect.flatMap(decision, (decision): Effect.Effect<Ending | Accepted> => {
      if (Option.isNone(decision)) return Effect.succeed(refuse(hub, connection, 408, "Authentication timeout", 1008))
      const outcome = decision.value
      if (Either.isLeft(outcome)) {
        hub.stats.refused++
        reply(connection, Message.error(401, outcome.left.message))
        return loop
      }
      clearTimeout(handle)
      return Effect.succeed(outcome.right)
    })
  }
  const loop: Effect.Effect<Ending | Accepted> = Effect.flatMap(
    connection.inbound.takeUpTo(1),
    (items) => next(items[0]!)
  )
  return loop
}

/** Registers the peer: welcome and snapshot first, then its online presence to the others. */
const register = (hub: Delivery.Hub, connection: Connection, accepted: Accepted): Effect.Effect<boolean> => {
  const { id } = connection
  const peer = accepted.peer
  const member: State.Member<Delivery.Handle> = { id, user: peer.user, handle: connection.handle }
  const welcome: Frame.Welcome = { type: "welcome", protocol: "symple/4", status: 200, peer, rooms: accepted.rooms }
  // The peers sharing a room with the newcomer, as `announce` found them in the state it returns.
  let found: ReadonlyArray<State.Session<Delivery.Handle>> = []
  return Effect.map(
    PeerRegistry.connect(hub.registry, member, peer, accepted.rooms, {
      announce: (neighbours) => {
        found = neighbours
        reply(connection, welcome)
        for (const other of neighbours) connection.offer(Delivery.onlinePresence(other.peer).bytes)
      }
    }),
    (joined) => {
      if (joined === undefined) return false
      // Encoded (and cached) only when someone is to be told: a peer alone in its rooms costs no presence bytes.
      if (found.length > 0) {
        const presence = Delivery.onlinePresence(peer)
        Delivery.deliverEncoded(hub.stats, found, presence.bytes, presence.frame)
      }
      // The events hub is unbounded: offering never waits, so no fiber step is spent on it.
      const rooms = State.session(joined, id)?.rooms ?? []
      hub.events.unsafeOffer(Delivery.ServerEvent.PeerConnected({ peer, rooms, virtual: false }))
      return true
    }
  )
}

const teardown = (hub: Delivery.Hub, connection: Connection, registered: { peer: Peer.Peer | undefined }) =>
(exit: Exit.Exit<unknown, unknown>) =>
  Effect.suspend(() => {
    const ws = connection.ws
    hub.connections.delete(connection.live)
    if (Exit.isInterrupted(exit) && ws.readyState === ws.OPEN) {
      ws.send(shutdownBytes, textFrame)
      ws.close(1001, "Server shutting down")
    }
    const peer = registered.peer
    if (peer === undefined) return Effect.void
    return Effect.map(PeerRegistry.disconnect(hub.registry, connection.id), (removed) => {
      if (removed !== undefined && !hub.shuttingDown) {
        Delivery.deliverToSessions(hub.stats, removed.neighbours, Presence.offline(removed.session.peer))
      }
      hub.events.unsafeOffer(Delivery.ServerEvent.PeerDisconnected({ peer, virtual: false }))
    })
  })

const snapshotOf = (connection: Connection, state: State.State<Delivery.Handle>, room: string) => {
  for (const other of State.members(state, room)) {
    if (other.id === connection.id) continue
    const session = State.session(state, other.id)
    if (session !== undefined) connection.offer(Delivery.onlinePresence(session.peer).bytes)
  }
}

/** Handles one admitted frame of an online peer; returns an ending when the connection must stop reading. */
const handleFrame = (
  hub: Delivery.Hub,
  connection: Connection,
  online: Online,
  item: string | Uint8Array
): Effect.Effect<Ending | undefined> => {
  const decoded = Frame.decode(item)
  if (Either.isLeft(decoded)) {
    badRequest(hub, connection, decoded.left.message)
    return Effect.succeed(undefined)
  }
  const frame = decoded.right
  if (route(hub, online, frame)) return Effect.succeed(undefined)
  switch (frame.type) {
    case "join":
    case "leave": {
      const room = frame.room
      if (room === undefined || room === "") return Effect.succeed(undefined)
      if (!hub.options.dynamicRooms) {
        badRequest(hub, connection, "Dynamic rooms disabled")
        return Effect.succeed(undefined)
      }
      const joining = frame.type === "join"
      return Effect.map(
        joining ? PeerRegistry.join(hub.registry, online.id, room) : PeerRegistry.leave(hub.registry, online.id, room),
        (state) => {
          reply(connection, { type: joining ? "join:ok" : "leave:ok", room })
          if (joining) snapshotOf(connection, state, room)
          return undefined
        }
      )
    }
    case "close":
      connection.offer({ code: 1000, reason: "" })
      return Effect.succeed("closing")
    case "auth":
      badRequest(hub, connection, "Already authenticated")
      return Effect.succeed(undefined)
    default:
      badRequest(hub, connection, `Unexpected ${frame.type} frame`)
      return Effect.succeed(undefined)
  }
}

/**
 * The online phase for frames the listener hands over (membership changes, close, and whatever arrives behind
 * them). A plain loop rather than a generator: this is what an idle connection's fiber holds on to, so it is kept
 * small. Frames that were queued before the peer went online (`unadmitted`) are admitted here; the listener
 * admitted the others.
 */
const reading = (
  hub: Delivery.Hub,
  connection: Connection,
  online: Online,
  unadmitted: number
): Effect.Effect<Ending> => {
  let pending = unadmitted
  const processBatch = (batch: ReadonlyArray<Inbound>): Effect.Effect<Ending> =>
    Effect.gen(function*() {
      for (const item of batch) {
        if (typeof item === "number") {
          if (item === Closed) return "closed"
          if (item === Kicked) return "closing"
          if (item === Oversize) return refuse(hub, connection, 413, "Message too large", 1009)
          if (item === Limited) return refuse(hub, connection, 429, "Rate limit exceeded", 1008)
          continue
        }
        if (pending > 0) {
          pending--
          hub.stats.received++
          if (online.admission.admit(1) === 0) return refuse(hub, connection, 429, "Rate limit exceeded", 1008)
        }
        const ending = yield* handleFrame(hub, connection, online, item)
        // Acknowledged one by one: the listener routes directly again only once nothing is left for the fiber.
        connection.taken(1)
        if (ending !== undefined) return ending
      }
      return yield* loop
    })
  const loop: Effect.Effect<Ending> = Effect.flatMap(connection.inbound.takeUpTo(readBatch), processBatch)
  return loop
}

/**
 * The connection's life, from handshake to teardown. Never fails.
 *
 * Teardown runs on exit (also when the server interrupts the fiber). No Scope unless the rate limiter needs one:
 * opening and closing a scope per connection is a measurable share of a handshake.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (hub: Delivery.Hub, connection: Connection): Effect.Effect<void> => {
  const registered: { peer: Peer.Peer | undefined } = { peer: undefined }
  const timer = { cancel: ignore }
  const limit = hub.options.rateLimit
  const online = (accepted: Accepted, admission: RateLimit.Admission): Effect.Effect<unknown> => {
    const state: Online = {
      id: connection.id,
      address: Peer.address(accepted.peer),
      admission,
      seen: undefined,
      me: undefined
    }
    const unadmitted = connection.goOnline(state)
    return Effect.flatMap(
      reading(hub, connection, state, unadmitted),
      (ending) => ending === "closing" ? awaitClose(hub, connection) : Effect.void
    )
  }
  const body = Effect.flatMap(handshake(hub, connection, timer), (accepted): Effect.Effect<unknown> => {
    if (accepted === "closed") return Effect.void
    if (accepted === "closing") return awaitClose(hub, connection)
    return Effect.flatMap(register(hub, connection, accepted), (ok) => {
      if (!ok) return awaitClose(hub, connection)
      registered.peer = accepted.peer
      if (limit <= 0) return online(accepted, RateLimit.unlimited)
      return Effect.scoped(Effect.flatMap(
        Effect.scope,
        (scope) => online(accepted, RateLimit.make(limit, hub.options.rateSeconds, scope))
      ))
    })
  })
  const finish = teardown(hub, connection, registered)
  return Effect.asVoid(Effect.onExit(body, (exit) => {
    timer.cancel()
    return finish(exit)
  }))
}
