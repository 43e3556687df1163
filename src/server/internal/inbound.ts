/**
 * Owns a connection's inbound side: each frame is handled where it arrives, in the socket listener (the handshake
 * before registration, `dispatch` after). When an authentication or join policy has to run effects, the
 * connection's own fiber waits for it: what arrives meanwhile waits in the backlog (the socket is paused beyond
 * `pauseAbove` frames) and is handled, in order, once it has answered. A defect while handling a frame ends this
 * connection only, and is logged in the server's context (the application's Logger).
 *
 * @since 0.2.0
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { RawData } from "ws"
import type * as PeerRegistry from "../PeerRegistry.js"
import type * as State from "../State.js"
import type { Connection } from "./connection.js"
import { add } from "./counters.js"
import * as Dispatch from "./dispatch.js"
import { handshake } from "./handshake.js"
import type { Hub } from "./hub.js"
import { Flag } from "./mailbox.js"
import { refuse } from "./reply.js"
import { SocketWriter } from "./socketWriter.js"

/**
 * What handling a frame leaves to do: `undefined`, go on reading; `"closing"`, the connection is closing.
 *
 * @since 0.2.0
 * @internal
 */
export type Outcome = "closing" | undefined

/**
 * An authentication or join policy that has to wait: the connection's fiber runs it.
 *
 * @since 0.2.0
 * @internal
 */
export interface Pending {
  readonly pending: Effect.Effect<Outcome>
}

/** A frame above `maxMessageSize` arrived behind frames still waiting in the backlog. */
const Oversize = 0

/** An inbound frame waiting in the backlog, or what happened behind the frames before it. */
type Inbound = string | Uint8Array | typeof Oversize

/** Inbound frames waiting in the backlog beyond this many pause the socket until it is handled. */
const pauseAbove = 512

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

/** Handles one inbound frame: a handshake step before registration, a frame of the peer after. */
const handle = (hub: Hub, connection: Connection, item: string | Uint8Array): Outcome | Pending => {
  const online = connection.online()
  return online === undefined
    ? handshake(hub, connection, item)
    : Dispatch.handleFrame(hub, connection, online, item)
}

/**
 * What only the handshake needs: the connection drops it once the peer is online, so that an online connection does
 * not keep four fields it no longer reads.
 *
 * @since 0.2.0
 * @internal
 */
export class Greeting {
  /** Frames received before authentication. */
  frames = 0
  /** Refused `auth` frames. */
  failures = 0
  /** The user the peer registers as (see `Connection.member`). */
  user = ""
  constructor(readonly host: string | undefined, readonly openedAt: number) {}
}

/**
 * The inbound half of a connection (a base class of it: one object per connection, shared methods).
 *
 * @since 0.2.0
 * @internal
 */
export abstract class InboundFrames extends SocketWriter implements Connection {
  abstract readonly id: string
  abstract alive: boolean
  abstract ping(): void
  abstract terminate(): void
  abstract readonly fiber: Fiber.Fiber<void> | undefined
  abstract goodbye(): void
  abstract member(user: string): State.Member<PeerRegistry.Handle>
  abstract goOnline(online: Dispatch.Online): void
  abstract end(): void
  /** Hands an effect to the connection's fiber, which runs it (after any it is running). */
  abstract schedule(work: Effect.Effect<void>): void

  /**
   * Inbound items waiting behind an authentication that is still being decided, in order; `undefined` while the
   * listener handles frames as they arrive.
   */
  backlog: Array<Inbound> | undefined = undefined
  get paused(): boolean {
    return this.flag(Flag.Paused)
  }
  set paused(on: boolean) {
    this.setFlag(Flag.Paused, on)
  }
  /** Set once the connection is ending: later frames are ignored. */
  get ending(): boolean {
    return this.flag(Flag.Ending)
  }
  set ending(on: boolean) {
    this.setFlag(Flag.Ending, on)
  }
  /** Set once the peer is registered. */
  current: Dispatch.Online | undefined = undefined
  /** What the handshake needs, until the peer is online. */
  greeting: Greeting | undefined = undefined

  /** Where the peer connects from (known until it is online). */
  get host(): string | undefined {
    return this.greeting?.host
  }

  /** When the socket was accepted (known until the peer is online). */
  get openedAt(): number {
    return this.greeting?.openedAt ?? 0
  }

  online(): Dispatch.Online | undefined {
    return this.current
  }

  ended(): boolean {
    return this.ending
  }

  countPreAuth(): number {
    const greeting = this.greeting
    return greeting === undefined ? 0 : ++greeting.frames
  }

  countAuthFailure(): number {
    const greeting = this.greeting
    return greeting === undefined ? 0 : ++greeting.failures
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
      add(this.hub.stats.drops, "size")
      refuse(this.hub, this, 413, "Message too large", 1009)
      return this.end()
    }
    const outcome = handle(this.hub, this, item)
    if (outcome === undefined) return
    if (outcome === "closing") return this.end()
    this.backlog = []
    this.schedule(this.decide(outcome.pending))
  }

  /** What the connection's fiber does for a decision that has to wait: wait, then go on with the backlog. */
  decide(pending: Effect.Effect<Outcome>): Effect.Effect<void> {
    return pending.pipe(
      Effect.flatMap((outcome) => Effect.sync(() => this.decided(outcome))),
      // A defect of the decision (a custom service that dies) or of what follows it ends this connection.
      Effect.catchDefect((defect) => Effect.sync(() => this.failed(defect)))
    )
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
}
