/**
 * Owns the node's liveness in the cluster: heartbeats, a key with a TTL renewed every third of it, which also tell
 * the node when it was taken for dead (then it resyncs); the sweep of nodes whose heartbeat expired (their sessions
 * go offline here, their keys go; every node may sweep, and sweeping twice is harmless); and leaving the cluster
 * when the node stops.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { byNode } from "./directory.js"
import type { Replica } from "./replica.js"
import type { Client, Keys } from "./status.js"
import type { Subscriber } from "./subscriber.js"
import type { Sync } from "./sync.js"

const ignore = () => {}

/**
 * A node whose heartbeat expired: its sessions go offline here; its keys go (idempotent on every node).
 *
 * @since 0.2.0
 * @internal
 */
export const sweep = async (client: Client, keys: Keys, replica: Replica, dead: string): Promise<void> => {
  replica.reconcile(dead, [])
  await client.multi().del(keys.sessions(dead)).sRem(keys.nodes, dead).exec()
  await client.publish(keys.directory, JSON.stringify({ op: "down", node: dead }))
}

/**
 * Takes the node out of the directory and says so, when it stops (with a ready client).
 *
 * @since 0.2.0
 * @internal
 */
export const leave = async (client: Client, keys: Keys, node: string): Promise<void> => {
  const leave = async () => {
    await client.multi().del(keys.sessions(node)).del(keys.alive(node)).sRem(keys.nodes, node).exec()
    await client.publish(keys.directory, JSON.stringify({ op: "down", node }))
  }
  // A Redis that does not answer must not hold the shutdown: the node's heartbeat expires instead.
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([
    leave().catch(ignore),
    new Promise((resolve) => timer = setTimeout(resolve, 1000))
  ])
  clearTimeout(timer)
}

/**
 * @since 0.2.0
 * @internal
 */
export class Liveness {
  constructor(
    readonly client: Client,
    readonly keys: Keys,
    readonly node: string,
    readonly ttl: number,
    readonly replica: Replica,
    readonly sync: Sync,
    readonly subscriber: Subscriber
  ) {}

  readonly beat = async (): Promise<void> => {
    const { client, keys, node } = this
    // A subscriber that lost its socket without saying so is replaced.
    this.subscriber.loseIfStale()
    if (!client.isReady) return
    // The previous beat tells whether this node was taken for dead (e.g. Redis lost its keys): then it resyncs.
    const previous = await client.sendCommand([
      "SET",
      keys.alive(node),
      String(Date.now()),
      "PX",
      String(this.ttl),
      "GET"
    ])
    if (previous === null && !this.sync.syncing) await this.sync.resync()
    const known = new Set(await client.sMembers(keys.nodes))
    for (const other of byNode(this.replica.local.registry.snapshotUnsafe()).keys()) if (other !== "") known.add(other)
    known.delete(node)
    for (const other of known) {
      if ((await client.exists(keys.alive(other))) === 0 && !this.sync.sparing()) {
        await sweep(client, keys, this.replica, other)
      }
    }
  }

  /** Heartbeats, every third of the TTL, until the scope closes. */
  run(): Effect.Effect<unknown, never, Scope.Scope> {
    return Effect.forkScoped(
      Effect.repeat(
        Effect.promise(() => this.beat().catch(ignore)),
        Schedule.spaced(Math.max(100, Math.floor(this.ttl / 3)))
      )
    )
  }
}
