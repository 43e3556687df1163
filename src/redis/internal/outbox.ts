/**
 * Owns the way out for frames to other nodes: the handle of a remote session (what is sent to it goes into its
 * node's envelope), the outbox that gathers those frames per node until the current round of I/O is over, and the
 * publishing of each node's envelope on the node's channel.
 *
 * @since 0.2.0
 * @internal
 */
import type * as PeerRegistry from "../../server/PeerRegistry.js"
import type { EnvelopeRecord } from "../RedisBroker.js"
import { publishEnvelope } from "./envelope.js"
import type { Status } from "./status.js"

/**
 * Frames for other nodes, gathered while the current round of I/O is handled and published once it is over
 * (`setImmediate`): one envelope per node, holding each frame once with its recipients there, whatever their
 * number. Under load, one publish carries the frames of many senders.
 *
 * @since 0.2.0
 * @internal
 */
export class Outbox {
  pending = new Map<string, Array<{ readonly bytes: Uint8Array; readonly ids: Array<string> }>>()
  scheduled: ReturnType<typeof setImmediate> | undefined = undefined
  /** The node of the previous frame and its records: a run of frames for one node skips the map. */
  lastNode: string | undefined = undefined
  lastRecords: Array<{ readonly bytes: Uint8Array; readonly ids: Array<string> }> = []
  constructor(
    readonly publish: (node: string, records: ReadonlyArray<EnvelopeRecord>) => void
  ) {}

  push(node: string, id: string, bytes: Uint8Array): void {
    let records = this.lastRecords
    if (node !== this.lastNode) {
      const found = this.pending.get(node)
      if (found === undefined) this.pending.set(node, records = [])
      else records = found
      this.lastNode = node
      this.lastRecords = records
    }
    const last = records[records.length - 1]
    if (last !== undefined && last.bytes === bytes) last.ids.push(id)
    else records.push({ bytes, ids: [id] })
    this.scheduled ??= setImmediate(this.flush)
  }

  readonly flush = (): void => {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled)
      this.scheduled = undefined
    }
    if (this.pending.size === 0) return
    const pending = this.pending
    this.pending = new Map()
    this.lastNode = undefined
    for (const [node, records] of pending) this.publish(node, records)
  }
}

/**
 * A session of another node: what is sent to it goes into that node's envelope.
 *
 * @since 0.2.0
 * @internal
 */
export class RemoteHandle implements PeerRegistry.Handle {
  constructor(readonly node: string, readonly id: string, readonly outbox: Outbox) {}
  send(bytes: Uint8Array): void {
    this.outbox.push(this.node, this.id, bytes)
  }
}

/**
 * Publishes an envelope to a node on the publishing connection, counting it as published, or its recipients as
 * dropped while Redis is away. `channels` holds the channels of other nodes, rendered once each (the replica
 * forgets a node's when the node has no sessions left).
 *
 * @since 0.2.0
 * @internal
 */
export const publishTo = (
  status: Status,
  channelOf: (node: string) => string,
  channels: Map<string, Buffer>
) => {
  const counters = status.counters
  return (to: string, records: ReadonlyArray<EnvelopeRecord>): void => {
    let recipients = 0
    for (const record of records) recipients += record.ids.length
    const publisher = status.publisher
    if (publisher === undefined || !publisher.ready) {
      counters.dropped += recipients
      return
    }
    let channel = channels.get(to)
    if (channel === undefined) channels.set(to, channel = Buffer.from(channelOf(to)))
    if (publisher.send(publishEnvelope(channel, records), recipients)) {
      counters.published += records.length
    }
  }
}
