/**
 * The rate-limit store of a cluster: the sessions' token buckets shared through Redis, so that limits hold across
 * the nodes (a session handed over to another node on a resume keeps its bucket there). `RedisBroker.layer`
 * provides it as the server's `RateLimit.Store`; `layer` provides it alone.
 *
 * A frame cannot wait for Redis, so every key has a local bucket (the memory store's, see `RateLimit`) that answers
 * `takeUnsafe` at once; a fiber of the layer's own reconciles, every `syncInterval`, each key taken since the last
 * round with its shared bucket, through Effect's Redis `RateLimiterStore` (`RateLimiter.makeStoreRedis`, on
 * `NodeRedis.layer`): a `tokenBucket` take of what was taken here, `allowOverflow: true`, whose answer becomes the
 * local bucket (see `internal/reconciler`). `forget` sends what a key owes before its bucket goes. The
 * `RateLimiterStore` methods themselves (`tokenBucket`, `fixedWindow`, the adaptive ones) go to Redis directly, so
 * Effect's `RateLimiter` on this store limits across processes.
 *
 * While Redis is away, takes keep being answered from the local buckets (a frame never waits or fails for Redis),
 * what they owe waits, and a warning is logged once; the store connects again by itself and reconciling resumes.
 * The `RateLimiterStore` methods fail with a `RateLimitStoreError` meanwhile.
 *
 * Keys (prefix `symple:v2` by default, as the broker's): `<prefix>:ratelimit:<key>` (string with TTL: the tokens
 * left) and `<prefix>:ratelimit:<key>:refill` (string with TTL: the last refill, in ms), as Effect's Redis store
 * writes them; a session's key is its id. Both expire once the bucket would be full again.
 *
 * @since 0.2.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import * as RateLimit from "../server/RateLimit.js"
import { Reconciler } from "./internal/reconciler.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** `redis://host:port` (any URL node-redis accepts). */
  readonly url: string
  /** Key prefix (default `symple:v2`, the broker's): buckets are `<prefix>:ratelimit:<key>`. */
  readonly prefix?: string | undefined
  /**
   * How often the local buckets are reconciled with Redis (default 500 ms): the time within which nodes that take
   * from one key converge, and a session that moved finds its bucket. Each round costs one Redis call per key taken
   * since the last one.
   */
  readonly syncInterval?: Duration.Input | undefined
}

/**
 * The default `syncInterval`: with the default limit (100 frames per 10 s), a session that moved can spend at most
 * what it sends in half a second on a stale bucket, and an active session costs Redis two calls a second.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultSyncInterval: Duration.Duration = Duration.millis(500)

/**
 * The store, and what tests and metrics can read of it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Store extends RateLimit.Store {
  /** Local buckets held. */
  readonly size: () => number
  /** Tokens taken from `key` here and not yet reconciled with Redis. */
  readonly pending: (key: string) => number
  /** Whether the store holds a connection to Redis. */
  readonly connected: () => boolean
  /** One reconciliation round now (the layer's fiber runs one every `syncInterval`). */
  readonly reconcile: Effect.Effect<void>
}

/**
 * The names of the store's keys.
 *
 * @since 0.2.0
 * @category names
 */
export const names = (prefix = "symple:v2") => ({
  /** The prefix handed to Effect's Redis store. */
  prefix: `${prefix}:ratelimit:`,
  bucket: (key: string) => `${prefix}:ratelimit:${key}`,
  refill: (key: string) => `${prefix}:ratelimit:${key}:refill`
})

const notConnected = (method: string) =>
  Effect.fail(
    new RateLimiter.RateLimiterError({
      reason: new RateLimiter.RateLimitStoreError({ message: `${method}: not connected to Redis` })
    })
  )

/**
 * A store on the Redis at `url`, reconciled by a fiber of the current scope. Never fails: without Redis, it answers
 * from its local buckets and keeps trying to connect.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Store, never, Scope.Scope> =>
  Effect.gen(function*() {
    const interval = Duration.fromInputUnsafe(options.syncInterval ?? defaultSyncInterval)
    const reconciler = new Reconciler(Duration.max(Duration.seconds(1), Duration.times(interval, 4)))
    const prefix = names(options.prefix).prefix
    let client: NodeRedis.NodeRedis["Service"]["client"] | undefined
    let scope: Scope.Closeable | undefined

    const disconnect = Effect.suspend(() => {
      const open = scope
      reconciler.shared = undefined
      client = undefined
      scope = undefined
      return open === undefined ? Effect.void : Scope.close(open, Exit.void)
    })

    // A client of its own (node-redis, through Effect's `NodeRedis`): commands fail at once while Redis is away
    // rather than queue. Its reconnection attempts are not logged one by one (the reconciler says it once).
    const connect = Effect.gen(function*() {
      const opened = yield* Scope.make()
      const built = yield* Layer.buildWithScope(
        NodeRedis.layer({ url: options.url, disableOfflineQueue: true, socket: { connectTimeout: 5000 } }),
        opened
      ).pipe(
        Effect.flatMap((context) =>
          Effect.map(
            RateLimiter.makeStoreRedis({ prefix }).pipe(Effect.provideContext(context)),
            (store) => [Context.get(context, NodeRedis.NodeRedis).client, store] as const
          )
        ),
        Effect.provideService(References.MinimumLogLevel, "Error"),
        Effect.exit
      )
      if (Exit.isFailure(built)) {
        yield* Scope.close(opened, Exit.void)
        return yield* reconciler.away(built.cause)
      }
      ;[client, reconciler.shared] = built.value
      scope = opened
    })

    // A client that gave up reconnecting (node-redis stops on a socket timeout) is replaced.
    const tick = Effect.gen(function*() {
      if (client !== undefined && !client.isOpen) yield* disconnect
      if (client === undefined) yield* connect
      yield* reconciler.reconcile
    })

    yield* connect
    yield* Effect.addFinalizer(() => disconnect)
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(interval), tick)), { startImmediately: true })

    const local = reconciler.local
    return {
      takeUnsafe: local.takeUnsafe,
      forget: reconciler.forget,
      tokenBucket: (o) => reconciler.shared?.tokenBucket(o) ?? notConnected("tokenBucket"),
      fixedWindow: (o) => reconciler.shared?.fixedWindow(o) ?? notConnected("fixedWindow"),
      adaptiveConsume: (o) => reconciler.shared?.adaptiveConsume(o) ?? notConnected("adaptiveConsume"),
      adaptiveFeedback: (o) => reconciler.shared?.adaptiveFeedback(o) ?? notConnected("adaptiveFeedback"),
      size: () => local.buckets.size,
      pending: (key) => reconciler.pending(key),
      connected: () => reconciler.shared !== undefined && client?.isReady === true,
      reconcile: reconciler.reconcile
    } satisfies Store
  })

/**
 * The store as the server's `RateLimit.Store` (a reference, hence `Layer<never>`; a new store wherever it is
 * provided). The server reads the store when its `RateLimit` layer is built: provide this layer to it (as
 * `RedisBroker.layer` does).
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never> => Layer.fresh(Layer.effect(RateLimit.Store, make(options)))
