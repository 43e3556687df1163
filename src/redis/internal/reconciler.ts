/**
 * Owns the buckets of a cluster's rate-limit store (`RedisRateLimit`): a local token bucket per key, which answers
 * every take at once, and the tokens taken from it since it was last reconciled with the shared bucket in Redis.
 *
 * A round (`reconcile`) sends each key taken since the last round to the shared store as one `tokenBucket` take of
 * what it owes, with `allowOverflow: true` (the frames were admitted already: the shared bucket must count them
 * even when that leaves it below zero), and sets the local bucket to what the shared one has left, less what was
 * taken locally while the answer travelled. Nodes that take from one key thus converge on one bucket, and a
 * session that moved to another node finds there, within one round, what it had left.
 *
 * What a key owes is what it took since the last round, but never more than its local bucket lacks right now: a
 * take that the bucket has refilled since is not owed (so a round that failed while Redis was away costs at most
 * one bucket when it comes back, and a full bucket that refilled between two rounds is not charged twice). A take
 * whose round failed, or got no answer in time, is owed again at the next round (an answer that was only late
 * may then count it twice, within the same bound).
 *
 * Per frame, only the local step runs, and the first take of a key in a round adds its bucket to the round's list:
 * no allocation beyond the memory store's own.
 *
 * @since 0.2.0
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import { type Bucket, type Local, makeLocal, step } from "../../server/internal/rateLimitStore.js"
import type * as RateLimit from "../../server/RateLimit.js"

type Shared = RateLimiter.RateLimiterStore["Service"]

/**
 * A local bucket, with the tokens taken from it since its last round.
 *
 * @since 0.2.0
 * @internal
 */
export class Reconciled implements Bucket {
  /** Tokens taken since the last round (the bucket is in the round's list while this is above 0). */
  pending = 0
  /** The take that made `pending` leave 0: its key, limit and refill interval are the bucket's. */
  take: RateLimit.Take | undefined = undefined
  constructor(public tokens: number, public lastRefill: number) {}
}

/** Keys sent together in a round, before the event loop gets a turn (see `reconcile`). */
const sliceSize = 16

/** How a round went, for the logs: one warning when reconciling starts to fail, one line when it works again. */
type Health = "ok" | "failing"

/**
 * The local buckets, the keys to reconcile, and Effect's Redis store while one is connected.
 *
 * @since 0.2.0
 * @internal
 */
export class Reconciler {
  readonly local: Local<Reconciled>
  /** Buckets with tokens pending, each once. */
  dirty: Array<Reconciled> = []
  /** Effect's Redis `RateLimiterStore`, while connected. */
  shared: Shared | undefined = undefined
  #health: Health = "ok"

  constructor(readonly timeout: Duration.Duration) {
    this.local = makeLocal(
      (tokens, now) => new Reconciled(tokens, now),
      (bucket, take) => this.#add(bucket, take, take.tokens)
    )
  }

  /** Adds `tokens` to what `bucket` owes, listing it for the next round if it owed nothing yet. */
  #add(bucket: Reconciled, take: RateLimit.Take, tokens: number): void {
    if (bucket.pending === 0) {
      bucket.take = take
      this.dirty.push(bucket)
    }
    bucket.pending += tokens
  }

  /** Owes `tokens` more for `bucket` (a failed send), if the bucket is still the key's. */
  #owe(bucket: Reconciled, take: RateLimit.Take, tokens: number): void {
    if (tokens > 0 && this.local.buckets.get(take.key) === bucket) this.#add(bucket, take, tokens)
  }

  /**
   * Sends what `bucket` owes to the shared store and sets the bucket to its answer; `retry`: a failure owes it
   * again. Fails with the store's failure (or a timeout) after the bookkeeping.
   */
  #send(shared: Shared, bucket: Reconciled, retry: boolean): Effect.Effect<void, unknown> {
    return Effect.clockWith((clock) => {
      const take = bucket.take
      const pending = bucket.pending
      bucket.pending = 0
      if (take === undefined || pending === 0) return Effect.void
      const now = clock.currentTimeMillisUnsafe()
      // Refilled to now: what the bucket got back since the takes is not owed.
      step(bucket, 0, take.limit, take.refillMillis, now, true)
      const owed = Math.min(pending, Math.max(0, take.limit - bucket.tokens))
      return shared.tokenBucket({
        key: take.key,
        tokens: owed,
        limit: take.limit,
        refillRate: Duration.millis(take.refillMillis),
        allowOverflow: true
      }).pipe(
        Effect.timeout(this.timeout),
        Effect.tap(([remaining, elapsed]) =>
          Effect.sync(() => {
            // The shared bucket, as of `now`, less what was taken here since.
            bucket.tokens = remaining - bucket.pending
            bucket.lastRefill = now - elapsed
          })
        ),
        Effect.onExit((exit) =>
          exit._tag === "Success" || !retry ? Effect.void : Effect.sync(() => this.#owe(bucket, take, owed))
        ),
        Effect.asVoid
      )
    })
  }

  /**
   * One round: every key taken since the last one, sent to the shared store. Without a shared store, what is owed
   * waits for the next round.
   */
  readonly reconcile: Effect.Effect<void> = Effect.suspend(() => {
    const shared = this.shared
    if (shared === undefined || this.dirty.length === 0) return Effect.void
    const batch = this.dirty
    this.dirty = []
    let failed = 0
    let cause: unknown = undefined
    const send = (bucket: Reconciled) =>
      Effect.catchCause(this.#send(shared, bucket, true), (failure) =>
        Effect.sync(() => {
          failed++
          cause ??= failure
        }))
    // A slice at a time, with a turn of the event loop after each: a round runs on the loop that handles frames, and
    // all of it at once (hundreds of sends, then their answers) held frames back for milliseconds, in RTT p99.
    const slices: Array<Array<Reconciled>> = []
    for (let at = 0; at < batch.length; at += sliceSize) slices.push(batch.slice(at, at + sliceSize))
    return Effect.forEach(
      slices,
      (slice, i) =>
        Effect.forEach(slice, send, { concurrency: sliceSize, discard: true }).pipe(
          Effect.andThen(i + 1 < slices.length ? Effect.sleep(0) : Effect.void)
        ),
      { discard: true }
    ).pipe(Effect.andThen(Effect.suspend(() => this.#report(failed, batch.length, cause))))
  })

  #report(failed: number, sent: number, cause: unknown): Effect.Effect<void> {
    if (failed === 0) {
      if (this.#health === "ok") return Effect.void
      this.#health = "ok"
      return Effect.logInfo("RedisRateLimit: rate-limit buckets reconciled with Redis again")
    }
    const message = `RedisRateLimit: ${failed} of ${sent} rate-limit buckets not reconciled with Redis ` +
      "(takes stay local; retried next round)"
    if (this.#health === "failing") return Effect.logDebug(message, cause)
    this.#health = "failing"
    return Effect.logWarning(message, cause)
  }

  /** Redis is away (no shared store to send to): said once, as a failing round would say it. */
  away(cause: unknown): Effect.Effect<void> {
    if (this.#health === "failing") return Effect.logDebug("RedisRateLimit: Redis unreachable", cause)
    this.#health = "failing"
    return Effect.logWarning("RedisRateLimit: Redis unreachable (takes stay local; retried next round)", cause)
  }

  /**
   * Sends what `key` owes, then drops its local bucket: what this node took is in Redis before the key is taken
   * elsewhere (a session handed over to another node). A failure is logged and what was owed is dropped with the
   * bucket.
   */
  readonly forget = (key: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      const bucket = this.local.buckets.get(key)
      if (bucket === undefined) return Effect.void
      const shared = this.shared
      const send = shared === undefined || bucket.pending === 0
        ? Effect.sync(() => void (bucket.pending = 0))
        : Effect.catchCause(
          this.#send(shared, bucket, false),
          (cause) =>
            Effect.logDebug(`RedisRateLimit: the bucket of ${key} not sent to Redis before forgetting it`, cause)
        )
      return Effect.ensuring(
        send,
        Effect.sync(() => {
          if (this.local.buckets.get(key) === bucket) this.local.buckets.delete(key)
        })
      )
    })

  /** The tokens `key` owes the shared store (0 for a key without a bucket). */
  pending(key: string): number {
    return this.local.buckets.get(key)?.pending ?? 0
  }
}
