/**
 * Per-peer rate limiting on Effect's token-bucket `RateLimiter`, used to drop rather than wait.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as RateLimiter from "effect/RateLimiter"
import type * as Scope from "effect/Scope"

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

/**
 * Admits frames: `admit(n)` is how many of the next `n` frames fit in the bucket (all of them, or the count
 * before the first refused one).
 *
 * @since 0.1.0
 * @category models
 */
export interface Admission {
  readonly admit: (frames: number) => Effect.Effect<number>
}

const unlimited: Admission = { admit: (frames) => Effect.succeed(frames) }

/**
 * Whether an admission admits everything (rate limiting disabled).
 *
 * @since 0.1.0
 * @category guards
 */
export const isUnlimited = (admission: Admission): boolean => admission === unlimited

/**
 * A token bucket holding `limit` tokens, refilled at `limit` per `seconds`, starting full. `limit <= 0` admits
 * everything. The refill fiber lives in the current scope (one per connection).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (limit: number, seconds: number): Effect.Effect<Admission, never, Scope.Scope> =>
  limit <= 0 ? Effect.succeed(unlimited) : Effect.map(
    RateLimiter.make({ limit, interval: Duration.millis(Math.max(1, seconds * 1000)), algorithm: "token-bucket" }),
    (limiter): Admission => ({
      // A batch is paid for at once; only a refused batch is retried frame by frame to find where the bucket ran out.
      admit: (frames) =>
        Effect.flatMap(tryTake(limiter, frames), (all) => {
          if (all) return Effect.succeed(frames)
          if (frames === 1) return Effect.succeed(0)
          const loop = (admitted: number): Effect.Effect<number> =>
            admitted === frames ? Effect.succeed(admitted) : Effect.flatMap(
              tryTake(limiter, 1),
              (ok) => ok ? loop(admitted + 1) : Effect.succeed(admitted)
            )
          return loop(0)
        })
    })
  )
