/**
 * Per-peer rate limiting on Effect's token-bucket `RateLimiter`, used to drop rather than wait.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as RateLimiter from "effect/RateLimiter"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"

/**
 * Takes `cost` tokens if they are available right now, and reports whether it did. Never waits and never takes a
 * partial amount: a refused attempt leaves the bucket as it was.
 *
 * `RateLimiter` only knows how to wait; racing it against a zero timeout lets an immediately available permit win
 * and abandons the wait otherwise (a test pins this behaviour).
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryTake = (limiter: RateLimiter.RateLimiter, cost = 1): Effect.Effect<boolean> =>
  limiter(Effect.void).pipe(RateLimiter.withCost(cost), Effect.timeoutOption(Duration.zero), Effect.map(Option.isSome))

const takers = new WeakMap<RateLimiter.RateLimiter, Effect.Effect<void>>()
const takeOne = (limiter: RateLimiter.RateLimiter): Effect.Effect<void> => {
  let take = takers.get(limiter)
  if (take === undefined) {
    take = limiter(Effect.void)
    takers.set(limiter, take)
  }
  return take
}

/**
 * `tryTake` for synchronous callers (a socket listener), about twenty times cheaper than the Effect version
 * (no racing fibers, no timer). An available permit is taken synchronously by the limiter, so the run completes
 * at once; otherwise the run is left waiting for a permit and is interrupted here before any refill can reach it
 * (a test pins this behaviour).
 *
 * @since 0.1.0
 * @category combinators
 */
export const unsafeTryTake = (limiter: RateLimiter.RateLimiter, cost = 1): boolean => {
  const exit = Effect.runSyncExit(cost === 1 ? takeOne(limiter) : limiter(Effect.void).pipe(RateLimiter.withCost(cost)))
  if (exit._tag === "Success") return true
  const defect = Cause.dieOption(exit.cause)
  if (Option.isSome(defect) && Runtime.isAsyncFiberException(defect.value)) {
    defect.value.fiber.unsafeInterruptAsFork(FiberId.none)
  }
  return false
}

/**
 * Admits frames one at a time: `admit()` takes a token if there is one. Synchronous, so that frames can be
 * admitted where they arrive.
 *
 * @since 0.1.0
 * @category models
 */
export interface Admission {
  readonly admit: () => boolean
  /** Stops the bucket's refill (the end of the connection). */
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

/**
 * A token bucket holding `limit` tokens, refilled at `limit` per `seconds`, starting full. `limit <= 0` admits
 * everything. The limiter (in a scope of its own, closed by `release`) is created on the first frame, so a peer
 * that never sends costs nothing, and a connection needs no scope of its own.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (limit: number, seconds: number): Admission => {
  if (limit <= 0) return unlimited
  let limiter: RateLimiter.RateLimiter | undefined
  let scope: Scope.CloseableScope | undefined
  let released = false
  const get = () => {
    if (limiter === undefined) {
      const own = scope = Effect.runSync(Scope.make())
      limiter = Effect.runSync(
        Scope.extend(
          RateLimiter.make({ limit, interval: Duration.millis(Math.max(1, seconds * 1000)), algorithm: "token-bucket" }),
          own
        )
      )
    }
    return limiter
  }
  return {
    admit: () => !released && unsafeTryTake(get()),
    release: Effect.suspend(() => {
      released = true
      return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
    })
  }
}
