import { describe, expect, it } from "@effect/vitest"
import { Effect, RateLimiter, TestClock } from "effect"
import * as RateLimit from "../../src/server/RateLimit.js"

describe("RateLimit", () => {
  it.scoped("tryTake takes an available permit at once and refuses without waiting otherwise", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ limit: 3, interval: "3 seconds" })
      const results = yield* Effect.forEach(Array.from({ length: 5 }), () => RateLimit.tryTake(limiter))
      expect(results).toEqual([true, true, true, false, false])
      yield* TestClock.adjust("1 second")
      expect(yield* RateLimit.tryTake(limiter)).toBe(true)
      expect(yield* RateLimit.tryTake(limiter)).toBe(false)
    }))

  it.scoped("a refused batch takes nothing", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ limit: 3, interval: "3 seconds" })
      expect(yield* RateLimit.tryTake(limiter, 4)).toBe(false)
      expect(yield* RateLimit.tryTake(limiter, 3)).toBe(true)
      expect(yield* RateLimit.tryTake(limiter, 1)).toBe(false)
    }))

  it.scoped("unsafeTryTake: synchronous, never waits, and an abandoned attempt does not steal a refill", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ limit: 3, interval: "3 seconds" })
      const results = Array.from({ length: 5 }, () => RateLimit.unsafeTryTake(limiter))
      expect(results).toEqual([true, true, true, false, false])
      expect(RateLimit.unsafeTryTake(limiter, 2)).toBe(false)
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      expect(RateLimit.unsafeTryTake(limiter)).toBe(true)
      expect(RateLimit.unsafeTryTake(limiter)).toBe(false)
      yield* TestClock.adjust("2 seconds")
      expect(RateLimit.unsafeTryTake(limiter, 2)).toBe(true)
    }))

  it.live("admit takes the bucket's tokens one by one, the bucket refills; none once released", () =>
    Effect.gen(function*() {
      const admission = RateLimit.make(5, 0.5)
      expect(Array.from({ length: 7 }, () => admission.admit())).toEqual([true, true, true, true, true, false, false])
      yield* Effect.sleep(150)
      expect(admission.admit()).toBe(true)
      expect(RateLimit.isUnlimited(admission)).toBe(false)
      yield* admission.release
      expect(admission.admit()).toBe(false)
    }))

  it.effect("a limit of 0 admits everything", () =>
    Effect.gen(function*() {
      const admission = RateLimit.make(0, 10)
      expect(Array.from({ length: 10_000 }, () => admission.admit()).every((admitted) => admitted)).toBe(true)
      expect(RateLimit.isUnlimited(admission)).toBe(true)
    }))
})
