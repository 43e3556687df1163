/**
 * Owns everything that writes to a peer's socket: the pre-framed WebSocket frame encoding, the `WebSocketServer`
 * those pre-framed writes depend on (`perMessageDeflate: false`), write coalescing per tick, and each connection's
 * outbound half (`SocketWriter`: offer, write, and a close that drops what waits).
 *
 * A frame is written at once while the peer's mailbox is empty and its socket not backed up (a second frame for the
 * same socket within one tick corks it, so that a burst leaves in one syscall); otherwise it waits in the bounded
 * mailbox (`mailbox`), which is written out each time the socket drains.
 *
 * @since 0.2.0
 * @internal
 */
import { type WebSocket, WebSocketServer } from "ws"
import type * as Frame from "../../protocol/Frame.js"
import type * as ServerConfig from "../ServerConfig.js"
import { Mailbox } from "./mailbox.js"

/**
 * Renders a frame (or JSON text already rendered) once for all its recipients as a complete, unmasked WebSocket
 * text frame (header and payload in one buffer). Server frames are never masked, so the same bytes are valid on
 * every socket: a fan-out writes one shared buffer per recipient, with no per-recipient framing and one write
 * instead of two. Valid only without compression (see `makeWebSocketServer`).
 *
 * @since 0.2.0
 * @internal
 */
export const encode = (frame: Frame.Frame | string): Uint8Array => {
  const text = typeof frame === "string" ? frame : JSON.stringify(frame)
  const length = Buffer.byteLength(text)
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10
  const out = Buffer.allocUnsafe(header + length)
  out[0] = 0x81
  if (header === 2) out[1] = length
  else if (header === 4) {
    out[1] = 126
    out.writeUInt16BE(length, 2)
  } else {
    out[1] = 127
    out.writeUInt32BE(Math.floor(length / 0x100000000), 2)
    out.writeUInt32BE(length >>> 0, 6)
  }
  out.write(text, header, "utf8")
  return out
}

/**
 * The server's WebSocket upgrader. Compression stays off: `encode`'s frames are written to sockets as they are, and
 * a negotiated `permessage-deflate` would make every one of them invalid on the wire (RSV1 unset on deflated
 * payloads, or raw payloads the peer tries to inflate).
 *
 * @since 0.2.0
 * @internal
 */
export const makeWebSocketServer = (options: ServerConfig.Resolved, socket: typeof WebSocket): WebSocketServer =>
  new WebSocketServer({
    noServer: true,
    // The class of the server's sockets (a connection's, see `connection`).
    WebSocket: socket,
    maxPayload: options.hardPayloadLimit,
    perMessageDeflate: false,
    clientTracking: false,
    // Connections answer pings themselves (see `connection`): ws's own answer costs every socket a closure and its
    // context.
    autoPong: false,
    // Symple defines no subprotocol, but clients that offer some fail the handshake when none is selected:
    // prefer "symple", else take the first offer (as the JavaScript server does).
    handleProtocols: (offered) => offered.has("symple") ? "symple" : (offered.values().next().value ?? false)
  })

/**
 * A close to send after what is queued before it.
 *
 * @since 0.2.0
 * @internal
 */
export interface CloseRequest {
  readonly code: number
  readonly reason: string
}

/**
 * What a connection sends: bytes made by `encode`, or a close.
 *
 * @since 0.2.0
 * @internal
 */
export type Outbound = Uint8Array | CloseRequest

/**
 * Write coalescing for one server. `count` counts ticks in which something was written. A socket's first write in
 * a tick goes straight out; a second one corks the socket, and the one microtask that ends the tick uncorks every
 * socket corked in it, so that the rest of a tick's writes to a socket leave together. (A microtask rather than
 * `nextTick`: it runs at the same point, after the current callback, and costs about a third less.)
 *
 * @since 0.2.0
 * @internal
 */
export interface Ticks {
  readonly corked: Array<SocketWriter>
  count: number
  scheduled: boolean
  /** Ends the tick: uncorks every socket corked in it. */
  readonly end: () => void
}

/**
 * @since 0.2.0
 * @internal
 */
export const makeTicks = (): Ticks => {
  const ticks: Ticks = {
    corked: [],
    count: 0,
    scheduled: false,
    end: () => {
      ticks.count++
      ticks.scheduled = false
      for (const writer of ticks.corked) {
        try {
          writer.uncorked()
        } catch (error) {
          writer.failed(error)
        }
      }
      ticks.corked.length = 0
    }
  }
  return ticks
}

/** The current tick's number, making sure the tick is ended (and its corked sockets flushed). */
const currentTick = (ticks: Ticks): number => {
  if (!ticks.scheduled) {
    ticks.scheduled = true
    queueMicrotask(ticks.end)
  }
  return ticks.count
}

/**
 * A connection's outbound half: pre-framed writes, coalesced per tick, and the mailbox (`Mailbox`) behind them. A
 * base class of the connection, so that a connection stays one object with shared methods and no closures of its
 * own.
 *
 * @since 0.2.0
 * @internal
 */
export abstract class SocketWriter extends Mailbox {
  wroteAt = -1
  corkedAt = -1

  /** The connection starts closing (a close frame is on its way). */
  abstract closing(): void

  send(bytes: Uint8Array): void {
    this.offer(bytes)
  }

  /** Closes the socket right away; what waits in the mailbox is dropped. */
  kick(code: number, reason: string): void {
    if (this.kicked) return
    this.kicked = true
    this.release()
    this.ws.close(code, reason)
    this.closing()
  }

  // Outbound bytes are complete WebSocket frames (`encode`), written to the socket as they are. Nothing after a
  // close frame: once closing, the socket takes no more data (as `ws.send` would refuse it).
  write(item: Outbound): void {
    if (item instanceof Uint8Array) {
      if (this.ws.readyState === 1) this.socket.write(item)
    } else this.ws.close(item.code, item.reason)
  }

  /**
   * Sends bytes or a close, in order; `false` (and the peer is being closed with 1013) when the peer is too slow:
   * its mailbox is full, or it has too many bytes waiting.
   */
  offer(item: Outbound): boolean {
    if (this.kicked) return false
    const socket = this.socket
    if (this.queued === 0 && socket.writableLength <= this.hub.options.highWaterMark) {
      // The first write of a tick goes straight out; a second one in the same tick corks the socket until the
      // tick ends, so that a burst leaves in one syscall while a lone frame pays no cork.
      const ticks = this.hub.ticks
      const tick = currentTick(ticks)
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
        ticks.corked.push(this)
      }
      // Counted once the tick ends (`uncorked`): until then the burst has not been offered to the kernel.
      this.write(item)
      return true
    }
    return this.enqueue(item)
  }

  /** The tick's corked writes go to the kernel; what it does not take waits. */
  uncorked(): void {
    const socket = this.socket
    socket.uncork()
    if (socket.writableLength !== this.waiting) this.account()
  }
}
