import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { isMessage, isPresenceOf, peer } from "../server/support.js"
import { startRedis } from "./redisServer.js"
import { converged, startNode } from "./support.js"

const text = (t: string) => (f: { readonly data?: { readonly [k: string]: unknown } }) => f.data?.text === t

describe("two nodes on one Redis", () => {
  it.live("peers on different nodes sharing a room: presence both ways, messages both ways", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const a = yield* startNode(redis.url)
      const b = yield* startNode(redis.url)
      const alice = yield* peer(a, "alice", { rooms: ["lobby"] })
      yield* converged([a, b], 1)
      const bob = yield* peer(b, "bob", { rooms: ["lobby"] })
      // Bob's snapshot lists alice (another node's peer); alice hears bob come online from her own node.
      yield* bob.next(isPresenceOf(alice, true))
      yield* alice.next(isPresenceOf(bob, true))
      alice.send({ type: "message", to: bob.address, data: { text: "hi bob" } })
      const got = yield* bob.next(isMessage(text("hi bob")))
      expect(got.from).toBe(alice.address)
      bob.send({ type: "message", to: "lobby", data: { text: "hi room" } })
      expect((yield* alice.next(isMessage(text("hi room")))).from).toBe(bob.address)
      bob.ws.close()
      yield* alice.next(isPresenceOf(bob, false))
      yield* converged([a, b], 1)
    }).pipe(Effect.scoped))

  it.live("a node that stops gracefully takes its sessions offline at once, long before its TTL", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const a = yield* startNode(redis.url, {}, 60_000)
      const alice = yield* peer(a, "alice", { rooms: ["lobby"] })
      const bobId = yield* Effect.scoped(Effect.gen(function*() {
        const b = yield* startNode(redis.url, {}, 60_000)
        const bob = yield* peer(b, "bob", { rooms: ["lobby"] })
        yield* alice.next(isPresenceOf(bob, true))
        return bob.id
      }))
      yield* alice.next(isPresenceOf({ id: bobId }, false))
      yield* converged([a], 1)
      expect((yield* a.brokerStatus).nodes).toBe(0)
    }).pipe(Effect.scoped))
})
