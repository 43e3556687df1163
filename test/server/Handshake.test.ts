import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect, isPresenceOf, peer, startServer } from "./support.js"

describe("handshake", () => {
  it.live("1. anonymous auth gets a welcome without token", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* connect(server.url)
      client.send({ type: "auth", user: "alice", name: "Alice", token: "" })
      const welcome = yield* client.next()
      expect(welcome).toMatchObject({ type: "welcome", protocol: "symple/4", status: 200 })
      expect(welcome.peer).toMatchObject({ user: "alice", name: "Alice", online: true, type: "Peer" })
      expect(welcome.peer!.id.length).toBeGreaterThan(0)
      expect(welcome.peer!.id).not.toContain("|")
      expect(welcome.peer).not.toHaveProperty("token")
      expect(welcome.rooms).toContain("alice")
    }).pipe(Effect.scoped))

  it.live("2. name defaults to user", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const dave = yield* peer(server, "dave")
      expect(dave.welcome.peer?.name).toBe("dave")
    }).pipe(Effect.scoped))

  it.live("13. auth with rooms: lobby members see the newcomer online", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const carol = yield* peer(server, "carol", { rooms: ["lobby"] })
      expect(carol.welcome.rooms).toEqual(["carol", "lobby"])
      const seen = yield* alice.next(isPresenceOf(carol, true))
      expect(seen.from).toBe(carol.address)
    }).pipe(Effect.scoped))
})
