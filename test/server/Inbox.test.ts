import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Connection from "../../src/server/Connection.js"

describe("connection inbox", () => {
  it.effect("hands items over in order, at most max at a time", () =>
    Effect.gen(function*() {
      const inbox = Connection.makeInbox()
      for (const item of ["a", "b", "c", "d", "e"]) inbox.push(item)
      expect(yield* inbox.takeUpTo(2)).toEqual(["a", "b"])
      inbox.push("f")
      expect(yield* inbox.takeUpTo(10)).toEqual(["c", "d", "e", "f"])
      inbox.push(0)
      expect(yield* inbox.takeUpTo(10)).toEqual([0])
    }))

  it.live("a waiting taker is woken by the next push", () =>
    Effect.gen(function*() {
      const inbox = Connection.makeInbox()
      const taker = yield* Effect.fork(inbox.takeUpTo(10))
      yield* Effect.sleep(5)
      expect(taker.unsafePoll()).toBeNull()
      inbox.push("x")
      // Whatever arrived before the taker resumed comes with the wake-up.
      inbox.push("y")
      expect(yield* Fiber.join(taker)).toEqual(["x", "y"])
    }))

  it.live("an interrupted taker loses nothing: the item goes to the next one", () =>
    Effect.gen(function*() {
      const inbox = Connection.makeInbox()
      const first = yield* Effect.fork(inbox.takeUpTo(10))
      yield* Effect.sleep(5)
      yield* Fiber.interrupt(first)
      inbox.push("kept")
      expect(yield* inbox.takeUpTo(10)).toEqual(["kept"])
    }))
})
