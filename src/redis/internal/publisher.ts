/**
 * Owns the connection that carries this node's writes to the cluster's hot channels: frames for other nodes (the
 * outbox's envelopes) and the directory changes of local sessions (`HSET` / `HDEL` of the node's hash, then the
 * event on the directory channel), in the order they were made, on one connection, so that Redis sees them in that
 * order too.
 *
 * Why not node-redis's `client.publish`: every command there builds a command object, a Promise and an abort
 * listener, is RESP-encoded into several chunks on the next `setImmediate` (one more turn of the event loop per
 * round of frames) and leaves in a `writev`. Here a command is rendered into one buffer and written at once, and
 * its reply is only counted: in the cluster benchmark this cut the nodes' CPU per cross-node delivery by about a
 * tenth. Only the commands above go this way; everything that reads replies (the directory, heartbeats, sweeps)
 * stays on node-redis.
 *
 * Replies come back in order, so a queue of what each pending command carried (its recipients, for frames) is
 * enough: an error reply counts those recipients as dropped, and so do a `PUBLISH` that no subscriber received and
 * losing the connection with commands unanswered. A lost connection is reopened by itself (the same backoff as the client's: 50 ms doubling up to 1 s);
 * `onReady` then tells the broker, which resyncs (the changes written meanwhile are lost). Bytes that Redis has not
 * taken yet are bounded (`maxWaiting`): past that, frames are dropped and counted, as when Redis is away.
 *
 * @since 0.2.0
 * @internal
 */
import * as Net from "node:net"
import * as Tls from "node:tls"

/**
 * Bytes of commands Redis has not taken yet beyond which frames are dropped (directory changes, small and needed
 * for the cluster to converge, are always written).
 *
 * @since 0.2.0
 * @internal
 */
export const maxWaiting = 16 * 1024 * 1024

/**
 * Where and how to connect, from a `redis://` or `rediss://` URL (user, password and database as node-redis reads
 * them).
 *
 * @since 0.2.0
 * @internal
 */
export interface Target {
  readonly host: string
  readonly port: number
  readonly tls: boolean
  readonly username: string | undefined
  readonly password: string | undefined
  readonly database: number | undefined
}

/**
 * The target of a URL; `undefined` for anything but `redis:` and `rediss:` URLs.
 *
 * @since 0.2.0
 * @internal
 */
export const target = (url: string): Target | undefined => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return undefined
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") return undefined
  const database = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined
  if (database !== undefined && !Number.isInteger(database)) return undefined
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, "") || "localhost",
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    tls: parsed.protocol === "rediss:",
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
    database
  }
}

/**
 * A command as RESP renders it (an array of bulk strings), in one buffer.
 *
 * @since 0.2.0
 * @internal
 */
export const encodeCommand = (args: ReadonlyArray<string | Uint8Array>): Buffer => {
  const parts = args.map((arg) => typeof arg === "string" ? Buffer.from(arg) : arg)
  let size = 3 + String(parts.length).length
  for (const part of parts) size += 5 + String(part.length).length + part.length
  const out = Buffer.allocUnsafe(size)
  let at = out.write(`*${parts.length}\r\n`, 0, "latin1")
  for (const part of parts) {
    at += out.write(`$${part.length}\r\n`, at, "latin1")
    out.set(part, at)
    at += part.length
    out[at++] = 13
    out[at++] = 10
  }
  return out
}

type Socket = Net.Socket | Tls.TLSSocket

/**
 * @since 0.2.0
 * @internal
 */
export interface Hooks {
  /** Recipients of frames that did not make it (an error reply, a lost connection, too many bytes waiting). */
  readonly dropped: (recipients: number) => void
  /** The connection is back after a loss (not called for the first one). */
  readonly onReady: () => void
}

/**
 * The publishing connection of one node.
 *
 * @since 0.2.0
 * @internal
 */
export class Publisher {
  private socket: Socket | undefined = undefined
  private open = false
  private closed = false
  private retries = 0
  private retry: ReturnType<typeof setTimeout> | undefined = undefined
  /** Recipients carried by each command sent and not answered yet, oldest first (from `head`). */
  private pending: Array<number> = []
  private head = 0
  /** The first byte of the reply line being read, or 0 at the start of a line. */
  private lineType = 0
  /** Whether the integer reply being read is 0 so far. */
  private zero = true

  constructor(readonly to: Target, readonly hooks: Hooks) {}

  /** Whether commands are written (connected, not closed). */
  get ready(): boolean {
    return this.open
  }

  /** Opens the first connection; fails when Redis cannot be reached within 5 s. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => this.connect(resolve, reject))
  }

  /**
   * Writes a command carrying frames for `recipients` sessions (0 for other commands); `false` (and the recipients
   * counted as dropped) when it cannot be written now.
   */
  send(command: Buffer, recipients: number): boolean {
    const socket = this.socket
    if (!this.open || socket === undefined || (recipients > 0 && socket.writableLength > maxWaiting)) {
      if (recipients > 0) this.hooks.dropped(recipients)
      return false
    }
    this.pending.push(recipients)
    socket.write(command)
    return true
  }

  /**
   * Closes the connection for good, once what was written has left (at most a second later); what is unanswered is
   * not counted: the node is stopping.
   */
  close(): void {
    this.closed = true
    this.open = false
    if (this.retry !== undefined) clearTimeout(this.retry)
    const socket = this.socket
    this.socket = undefined
    if (socket === undefined) return
    socket.end()
    setTimeout(() => socket.destroy(), 1000).unref()
  }

  private connect(resolve?: () => void, reject?: (cause: unknown) => void): void {
    const to = this.to
    const socket: Socket = to.tls
      ? Tls.connect({ host: to.host, port: to.port, servername: Net.isIP(to.host) === 0 ? to.host : undefined })
      : Net.connect({ host: to.host, port: to.port })
    socket.setNoDelay(true)
    socket.setTimeout(5000, () => socket.destroy(new Error("Redis connection timeout")))
    this.socket = socket
    let up = false
    socket.once(to.tls ? "secureConnect" : "connect", () => {
      socket.setTimeout(0)
      up = true
      this.open = true
      // Pipelined before anything else: a refusal answers every later command with an error (counted).
      if (to.password !== undefined) {
        this.send(
          encodeCommand(to.username === undefined ? ["AUTH", to.password] : ["AUTH", to.username, to.password]),
          0
        )
      }
      if (to.database !== undefined) this.send(encodeCommand(["SELECT", String(to.database)]), 0)
      const again = this.retries > 0
      this.retries = 0
      if (resolve !== undefined) resolve()
      else if (again) this.hooks.onReady()
    })
    socket.on("data", (chunk: Buffer) => this.replies(chunk, socket))
    socket.on("error", () => {})
    socket.once("close", () => {
      if (!up && reject !== undefined) {
        // The first connection fails the start: no retries.
        this.close()
        reject(new Error(`Cannot reach Redis at ${to.host}:${to.port}`))
      } else if (this.socket === socket) this.lost()
    })
  }

  /**
   * Counts the replies in a chunk; anything but a status, an integer or an error is not ours to read. A command
   * carrying frames is a `PUBLISH`, whose integer reply is how many subscribers received it: 0 means the node it was
   * for is not listening (its subscriber connection is gone, or the node is), so its frames are counted as dropped
   * too, as they are lost all the same.
   */
  private replies(chunk: Buffer, socket: Socket): void {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!
      if (this.lineType === 0) {
        if (byte !== 43 && byte !== 58 && byte !== 45) {
          // `+`, `:` and `-` are the only replies these commands have: the stream is not what it should be.
          socket.destroy()
          return
        }
        this.lineType = byte
        this.zero = true
      } else if (byte === 10) {
        const recipients = this.pending[this.head++] ?? 0
        if (recipients > 0 && (this.lineType === 45 || (this.lineType === 58 && this.zero))) {
          this.hooks.dropped(recipients)
        }
        this.lineType = 0
      } else if (byte !== 48 && byte !== 13) {
        // Any character of the line but `0` and the `\r` that ends it: not a zero (read for integers only).
        this.zero = false
      }
    }
    if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head)
      this.head = 0
    }
  }

  private lost(): void {
    this.open = false
    this.socket = undefined
    this.lineType = 0
    let unanswered = 0
    for (let i = this.head; i < this.pending.length; i++) unanswered += this.pending[i]!
    this.pending = []
    this.head = 0
    if (unanswered > 0) this.hooks.dropped(unanswered)
    if (this.closed || this.retry !== undefined) return
    const delay = Math.min(50 * 2 ** this.retries++, 1000)
    this.retry = setTimeout(() => {
      this.retry = undefined
      if (!this.closed) this.connect()
    }, delay)
  }
}
