/**
 * Owns opening the node's two connections to Redis for commands: the node-redis client (commands that read
 * replies: the directory, heartbeats, sweeps; the subscriber is a duplicate of it) and the publishing connection
 * (`internal/publisher`). The first connection failing fails the start; once in, both keep trying by themselves.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import { createClient } from "redis"
import { ServerError } from "../../server/ServerError.js"
import { Publisher, target } from "./publisher.js"
import type { Client, Status } from "./status.js"

const ignore = () => {}

/**
 * Connects to `url`, the client first, and fills in `status.client` and `status.publisher`; `onReady` is called
 * when the publishing connection is back after a loss.
 *
 * @since 0.2.0
 * @internal
 */
export const connect = (url: string, status: Status, onReady: () => void): Effect.Effect<Client, ServerError> =>
  Effect.gen(function*() {
    let everReady = false
    const client: Client = createClient({
      url,
      // Commands fail at once while Redis is away (frames are dropped and counted, changes resynced later)
      // instead of piling up in the client.
      disableOfflineQueue: true,
      socket: {
        // The first connection fails the start; once in, the node keeps trying.
        reconnectStrategy: (retries, cause) => everReady ? Math.min(50 * 2 ** retries, 1000) : cause,
        connectTimeout: 5000
      }
    })
    client.on("error", ignore)
    yield* Effect.tryPromise({
      try: () => client.connect(),
      catch: (cause) => new ServerError({ reason: "Broker", message: `Cannot reach Redis at ${url}`, cause })
    })
    everReady = true
    status.client = client
    const to = target(url)
    if (to === undefined) {
      client.destroy()
      return yield* new ServerError({
        reason: "Broker",
        message: `Not a redis:// or rediss:// URL: ${url}`
      })
    }
    const counters = status.counters
    const publisher = new Publisher(to, {
      dropped: (recipients) => {
        counters.dropped += recipients
      },
      // Changes written while it was away are lost: the node republishes itself.
      onReady
    })
    yield* Effect.tryPromise({
      try: () => publisher.start(),
      catch: (cause) => {
        client.destroy()
        return new ServerError({ reason: "Broker", message: `Cannot reach Redis at ${url}`, cause })
      }
    })
    status.publisher = publisher
    return client
  })
