import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Exit, Layer } from "effect"
import { RateLimiter } from "effect/persistence"
import { TestClock } from "effect/testing"
import * as RateLimit from "../../src/server/RateLimit.js"

const admits = (admission: RateLimit.Admission, n: number): Array<boolean> =>
  Array.from({ length: n }, () => admission.admit())

/** A limiter on a store of its own. */
const ownLimiter = (store: Layer.Layer<never>) => RateLimit.layerRateLimiter.pipe(Layer.provide(store), Layer.fresh)

/** Effect's own limiter on Effect's memory store: the reference the admissions must agree with. */
const effectLimiter = RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory), Layer.fresh)

/** What a `consume` answered, in milliseconds. */
const answer = (exit: Exit.Exit<RateLimiter.ConsumeResult, RateLimiter.RateLimiterError>) =>
  Exit.isSuccess(exit)
    ? {
      remaining: exit.value.remaining,
      delay: Duration.toMillis(exit.value.delay),
      resetAfter: Duration.toMillis(exit.value.resetAfter)
    }
    : exit.cause.reasons.map((reason) =>
      reason._tag === "Fail" && reason.error.reason._tag === "RateLimitExceeded"
        ? { refused: Duration.toMillis(reason.error.reason.retryAfter) }
        : reason
    )

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
const random = (seed: number) => () => {
  seed = (seed + 0x6D2B79F5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("RateLimit", () => {
  it.effect("admit takes the bucket's tokens one by one; one token comes back every seconds / limit, up to limit", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const admission = RateLimit.make(3, 3, { store: RateLimit.makeStoreMemory(), clock })
      expect(admits(admission, 5)).toEqual([true, true, true, false, false])
      yield* TestClock.adjust("999 millis")
      expect(admission.admit()).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(admits(admission, 2)).toEqual([true, false])
      yield* TestClock.adjust("2 seconds")
      expect(admits(admission, 3)).toEqual([true, true, false])
      yield* TestClock.adjust("1 hour")
      expect(admits(admission, 4)).toEqual([true, true, true, false])
    }))

  it.effect("a refused admit takes nothing and does not put the next token back", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const admission = RateLimit.make(2, 1, { store: RateLimit.makeStoreMemory(), clock })
      expect(admits(admission, 2)).toEqual([true, true])
      for (let ms = 0; ms < 490; ms += 10) {
        expect(admits(admission, 3)).toEqual([false, false, false])
        yield* TestClock.adjust("10 millis")
      }
      yield* TestClock.adjust("9 millis")
      expect(admits(admission, 2)).toEqual([false, false])
      yield* TestClock.adjust("1 millis")
      expect(admits(admission, 2)).toEqual([true, false])
    }))

  it.live("admit on the real clock: the bucket empties and refills; none once released", () =>
    Effect.gen(function*() {
      // One token every 500 ms: the first seven answers come long before the next token.
      const admission = RateLimit.make(5, 2.5)
      expect(admits(admission, 7)).toEqual([true, true, true, true, true, false, false])
      yield* Effect.sleep(600)
      expect(admission.admit()).toBe(true)
      expect(RateLimit.isUnlimited(admission)).toBe(false)
      yield* admission.release
      expect(admission.admit()).toBe(false)
    }))

  it.effect("a bucket is made by the first frame and forgotten by release; an admit after release makes none", () =>
    Effect.gen(function*() {
      const store = RateLimit.makeStoreMemory()
      const admission = RateLimit.make(3, 10, { store })
      expect(store.size()).toBe(0)
      expect(admission.admit()).toBe(true)
      expect(store.size()).toBe(1)
      yield* admission.release
      expect(store.size()).toBe(0)
      expect(admits(admission, 2)).toEqual([false, false])
      expect(store.size()).toBe(0)
      yield* admission.release
      expect(store.size()).toBe(0)
    }))

  it.effect("sessions have buckets of their own; admissions given one key share one", () =>
    Effect.gen(function*() {
      const store = RateLimit.makeStoreMemory()
      const alice = RateLimit.make(2, 10, { store })
      const bob = RateLimit.make(2, 10, { store })
      expect(admits(alice, 3)).toEqual([true, true, false])
      expect(admits(bob, 3)).toEqual([true, true, false])
      yield* alice.release
      expect(store.size()).toBe(1)
      const first = RateLimit.make(3, 10, { store, key: "shared" })
      const second = RateLimit.make(3, 10, { store, key: "shared" })
      expect([first.admit(), second.admit(), first.admit(), second.admit()]).toEqual([true, true, true, false])
    }))

  it.effect("without options: the default store, which is the Store reference's default", () =>
    Effect.gen(function*() {
      expect(yield* RateLimit.Store).toBe(RateLimit.defaultStore)
      const before = RateLimit.defaultStore.size()
      const admission = RateLimit.make(2, 10)
      expect(admits(admission, 3)).toEqual([true, true, false])
      expect(RateLimit.defaultStore.size()).toBe(before + 1)
      yield* admission.release
      expect(RateLimit.defaultStore.size()).toBe(before)
    }))

  it.effect("a limit of 0 admits everything", () =>
    Effect.gen(function*() {
      const admission = RateLimit.make(0, 10)
      expect(Array.from({ length: 10_000 }, () => admission.admit()).every((admitted) => admitted)).toBe(true)
      expect(RateLimit.isUnlimited(admission)).toBe(true)
      yield* admission.release
      expect(admission.admit()).toBe(true)
    }))

  it.effect("tryTake takes available tokens at once and refuses without waiting; a refused batch takes nothing", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.RateLimiter
      const take = (tokens?: number) => RateLimit.tryTake(limiter, { key: "k", limit: 3, window: "3 seconds", tokens })
      expect(yield* Effect.all([take(), take(), take(), take(), take()])).toEqual([true, true, true, false, false])
      yield* TestClock.adjust("1 second")
      expect(yield* Effect.all([take(), take()])).toEqual([true, false])
      yield* TestClock.adjust("1 hour")
      expect(yield* take(4)).toBe(false)
      expect(yield* take(2)).toBe(true)
      expect(yield* take(2)).toBe(false)
      expect(yield* take(1)).toBe(true)
      expect(yield* take(1)).toBe(false)
    }).pipe(Effect.provide(ownLimiter(RateLimit.layerStoreMemory))))

  // Same schedule of frames, same clock: admit says what Effect's RateLimiter says on Effect's memory store, and
  // Effect's RateLimiter says the same on our store (remaining tokens, delays, refusals), for any number of tokens.
  const configs = [[1, 1], [3, 3], [5, 0.5], [2, 0.1], [3, 1], [100, 10], [7, 0.0001], [10, 0.001], [6, 7]] as const
  for (const [limit, seconds] of configs) {
    it.effect(`answers as Effect's RateLimiter.consume on Effect's memory store (${limit} per ${seconds} s)`, () =>
      Effect.gen(function*() {
        const reference = Context.get(yield* Layer.build(effectLimiter), RateLimiter.RateLimiter)
        const store = RateLimit.makeStoreMemory()
        const ours = Context.get(
          yield* Layer.build(ownLimiter(Layer.succeed(RateLimit.Store, store))),
          RateLimiter.RateLimiter
        )
        const admission = RateLimit.make(limit, seconds, { store, clock: yield* Clock.Clock })
        const window = Duration.seconds(seconds)
        const options = { limit, window, algorithm: "token-bucket", onExceeded: "fail" } as const
        const refillMillis = Math.max(1, seconds * 1000) / limit
        const next = random(limit * 1000 + seconds)
        const decisions = { admitted: 0, refused: 0 }
        for (let step = 0; step < 1500; step++) {
          const roll = next()
          const advance = roll < 0.4
            ? 0
            : roll < 0.95
            ? next() * 2.5 * refillMillis
            : next() * 12 * limit * refillMillis
          if (advance > 0) yield* TestClock.adjust(Duration.millis(advance))
          // Now and then a burst that empties the bucket, whatever its size.
          const frames = next() < 0.05 ? limit + 2 : 1
          for (let frame = 0; frame < frames; frame++) {
            const admitted = admission.admit()
            const expected = yield* Effect.exit(reference.consume({ ...options, key: "admission" }))
            expect(admitted, `step ${step}`).toBe(Exit.isSuccess(expected))
            decisions[admitted ? "admitted" : "refused"]++
          }
          const tokens = 1 + Math.floor(next() * (limit + 1))
          const theirs = yield* Effect.exit(reference.consume({ ...options, key: "batch", tokens }))
          expect(answer(yield* Effect.exit(ours.consume({ ...options, key: "batch", tokens }))), `step ${step}`)
            .toEqual(answer(theirs))
        }
        // The schedule exercised both answers.
        expect(decisions.admitted).toBeGreaterThan(100)
        expect(decisions.refused).toBeGreaterThan(100)
      }))
  }

  it.effect("forget drops fixed-window counters too; the adaptive methods are those of Effect's memory store", () =>
    Effect.gen(function*() {
      const store = RateLimit.makeStoreMemory()
      const limiter = Context.get(
        yield* Layer.build(ownLimiter(Layer.succeed(RateLimit.Store, store))),
        RateLimiter.RateLimiter
      )
      const consume = limiter.consume({ key: "w", limit: 2, window: "10 seconds", algorithm: "fixed-window" })
      expect(Exit.isSuccess(yield* Effect.exit(consume))).toBe(true)
      expect(Exit.isSuccess(yield* Effect.exit(consume))).toBe(true)
      expect(Exit.isSuccess(yield* Effect.exit(consume))).toBe(false)
      expect(store.size()).toBe(1)
      yield* store.forget("w")
      expect(store.size()).toBe(0)
      expect(Exit.isSuccess(yield* Effect.exit(consume))).toBe(true)

      const adaptive = { key: "a", tokens: 1, fallbackLimit: 10, fallbackWindow: Duration.seconds(1) }
      expect((yield* store.adaptiveConsume(adaptive)).phase).toBe("inactive")
      yield* store.adaptiveFeedback({ key: "a", epoch: 0, tokens: 1, status: 429, retryAfter: Duration.seconds(5) })
      const cooling = yield* store.adaptiveConsume(adaptive)
      expect(cooling.phase).toBe("cooldown")
      expect(Duration.toMillis(cooling.delay)).toBe(5000)
    }))
})
