import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { isMessage, isPresenceOf, peer, settle, startServer } from "./support.js"

describe("two servers in one process", () => {
  it.live("bursts on both at once: each peer gets exactly its own server's frames, in order", () =>
    Effect.gen(function*() {
      // A bucket that never runs dry: the burst is larger than the default limit.
      const a = yield* startServer({ rateLimit: 10_000 })
      const b = yield* startServer({ rateLimit: 10_000 })
      // The same user names and room on both: nothing but the server tells them apart.
      const [senderA, readerA, otherA] = [
        yield* peer(a, "alice", { rooms: ["r"] }),
        yield* peer(a, "bob", { rooms: ["r"] }),
        yield* peer(a, "carol", { rooms: ["r"] })
      ]
      const [senderB, readerB] = [yield* peer(b, "alice", { rooms: ["r"] }), yield* peer(b, "bob", { rooms: ["r"] })]
      yield* settle(senderA, readerA, otherA, senderB, readerB)
      const n = 300
      // Interleaved, in one synchronous loop: both servers get bursts (several frames per read) at the same time,
      // so each coalesces writes to its sockets while the other does.
      for (let i = 0; i < n; i++) {
        senderA.send({ type: "message", to: ["r"], data: { server: "a", i } })
        senderB.send({ type: "message", to: ["r"], data: { server: "b", i } })
      }
      for (const [reader, server] of [[readerA, "a"], [otherA, "a"], [readerB, "b"]] as const) {
        yield* reader.next(isMessage((f) => f.data?.i === n - 1), 10_000)
        // Anything extra (a frame of the other server's, a duplicate) would have arrived by now.
        yield* Effect.sleep(100)
        const got = reader.all.filter(isMessage()).map((f) => f.data)
        expect(got).toEqual(Array.from({ length: n }, (_, i) => ({ server, i })))
      }
      expect(senderA.all.filter(isMessage())).toEqual([])
      expect(senderB.all.filter(isMessage())).toEqual([])
      expect(yield* a.peerCount).toBe(3)
      expect(yield* b.peerCount).toBe(2)
      expect((yield* a.stats).received).toBe(n)
      expect((yield* b.stats).received).toBe(n)
    }).pipe(Effect.scoped))

  it.live("stopping one server leaves the other working", () =>
    Effect.gen(function*() {
      const scopeA = yield* Scope.make()
      const a = yield* startServer().pipe(Scope.provide(scopeA))
      const b = yield* startServer()
      const onA = yield* peer(a, "alice", { rooms: ["r"] })
      const senderB = yield* peer(b, "alice", { rooms: ["r"] })
      const readerB = yield* peer(b, "bob", { rooms: ["r"] })
      yield* senderB.next(isPresenceOf(readerB, true))
      // Traffic on the second server while the first stops.
      for (let i = 0; i < 50; i++) senderB.send({ type: "message", to: ["r"], data: { i } })
      yield* Scope.close(scopeA, Exit.void)
      expect(yield* onA.closed).toEqual({ code: 1001, reason: "Server shutting down" })
      for (let i = 50; i < 100; i++) senderB.send({ type: "message", to: ["r"], data: { i } })
      yield* readerB.next(isMessage((f) => f.data?.i === 99))
      expect(readerB.all.filter(isMessage()).map((f) => f.data?.i)).toEqual(Array.from({ length: 100 }, (_, i) => i))
      // A newcomer on the server still running is announced and reachable.
      const carol = yield* peer(b, "carol", { rooms: ["r"] })
      yield* readerB.next(isPresenceOf(carol, true))
      readerB.send({ type: "message", to: carol.address, data: { hello: "carol" } })
      expect((yield* carol.next(isMessage())).data).toEqual({ hello: "carol" })
      expect(yield* b.peerCount).toBe(3)
      expect(yield* a.peerCount).toBe(0)
    }).pipe(Effect.scoped))
})
