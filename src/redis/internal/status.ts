/**
 * Owns what the broker reports of itself (`Broker.status`, for `/health` and readiness): the counters the other
 * parts bump, whether the node is in sync with the cluster, and the connections whose readiness makes it
 * `connected`. It lives as long as the broker; `start` fills in the registry and the connections. The types the
 * broker's parts share are here too.
 *
 * @since 0.2.0
 * @internal
 */
import type { createClient } from "redis"
import type * as Broker from "../../server/Broker.js"
import type { names } from "../RedisBroker.js"
import { byNode } from "./directory.js"
import type { Publisher } from "./publisher.js"

/**
 * A node-redis client (the broker's commands that read replies, and the subscriber).
 *
 * @since 0.2.0
 * @internal
 */
export type Client = ReturnType<typeof createClient>

/**
 * The server's registry, as a broker is given it.
 *
 * @since 0.2.0
 * @internal
 */
export type Registry = Broker.Local["registry"]

/**
 * The cluster's keys and channels (`RedisBroker.names`).
 *
 * @since 0.2.0
 * @internal
 */
export type Keys = ReturnType<typeof names>

/**
 * @since 0.2.0
 * @internal
 */
export class Status {
  readonly counters = { published: 0, received: 0, dropped: 0, syncs: 0 }
  /** Whether the last resync ended subscribed and ready (cleared when the subscriber is lost, and on stop). */
  connected = false
  /** The server's own registry, once started. */
  registry: Registry | undefined = undefined
  /** The node-redis client, while started. */
  client: Client | undefined = undefined
  /** Frames and directory changes go this way (see `internal/publisher`). */
  publisher: Publisher | undefined = undefined

  constructor(readonly node: string) {}

  read(): Broker.Status {
    const own = this.registry
    const nodes = own === undefined ? 0 : byNode(own.snapshotUnsafe()).size
    const hasOwn = own !== undefined && byNode(own.snapshotUnsafe()).has("")
    return {
      state: this.connected && this.client?.isReady === true && this.publisher?.ready === true
        ? "connected"
        : "disconnected",
      node: this.node,
      nodes: hasOwn ? nodes - 1 : nodes,
      ...this.counters
    }
  }
}
