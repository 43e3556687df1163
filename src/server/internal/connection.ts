/**
 * Owns a connection's life: the connection object (its outbound half in `socketWriter` and `mailbox`, its inbound
 * half in `inbound`, its fiber in `connectionFiber`, its socket's events in `connectionSocket`), `accept` (in the
 * upgrade callback, so no frame arrives before the connection owns the socket), the handshake's deadline, the close,
 * the teardown (the session ends, see `resume`: at once after a clean close, or held for its peer to resume it when
 * the socket dropped; the fiber ends), and the goodbye when the server stops (shutdown notice, close 1001).
 *
 * @since 0.2.0
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { Duplex } from "node:stream"
import type { WebSocket } from "ws"
import type * as Frame from "../../protocol/Frame.js"
import * as Message from "../../protocol/Message.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import type * as State from "../State.js"
import * as ConnectionFiber from "./connectionFiber.js"
import { ConnectionSocket } from "./connectionSocket.js"
import { add } from "./counters.js"
import * as Dispatch from "./dispatch.js"
import { deliver, toSessions } from "./fanOut.js"
import type { Hub, Live } from "./hub.js"
import { Greeting, InboundFrames } from "./inbound.js"
import { Flag } from "./mailbox.js"
import { refuse } from "./reply.js"
import * as Resume from "./resume.js"
import { encode, type Outbound } from "./socketWriter.js"

/** The shutdown notice every peer gets before close 1001. */
const shutdownNotice: Frame.Event = {
  type: "event",
  name: "shutdown",
  subtype: "shutdown",
  message: "Server shutting down"
}
const shutdownBytes = encode(shutdownNotice)

/**
 * A socket accepted by the server: its state, its outbound path, and the transitions of its life.
 *
 * @since 0.2.0
 * @internal
 */
export interface Connection extends PeerRegistry.Handle, Live {
  readonly id: string
  /** The server it belongs to. */
  readonly hub: Hub
  readonly ws: WebSocket
  readonly socket: Duplex
  /** Where the peer connects from; known until the peer is online (the handshake's). */
  readonly host: string | undefined
  /** When the socket was accepted; known until the peer is online (the handshake's). */
  readonly openedAt: number
  /** The connection as the registry's member for `user`: it is its own handle, so no record is made for it. */
  readonly member: (user: string) => State.Member<PeerRegistry.Handle>
  /**
   * Sends bytes or a close, in order; `false` (and the peer is being closed with 1013) when the peer is too slow:
   * its mailbox is full, or it has too many bytes waiting.
   */
  readonly offer: (item: Outbound) => boolean
  /** Closes the socket right away; what waits in the mailbox is dropped. */
  readonly kick: (code: number, reason: string) => void
  /** Set once the peer is registered. */
  readonly online: () => Dispatch.Online | undefined
  /** Whether the connection is closing or closed (nothing more is to be done for it). */
  readonly ended: () => boolean
  /** Counts a frame received before authentication; returns how many there have been. */
  readonly countPreAuth: () => number
  /** Counts a refused `auth`; returns how many there have been. */
  readonly countAuthFailure: () => number
  /** Registered (or resumed): frames are now routed. */
  readonly goOnline: (online: Dispatch.Online) => void
  /**
   * The connection is closing (a close frame is on its way): later frames are ignored, and a peer that does not
   * finish the close handshake in time is dropped.
   */
  readonly end: () => void
}

/**
 * One connection's state and behaviour. A class, so that thousands of connections share their methods: a
 * connection holds its fields and no closures of its own, which keeps it small and cheap to set up.
 */
class ConnectionImpl extends InboundFrames implements ConnectionFiber.Sleeper {
  readonly id = Message.randomId()
  get alive(): boolean {
    return this.flag(Flag.Alive)
  }
  set alive(on: boolean) {
    this.setFlag(Flag.Alive, on)
  }
  // The fiber's side (see `connectionFiber`).
  fiber: Fiber.Fiber<void> | undefined = undefined
  fiberState: ConnectionFiber.Sleeper["fiberState"] = undefined
  /**
   * The handshake's deadline, then the deadline of the close handshake. Dropped once cleared: a cleared `Timeout`
   * (216 bytes with its arguments) would otherwise stay for the connection's whole life.
   */
  timer: ReturnType<typeof setTimeout> | undefined

  constructor(hub: Hub, ws: WebSocket, socket: Duplex, host: string | undefined) {
    super(hub, ws, socket)
    this.greeting = new Greeting(host, Date.now())
    this.timer = setTimeout(onDeadline, hub.options.authTimeoutMillis, this)
  }

  get handle(): PeerRegistry.Handle {
    return this
  }

  /**
   * The user, once the connection is a member of the registry (see `member`): its peer's once online, the one it
   * registers as until then. Not a field of its own: the peer record has it.
   */
  get user(): string {
    return this.current?.peer.user ?? this.greeting?.user ?? ""
  }

  member(user: string): State.Member<PeerRegistry.Handle> {
    if (this.greeting !== undefined) this.greeting.user = user
    return this
  }

  ping(): void {
    this.ws.ping()
  }

  terminate(): void {
    this.ws.terminate()
  }

  end(): void {
    if (!this.ending) this.closing()
  }

  closing(): void {
    this.ending = true
    this.clearTimer()
    // Later frames are ignored, but the peer's close frame must still be read to finish the close handshake.
    if (this.paused) {
      this.paused = false
      this.ws.resume()
    }
    // A peer that does not finish the close handshake (e.g. it stopped reading) is dropped.
    if (!this.done) this.timer = setTimeout(dropUnclosed, this.hub.options.shutdownTimeoutMillis, this)
  }

  schedule(work: Effect.Effect<void>): void {
    ConnectionFiber.schedule(this, work)
  }

  clearTimer(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  goOnline(online: Dispatch.Online): void {
    this.clearTimer()
    this.greeting = undefined
    this.current = online
  }

  /**
   * The end of the connection, once: its session ends (the others sharing a room with it are told it went offline,
   * unless the server is stopping), or, when the socket `dropped` (closed without a close frame, by the network or
   * for missing pings) rather than closed by either side, is held for its peer to resume it. Then the fiber ends.
   */
  teardown(code: number): void {
    if (this.done) return
    add(this.hub.stats.closes, String(code))
    // Dropped by the network or for missing pings (no close frame) rather than closed by either side.
    const resumable = code === noCloseFrame && !this.ending
    this.done = true
    this.ending = true
    this.clearTimer()
    const hub = this.hub
    hub.connections.delete(this)
    this.release()
    const online = this.current
    try {
      if (online !== undefined && !(resumable && Resume.hold(hub, online))) Resume.end(hub, online)
    } catch (error) {
      hub.run(Effect.logError("Symple connection teardown failed", Cause.die(error)))
    } finally {
      // The fiber ends whatever happened: the server's shutdown waits for it.
      ConnectionFiber.finish(this)
    }
  }

  /** The server is stopping: notice, close 1001, teardown (which ends the fiber). */
  goodbye(): void {
    const ws = this.ws
    // The server's shutdown waits for the socket to finish closing (its close takes it out of `open` again).
    if (ws.readyState !== ws.CLOSED) this.hub.open.add(ws)
    if (!this.done && ws.readyState === ws.OPEN) {
      this.socket.write(shutdownBytes)
      add(this.hub.stats.framesOut, "event")
      ws.close(1001, "Server shutting down")
    }
    this.teardown(1001)
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

/** 1006: the socket closed without a close frame. */
const noCloseFrame = 1006

/**
 * Takes ownership of a freshly upgraded socket (made by `makeWebSocketServer`, a `ConnectionSocket`), and starts the
 * connection's fiber in the server's context. Synchronous: must run in the upgrade callback.
 *
 * @since 0.2.0
 * @internal
 */
export const accept = (hub: Hub, ws: WebSocket, socket: Duplex, host: string | undefined): Connection => {
  if (!(ws instanceof ConnectionSocket)) throw new Error("Connection.accept: not a socket of makeWebSocketServer")
  const connection = new ConnectionImpl(hub, ws, socket, host)
  ws.own(connection)
  hub.connections.add(connection)
  connection.fiber = hub.fork(ConnectionFiber.live(connection))
  return connection
}
