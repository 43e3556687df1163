/**
 * Cluster test helpers: servers on one real Redis (each with its own broker), and waiting for a node's replica to
 * see a number of peers.
 */
import { Effect, Layer } from "effect"
import * as RedisBroker from "../../src/redis/RedisBroker.js"
import * as SympleServer from "../../src/server/index.js"
import { eventually } from "../server/support.js"

export const startNode = (url: string, options: Partial<SympleServer.ServerOptions> = {}, ttl: number = 10_000) =>
  Effect.gen(function*() {
    const resolved = { port: 0, host: "127.0.0.1", ...options }
    const broker = yield* Layer.build(RedisBroker.layer({ url, ttl }))
    return yield* SympleServer.makeWithDefaults(resolved).pipe(Effect.provideContext(broker))
  })

/** Waits until every server counts `count` peers (its own and the other nodes'). */
export const converged = (servers: ReadonlyArray<SympleServer.Server>, count: number, timeoutMs = 3000) =>
  eventually(
    Effect.forEach(servers, (server) =>
      Effect.flatMap(server.peerCount, (n) =>
        n === count ? Effect.void : Effect.fail(new Error(`${n} != ${count}`)))),
    timeoutMs
  )
