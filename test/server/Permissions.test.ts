import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as SympleServer from "../../src/server/index.js"
import { connect, isMessage, isPresenceOf, peer, startServer, startServerWith } from "./support.js"

const tokens: Record<string, { readonly user: string; readonly rooms: ReadonlyArray<string> }> = {
  "tok-carol": { user: "carol", rooms: [] },
  "tok-mallory": { user: "mallory", rooms: ["lobby"] },
  "tok-sam": { user: "sam", rooms: ["lobby", "staff"] },
  "tok-bob": { user: "bob", rooms: ["lobby"] }
}
const tokenHook: SympleServer.Authenticator.AuthHook = (_peer, auth) => {
  const session = auth.token === undefined ? undefined : tokens[auth.token]
  return Effect.succeed(
    session === undefined
      ? { allowed: false, message: "Invalid token" }
      : { allowed: true, peer: { user: session.user }, rooms: session.rooms }
  )
}
const tokenMode = { authentication: true, authenticate: tokenHook } as const

describe("rooms as the permission boundary", () => {
  it.live("nobody joins another user's personal room while that user is online: 403 naming the room", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const carol = yield* peer(server, "carol", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      const mallory = yield* peer(server, "mallory", { rooms: ["lobby"] })
      mallory.send({ type: "join", room: "carol" })
      expect(yield* mallory.next((f) => f.type === "error" || f.type === "join:ok")).toEqual({
        type: "error",
        status: 403,
        message: "Cannot join room \"carol\": another user's personal room"
      })
      expect((yield* server.peersInRoom("carol")).map((p) => p.id)).toEqual([carol.id])
      // What is addressed to carol reaches carol only.
      bob.send({ type: "message", to: "carol", data: { secret: 1 } })
      expect((yield* carol.next(isMessage())).data).toEqual({ secret: 1 })
      yield* mallory.none(isMessage())
      // Her own personal room is the user's to rejoin after leaving it.
      carol.send({ type: "leave", room: "carol" })
      yield* carol.next((f) => f.type === "leave:ok")
      mallory.send({ type: "join", room: "carol" })
      expect(yield* mallory.next((f) => f.type === "error")).toMatchObject({ status: 403 })
      carol.send({ type: "join", room: "carol" })
      expect(yield* carol.next((f) => f.type === "join:ok")).toEqual({ type: "join:ok", room: "carol" })
    }).pipe(Effect.scoped))

  it.live("auth.rooms naming another online user's personal room are not joined", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      yield* peer(server, "carol")
      const mallory = yield* peer(server, "mallory", { rooms: ["carol", "lobby"] })
      expect(mallory.welcome.rooms).toEqual(["mallory", "lobby"])
      expect((yield* server.peersInRoom("carol")).map((p) => p.user)).toEqual(["carol"])
    }).pipe(Effect.scoped))

  it.live("token mode: a user's personal room joined while they were away is theirs again when they connect", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ ...tokenMode, dynamicRooms: true })
      const mallory = yield* peer(server, "x", { token: "tok-mallory" })
      mallory.send({ type: "join", room: "carol" })
      expect(yield* mallory.next((f) => f.type === "join:ok")).toEqual({ type: "join:ok", room: "carol" })
      const carol = yield* peer(server, "x", { token: "tok-carol" })
      expect(yield* mallory.next((f) => f.type === "error")).toEqual({
        type: "error",
        status: 403,
        message: "Removed from room \"carol\": another user's personal room"
      })
      expect(yield* mallory.next((f) => f.type === "leave:ok")).toEqual({ type: "leave:ok", room: "carol" })
      expect((yield* server.peersInRoom("carol")).map((p) => p.id)).toEqual([carol.id])
      // carol's snapshot did not list mallory: they share no room.
      yield* carol.none(isPresenceOf(mallory))
      const bob = yield* peer(server, "x", { token: "tok-bob" })
      bob.send({ type: "message", to: "carol", data: {} })
      yield* mallory.none(isMessage())
    }).pipe(Effect.scoped))

  it.live("token mode refuses dynamic joins unless the application allows them", () =>
    Effect.gen(function*() {
      const server = yield* startServer(tokenMode)
      const mallory = yield* peer(server, "x", { token: "tok-mallory" })
      mallory.send({ type: "join", room: "staff" })
      expect(yield* mallory.next()).toEqual({ type: "error", status: 400, message: "Dynamic rooms disabled" })
      expect((yield* server.peersInRoom("staff")).length).toBe(0)
      // The hook's grants still apply.
      const sam = yield* peer(server, "x", { token: "tok-sam" })
      expect(sam.welcome.rooms).toEqual(["sam", "lobby", "staff"])
    }).pipe(Effect.scoped))

  it.live("an authorizeJoin hook turns joins on in token mode and decides each one; refusal is 403", () =>
    Effect.gen(function*() {
      const server = yield* startServer({
        ...tokenMode,
        authorizeJoin: (_peer, room) => room.startsWith("public-")
      })
      const mallory = yield* peer(server, "x", { token: "tok-mallory" })
      mallory.send({ type: "join", room: "staff" })
      expect(yield* mallory.next()).toEqual({
        type: "error",
        status: 403,
        message: "Cannot join room \"staff\": not allowed"
      })
      mallory.send({ type: "join", room: "public-1" })
      expect(yield* mallory.next()).toEqual({ type: "join:ok", room: "public-1" })
      // The server's own rules come before any policy: a policy that allows everything still cannot open carol's.
      const open = yield* startServer({ ...tokenMode, authorizeJoin: () => true })
      yield* peer(open, "x", { token: "tok-carol" })
      const intruder = yield* peer(open, "x", { token: "tok-mallory" })
      intruder.send({ type: "join", room: "carol" })
      expect(yield* intruder.next()).toMatchObject({ type: "error", status: 403 })
    }).pipe(Effect.scoped))

  it.live("the join policy is a service: a Layer swaps it, and one that takes its time keeps frames in order", () =>
    Effect.gen(function*() {
      const slowPolicy = SympleServer.JoinPolicy.layer((peer, room) =>
        Effect.as(Effect.sleep(50), peer.user === "sam" || room !== "staff")
      )
      const server = yield* startServerWith(slowPolicy, tokenMode)
      const sam = yield* peer(server, "x", { token: "tok-sam" })
      const mallory = yield* peer(server, "x", { token: "tok-mallory" })
      mallory.send({ type: "join", room: "staff" })
      mallory.send({ type: "join", room: "games" })
      mallory.send({ type: "message", to: ["games"], data: { n: 1 } })
      expect(yield* mallory.next((f) => f.type !== "presence")).toEqual({
        type: "error",
        status: 403,
        message: "Cannot join room \"staff\": not allowed"
      })
      expect(yield* mallory.next((f) => f.type !== "presence")).toEqual({ type: "join:ok", room: "games" })
      sam.send({ type: "join", room: "games" })
      expect(yield* sam.next((f) => f.type === "join:ok")).toEqual({ type: "join:ok", room: "games" })
      // Sent behind the pending joins, the message went out once mallory was in games, when only she was there.
      yield* sam.none(isMessage())
      expect((yield* server.peersInRoom("staff")).map((p) => p.user)).toEqual(["sam"])
    }).pipe(Effect.scoped))

  it.live("room limits: rooms per peer and name length, for join and for auth.rooms (400, connection kept)", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ maxRoomsPerPeer: 3, maxRoomNameLength: 16 })
      const alice = yield* peer(server, "alice", { rooms: ["a"] })
      alice.send({ type: "join", room: "b" })
      expect(yield* alice.next()).toEqual({ type: "join:ok", room: "b" })
      alice.send({ type: "join", room: "c" })
      expect(yield* alice.next()).toEqual({
        type: "error",
        status: 400,
        message: "Cannot join room \"c\": already in 3 rooms, the limit"
      })
      // Joining a room one is in is no new room.
      alice.send({ type: "join", room: "b" })
      expect(yield* alice.next()).toEqual({ type: "join:ok", room: "b" })
      alice.send({ type: "leave", room: "a" })
      expect(yield* alice.next()).toEqual({ type: "leave:ok", room: "a" })
      const long = "x".repeat(17)
      alice.send({ type: "join", room: long })
      expect(yield* alice.next()).toEqual({
        type: "error",
        status: 400,
        message: `Cannot join room "${long}": name over 16 bytes`
      })
      // Bytes, not characters.
      alice.send({ type: "join", room: "é".repeat(9) })
      expect(yield* alice.next()).toMatchObject({ type: "error", status: 400 })
      alice.send({ type: "join", room: "c" })
      expect(yield* alice.next()).toEqual({ type: "join:ok", room: "c" })
      const crowded = yield* connect(server.url)
      crowded.send({ type: "auth", user: "bob", rooms: ["r1", "r2", "r3"] })
      expect(yield* crowded.next()).toEqual({
        type: "error",
        status: 400,
        message: "Invalid auth frame: more than 3 rooms"
      })
      crowded.send({ type: "auth", user: "bob", rooms: [long] })
      expect(yield* crowded.next()).toEqual({
        type: "error",
        status: 400,
        message: "Invalid auth frame: room name over 16 bytes"
      })
      crowded.send({ type: "auth", user: "bob", rooms: ["r1", "r1", "bob", "r2"] })
      expect((yield* crowded.next()).rooms).toEqual(["bob", "r1", "r2"])
    }).pipe(Effect.scoped))

  it.live("room limits by default: 100 rooms per peer, 256-byte names", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ rateLimit: 0 })
      const alice = yield* peer(server, "alice")
      for (let i = 1; i < 100; i++) alice.send({ type: "join", room: `room-${i}` })
      for (let i = 1; i < 100; i++) yield* alice.next((f) => f.type === "join:ok" && f.room === `room-${i}`)
      alice.send({ type: "join", room: "one-too-many" })
      expect(yield* alice.next()).toMatchObject({ type: "error", status: 400 })
      alice.send({ type: "leave", room: "room-1" })
      yield* alice.next((f) => f.type === "leave:ok")
      alice.send({ type: "join", room: "y".repeat(257) })
      expect(yield* alice.next()).toMatchObject({ type: "error", status: 400 })
      alice.send({ type: "join", room: "y".repeat(256) })
      expect(yield* alice.next()).toEqual({ type: "join:ok", room: "y".repeat(256) })
    }).pipe(Effect.scoped))
})
