/**
 * Owns the (re)synchronisation of this node with the directory in Redis, at start and whenever the node comes back
 * to Redis or finds it was taken for dead: it writes the node's part (its sessions hash, its membership, a first
 * heartbeat), announces it (`sync`), then reads the other nodes' parts into the replica, sweeping the dead ones
 * (after a return to Redis, only those still missing one TTL later). One runs at a time; one asked for meanwhile
 * runs again after it.
 *
 * @since 0.2.0
 * @internal
 */
import { byNode, entryOf, toEntries } from "./directory.js"
import { sweep } from "./liveness.js"
import type { Outbox } from "./outbox.js"
import type { Replica } from "./replica.js"
import type { Client, Keys, Status } from "./status.js"

/**
 * @since 0.2.0
 * @internal
 */
export class Sync {
  syncing = false
  again = false
  /**
   * Until when a node missing from Redis is spared (not swept): set by every resync after the first, i.e. when this
   * node comes back to Redis. A Redis that restarted empty has lost every node's keys, and the others put theirs
   * back only when they notice, each on its own schedule: sweeping them meanwhile would announce their peers offline
   * and then online again. A node that has not come back within one TTL is swept then, by the heartbeat.
   */
  graceUntil = 0

  constructor(
    readonly client: Client,
    readonly keys: Keys,
    readonly ttl: number,
    readonly status: Status,
    readonly outbox: Outbox,
    readonly replica: Replica,
    /** Whether the subscriber is up (the node is `connected` after a resync only then). */
    readonly subscribed: () => boolean
  ) {}

  /** Writes this node's part of the directory, announces it, then reads the others' into the replica. */
  readonly resync = async (): Promise<void> => {
    if (this.syncing) {
      this.again = true
      return
    }
    const { client, keys, replica } = this
    const node = this.status.node
    const registry = replica.local.registry
    this.syncing = true
    if (this.status.counters.syncs > 0) this.graceUntil = Date.now() + this.ttl
    replica.tombstones = new Set()
    try {
      this.outbox.flush()
      const mine = (byNode(registry.snapshotUnsafe()).get("") ?? []).map(entryOf)
      const write = client.multi().del(keys.sessions(node))
      if (mine.length > 0) {
        write.hSet(keys.sessions(node), Object.fromEntries(mine.map((e) => [e.peer.id, JSON.stringify(e)])))
      }
      await write.sAdd(keys.nodes, node).set(keys.alive(node), String(Date.now()), {
        expiration: { type: "PX", value: this.ttl }
      }).exec()
      await client.publish(keys.directory, JSON.stringify({ op: "sync", node, sessions: mine }))
      const nodes = new Set(await client.sMembers(keys.nodes))
      nodes.delete(node)
      for (const other of nodes) {
        if ((await client.exists(keys.alive(other))) === 0) {
          if (!this.sparing()) await sweep(client, keys, replica, other)
          continue
        }
        replica.reconcile(other, toEntries(await client.hGetAll(keys.sessions(other))))
      }
      for (const known of byNode(registry.snapshotUnsafe()).keys()) {
        if (known !== "" && !nodes.has(known) && !this.sparing()) replica.reconcile(known, [])
      }
      this.status.counters.syncs++
      this.status.connected = this.subscribed() && client.isReady
    } finally {
      this.syncing = false
      replica.tombstones = undefined
    }
    if (this.again) {
      this.again = false
      await this.resync()
    }
  }

  /** Whether nodes missing from Redis are spared for now (see `graceUntil`). */
  sparing(): boolean {
    return Date.now() < this.graceUntil
  }
}
