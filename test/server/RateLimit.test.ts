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

  it.scoped("admit counts the frames that fit, batch or not", () =>
    Effect.gen(function*() {
      const admission = yield* RateLimit.make(5, 10)
      expect(yield* admission.admit(3)).toBe(3)
      expect(yield* admission.admit(4)).toBe(2)
      expect(yield* admission.admit(1)).toBe(0)
      yield* TestClock.adjust("2 seconds")
      expect(yield* admission.admit(1)).toBe(1)
    }))

  it.scoped("a limit of 0 admits everything", () =>
    Effect.gen(function*() {
      const admission = yield* RateLimit.make(0, 10)
      expect(yield* admission.admit(10_000)).toBe(10_000)
    }))
})
