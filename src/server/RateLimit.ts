/**
 * Per-session rate limiting on Effect's token bucket (`effect/persistence/RateLimiter`), used to drop rather than
 * wait, and answered synchronously where frames arrive.
 *
 * A session's bucket lives in a `Store` under the session's key: a `RateLimiterStore` (so Effect's `RateLimiter`
 * runs on it, see `layerRateLimiter`) that also answers a take synchronously (`takeUnsafe`) and forgets a key when
 * its session ends (`forget`). The default is a process-wide memory store; another one can be given to `make` or
 * provided as the `Store` reference.
 *
 * @since 0.1.0
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import type * as Peer from "../protocol/Peer.js"
import * as internal from "./internal/rateLimitStore.js"

/**
 * One token-bucket take, as `takeUnsafe` needs it (built once per session).
 *
 * @since 0.1.0
 * @category models
 */
export interface Take {
  readonly key: string
  readonly tokens: number
  /** The bucket's capacity; a new bucket starts full. */
  readonly limit: number
  /** The time one token takes to come back, in milliseconds (`window / limit`). */
  readonly refillMillis: number
}

type RateLimiterStore = RateLimiter.RateLimiterStore["Service"]

/**
 * Where the buckets live. Effect's `RateLimiterStore` contract, plus:
 *
 * - `takeUnsafe(take, now)`: the `tokenBucket` step with `allowOverflow: false`, answered at once. Returns the token
 *   count after taking; a negative count means refused, and a refusal takes nothing.
 * - `forget(key)`: drops what the store holds for `key`; the key's next take finds a full bucket.
 *
 * A store shared between processes (Effect's `layerStoreRedis`) cannot answer a take at once, so a cluster's store
 * keeps a local bucket per key, answers `takeUnsafe` from it, and reconciles it with the shared one in the
 * background (`RedisRateLimit` of `symple-ts/redis`, which `RedisBroker.layer` provides): limits then hold across
 * processes within one reconciliation interval.
 *
 * @since 0.1.0
 * @category models
 */
export interface Store extends RateLimiterStore {
  readonly takeUnsafe: (take: Take, now: number) => number
  readonly forget: (key: string) => Effect.Effect<void>
}

/**
 * A store in this process's memory, and how many keys it holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStore extends Store {
  readonly size: () => number
}

/**
 * A new, empty memory store. Same algorithms and answers as Effect's `RateLimiter.layerStoreMemory`, which never
 * deletes a key: this one forgets a key when asked, so that a session's bucket goes with the session.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeStoreMemory: () => MemoryStore = internal.makeMemory

/**
 * The process-wide memory store: the default of `make` and of the `Store` reference.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultStore: MemoryStore = makeStoreMemory()

/**
 * The store that sessions' buckets live in; `defaultStore` unless provided.
 *
 * @since 0.1.0
 * @category tags
 */
export const Store: Context.Reference<Store> = Context.Reference<Store>("symple/RateLimitStore", {
  defaultValue: () => defaultStore
})

/**
 * Provides a new memory store as the `Store` (a reference, hence `Layer<never>`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreMemory: Layer.Layer<never> = Layer.sync(Store, makeStoreMemory)

/**
 * Effect's `RateLimiterStore`, from the current `Store`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRateLimiterStore: Layer.Layer<RateLimiter.RateLimiterStore> = Layer.effect(
  RateLimiter.RateLimiterStore,
  Store
)

/**
 * Effect's `RateLimiter` on the current `Store`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRateLimiter: Layer.Layer<RateLimiter.RateLimiter> = RateLimiter.layer.pipe(
  Layer.provide(layerRateLimiterStore)
)

/**
 * Takes `tokens` (default 1) from `key`'s token bucket if they are available right now, and reports whether it
 * did: Effect's `consume` with `algorithm: "token-bucket"` and `onExceeded: "fail"`. Never waits and never takes a
 * partial amount. Fails only when the store does.
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryTake = (
  limiter: RateLimiter.RateLimiter,
  options: {
    readonly key: string
    readonly limit: number
    readonly window: Duration.Input
    readonly tokens?: number | undefined
  }
): Effect.Effect<boolean, RateLimiter.RateLimiterError> =>
  limiter.consume({ ...options, algorithm: "token-bucket", onExceeded: "fail" }).pipe(
    Effect.as(true),
    Effect.catchReason("RateLimiterError", "RateLimitExceeded", () => Effect.succeed(false))
  )

/**
 * Admits frames one at a time: `admit()` takes a token if there is one. Synchronous, so that frames can be
 * admitted where they arrive.
 *
 * @since 0.1.0
 * @category models
 */
export interface Admission {
  readonly admit: () => boolean
  /** Forgets the session's bucket (the end of the session); `admit` refuses from then on. */
  readonly release: Effect.Effect<void>
}

/**
 * Admits everything (a limit of 0).
 *
 * @since 0.1.0
 * @category constructors
 */
export const unlimited: Admission = { admit: () => true, release: Effect.void }

/**
 * Whether an admission admits everything (rate limiting disabled).
 *
 * @since 0.1.0
 * @category guards
 */
export const isUnlimited = (admission: Admission): boolean => admission === unlimited

let sessions = 0

/** What the admissions made by one `make` call share. */
interface Policy {
  readonly store: Store
  readonly clock: Clock.Clock | undefined
  readonly limit: number
  readonly seconds: number
  readonly refillMillis: number
}

let lastPolicy: Policy | undefined

/**
 * A session's admission: one small object per session (its methods, and what it shares with the other sessions, are
 * held once), which is also its `Take`. Its key is made by the first frame: a peer that never sends costs no more.
 */
class SessionAdmission implements Admission, Take {
  released = false
  #key: string | undefined
  constructor(readonly policy: Policy, key: string | undefined) {
    this.#key = key
  }
  get key(): string {
    return this.#key ??= `session:${++sessions}`
  }
  get tokens(): number {
    return 1
  }
  get limit(): number {
    return this.policy.limit
  }
  get refillMillis(): number {
    return this.policy.refillMillis
  }
  admit(): boolean {
    if (this.released) return false
    const clock = this.policy.clock
    return this.policy.store.takeUnsafe(this, clock === undefined ? Date.now() : clock.currentTimeMillisUnsafe()) >= 0
  }
  get release(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.released = true
      // A session that never sent has no bucket to forget.
      return this.#key === undefined ? Effect.void : this.policy.store.forget(this.#key)
    })
  }
}

/**
 * A session's token bucket holding `limit` tokens, refilled at `limit` per `seconds` (one token every
 * `seconds / limit`, at least 1 ms in all), starting full: what Effect's `RateLimiter.consume` does with
 * `algorithm: "token-bucket"`, `onExceeded: "fail"`, `window: seconds`, one token per frame. `limit <= 0` admits
 * everything.
 *
 * The bucket is made by the first frame, so a peer that never sends costs nothing but the admission itself, and
 * forgotten by `release`.
 *
 * Options: the `store` (default `defaultStore`), the `clock` that dates the takes (default `Date.now`), and the
 * `key` (default: a new key, unique in this process). Admissions on one store with one key share a bucket.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (limit: number, seconds: number, options?: {
  readonly store?: Store | undefined
  readonly clock?: Clock.Clock | undefined
  readonly key?: string | undefined
}): Admission => {
  if (limit <= 0) return unlimited
  const store = options?.store ?? defaultStore
  const clock = options?.clock
  // A server makes every session's admission with the same arguments: they share one policy.
  let policy = lastPolicy
  if (
    policy === undefined || policy.store !== store || policy.clock !== clock || policy.limit !== limit ||
    policy.seconds !== seconds
  ) {
    // As `RateLimiter.consume` derives the refill interval from its `window`.
    const window = Duration.max(Duration.seconds(seconds), Duration.millis(1))
    policy = lastPolicy = {
      store,
      clock,
      limit,
      seconds,
      refillMillis: Duration.toMillis(Duration.divideUnsafe(window, limit))
    }
  }
  return new SessionAdmission(policy, options?.key)
}

/**
 * The server's rate-limit policy: the admission each session's frames go through, made when the session goes
 * online and released when it ends. The default (`layer`) is a token bucket per session in the `Store`; provide
 * another to limit by user, by peer type, or not at all.
 *
 * @since 0.2.0
 * @category tags
 */
export class RateLimit extends Context.Service<RateLimit, {
  readonly admission: (session: { readonly id: string; readonly peer: Peer.Peer }) => Admission
}>()("symple/RateLimit") {}

/**
 * Every session gets a token bucket of `limit` frames refilled over `seconds` (see `make`), in the `Store` current
 * when the layer is built, keyed by the session's id (so that a session handed over to another node of a cluster
 * finds its bucket in a shared store); a limit of 0 admits everything.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: { readonly limit: number; readonly seconds: number }): Layer.Layer<RateLimit> =>
  Layer.effect(
    RateLimit,
    Effect.map(
      Store,
      (store) =>
        RateLimit.of({ admission: (session) => make(options.limit, options.seconds, { store, key: session.id }) })
    )
  )
