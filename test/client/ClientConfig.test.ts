import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Result, Schedule } from "effect"
import * as ClientConfig from "../../src/client/ClientConfig.js"
import { ConnectionLost } from "../../src/client/ClientError.js"

const lost = new ConnectionLost({ reason: "Open", wasOnline: false })

/** The delays the schedule asks for, one per input, until the schedule is done (at most `inputs`). */
const delaysOf = (schedule: Schedule.Schedule<unknown, ConnectionLost>, inputs: number) =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(schedule)
    const delays: Array<number> = []
    for (let i = 0; i < inputs; i++) {
      // A schedule that is done fails the step with `Cause.Done`.
      const next = yield* Effect.result(step(0, lost))
      if (Result.isFailure(next)) break
      delays.push(Duration.toMillis(next.success[1]))
    }
    return delays
  })

describe("ClientConfig", () => {
  it("builds the URL like the reference clients", () => {
    expect(ClientConfig.url({})).toBe("ws://localhost:4500/")
    expect(ClientConfig.url({ host: "example.org", port: 443, secure: true })).toBe("wss://example.org:443/")
    expect(ClientConfig.url({ host: "::1", port: 1 })).toBe("ws://[::1]:1/")
    expect(ClientConfig.url({ url: "http://h:1/x" })).toBe("ws://h:1/x")
    expect(ClientConfig.url({ url: "https://h" })).toBe("wss://h")
    expect(ClientConfig.url({ url: "ws://h:2", host: "ignored" })).toBe("ws://h:2")
  })

  it("auth: no empty name or token, peerType from type, rooms only when there are some", () => {
    const config = ClientConfig.resolve({ user: "u", name: "", token: "t", type: "browser", rooms: ["a", "", "a"] })
    expect(config.rooms).toEqual(["a"])
    expect(ClientConfig.authFrame(config, config.rooms)).toEqual({
      type: "auth",
      user: "u",
      token: "t",
      data: { peerType: "browser" },
      rooms: ["a"]
    })
    expect(ClientConfig.authFrame(ClientConfig.resolve({ user: "u" }), [])).toEqual({ type: "auth", user: "u" })
  })

  it("auth offers a resume token when the client holds one, and never an empty one", () => {
    const config = ClientConfig.resolve({ user: "u", rooms: ["a"] })
    expect(ClientConfig.authFrame(config, config.rooms, "t1")).toEqual({
      type: "auth",
      user: "u",
      rooms: ["a"],
      resume: "t1"
    })
    expect(ClientConfig.authFrame(config, config.rooms, "")).not.toHaveProperty("resume")
    expect(ClientConfig.authFrame(config, config.rooms, undefined)).not.toHaveProperty("resume")
  })

  it.effect("the default schedule is exponential, jittered, capped and limited by reconnectAttempts", () =>
    Effect.gen(function*() {
      // 5 retries, then the schedule is done.
      const limited = yield* delaysOf(ClientConfig.reconnectSchedule(100, 1000, 5), 20)
      expect(limited.length).toBe(5)
      limited.forEach((delay, i) => {
        const nominal = Math.min(100 * 2 ** i, 1000)
        expect(delay).toBeGreaterThanOrEqual(nominal * 0.8 - 1)
        expect(delay).toBeLessThanOrEqual(nominal * 1.2 + 1)
      })
      const unlimited = yield* delaysOf(ClientConfig.reconnectSchedule(100, 1000, 0), 40)
      expect(unlimited.length).toBe(40)
      expect(Math.max(...unlimited)).toBeLessThanOrEqual(1200 + 1)
      expect(Math.max(...unlimited.slice(10))).toBeGreaterThanOrEqual(800 - 1)
      // The cap never goes below the first delay.
      const tiny = yield* delaysOf(ClientConfig.reconnectSchedule(500, 10, 0), 3)
      expect(tiny.every((d) => d >= 400 - 1 && d <= 600 + 1)).toBe(true)
    }))

  it("resolve applies the documented defaults", () => {
    const config = ClientConfig.resolve({ user: "u" })
    expect(config.url).toBe("ws://localhost:4500/")
    expect(config.reconnection).toBe(true)
    expect(config.answerUnhandledCommands).toBe(true)
    expect(Duration.toMillis(config.requestTimeout)).toBe(10_000)
    expect(Duration.toMillis(config.openTimeout)).toBe(10_000)
    expect(Duration.toMillis(config.rosterGracePeriod)).toBe(10_000)
    expect(config.maxFrameSize).toBe(1024 * 1024)
    expect(ClientConfig.resolve({ user: "u", maxFrameSize: -5.5, rosterGracePeriod: 0 })).toMatchObject({
      maxFrameSize: 0,
      rosterGracePeriod: Duration.zero
    })
  })
})
