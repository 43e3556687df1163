/**
 * Owns what waits for a peer whose socket is backed up: the bounded mailbox, its flush when the socket drains, and
 * the accounting of the peer's waiting bytes against the server's budgets.
 *
 * A peer too slow for its frames is closed with 1013: its mailbox is full, it has more than `maxQueuedBytes` waiting
 * (mailbox and socket), or it is among the peers with the most waiting when all together have more than
 * `maxOutboundBytes` (see `outboundBudget`). Its mailbox is dropped, so that the close frame follows at most what
 * its socket already holds: a peer that reads again soon enough learns why it was closed, one that never does is
 * dropped at the close handshake's deadline.
 *
 * @since 0.2.0
 * @internal
 */
import type { Duplex } from "node:stream"
import type { WebSocket } from "ws"
import type { Hub } from "./hub.js"
import * as OutboundBudget from "./outboundBudget.js"
import type { Outbound } from "./socketWriter.js"

/** Written mailbox slots beyond this many are given back even while frames still wait behind them. */
const compactAbove = 1024

/**
 * Where the shared socket listeners find their connection (`this` in a listener is the emitter).
 *
 * @since 0.2.0
 * @internal
 */
export const owner = Symbol("symple/server/Connection")

/**
 * @since 0.2.0
 * @internal
 */
export type Owned<A> = { [owner]?: A }

function onDrain(this: Duplex & Owned<Mailbox>): void {
  const connection = this[owner]
  if (connection === undefined) return
  try {
    connection.flush()
  } catch (error) {
    connection.failed(error)
  }
}

/** The slots: frames from `head` on wait; the slots before it are written. */
type Slots = Array<Outbound | undefined>

/**
 * A connection's flags, bits of one small integer (`Mailbox.flags`) that every half of the connection shares: six
 * boolean fields would take 40 bytes more per connection.
 *
 * @since 0.2.0
 * @internal
 */
export const Flag = {
  Kicked: 1,
  Done: 2,
  Watching: 4,
  Paused: 8,
  Ending: 16,
  Alive: 32
} as const

/** A mailbox and its counts, made on the first backlog: most peers never need one. */
interface Outbox {
  readonly slots: Slots
  head: number
  /** Frames waiting in the mailbox. */
  queued: number
  /** Bytes waiting in the mailbox. */
  bytes: number
}

/**
 * The mailbox half of a connection (a base class of it: one object per connection, shared methods).
 *
 * @since 0.2.0
 * @internal
 */
export abstract class Mailbox implements OutboundBudget.Waiting {
  /** The connection's flags (`Flag`). */
  flags: number = Flag.Alive
  // The mailbox and its counts, created on the first backlog, as most peers never need one.
  #outbox: Outbox | undefined = undefined
  /** Bytes waiting for the peer (mailbox and socket), as last reported to the server's budget. */
  waiting = 0

  constructor(readonly hub: Hub, readonly ws: WebSocket, readonly socket: Duplex) {}

  flag(flag: number): boolean {
    return (this.flags & flag) !== 0
  }
  setFlag(flag: number, on: boolean): void {
    this.flags = on ? this.flags | flag : this.flags & ~flag
  }
  /** Whether the socket's `drain` is listened to (once something has waited). */
  get watching(): boolean {
    return this.flag(Flag.Watching)
  }
  set watching(on: boolean) {
    this.setFlag(Flag.Watching, on)
  }
  /** Closed by the server (`kick`): nothing more is written. */
  get kicked(): boolean {
    return this.flag(Flag.Kicked)
  }
  set kicked(on: boolean) {
    this.setFlag(Flag.Kicked, on)
  }
  /** Set once torn down (the socket closed, or the server stopped). */
  get done(): boolean {
    return this.flag(Flag.Done)
  }
  set done(on: boolean) {
    this.setFlag(Flag.Done, on)
  }
  get mailbox(): Slots | undefined {
    return this.#outbox?.slots
  }
  /** A new mailbox starts empty; `undefined` drops the mailbox and its counts. */
  set mailbox(slots: Slots | undefined) {
    this.#outbox = slots === undefined ? undefined : { slots, head: 0, queued: 0, bytes: 0 }
  }
  get head(): number {
    return this.#outbox?.head ?? 0
  }
  set head(head: number) {
    if (this.#outbox !== undefined) this.#outbox.head = head
  }
  /** Frames waiting in the mailbox. */
  get queued(): number {
    return this.#outbox?.queued ?? 0
  }
  set queued(queued: number) {
    if (this.#outbox !== undefined) this.#outbox.queued = queued
  }
  /** Bytes waiting in the mailbox. */
  get mailboxBytes(): number {
    return this.#outbox?.bytes ?? 0
  }
  set mailboxBytes(bytes: number) {
    if (this.#outbox !== undefined) this.#outbox.bytes = bytes
  }

  /** Writes to the socket now. */
  abstract write(item: Outbound): void
  /** Closes the socket right away; what waits in the mailbox is dropped. */
  abstract kick(code: number, reason: string): void
  /** A defect while writing: ends the connection. */
  abstract failed(error: unknown): void

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
    const socket: Duplex & Owned<Mailbox> = this.socket
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
}
