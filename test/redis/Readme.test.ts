/**
 * The README's "Scaling out" example, run on a real Redis with two servers, and checked to be the README's text.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import { RedisBroker } from "../../src/redis/index.js"
import * as SympleServer from "../../src/server/index.js"
import { isMessage, isPresenceOf, peer } from "../server/support.js"
import { readme, snippet } from "../support/readmeSnippet.js"
import { startRedis } from "./redisServer.js"

const serverLive = (url: string) => {
  // --- README (scaling out) ---
  const ServerLive = SympleServer.layer({ port: 0, host: "127.0.0.1" }).pipe(
    Layer.provide(RedisBroker.layer({ url, ttl: "10 seconds" }))
  )
  // --- end ---
  return ServerLive
}

describe("README scaling out", () => {
  it("the example is the README's", () => {
    const source = Fs.readFileSync(new URL(import.meta.url), "utf8")
    const code = snippet(source, "scaling out")
      .replace("port: 0, host: \"127.0.0.1\"", "port: 4500")
      .replace("url, ttl", "url: \"redis://redis.internal:6379\", ttl")
    expect(readme()).toContain(code)
  })

  it.live("two servers built from the example act as one", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const build = Effect.map(Layer.build(serverLive(redis.url)), Context.get(SympleServer.SympleServer))
      const a = yield* build
      const b = yield* build
      expect(a.port).not.toBe(b.port)
      const alice = yield* peer(a, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(b, "bob", { rooms: ["lobby"] })
      yield* alice.next(isPresenceOf(bob, true))
      bob.send({ type: "message", to: alice.address, data: { text: "across" } })
      yield* alice.next(isMessage((f) => f.data?.text === "across"))
    }).pipe(Effect.scoped))
})
