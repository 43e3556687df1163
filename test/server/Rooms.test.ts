import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { expectEffect, isMessage, isPresenceOf, peer, startServer } from "./support.js"

/** Rate limited peers go through the connection fiber; unlimited ones are routed in the socket listener. */
const modes = [{ label: "rate limited", rateLimit: 100 }, { label: "no rate limit", rateLimit: 0 }]

describe.each(modes)("rooms ($label)", (mode) => {
  it.live("join / leave acknowledgements; empty or missing room is ignored", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice")
      alice.send({ type: "join", room: "x" })
      expect(yield* alice.next()).toEqual({ type: "join:ok", room: "x" })
      expect(yield* server.rooms).toContain("x")
      alice.send({ type: "leave", room: "x" })
      expect(yield* alice.next()).toEqual({ type: "leave:ok", room: "x" })
      alice.send({ type: "leave", room: "never" })
      expect(yield* alice.next()).toEqual({ type: "leave:ok", room: "never" })
      alice.send({ type: "join", room: "" })
      alice.send({ type: "join" })
      alice.send({ type: "leave" })
      yield* alice.none()
      // Rooms exist while they have members.
      expect(yield* server.rooms).not.toContain("x")
    }).pipe(Effect.scoped))

  it.live("non-string room: 400, connection kept", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice")
      alice.send({ type: "join", room: 42 })
      const error = yield* alice.next()
      expect(error).toMatchObject({ type: "error", status: 400 })
      expect(typeof error.message).toBe("string")
      alice.send({ type: "join", room: "ok" })
      expect(yield* alice.next()).toEqual({ type: "join:ok", room: "ok" })
    }).pipe(Effect.scoped))

  it.live("dynamicRooms false: join and leave are refused with 400; auth rooms still apply", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ ...mode, dynamicRooms: false })
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      expect(alice.welcome.rooms).toEqual(["alice", "lobby"])
      alice.send({ type: "join", room: "x" })
      expect(yield* alice.next()).toEqual({ type: "error", status: 400, message: "Dynamic rooms disabled" })
      alice.send({ type: "leave", room: "lobby" })
      expect(yield* alice.next()).toEqual({ type: "error", status: 400, message: "Dynamic rooms disabled" })
      expect((yield* server.peersInRoom("lobby")).map((p) => p.id)).toEqual([alice.id])
    }).pipe(Effect.scoped))

  it.live("after leaving the personal room, to:user no longer reaches that session", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      alice.send({ type: "leave", room: "alice" })
      expect(yield* alice.next((f) => f.type === "leave:ok")).toEqual({ type: "leave:ok", room: "alice" })
      bob.send({ type: "message", to: "alice", data: {} })
      yield* alice.none(isMessage())
      bob.send({ type: "message", to: alice.address, data: {} })
      yield* alice.next(isMessage())
    }).pipe(Effect.scoped))

  it.live("close frame: the server closes the socket, others get the offline presence", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      bob.send({ type: "close" })
      yield* bob.closed
      expect(bob.pending.filter((f) => f.type !== "presence")).toEqual([])
      yield* alice.next(isPresenceOf(bob, false))
      yield* expectEffect(server.peerCount, (n) => n === 1)
    }).pipe(Effect.scoped))
})
