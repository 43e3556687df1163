/**
 * Owns the WebSocket class of the server's sockets: it hands an accepted socket's events straight to its connection
 * (no listeners per socket, no table of them), answers pings for it, and shares one frozen table of negotiated
 * extensions. It leans on how ws and Node's emitters work (ws delivers every event of a socket through `emit`, and
 * keeps `_extensions`; an emitter without `_events` makes one when first listened to): after a ws upgrade, run
 * `test/server` and the idle-19000 bench case.
 *
 * @since 0.2.0
 * @internal
 */
import type { Duplex } from "node:stream"
import { type RawData, WebSocket } from "ws"
import type { Hub } from "./hub.js"

/**
 * What a socket hands its events to: the connection (`connection.ts`).
 *
 * @since 0.2.0
 * @internal
 */
export interface SocketOwner {
  readonly hub: Hub
  readonly ws: WebSocket
  readonly socket: Duplex
  alive: boolean
  readonly onMessage: (data: RawData, isBinary: boolean) => void
  readonly teardown: (code: number) => void
}

const ignore = () => {}

const noExtensions: object = Object.freeze({})

/**
 * The WebSocket class of the server's sockets (`makeWebSocketServer`). ws delivers a socket's events by calling its
 * `emit`; this one hands those of an accepted socket straight to its connection, so that no socket needs listeners
 * of its own, nor a table of them. A socket without a connection (refused at capacity) has its events emitted as usual.
 *
 * @since 0.2.0
 * @internal
 */
export class ConnectionSocket extends WebSocket {
  /** Set by `accept`; declared here so that it is a field of the socket itself, not a property added later. */
  connection: SocketOwner | undefined = undefined
  /**
   * ws's table of the socket's negotiated extensions, which its Receiver and Sender share. The server negotiates
   * none (`makeWebSocketServer`), so every socket shares one frozen empty table instead of an empty object of its
   * own (56 bytes). ws replaces the table when an extension is negotiated, before the socket starts.
   */
  _extensions: object = noExtensions

  /**
   * The connection takes the socket's events. Nothing listens to the socket then: the emitter's table of listeners
   * (a dictionary, 160 bytes even when empty) goes. Node's emitters allow that (an emitter without a table makes one
   * when it is first listened to).
   */
  own(connection: SocketOwner): void {
    this.connection = connection
    const emitter = this as unknown as { _events: object | undefined; _eventsCount: number }
    if (emitter._eventsCount === 0) emitter._events = undefined
  }

  // ws emits at most two arguments with each event of a socket.
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const connection = this.connection
    if (connection === undefined) return arguments.length <= 1 ? super.emit(event) : super.emit(event, a, b)
    switch (event) {
      case "message":
        connection.onMessage(a as RawData, b as boolean)
        return true
      case "pong":
        connection.alive = true
        return true
      case "ping":
        onPing(connection, a as Buffer)
        return true
      case "close":
        connection.hub.open.delete(this)
        connection.teardown(a as number)
        return true
      // Errors are followed by "close".
      case "error":
        return true
      default:
        return super.emit(event, a, b)
    }
  }
}

/**
 * Answers a peer's ping with its data. A peer that pings without reading what it is sent is dropped once its socket
 * holds more than the high-water mark, as ws drops a peer with too many answers pending.
 */
const onPing = (connection: SocketOwner, data: Buffer): void => {
  const ws = connection.ws
  if (ws.readyState !== ws.OPEN) return
  if (connection.socket.writableLength > connection.hub.options.highWaterMark) ws.terminate()
  else ws.pong(data, false, ignore)
}
