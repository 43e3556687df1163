/**
 * Cluster test helpers: servers on one real Redis (each with its own broker), and waiting for a node's replica to
 * see a number of peers.
 */
import { Effect, Layer } from "effect"
import * as RedisBroker from "../../src/redis/RedisBroker.js"
import * as SympleServer from "../../src/server/index.js"
import { eventually } from "../server/support.js"

export interface NodeOptions {
  /** The broker's `ttl` in ms (default 10 s). */
  readonly ttl?: number
  /** The broker's key and channel prefix: nodes of one prefix are one cluster (default the broker's own). */
  readonly prefix?: string
  /** The broker's `handoverTimeout` in ms (default the broker's own). */
  readonly handoverTimeout?: number
  /** The broker's `rateLimitSyncInterval` in ms (default the broker's own). */
  readonly rateLimitSyncInterval?: number
}

/**
 * A cluster node on the given services (built afresh for this node, in the current scope), the built-in ones for
 * the rest, and a broker of its own.
 */
export const startNodeWith = <ROut extends SympleServer.Services, E>(
  services: Layer.Layer<ROut, E>,
  url: string,
  options: Partial<SympleServer.ServerOptions> = {},
  node: NodeOptions = {}
) =>
  Effect.gen(function*() {
    const resolved = { port: 0, host: "127.0.0.1", ...options }
    const broker = yield* Layer.build(RedisBroker.layer({
      url,
      ttl: node.ttl ?? 10_000,
      prefix: node.prefix,
      handoverTimeout: node.handoverTimeout,
      rateLimitSyncInterval: node.rateLimitSyncInterval
    }))
    const own = yield* Layer.build(Layer.fresh(services))
    // With the broker's context: its `RateLimit.Store` is the one the rate limit reads.
    const defaults = yield* Layer.build(SympleServer.layerDefaults(resolved)).pipe(Effect.provideContext(broker))
    return yield* SympleServer.make(resolved).pipe(
      Effect.provideContext(own),
      Effect.provideContext(defaults),
      Effect.provideContext(broker)
    )
  })

export const startNode = (url: string, options: Partial<SympleServer.ServerOptions> = {}, ttl: number = 10_000) =>
  startNodeWith(Layer.empty, url, options, { ttl })

/** Waits until every server counts `count` peers (its own and the other nodes'). */
export const converged = (servers: ReadonlyArray<SympleServer.Server>, count: number, timeoutMs = 3000) =>
  eventually(
    Effect.forEach(servers, (server) =>
      Effect.flatMap(server.peerCount, (n) =>
        n === count ? Effect.void : Effect.fail(new Error(`${n} != ${count}`)))),
    timeoutMs
  )
