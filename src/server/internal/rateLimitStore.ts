/**
 * The in-memory `RateLimiterStore` behind `RateLimit`: Effect's memory store (`effect/persistence/RateLimiter`
 * `layerStoreMemory`), same algorithms and same answers, plus what a server needs and that store lacks:
 *
 * - `forget(key)`: a key's state goes when its session ends. Effect's store never deletes a token bucket or a
 *   fixed-window counter, so one key per session grows without bound there.
 * - `takeUnsafe`: the token-bucket step answered synchronously, without a fiber, an options record per call or an
 *   error value for a refusal (admission happens in the socket listener, for every frame).
 *
 * The adaptive methods, which symple-ts does not use, are handed to an Effect memory store of this store's own,
 * built the first time one is called; `forget` does not reach that state.
 *
 * `makeLocal` is the same store on buckets of the caller's own kind, told of every admitted take: the local half of
 * a store that reconciles its buckets with a shared one (`symple-ts/redis`, `RedisRateLimit`).
 *
 * @since 0.1.0
 * @internal
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import type { MemoryStore, Take } from "../RateLimit.js"

/**
 * A token bucket: its count, and when it was last refilled (in the takes' clock).
 *
 * @since 0.2.0
 * @internal
 */
export interface Bucket {
  tokens: number
  lastRefill: number
}

interface Counter {
  count: number
  expiresAt: number
}

/**
 * The token-bucket step of Effect's memory store: refills by whole intervals (the interval restarts whenever the
 * bucket is full), then takes `tokens` if that leaves the count at 0 or more, or whatever `allowOverflow` says.
 * Returns the count after taking (negative when refused).
 *
 * @since 0.1.0
 * @internal
 */
export const step = (
  bucket: Bucket,
  tokens: number,
  limit: number,
  refillMillis: number,
  now: number,
  allowOverflow: boolean
): number => {
  const tokensToAdd = Math.floor((now - bucket.lastRefill) / refillMillis)
  if (tokensToAdd > 0) {
    bucket.tokens = Math.min(limit, bucket.tokens + tokensToAdd)
    bucket.lastRefill += tokensToAdd * refillMillis
  }
  if (bucket.tokens >= limit) bucket.lastRefill = now
  const next = bucket.tokens - tokens
  if (allowOverflow || next >= 0) bucket.tokens = next
  return next
}

/**
 * A memory store on buckets made by `newBucket`, and the map that holds them by key.
 *
 * @since 0.2.0
 * @internal
 */
export interface Local<B extends Bucket> extends MemoryStore {
  readonly buckets: Map<string, B>
}

const plainBucket = (tokens: number, now: number): Bucket => ({ tokens, lastRefill: now })

/**
 * A new, empty memory store.
 *
 * @since 0.1.0
 * @internal
 */
export const makeMemory = (): MemoryStore => makeLocal(plainBucket, undefined)

/**
 * A new, empty memory store whose buckets `newBucket` makes (full, refilled `now`), and which calls `taken` with
 * the bucket and the take after each take `takeUnsafe` admits.
 *
 * @since 0.2.0
 * @internal
 */
export const makeLocal = <B extends Bucket>(
  newBucket: (tokens: number, now: number) => B,
  taken: ((bucket: B, take: Take) => void) | undefined
): Local<B> => {
  const buckets = new Map<string, B>()
  const counters = new Map<string, Counter>()
  let adaptive: RateLimiter.RateLimiterStore["Service"] | undefined
  // Built by the first caller's fiber (no runtime of its own), then kept.
  const adaptiveStore = Effect.suspend(() =>
    adaptive !== undefined ? Effect.succeed(adaptive) : Effect.map(
      Effect.scoped(Layer.build(Layer.fresh(RateLimiter.layerStoreMemory))),
      (context) => adaptive ??= Context.get(context, RateLimiter.RateLimiterStore)
    )
  )

  const bucketOf = (key: string, limit: number, now: number): B => {
    let bucket = buckets.get(key)
    if (bucket === undefined) {
      bucket = newBucket(limit, now)
      buckets.set(key, bucket)
    }
    return bucket
  }

  return {
    buckets,
    // Without `taken`, the step alone: a plain memory store's frames pay for nothing else.
    takeUnsafe: taken === undefined
      ? (take, now) => step(bucketOf(take.key, take.limit, now), take.tokens, take.limit, take.refillMillis, now, false)
      : (take, now) => {
        const bucket = bucketOf(take.key, take.limit, now)
        const next = step(bucket, take.tokens, take.limit, take.refillMillis, now, false)
        if (next >= 0) taken(bucket, take)
        return next
      },
    tokenBucket: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          const bucket = bucketOf(options.key, options.limit, now)
          const refillMillis = Duration.toMillis(options.refillRate)
          const remaining = step(bucket, options.tokens, options.limit, refillMillis, now, options.allowOverflow)
          return [remaining, Math.max(0, now - bucket.lastRefill)] as const
        })
      ),
    fixedWindow: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const refillMillis = Duration.toMillis(options.refillRate)
          const now = clock.currentTimeMillisUnsafe()
          let counter = counters.get(options.key)
          if (counter === undefined || counter.expiresAt <= now) {
            counter = { count: 0, expiresAt: now }
            counters.set(options.key, counter)
          }
          if (options.limit && counter.count + options.tokens > options.limit) {
            return [counter.count + options.tokens, counter.expiresAt - now] as const
          }
          counter.count += options.tokens
          counter.expiresAt += refillMillis * options.tokens
          return [counter.count, counter.expiresAt - now] as const
        })
      ),
    adaptiveConsume: (options) => Effect.flatMap(adaptiveStore, (store) => store.adaptiveConsume(options)),
    adaptiveFeedback: (options) => Effect.flatMap(adaptiveStore, (store) => store.adaptiveFeedback(options)),
    forget: (key) =>
      Effect.sync(() => {
        buckets.delete(key)
        counters.delete(key)
      }),
    size: () => buckets.size + counters.size
  }
}
