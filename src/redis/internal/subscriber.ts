/**
 * Owns what the node hears from the cluster: a subscriber connection of its own on the node's channel (envelopes,
 * whose records are handed to local sessions as they are), the directory channel (to the replica) and the
 * JavaScript server's `symple:broadcast` (routed as `inject` routes it), and the node's handover channel (see
 * `handover`; on the same connection, so its messages and envelopes are read in the order Redis published them). When that connection is lost, the node
 * opens a new one and subscribes again by itself (not the client's automatic resubscription), then resyncs.
 *
 * @since 0.2.0
 * @internal
 */
import * as Result from "effect/Result"
import * as Frame from "../../protocol/Frame.js"
import type * as Broker from "../../server/Broker.js"
import { forEachRecord, frameOf } from "./envelope.js"
import type { Client, Keys, Status } from "./status.js"

const ignore = () => {}

/**
 * What the subscriber does with the messages of each channel.
 *
 * @since 0.2.0
 * @internal
 */
export interface Handlers {
  readonly envelope: (message: Buffer) => void
  readonly directory: (text: string) => void
  readonly broadcast: (text: string) => void
  readonly handover: (message: Buffer) => void
}

/**
 * The handlers of the node's channel (each record of an envelope delivered to its recipients here) and of
 * `symple:broadcast`.
 *
 * @since 0.2.0
 * @internal
 */
export const receiver = (
  local: Broker.Local,
  counters: Status["counters"],
  /** Sessions moving between nodes (`Handovers`): their frames are held or forwarded there while it is `active`. */
  moving: { readonly active: boolean; readonly deliver: (ids: ReadonlyArray<string>, bytes: Uint8Array) => void }
): Pick<Handlers, "envelope" | "broadcast"> => {
  // One visitor and one decoder for every record (no closure per frame): `deliver` calls `decode` only while it
  // handles `current`.
  let current: Uint8Array = new Uint8Array(0)
  const decode = () => frameOf(current)
  const visit = (ids: ReadonlyArray<string>, bytes: Buffer) => {
    counters.received++
    current = bytes
    local.deliver(ids, bytes, decode)
    if (moving.active) moving.deliver(ids, bytes)
  }
  return {
    envelope: (message: Buffer) => {
      forEachRecord(message, visit)
    },
    broadcast: (text: string) => {
      const decoded = Frame.decode(text)
      if (Result.isSuccess(decoded)) local.inject(decoded.success)
    }
  }
}

/**
 * @since 0.2.0
 * @internal
 */
export class Subscriber {
  /** The subscribed connection; `undefined` while there is none. */
  current: Client | undefined = undefined
  stopped = false
  /** Gives up the current subscriber connection (it is replaced by a new one). */
  lose: () => void = ignore
  retry: ReturnType<typeof setTimeout> | undefined = undefined
  retries = 0

  constructor(
    readonly client: Client,
    readonly keys: Keys,
    readonly status: Status,
    readonly handlers: Handlers,
    /** Run once subscribed again (`Sync.resync`). */
    readonly resync: () => Promise<void>
  ) {}

  /** A new subscriber connection and its subscriptions: after a loss, the node resubscribes by itself. */
  readonly subscribe = async (): Promise<void> => {
    const { handlers, keys } = this
    const sub = this.client.duplicate({ socket: { reconnectStrategy: false, connectTimeout: 5000 } })
    let lost = false
    const onLost = () => {
      if (lost) return
      lost = true
      this.status.connected = false
      if (this.current === sub) this.current = undefined
      if (sub.isOpen) sub.destroy()
      if (!this.stopped) this.scheduleResubscribe()
    }
    // Without reconnection, a lost socket is an error after which the client is closed.
    sub.on("error", () => {
      if (!sub.isOpen) onLost()
    })
    sub.on("end", onLost)
    this.lose = onLost
    try {
      await sub.connect()
      await sub.subscribe(keys.node(this.status.node), handlers.envelope, true)
      await sub.subscribe(keys.directory, handlers.directory)
      await sub.subscribe(keys.broadcast, handlers.broadcast)
      await sub.subscribe(keys.handover(this.status.node), handlers.handover, true)
    } catch (cause) {
      if (sub.isOpen) sub.destroy()
      throw cause
    }
    if (this.stopped) {
      sub.destroy()
      return
    }
    this.current = sub
  }

  recover(): void {
    this.subscribe().then(this.resync).then(() => {
      this.retries = 0
    }, () => {
      if (!this.stopped) this.scheduleResubscribe()
    })
  }

  scheduleResubscribe(): void {
    if (this.retry !== undefined || this.stopped) return
    const delay = Math.min(50 * 2 ** this.retries++, 1000)
    this.retry = setTimeout(() => {
      this.retry = undefined
      if (this.current !== undefined) {
        this.resync().catch(() => this.scheduleResubscribe())
        return
      }
      this.recover()
    }, delay)
  }

  /** A publishing connection back after a loss: whatever was published meanwhile is lost, so the node resyncs. */
  readonly refresh = (): void => {
    if (!this.stopped && this.current !== undefined) this.resync().catch(() => this.scheduleResubscribe())
  }

  /** A subscriber that lost its socket without saying so is replaced. */
  loseIfStale(): void {
    if (this.current !== undefined && !this.current.isReady) this.lose()
  }

  /** No more resubscribing (the node is stopping). */
  stop(): void {
    this.stopped = true
    if (this.retry !== undefined) clearTimeout(this.retry)
  }

  close(): void {
    this.current?.destroy()
    this.current = undefined
  }
}
