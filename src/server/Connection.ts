/**
 * One connection's whole life: handshake, reader, writer, teardown.
 *
 * The socket's listeners are attached synchronously when the upgrade completes (`accept`), so no frame can arrive
 * before someone listens; they only push into the connection's inbound queue. The connection fiber (`run`) reads
 * that queue in batches, and a writer fiber drains the bounded outbound mailbox in batches, corking the socket so
 * that a batch leaves in one write. Cleanup (registry removal, offline presence, shutdown notice) is in
 * finalizers, so it also runs when the server interrupts the fiber.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as PubSub from "effect/PubSub"
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
type Signal = typeof Closed | typeof Oversize | typeof TimedOut | typeof Kicked
type Inbound = string | Uint8Array | Signal

interface CloseRequest {
  readonly code: number
  readonly reason: string
}
type Outbound = Uint8Array | CloseRequest

/** Inbound frames waiting beyond this many pause the socket until the reader catches up. */
const pauseAbove = 512
const resumeBelow = 64
const readBatch = 64
const writeBatch = 256

const textFrame = { binary: false } as const

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

/**
 * A socket accepted by the server, with its queues.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly id: string
  readonly ws: WebSocket
  readonly host: string | undefined
  readonly live: Delivery.Live
  readonly inbound: Queue.Queue<Inbound>
  readonly mailbox: Queue.Queue<Outbound>
  readonly closed: Deferred.Deferred<void>
  readonly handle: Delivery.Handle
  /** Queues frames for this peer; `false` (and the peer is being closed with 1013) when the mailbox is full. */
  readonly offer: (item: Outbound) => boolean
  /** Closes the socket right away, bypassing the mailbox. */
  readonly kick: (code: number, reason: string) => void
}

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

/**
 * Takes ownership of a freshly upgraded socket. Synchronous: must run in the upgrade callback.
 *
 * @since 0.1.0
 * @category constructors
 */
export const accept = (hub: Delivery.Hub, ws: WebSocket, socket: Duplex, host: string | undefined): Connection => {
  const { inbound, mailbox, closed } = Effect.runSync(Effect.all({
    inbound: Queue.unbounded<Inbound>(),
    mailbox: Queue.dropping<Outbound>(hub.options.mailboxSize),
    closed: Deferred.make<void>()
  }))
  const maxMessageSize = hub.options.maxMessageSize
  let pending = 0
  let paused = false
  let kicked = false
  const kick = (code: number, reason: string) => {
    if (kicked) return
    kicked = true
    ws.close(code, reason)
    Queue.unsafeOffer(inbound, Kicked)
  }
  const offer = (item: Outbound): boolean => {
    if (Queue.unsafeOffer(mailbox, item)) return true
    if (!kicked) hub.stats.slowConsumers++
    kick(1013, "Too many pending messages")
    return false
  }
  const push = (item: Inbound) => {
    Queue.unsafeOffer(inbound, item)
    if (++pending > pauseAbove && !paused) {
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
    if (bytes.length > maxMessageSize) push(Oversize)
    else push(isBinary ? bytes : bytes.toString("utf8"))
  })
  ws.on("pong", () => {
    live.alive = true
  })
  // Errors are followed by "close"; without a listener they would be thrown.
  ws.on("error", () => {})
  ws.once("close", () => {
    Queue.unsafeOffer(inbound, Closed)
    Deferred.unsafeDone(closed, Exit.void)
  })
  socket.on("error", () => {})
  hub.connections.add(live)
  const connection: Connection = {
    id: Message.randomId(),
    ws,
    host,
    live,
    inbound,
    mailbox,
    closed,
    offer,
    kick,
    handle: { send: (bytes) => void offer(bytes) }
  }
  drained.set(connection, (n) => {
    pending -= n
    if (paused && pending < resumeBelow) {
      paused = false
      ws.resume()
    }
  })
  return connection
}

const drained = new WeakMap<Connection, (n: number) => void>()

const writer = (hub: Delivery.Hub, connection: Connection, socket: Duplex) => {
  const ws = connection.ws
  const highWaterMark = hub.options.highWaterMark
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
  const loop: Effect.Effect<void> = Effect.flatMap(Queue.takeBetween(connection.mailbox, 1, writeBatch), (batch) => {
    let stop = false
    socket.cork()
    for (const item of Chunk.toReadonlyArray(batch)) {
      if (item instanceof Uint8Array) {
        ws.send(item, textFrame)
      } else {
        ws.close(item.code, item.reason)
        stop = true
        break
      }
    }
    socket.uncork()
    if (stop) return Effect.void
    // Stop draining while the socket holds too much: the mailbox then fills, and a peer that does not read is
    // closed with 1013 instead of growing the process without bound.
    return socket.writableLength > highWaterMark ? Effect.zipRight(waitDrain, loop) : loop
  })
  return loop
}

const errorBytes = (status: number, message: string) => Delivery.encode(Message.error(status, message))

type Ending = "closed" | "closing"

/**
 * The connection's life, from handshake to teardown. Never fails.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (hub: Delivery.Hub, connection: Connection, socket: Duplex): Effect.Effect<void> =>
  Effect.scoped(Effect.gen(function*() {
    const { id, ws } = connection
    const stats = hub.stats
    const options = hub.options
    const ack = drained.get(connection) ?? (() => {})
    let registered: Peer.Peer | undefined

    yield* Effect.addFinalizer((exit) =>
      Effect.gen(function*() {
        hub.connections.delete(connection.live)
        if (Exit.isInterrupted(exit) && ws.readyState === ws.OPEN) {
          ws.send(shutdownBytes, textFrame)
          ws.close(1001, "Server shutting down")
        }
        if (registered === undefined) return
        const removed = yield* PeerRegistry.disconnect(hub.registry, id)
        if (removed !== undefined && !hub.shuttingDown) {
          Delivery.deliverToSessions(stats, removed.neighbours, Presence.offline(removed.session.peer))
        }
        yield* PubSub.publish(hub.events, Delivery.ServerEvent.PeerDisconnected({ peer: registered, virtual: false }))
      })
    )
    yield* Effect.forkScoped(writer(hub, connection, socket))

    const reply = (frame: Frame.Frame) => connection.offer(Delivery.encode(frame))
    /** Error frame, then close once the writer got to it. */
    const refuse = (status: number, message: string, code: number): Ending => {
      stats.refused++
      if (connection.offer(errorBytes(status, message))) connection.offer({ code, reason: message })
      return "closing"
    }
    const badRequest = (message: string) => {
      stats.refused++
      reply(Message.error(400, message))
    }

    // Handshake: the timer keeps running across failed attempts.
    const timer = yield* Effect.sleep(options.authTimeoutMillis).pipe(
      Effect.zipRight(Effect.sync(() => Queue.unsafeOffer(connection.inbound, TimedOut))),
      Effect.forkScoped
    )
    const handshake: Effect.Effect<Ending | { readonly peer: Peer.Peer; readonly rooms: ReadonlyArray<string> }> =
      Effect.gen(function*() {
        while (true) {
          const item = yield* Queue.take(connection.inbound)
          if (typeof item === "number") {
            if (item === Closed) return "closed"
            if (item === Kicked) return "closing"
            if (item === Oversize) return refuse(413, "Message too large", 1009)
            if (item === TimedOut) return refuse(408, "Authentication timeout", 1008)
            continue
          }
          ack(1)
          const parsed = Either.flatMap(
            typeof item === "string" ? Either.right(item) : Frame.textFromBytes(item),
            Frame.parseJson
          )
          if (Either.isLeft(parsed)) {
            badRequest(parsed.left.message)
            continue
          }
          const value = parsed.right
          if (!Json.isObject(value)) {
            badRequest(`Expected a JSON object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`}`)
            continue
          }
          if (value.type !== "auth") return refuse(401, "Not authenticated", 1008)
          if (typeof value.user !== "string" || value.user === "") {
            stats.refused++
            reply(Message.error(401, "Missing user field"))
            continue
          }
          const decoded = Frame.decodeUnknown(value)
          if (Either.isLeft(decoded)) {
            badRequest(decoded.left.message)
            continue
          }
          const auth = decoded.right as Frame.Auth
          const outcome = yield* Effect.either(hub.authenticator.authenticate(auth, { id, host: connection.host }))
          if (Either.isLeft(outcome)) {
            stats.refused++
            reply(Message.error(401, outcome.left.message))
            continue
          }
          return outcome.right
        }
      })

    const awaitClose = Deferred.await(connection.closed).pipe(
      // A peer that does not finish the close handshake (e.g. it stopped reading) is dropped.
      Effect.timeout(options.shutdownTimeoutMillis),
      Effect.catchAll(() => Effect.sync(() => ws.terminate()))
    )

    const accepted = yield* handshake
    if (accepted === "closed") return
    if (accepted === "closing") return yield* awaitClose
    yield* Fiber.interrupt(timer)

    const peer = accepted.peer
    const member: State.Member<Delivery.Handle> = { id, user: peer.user, handle: connection.handle }
    const welcome: Frame.Welcome = { type: "welcome", protocol: "symple/4", status: 200, peer, rooms: accepted.rooms }
    let state = yield* PeerRegistry.connect(hub.registry, member, peer, accepted.rooms, {
      announce: (neighbours) => {
        reply(welcome)
        for (const other of neighbours) reply(Presence.online(other.peer))
      }
    })
    if (state === undefined) return yield* awaitClose
    registered = peer
    let me = State.session(state, id)!
    Delivery.deliverToSessions(stats, State.neighbours(state, id, me.rooms), Presence.online(peer))
    yield* PubSub.publish(hub.events, Delivery.ServerEvent.PeerConnected({ peer, rooms: me.rooms, virtual: false }))

    const admission = yield* RateLimit.make(options.rateLimit, options.rateSeconds)
    const address = Peer.address(peer)

    const snapshotOf = (room: string) => {
      for (const other of State.members(state!, room)) {
        if (other.id === id) continue
        const session = State.session(state!, other.id)
        if (session !== undefined) reply(Presence.online(session.peer))
      }
    }

    /** Handles one admitted frame; returns an ending when the connection must stop reading. */
    const handle = (item: string | Uint8Array): Effect.Effect<Ending | undefined> => {
      const decoded = Frame.decode(item)
      if (Either.isLeft(decoded)) {
        badRequest(decoded.left.message)
        return Effect.succeed(undefined)
      }
      const frame = decoded.right
      switch (frame.type) {
        case "message":
        case "presence":
        case "command":
        case "event": {
          const routed = frame as { -readonly [K in keyof Frame.Routed]: Frame.Routed[K] }
          routed.from = address
          if (frame.type === "presence") routed.data = Presence.sanitizeData(frame.data, me.peer)
          const route = hub.router.resolve(state!, me, frame.to)
          if (Router.isEmpty(route)) stats.undeliverable++
          else Delivery.deliver(stats, route, Delivery.encode(frame), frame)
          return Effect.succeed(undefined)
        }
        case "join":
        case "leave": {
          const room = frame.room
          if (room === undefined || room === "") return Effect.succeed(undefined)
          if (!options.dynamicRooms) {
            badRequest("Dynamic rooms disabled")
            return Effect.succeed(undefined)
          }
          const joining = frame.type === "join"
          return Effect.map(
            joining ? PeerRegistry.join(hub.registry, id, room) : PeerRegistry.leave(hub.registry, id, room),
            (next) => {
              state = next
              me = State.session(next, id) ?? me
              reply({ type: joining ? "join:ok" : "leave:ok", room })
              if (joining) snapshotOf(room)
              return undefined
            }
          )
        }
        case "close":
          connection.offer({ code: 1000, reason: "" })
          return Effect.succeed("closing")
        case "auth":
          badRequest("Already authenticated")
          return Effect.succeed(undefined)
        default:
          badRequest(`Unexpected ${frame.type} frame`)
          return Effect.succeed(undefined)
      }
    }

    const online: Effect.Effect<Ending> = Effect.gen(function*() {
      while (true) {
        const batch = Chunk.toReadonlyArray(yield* Queue.takeBetween(connection.inbound, 1, readBatch))
        let frames = 0
        for (const item of batch) if (typeof item !== "number") frames++
        ack(frames)
        stats.received += frames
        const admitted = frames === 0 ? 0 : yield* admission.admit(frames)
        state = yield* PeerRegistry.snapshot(hub.registry)
        me = State.session(state, id) ?? me
        let seen = 0
        for (const item of batch) {
          if (typeof item === "number") {
            if (item === Closed) return "closed"
            if (item === Kicked) return "closing"
            if (item === Oversize) return refuse(413, "Message too large", 1009)
            continue
          }
          if (seen++ >= admitted) return refuse(429, "Rate limit exceeded", 1008)
          const ending = yield* handle(item)
          if (ending !== undefined) return ending
        }
      }
    })

    const ending = yield* online
    if (ending === "closing") yield* awaitClose
  }))
