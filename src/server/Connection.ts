/**
 * One connection's whole life: handshake, frames, writes, teardown.
 *
 * The socket's listeners are attached synchronously when the upgrade completes (`accept`), so no frame can arrive
 * before someone listens. Each connection has one fiber, supervised by the server (`run`): it lives as long as the
 * connection, and interrupting it (server shutdown) sends the shutdown notice, closes the socket with 1001 and
 * tears the connection down.
 *
 * Frames are handled where they arrive, in the socket listener: the handshake, membership changes, and routed
 * frames (decode, route on the registry's latest snapshot, encode once, hand to recipients). Waking a fiber costs
 * more than handling a frame, so the connection's fiber sleeps through its life: one bare `Effect.callback`, which is
 * also the cheapest fiber to start and to keep. Only an authentication hook that runs effects is waited for, in a
 * fiber of its own; what arrives meanwhile waits in the connection's backlog and is handled, in order, once the
 * hook has answered.
 *
 * Outbound, a frame is written at once while the peer's mailbox is empty and its socket not backed up (a second
 * frame for the same socket within one tick corks it, so that a burst leaves in one syscall); otherwise it waits in
 * the bounded mailbox, which is written out each time the socket drains. A peer too slow for its frames is closed
 * with 1013: its mailbox is full, it has more than `maxQueuedBytes` waiting (mailbox and socket), or it is among the
 * peers with the most waiting when all together have more than `maxOutboundBytes` (see `OutboundBudget`). Its
 * mailbox is dropped, so that the close frame follows at most what its socket already holds: a peer that reads
 * again soon enough learns why it was closed, one that never does is dropped at the close handshake's deadline.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import type { Duplex } from "node:stream"
import type { RawData, WebSocket } from "ws"
import * as Frame from "../protocol/Frame.js"
import * as Json from "../protocol/Json.js"
import * as Message from "../protocol/Message.js"
import * as Peer from "../protocol/Peer.js"
import type * as Authenticator from "./Authenticator.js"
import * as Delivery from "./Delivery.js"
import * as OutboundBudget from "./OutboundBudget.js"
import * as PeerRegistry from "./PeerRegistry.js"
import * as Presence from "./Presence.js"
import * as RateLimit from "./RateLimit.js"
import * as Router from "./Router.js"
import * as State from "./State.js"

/** A frame above `maxMessageSize` arrived behind frames still waiting in the backlog. */
const Oversize = 0

/** An authentication that has to wait: it runs in a fiber of its own. */
interface Pending {
  readonly pending: Effect.Effect<Outcome>
}

/** An inbound frame waiting in the backlog, or what happened behind the frames before it. */
type Inbound = string | Uint8Array | typeof Oversize

/** `undefined`: go on reading. */
type Outcome = "closing" | undefined

interface CloseRequest {
  readonly code: number
  readonly reason: string
}
type Outbound = Uint8Array | CloseRequest

/** Inbound frames waiting in the backlog beyond this many pause the socket until it is handled. */
const pauseAbove = 512
/** Written mailbox slots beyond this many are given back even while frames still wait behind them. */
const compactAbove = 1024

const textFrame = { binary: false } as const

const ignore = () => {}

/**
 * Write coalescing. `ticks` counts ticks in which something was written. A socket's first write in a tick goes
 * straight out; a second one corks the socket, and the one microtask that ends the tick uncorks every socket corked
 * in it, so that the rest of a tick's writes to a socket leave together. (A microtask rather than `nextTick`: it
 * runs at the same point, after the current callback, and costs about a third less.)
 */
const corked: Array<ConnectionImpl> = []
let ticks = 0
let tickScheduled = false
const endTick = () => {
  ticks++
  tickScheduled = false
  for (const connection of corked) {
    try {
      connection.uncorked()
    } catch (error) {
      connection.failed(error)
    }
  }
  corked.length = 0
}
/** The current tick's number, making sure the tick is ended (and its corked sockets flushed). */
const currentTick = (): number => {
  if (!tickScheduled) {
    tickScheduled = true
    queueMicrotask(endTick)
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

/** Routing context of an online peer. */
interface Online {
  readonly id: string
  readonly address: string
  /** `,"from":"<address>"}`: closes a frame's text with the sender's address. */
  readonly fromSuffix: string
  readonly peer: Peer.Peer
  readonly admission: RateLimit.Admission
  /** The peer's session in the snapshot `seen`: the registry changes far less often than frames arrive. */
  seen: State.State<Delivery.Handle> | undefined
  me: State.Session<Delivery.Handle> | undefined
  /** Routes resolved in the snapshot `seen`, by `to` (the router is a pure function of state, sender and `to`). */
  routes: Map<string, Router.Route<Delivery.Handle>> | undefined
}

/** Beyond this many distinct destinations per snapshot, a peer's route cache starts over. */
const maxCachedRoutes = 64

/**
 * A cache key for the usual `to` values, naming the target rather than the text: a room or user name is itself
 * (it has no `|`); an address is `|@` and its id, since routing ignores the user part (otherwise varying that part
 * would miss the cache on every frame); none (own rooms) is `|*`; one room in an array is `|[` and the room. Only a
 * name lacks the `|`, and the character after it tells the other kinds apart, so no two kinds share a key.
 */
const routeKey = (to: unknown): string | undefined => {
  if (typeof to === "string") {
    // The id is what follows the first `|`, as `Address.parse` reads it.
    const bar = to.indexOf("|")
    return bar === -1 ? to : `|@${to.slice(bar + 1)}`
  }
  return to === undefined
    ? "|*"
    : Array.isArray(to) && to.length === 1 && typeof to[0] === "string"
    ? `|[${to[0]}`
    : undefined
}

/**
 * A socket accepted by the server: its state, its outbound path, and the transitions of its life.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection extends Delivery.Handle, Delivery.Live {
  readonly id: string
  readonly ws: WebSocket
  readonly socket: Duplex
  readonly host: string | undefined
  readonly openedAt: number
  /**
   * Sends bytes or a close, in order; `false` (and the peer is being closed with 1013) when the peer is too slow:
   * its mailbox is full, or it has too many bytes waiting.
   */
  readonly offer: (item: Outbound) => boolean
  /** Closes the socket right away; what waits in the mailbox is dropped. */
  readonly kick: (code: number, reason: string) => void
  /** Set once the peer is registered. */
  readonly online: () => Online | undefined
  /** Whether the connection is closing or closed (nothing more is to be done for it). */
  readonly ended: () => boolean
  /** Counts a frame received before authentication; returns how many there have been. */
  readonly countPreAuth: () => number
  /** Counts a refused `auth`; returns how many there have been. */
  readonly countAuthFailure: () => number
  /** Registered: frames are now routed. */
  readonly goOnline: (accepted: Authenticator.Accepted) => void
  /**
   * The connection is closing (a close frame is on its way): later frames are ignored, and a peer that does not
   * finish the close handshake in time is dropped.
   */
  readonly end: () => void
}

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

const errorBytes = (status: number, message: string) => Delivery.wire(Message.error(status, message))

/** A mutable view of a routed frame: the server sets `from` (and presence `data`) in place. */
type Writable = { -readonly [K in keyof Frame.Routed]: Frame.Routed[K] }

/**
 * The text to forward for a routed frame received as `text`, when it can be forwarded without rendering it again:
 * as it came when it already names the sender in `from`, or with `from` added at the end (where rendering the
 * frame would put it) when it has none. `undefined` when `from` names someone else, or when the text repeats a
 * top-level key: `JSON.parse` kept the last one, but a parser that keeps the first would read another frame (a
 * forged `from` ahead of the true one, a second `type`). Those are rendered again, with one of each key.
 *
 * Recipients parse the same text the server validated, so they read the same frame; only insignificant
 * whitespace and number spellings (`1.0`) can differ from a fresh rendering.
 */
const forwardText = (online: Online, frame: Frame.Routed, text: string): string | undefined => {
  const named = "from" in frame
  if (named && frame.from !== online.address) return undefined
  if (Json.hasRepeatedKey(text, frame)) return undefined
  return named ? text : text.slice(0, text.lastIndexOf("}")) + online.fromSuffix
}

/** A frame rendered again; `undefined` when it is nested too deeply for `JSON.stringify`, which recurses. */
const render = (frame: Frame.Routed): string | undefined => {
  try {
    return Frame.unsafeEncode(frame)
  } catch (error) {
    if (error instanceof RangeError) return undefined
    throw error
  }
}

/**
 * Routes a decoded frame from an online peer (`text` is what it was decoded from, if it came as text). Returns
 * `false` for frames that are not routed (membership changes, close, anything unexpected).
 */
const route = (
  hub: Delivery.Hub,
  connection: Connection,
  online: Online,
  frame: Frame.Frame,
  text: string | undefined
): boolean => {
  switch (frame.type) {
    case "message":
    case "presence":
    case "command":
    case "event": {
      const state = PeerRegistry.unsafeSnapshot(hub.registry)
      if (online.seen !== state) {
        online.seen = state
        online.me = State.session(state, online.id)
        online.routes = undefined
      }
      const me = online.me
      if (me === undefined) return true
      // Presence data is rewritten by the server, so presence is always rendered again.
      const forward = text === undefined || frame.type === "presence" ? undefined : forwardText(online, frame, text)
      const routed = frame as Writable
      routed.from = online.address
      if (frame.type === "presence") routed.data = Presence.sanitizeData(frame.data, me.peer)
      // Rendered before routing: whether a frame is refused must not tell its sender whether anyone would get it.
      const out = forward ?? render(frame)
      if (out === undefined) {
        badRequest(hub, connection, "Frame cannot be forwarded: nested too deeply")
        return true
      }
      const key = routeKey(frame.to)
      let target = key === undefined ? undefined : online.routes?.get(key)
      if (target === undefined) {
        target = hub.router.resolve(state, me, frame.to)
        if (key !== undefined) {
          if (online.routes === undefined || online.routes.size >= maxCachedRoutes) online.routes = new Map()
          online.routes.set(key, target)
        }
      }
      if (Router.isEmpty(target)) hub.stats.undeliverable++
      else Delivery.deliver(hub.stats, target, Delivery.wireText(out), frame)
      return true
    }
    default:
      return false
  }
}

/** Where the shared socket listeners find their connection (`this` in a listener is the emitter). */
const owner = Symbol("symple/server/Connection")
type Owned = { [owner]?: ConnectionImpl }

/** The mailbox: frames from `head` on wait; the slots before it are written. */
type Mailbox = Array<Outbound | undefined>

/**
 * One connection's state and behaviour. A class, so that thousands of connections share their methods: a
 * connection holds its fields and no closures of its own, which keeps it small and cheap to set up.
 */
class ConnectionImpl implements Connection, OutboundBudget.Waiting {
  readonly id = Message.randomId()
  readonly openedAt = Date.now()
  alive = true
  /**
   * Inbound items waiting behind an authentication that is still being decided, in order; `undefined` while the
   * listener handles frames as they arrive.
   */
  backlog: Array<Inbound> | undefined = undefined
  paused = false
  kicked = false
  /** Set once the connection is ending: later frames are ignored. */
  ending = false
  /** Set once torn down (the socket closed, or the server stopped). */
  done = false
  current: Online | undefined = undefined
  /** Resumes the connection's fiber, which then ends. */
  finish: (() => void) | undefined = undefined
  // Outbound: the mailbox is created on the first backlog, as most peers never need one.
  mailbox: Mailbox | undefined = undefined
  head = 0
  /** Frames waiting in the mailbox. */
  queued = 0
  /** Bytes waiting in the mailbox. */
  mailboxBytes = 0
  /** Bytes waiting for the peer (mailbox and socket), as last reported to the server's budget. */
  waiting = 0
  /** Whether the socket's `drain` is listened to (once something has waited). */
  watching = false
  wroteAt = -1
  corkedAt = -1
  /** The handshake's deadline, then the deadline of the close handshake. */
  timer: ReturnType<typeof setTimeout>
  preAuthFrames = 0
  authFailures = 0

  constructor(
    readonly hub: Delivery.Hub,
    readonly ws: WebSocket,
    readonly socket: Duplex,
    readonly host: string | undefined
  ) {
    this.timer = setTimeout(onDeadline, hub.options.authTimeoutMillis, this)
  }

  send(bytes: Uint8Array): void {
    this.offer(bytes)
  }

  ping(): void {
    this.ws.ping()
  }

  terminate(): void {
    this.ws.terminate()
  }

  kick(code: number, reason: string): void {
    if (this.kicked) return
    this.kicked = true
    this.release()
    this.ws.close(code, reason)
    this.closing()
  }

  end(): void {
    if (!this.ending) this.closing()
  }

  private closing(): void {
    this.ending = true
    clearTimeout(this.timer)
    // Later frames are ignored, but the peer's close frame must still be read to finish the close handshake.
    if (this.paused) {
      this.paused = false
      this.ws.resume()
    }
    // A peer that does not finish the close handshake (e.g. it stopped reading) is dropped.
    if (!this.done) this.timer = setTimeout(dropUnclosed, this.hub.options.shutdownTimeoutMillis, this)
  }

  online(): Online | undefined {
    return this.current
  }

  ended(): boolean {
    return this.ending
  }

  countPreAuth(): number {
    return ++this.preAuthFrames
  }

  countAuthFailure(): number {
    return ++this.authFailures
  }

  goOnline(accepted: Authenticator.Accepted): void {
    clearTimeout(this.timer)
    const options = this.hub.options
    const address = Peer.address(accepted.peer)
    this.current = {
      id: this.id,
      address,
      fromSuffix: `,"from":${JSON.stringify(address)}}`,
      peer: accepted.peer,
      admission: RateLimit.make(options.rateLimit, options.rateSeconds, { store: this.hub.rateLimitStore }),
      seen: undefined,
      me: undefined,
      routes: undefined
    }
  }

  // Outbound bytes are complete WebSocket frames (`Delivery.wire`), written to the socket as they are. Nothing
  // after a close frame: once closing, the socket takes no more data (as `ws.send` would refuse it).
  write(item: Outbound): void {
    if (item instanceof Uint8Array) {
      if (this.ws.readyState === 1) this.socket.write(item)
    } else this.ws.close(item.code, item.reason)
  }

  offer(item: Outbound): boolean {
    if (this.kicked) return false
    const socket = this.socket
    if (this.queued === 0 && socket.writableLength <= this.hub.options.highWaterMark) {
      // The first write of a tick goes straight out; a second one in the same tick corks the socket until the
      // tick ends, so that a burst leaves in one syscall while a lone frame pays no cork.
      const tick = currentTick()
      if (this.wroteAt !== tick) {
        this.wroteAt = tick
        this.write(item)
        // The kernel usually takes it all: nothing waits, and the peer's figure stays as it was.
        if (socket.writableLength !== this.waiting) this.account()
        return !this.kicked
      }
      if (this.corkedAt !== tick) {
        this.corkedAt = tick
        socket.cork()
        corked.push(this)
      }
      // Counted once the tick ends (`uncorked`): until then the burst has not been offered to the kernel.
      this.write(item)
      return true
    }
    return this.enqueue(item)
  }

  /** The socket is backed up, or frames already wait: this one waits behind them. */
  enqueue(item: Outbound): boolean {
    if (this.queued >= this.hub.options.mailboxSize) {
      this.shed()
      return false
    }
    if (this.mailbox === undefined) {
      this.mailbox = []
      this.watch()
    }
    this.mailbox.push(item)
    this.queued++
    if (item instanceof Uint8Array) this.mailboxBytes += item.length
    // A socket that reports backpressure will drain (and the mailbox be written then); any other takes more now.
    if (this.socket.writableNeedDrain) this.account()
    else this.flush()
    return !this.kicked
  }

  /**
   * Writes what waits in the mailbox, in one burst, until the socket holds more than the high-water mark (and has
   * reported backpressure, so that its `drain` calls this again), then takes the peer's figure anew.
   */
  flush(): void {
    const mailbox = this.mailbox
    if (mailbox !== undefined && this.queued > 0) {
      const socket = this.socket
      const limit = this.hub.options.highWaterMark
      let head = this.head
      socket.cork()
      while (head < mailbox.length && (socket.writableLength <= limit || !socket.writableNeedDrain)) {
        const item = mailbox[head]!
        mailbox[head++] = undefined
        if (item instanceof Uint8Array) this.mailboxBytes -= item.length
        this.write(item)
      }
      socket.uncork()
      if (head === mailbox.length) {
        mailbox.length = 0
        head = 0
      } else if (head > compactAbove) {
        mailbox.splice(0, head)
        head = 0
      }
      this.head = head
      this.queued = mailbox.length - head
    }
    this.account()
  }

  /** The tick's corked writes go to the kernel; what it does not take waits. */
  uncorked(): void {
    const socket = this.socket
    socket.uncork()
    if (socket.writableLength !== this.waiting) this.account()
  }

  /** Bytes waiting for the peer: its mailbox, and its socket's buffer once the socket reports backpressure. */
  measure(): number {
    const socket = this.socket
    return this.mailboxBytes + (socket.writableNeedDrain ? socket.writableLength : 0)
  }

  /** Takes the peer's figure anew; when it grew, a peer over its own budget, or the slowest over the global one, go. */
  account(): void {
    if (this.kicked || this.done) return
    const before = this.waiting
    const waiting = this.measure()
    if (waiting === before) return
    const budget = this.hub.outbound
    this.waiting = waiting
    OutboundBudget.update(budget, this, before, waiting)
    if (waiting < before) return
    this.watch()
    if (waiting > budget.perPeer) this.shed()
    else if (OutboundBudget.isOver(budget)) OutboundBudget.shedSlowest(budget)
  }

  recount(): void {
    if (this.kicked || this.done) return
    const before = this.waiting
    const waiting = this.measure()
    if (waiting === before) return
    this.waiting = waiting
    OutboundBudget.update(this.hub.outbound, this, before, waiting)
  }

  /** From the first time something waits, the socket's `drain` writes the mailbox and brings the figure down. */
  watch(): void {
    if (this.watching) return
    this.watching = true
    const socket: Duplex & Owned = this.socket
    socket[owner] = this
    socket.on("drain", onDrain)
  }

  /** Too slow for its frames: closed with 1013 (`kick` drops what waits, so that the close frame comes next). */
  shed(): void {
    if (this.kicked) return
    this.hub.stats.slowConsumers++
    this.kick(1013, "Too many pending messages")
  }

  /** Drops the mailbox, and the peer's bytes from the server's budget. */
  release(): void {
    this.mailbox = undefined
    this.head = 0
    this.queued = 0
    this.mailboxBytes = 0
    if (this.waiting !== 0) {
      OutboundBudget.update(this.hub.outbound, this, this.waiting, 0)
      this.waiting = 0
    }
  }

  onMessage(data: RawData, isBinary: boolean): void {
    if (this.ending) return
    const hub = this.hub
    const bytes = toBuffer(data)
    const item = bytes.length > hub.options.maxMessageSize ? Oversize : isBinary ? bytes : bytes.toString("utf8")
    if (this.backlog !== undefined) {
      if (this.backlog.push(item) > pauseAbove && !this.paused) {
        this.paused = true
        this.ws.pause()
      }
      return
    }
    try {
      this.take(item)
    } catch (error) {
      this.failed(error)
    }
  }

  /**
   * A defect while handling this connection's frames (a bug, or user code such as a custom router that throws)
   * ends this connection only: it is logged and the socket dropped, and the teardown follows its close.
   */
  failed(error: unknown): void {
    this.ending = true
    this.hub.run(Effect.logError("Symple connection failed", Cause.die(error)))
    this.ws.terminate()
  }

  /** Handles one inbound item now; an authentication that has to wait starts the backlog. */
  take(item: Inbound): void {
    if (item === Oversize) {
      refuse(this.hub, this, 413, "Message too large", 1009)
      return this.end()
    }
    const outcome = handle(this.hub, this, item)
    if (outcome === undefined) return
    if (outcome === "closing") return this.end()
    this.backlog = []
    this.hub.fork(Effect.map(outcome.pending, (result) => {
      try {
        this.decided(result)
      } catch (error) {
        this.failed(error)
      }
    }))
  }

  /** The waiting authentication answered: handle what arrived meanwhile, until the backlog is empty or waits again. */
  decided(outcome: Outcome): void {
    if (this.done || this.ending) return
    if (outcome === "closing") return this.end()
    const waiting = this.backlog ?? []
    this.backlog = undefined
    for (let i = 0; i < waiting.length; i++) {
      if (this.ending) return
      this.take(waiting[i]!)
      // `take` may have started a new backlog (TypeScript still sees the `undefined` assigned above).
      const again = this.backlog as Array<Inbound> | undefined
      if (again !== undefined) {
        // Waiting again: what is left goes first, ahead of anything newer.
        again.push(...waiting.slice(i + 1))
        return
      }
    }
    if (this.paused) {
      this.paused = false
      this.ws.resume()
    }
  }

  /**
   * The end of the connection, once: forgets the peer (the others sharing a room are told it went offline, unless
   * the server is stopping), then lets the fiber end.
   */
  teardown(): void {
    if (this.done) return
    this.done = true
    this.ending = true
    clearTimeout(this.timer)
    const hub = this.hub
    hub.connections.delete(this)
    this.release()
    const online = this.current
    try {
      if (online !== undefined) {
        const removed = PeerRegistry.unsafeDisconnect(hub.registry, this.id)
        if (removed !== undefined && !hub.shuttingDown) {
          Delivery.deliverToSessions(hub.stats, removed.neighbours, Presence.offline(removed.session.peer))
        }
        PubSub.publishUnsafe(hub.events, Delivery.ServerEvent.PeerDisconnected({ peer: online.peer, virtual: false }))
        if (!RateLimit.isUnlimited(online.admission)) hub.run(online.admission.release)
      }
    } catch (error) {
      hub.run(Effect.logError("Symple connection teardown failed", Cause.die(error)))
    } finally {
      // The fiber ends whatever happened: the server's shutdown waits for it.
      const finish = this.finish
      this.finish = undefined
      finish?.()
    }
  }

  /** The server is stopping (the fiber is interrupted): notice, close 1001, teardown. */
  interrupted(): void {
    const ws = this.ws
    if (!this.done && ws.readyState === ws.OPEN) {
      ws.send(shutdownBytes, textFrame)
      ws.close(1001, "Server shutting down")
    }
    this.teardown()
  }
}

function onDeadline(connection: ConnectionImpl): void {
  if (connection.current !== undefined || connection.ending) return
  refuse(connection.hub, connection, 408, "Authentication timeout", 1008)
  connection.end()
}

function dropUnclosed(connection: ConnectionImpl): void {
  connection.ws.terminate()
}

// Shared listeners: `this` is the emitter, which knows its connection.
function onMessage(this: WebSocket & Owned, data: RawData, isBinary: boolean): void {
  this[owner]?.onMessage(data, isBinary)
}
function onPong(this: WebSocket & Owned): void {
  const connection = this[owner]
  if (connection !== undefined) connection.alive = true
}
function onClose(this: WebSocket & Owned): void {
  this[owner]?.teardown()
}
function onDrain(this: Duplex & Owned): void {
  const connection = this[owner]
  if (connection === undefined) return
  try {
    connection.flush()
  } catch (error) {
    connection.failed(error)
  }
}

/**
 * Takes ownership of a freshly upgraded socket. Synchronous: must run in the upgrade callback. The raw socket must
 * already have an error listener (the server adds one before the upgrade).
 *
 * @since 0.1.0
 * @category constructors
 */
export const accept = (hub: Delivery.Hub, ws: WebSocket, socket: Duplex, host: string | undefined): Connection => {
  const connection = new ConnectionImpl(hub, ws, socket, host)
  const owned: WebSocket & Owned = ws
  owned[owner] = connection
  ws.on("message", onMessage)
  ws.on("pong", onPong)
  // Errors are followed by "close"; without a listener they would be thrown.
  ws.on("error", ignore)
  ws.on("close", onClose)
  hub.connections.add(connection)
  return connection
}

const reply = (connection: Connection, frame: Frame.Frame) => connection.offer(Delivery.wire(frame))

/** Error frame, then close once it is written. */
const refuse = (
  hub: Delivery.Hub,
  connection: Connection,
  status: number,
  message: string,
  code: number
): "closing" => {
  hub.stats.refused++
  if (connection.offer(errorBytes(status, message))) connection.offer({ code, reason: message })
  return "closing"
}

/** Error frame; the connection stays open. */
const answer = (hub: Delivery.Hub, connection: Connection, status: number, message: string): undefined => {
  hub.stats.refused++
  reply(connection, Message.error(status, message))
  return undefined
}

const badRequest = (hub: Delivery.Hub, connection: Connection, message: string): undefined =>
  answer(hub, connection, 400, message)

/** An effect that is already its result (what `Effect.succeed` and `Effect.fail` return). */
const isExit = <A, E>(effect: Effect.Effect<A, E>): effect is Exit.Exit<A, E> => Exit.isExit(effect)

/**
 * Handles one inbound frame: a handshake step before registration, a frame of the peer after. Returns a
 * `Pending` when the authenticator has to run effects (only the fiber can wait for them).
 */
const handle = (hub: Delivery.Hub, connection: Connection, item: string | Uint8Array): Outcome | Pending => {
  const online = connection.online()
  return online === undefined ? handshake(hub, connection, item) : handleFrame(hub, connection, online, item)
}

/** One frame before registration: it must be a valid `auth`; the deadline keeps running across failed attempts. */
const handshake = (hub: Delivery.Hub, connection: Connection, item: string | Uint8Array): Outcome | Pending => {
  // Unauthenticated peers get no rate limit, so a budget of their own bounds what they can make the server do.
  if (connection.countPreAuth() > hub.options.preAuthFrames) {
    return refuse(hub, connection, 429, "Too many frames before authentication", 1008)
  }
  const parsed = Frame.parse(item)
  if (Result.isFailure(parsed)) return badRequest(hub, connection, parsed.failure.message)
  const value = parsed.success
  if (!Json.isObject(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`
    return badRequest(hub, connection, `Expected a JSON object, got ${kind}`)
  }
  if (value.type !== "auth") return refuse(hub, connection, 401, "Not authenticated", 1008)
  if (typeof value.user !== "string" || value.user === "") return authFailure(hub, connection, "Missing user field")
  const decoded = Frame.decodeParsed(value)
  if (Result.isFailure(decoded)) return badRequest(hub, connection, authProblem(value, decoded.failure.message))
  const auth = decoded.success as Frame.Auth
  const rooms = authRoomsProblem(hub.options, auth)
  if (rooms !== undefined) return badRequest(hub, connection, rooms)
  const attempt = hub.authenticator.authenticate(auth, { id: connection.id, host: connection.host })
  // The built-in check answers at once (a plain success or failure): no fiber and no effect steps for it.
  if (isExit(attempt)) {
    if (Exit.isSuccess(attempt)) return register(hub, connection, attempt.value)
    const failure = Cause.findErrorOption(attempt.cause)
    if (Option.isSome(failure)) return authFailure(hub, connection, failure.value.message)
  }
  const authenticate = Effect.result(attempt)
  // A hook that hangs must not outlive the handshake's deadline.
  const decision = hub.authenticatorMayWait
    ? Effect.timeoutOption(authenticate, Math.max(0, connection.openedAt + hub.options.authTimeoutMillis - Date.now()))
    : Effect.map(authenticate, Option.some)
  return {
    pending: Effect.flatMap(decision, (decision): Effect.Effect<Outcome> => {
      // The peer may have gone (or been refused) while the hook was deciding: nothing is left to register.
      if (connection.ended()) return Effect.succeed(undefined)
      if (Option.isNone(decision)) return Effect.succeed(refuse(hub, connection, 408, "Authentication timeout", 1008))
      const outcome = decision.value
      if (Result.isFailure(outcome)) return delayedAuthFailure(hub, connection, outcome.failure.message)
      return Effect.sync(() => register(hub, connection, outcome.success))
    })
  }
}

/**
 * A validation problem of an `auth` frame, in words that never quote the peer's token: the validator names the
 * value it refused, so a token of the wrong type is described, and any other problem is found on a copy without it.
 */
const authProblem = (value: Json.JsonObject, message: string): string => {
  if (!Object.hasOwn(value, "token")) return message
  if (typeof value.token !== "string") return "Invalid auth frame: \"token\": Expected string"
  const redacted = Frame.decodeParsed({ ...value, token: "" })
  return Result.isFailure(redacted) ? redacted.failure.message : "Invalid auth frame"
}

/** `auth.rooms` within the room limits (hook-granted rooms are the application's own business). */
const authRoomsProblem = (options: Delivery.Hub["options"], auth: Frame.Auth): string | undefined => {
  if (auth.rooms === undefined) return undefined
  const rooms = new Set<string>([auth.user])
  for (const room of auth.rooms) {
    if (typeof room !== "string" || room === "") continue
    if (Buffer.byteLength(room) > options.maxRoomNameLength) {
      return `Invalid auth frame: room name over ${options.maxRoomNameLength} bytes`
    }
    rooms.add(room)
  }
  return rooms.size > options.maxRoomsPerPeer
    ? `Invalid auth frame: more than ${options.maxRoomsPerPeer} rooms`
    : undefined
}

/**
 * A refused `auth` (401). The answer is held back by `authFailureDelay` (what the peer sends meanwhile waits), and
 * the last failure a connection is allowed also closes it: guessing tokens costs time and connections.
 */
const authFailure = (hub: Delivery.Hub, connection: Connection, message: string): Outcome | Pending =>
  hub.options.authFailureDelayMillis > 0
    ? { pending: delayedAuthFailure(hub, connection, message) }
    : rejectAuth(hub, connection, message)

const delayedAuthFailure = (hub: Delivery.Hub, connection: Connection, message: string): Effect.Effect<Outcome> =>
  Effect.delay(Effect.sync(() => rejectAuth(hub, connection, message)), hub.options.authFailureDelayMillis)

const rejectAuth = (hub: Delivery.Hub, connection: Connection, message: string): Outcome => {
  if (connection.ended()) return undefined
  const max = hub.options.maxAuthFailures
  return max > 0 && connection.countAuthFailure() >= max
    ? refuse(hub, connection, 401, message, 1008)
    : answer(hub, connection, 401, message)
}

/** Registers the peer: welcome and snapshot first, then its online presence to the others. */
const register = (hub: Delivery.Hub, connection: Connection, accepted: Authenticator.Accepted): Outcome => {
  const { id } = connection
  const peer = accepted.peer
  const member: State.Member<Delivery.Handle> = { id, user: peer.user, handle: connection }
  // The peers sharing a room with the newcomer, as `announce` found them in the state it returns.
  let found: ReadonlyArray<State.Session<Delivery.Handle>> = []
  const joined = PeerRegistry.unsafeConnect(hub.registry, member, peer, accepted.rooms, {
    // The rooms the session is in: another user's personal room is never joined, whoever asked for it.
    announce: (neighbours, session) => {
      found = neighbours
      reply(connection, { type: "welcome", protocol: "symple/4", status: 200, peer, rooms: session.rooms })
      for (const other of neighbours) connection.offer(Delivery.onlinePresence(other.peer).bytes)
    },
    // Only an authenticated user name owns its room: in anonymous mode anyone may call themselves anything, and
    // claiming would let them empty any room by taking its name.
    claimPersonalRoom: hub.options.authentication,
    evicted: Delivery.evicted(hub.stats)
  })
  // Session ids are random and never reused: a clash is a bug, and costs this connection only.
  if (joined === undefined) return refuse(hub, connection, 500, "Session id in use", 1011)
  connection.goOnline(accepted)
  // Encoded (and cached) only when someone is to be told: a peer alone in its rooms costs no presence bytes.
  if (found.length > 0) {
    const presence = Delivery.onlinePresence(peer)
    Delivery.deliverEncoded(hub.stats, found, presence.bytes, presence.frame)
  }
  // The events hub is unbounded: offering never waits.
  PubSub.publishUnsafe(
    hub.events,
    Delivery.ServerEvent.PeerConnected({ peer, rooms: State.session(joined, id)?.rooms ?? [], virtual: false })
  )
  return undefined
}

const snapshotOf = (connection: Connection, state: State.State<Delivery.Handle>, room: string) => {
  for (const other of State.members(state, room)) {
    if (other.id === connection.id) continue
    const session = State.session(state, other.id)
    if (session !== undefined) connection.offer(Delivery.onlinePresence(session.peer).bytes)
  }
}

/** Handles one frame of an online peer: admission, then routing, a membership change, or an error frame. */
const handleFrame = (
  hub: Delivery.Hub,
  connection: Connection,
  online: Online,
  item: string | Uint8Array
): Outcome | Pending => {
  hub.stats.received++
  if (!online.admission.admit()) return refuse(hub, connection, 429, "Rate limit exceeded", 1008)
  const decoded = Frame.decode(item)
  if (Result.isFailure(decoded)) return badRequest(hub, connection, decoded.failure.message)
  const frame = decoded.success
  if (route(hub, connection, online, frame, typeof item === "string" ? item : undefined)) return undefined
  switch (frame.type) {
    case "join":
    case "leave": {
      const room = frame.room
      if (room === undefined || room === "") return undefined
      if (!hub.options.dynamicRooms) return badRequest(hub, connection, "Dynamic rooms disabled")
      if (frame.type === "join") return join(hub, connection, online, room)
      PeerRegistry.unsafeLeave(hub.registry, online.id, room)
      reply(connection, { type: "leave:ok", room })
      return undefined
    }
    case "close":
      connection.offer({ code: 1000, reason: "" })
      return "closing"
    case "auth":
      return badRequest(hub, connection, "Already authenticated")
    default:
      return badRequest(hub, connection, `Unexpected ${frame.type} frame`)
  }
}

/**
 * A `join`: the server's own rules (room limits; nobody joins another user's personal room), then the application's
 * join policy. A policy that has to run effects is waited for like a slow authentication: what the peer sends
 * meanwhile waits behind it.
 */
const join = (hub: Delivery.Hub, connection: Connection, online: Online, room: string): Outcome | Pending => {
  const refusal = joinRefusal(hub, online, room)
  if (refusal !== undefined) return answer(hub, connection, refusal.status, refusal.message)
  // Rejoining one's own personal room, or a room one is in, needs nobody's permission.
  const me = State.session(PeerRegistry.unsafeSnapshot(hub.registry), online.id)
  if (room === online.peer.user || (me !== undefined && State.inRoom(me, room))) {
    return joined(hub, connection, online, room)
  }
  const decision = hub.joinPolicy.authorizeJoin(online.peer, room)
  if (isExit(decision)) return authorizedJoin(hub, connection, online, room, Exit.isSuccess(decision) && decision.value)
  return {
    pending: Effect.map(
      decision,
      (allowed) => connection.ended() ? undefined : authorizedJoin(hub, connection, online, room, allowed)
    )
  }
}

const authorizedJoin = (
  hub: Delivery.Hub,
  connection: Connection,
  online: Online,
  room: string,
  allowed: boolean
): Outcome => {
  if (!allowed) return answer(hub, connection, 403, joinRefused(room, "not allowed"))
  // The registry may have changed while the policy decided.
  const refusal = joinRefusal(hub, online, room)
  return refusal === undefined
    ? joined(hub, connection, online, room)
    : answer(hub, connection, refusal.status, refusal.message)
}

const joined = (hub: Delivery.Hub, connection: Connection, online: Online, room: string): Outcome => {
  const state = PeerRegistry.unsafeJoin(hub.registry, online.id, room)
  reply(connection, { type: "join:ok", room })
  snapshotOf(connection, state, room)
  return undefined
}

const joinRefused = (room: string, reason: string): string => Message.roomRefusal("join", room, reason)

const joinRefusal = (
  hub: Delivery.Hub,
  online: Online,
  room: string
): { readonly status: number; readonly message: string } | undefined => {
  const state = PeerRegistry.unsafeSnapshot(hub.registry)
  const me = State.session(state, online.id)
  if (me === undefined || State.inRoom(me, room)) return undefined
  const options = hub.options
  if (Buffer.byteLength(room) > options.maxRoomNameLength) {
    return { status: 400, message: joinRefused(room, `name over ${options.maxRoomNameLength} bytes`) }
  }
  if (me.rooms.length >= options.maxRoomsPerPeer) {
    return { status: 400, message: joinRefused(room, `already in ${options.maxRoomsPerPeer} rooms, the limit`) }
  }
  if (State.isPersonalRoomOfOther(state, online.peer.user, room)) {
    return { status: 403, message: joinRefused(room, "another user's personal room") }
  }
  return undefined
}

/**
 * The connection's fiber: it waits for the end of the connection. Never fails. Interrupting it (the server
 * stopping) sends the shutdown notice, closes the socket with 1001 and tears the connection down.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (connection: Connection): Effect.Effect<void> =>
  connection instanceof ConnectionImpl
    ? Effect.callback<void>((resume) => {
      if (connection.done) return resume(Effect.void)
      connection.finish = () => resume(Effect.void)
      return Effect.sync(() => connection.interrupted())
    })
    : Effect.die(new Error("Connection.run: not a connection made by accept"))
