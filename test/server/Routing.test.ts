import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as SympleServer from "../../src/server/index.js"
import {
  clusterStats,
  expectEffect,
  isMessage,
  isPresenceOf,
  isType,
  peer,
  settle,
  startServer,
  startServerWith
} from "./support.js"

const text = (t: string) => (f: { readonly data?: { readonly [k: string]: unknown } }) => f.data?.text === t

/** With and without the per-peer rate limiter in the path. */
const modes = [{ label: "rate limited", rateLimit: 100 }, { label: "no rate limit", rateLimit: 0 }]

describe.each(modes)("routing ($label)", (mode) => {
  it.live("join: join:ok, then a snapshot of the room's other members", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob")
      bob.send({ type: "join", room: "lobby" })
      expect(yield* bob.next()).toEqual({ type: "join:ok", room: "lobby" })
      const snapshot = yield* bob.next()
      expect(snapshot).toMatchObject({ type: "presence", from: alice.address, data: { id: alice.id, online: true } })
    }).pipe(Effect.scoped))

  it.live("two peers in a shared room see each other's presence", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const a = yield* peer(server, "a")
      const b = yield* peer(server, "b")
      a.send({ type: "join", room: "shared" })
      b.send({ type: "join", room: "shared" })
      yield* a.next(isType("join:ok"))
      yield* b.next(isType("join:ok"))
      yield* settle(a, b)
      a.send({ type: "presence", data: { capabilities: { video: true } } })
      b.send({ type: "presence" })
      const atB = yield* b.next(isPresenceOf(a, true))
      expect(atB.data).toMatchObject({ capabilities: { video: true }, user: "a" })
      yield* a.next(isPresenceOf(b, true))
    }).pipe(Effect.scoped))

  it.live("disconnect: one offline presence per peer sharing a room, and it leaves the registry", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["one", "two"] })
      const bob = yield* peer(server, "bob", { rooms: ["one", "two"] })
      yield* settle(alice)
      bob.ws.close()
      const offline = yield* alice.next(isPresenceOf(bob, false))
      expect(offline).toMatchObject({
        type: "presence",
        from: bob.address,
        data: { id: bob.id, user: "bob", online: false }
      })
      yield* alice.none(isPresenceOf(bob))
      yield* expectEffect(server.peerCount, (n) => n === 1)
      expect(yield* server.peersInRoom("two")).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("client presence data is sanitised", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { name: "Alice", rooms: ["shared"] })
      const bob = yield* peer(server, "bob", { rooms: ["shared"] })
      yield* settle(bob)
      alice.send({
        type: "presence",
        to: ["shared"],
        data: { id: "FORGED_ID", user: "FORGED_USER", name: "X", type: "Y", online: false, agent: "x" }
      })
      const got = yield* bob.next(isType("presence"))
      const record = { id: alice.id, user: "alice", name: "Alice", type: "Peer", online: true, host: "127.0.0.1" }
      expect(got.data).toEqual({ ...record, agent: "x" })
      alice.send({ type: "presence", data: "not an object" })
      const second = yield* bob.next(isType("presence"))
      expect(second.data).toEqual(record)
    }).pipe(Effect.scoped))

  it.live("presence data.host is the server's record: set by the server or a hook, removed when it has none", () =>
    Effect.gen(function*() {
      const hosts: Record<string, string | undefined> = { alice: undefined, bob: "gateway.example" }
      const authenticator = SympleServer.Authenticator.Authenticator.of({
        authenticate: (auth, connecting) => {
          const peer = SympleServer.Authenticator.peerFromAuth(auth, { ...connecting, host: hosts[auth.user] })
          return Effect.succeed({ peer, rooms: [auth.user, "shared"] })
        }
      })
      const server = yield* startServerWith(
        Layer.succeed(SympleServer.Authenticator.Authenticator, authenticator),
        mode
      )
      const alice = yield* peer(server, "alice")
      const bob = yield* peer(server, "bob")
      const carol = yield* peer(server, "carol")
      expect(alice.welcome.peer).not.toHaveProperty("host")
      expect(bob.welcome.peer?.host).toBe("gateway.example")
      yield* settle(alice, bob, carol)
      alice.send({ type: "presence", data: { host: "10.0.0.1", mood: "a" } })
      const fromAlice = yield* carol.next((f) => f.type === "presence" && f.data?.mood === "a")
      expect(fromAlice.data).not.toHaveProperty("host")
      bob.send({ type: "presence", data: { host: "10.0.0.1", mood: "b" } })
      const fromBob = yield* carol.next((f) => f.type === "presence" && f.data?.mood === "b")
      expect(fromBob.data?.host).toBe("gateway.example")
    }).pipe(Effect.scoped))

  it.live("probe is forwarded; answers to the full address or the bare id reach the prober", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      yield* settle(alice, bob)
      alice.send({ type: "presence", probe: true, id: "p1", data: {} })
      const probe = yield* bob.next(isType("presence"))
      expect(probe).toMatchObject({ probe: true, from: alice.address, id: "p1" })
      bob.send({ type: "presence", to: probe.from, data: {} })
      const answer = yield* alice.next(isPresenceOf(bob, true))
      expect(answer).not.toHaveProperty("probe")
      bob.send({ type: "presence", to: alice.id, data: { via: "bare id" } })
      expect((yield* alice.next(isPresenceOf(bob, true))).data?.via).toBe("bare id")
    }).pipe(Effect.scoped))

  it.live("direct message in a shared room: from set, everything else unchanged", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      const sent = { type: "message", subtype: "chat", data: { text: "hi bob" }, id: "grcp36n4ypl", to: bob.address }
      alice.send(sent)
      expect(yield* bob.next(isMessage())).toEqual({ ...sent, from: alice.address })
    }).pipe(Effect.scoped))

  it.live("direct message without a shared room: dropped silently, counted", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice")
      const bob = yield* peer(server, "bob")
      alice.send({ type: "message", to: bob.address, data: { text: "psst" } })
      yield* bob.none(isMessage())
      yield* alice.none()
      expect((yield* clusterStats(server)).undeliverable).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a sender's routes follow membership changes: leave stops delivery, a new join restores it", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      for (const to of [bob.address, "bob", ["lobby"]]) {
        alice.send({ type: "message", to, data: { text: "one" } })
        yield* bob.next(isMessage(text("one")))
      }
      bob.send({ type: "leave", room: "lobby" })
      yield* bob.next(isType("leave:ok"))
      for (const to of [bob.address, "bob", ["lobby"]]) alice.send({ type: "message", to, data: { text: "two" } })
      yield* bob.none(isMessage())
      bob.send({ type: "join", room: "lobby" })
      yield* bob.next(isType("join:ok"))
      for (const to of [bob.address, "bob", ["lobby"]]) {
        alice.send({ type: "message", to, data: { text: "three" } })
        yield* bob.next(isMessage(text("three")))
      }
      expect((yield* clusterStats(server)).undeliverable).toBe(3)
    }).pipe(Effect.scoped))

  it.live("bare user name without a shared room: dropped", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice")
      const bob = yield* peer(server, "bob")
      alice.send({ type: "message", to: "bob", data: {} })
      yield* bob.none(isMessage())
    }).pipe(Effect.scoped))

  it.live("bare user name reaches every session of that user sharing a room", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice1 = yield* peer(server, "alice", { rooms: ["test"] })
      const alice2 = yield* peer(server, "alice", { rooms: ["test"] })
      yield* alice1.next(isPresenceOf(alice2, true))
      const bob = yield* peer(server, "bob", { rooms: ["test"] })
      bob.send({ type: "message", to: "alice", data: { text: "both" } })
      yield* alice1.next(isMessage(text("both")))
      yield* alice2.next(isMessage(text("both")))
      yield* bob.none(isMessage())
    }).pipe(Effect.scoped))

  it.live("broadcast without to: once to every peer sharing a room, never the sender", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["one", "two"] })
      const bob = yield* peer(server, "bob", { rooms: ["one"] })
      const carol = yield* peer(server, "carol", { rooms: ["one", "two"] })
      const dave = yield* peer(server, "dave", { rooms: ["elsewhere"] })
      alice.send({ type: "message", data: { text: "all" } })
      yield* bob.next(isMessage(text("all")))
      yield* carol.next(isMessage(text("all")))
      yield* carol.none(isMessage(text("all")))
      yield* alice.none(isMessage())
      yield* dave.none(isMessage())
    }).pipe(Effect.scoped))

  it.live("array to: one copy per recipient", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["one", "two"] })
      const bob = yield* peer(server, "bob", { rooms: ["one", "two"] })
      alice.send({ type: "message", to: ["one", "two", "one"], data: { text: "dedup" } })
      yield* bob.next(isMessage(text("dedup")))
      yield* bob.none(isMessage())
    }).pipe(Effect.scoped))

  it.live("array to: only rooms the sender belongs to", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["public"] })
      const bob = yield* peer(server, "bob", { rooms: ["public", "private"] })
      const carol = yield* peer(server, "carol", { rooms: ["private"] })
      alice.send({ type: "message", to: ["private"], data: { text: "sneak" } })
      yield* carol.none(isMessage())
      yield* bob.none(isMessage())
      alice.send({ type: "message", to: "private", data: { text: "by name" } })
      yield* bob.next(isMessage(text("by name")))
      yield* carol.none(isMessage())
    }).pipe(Effect.scoped))

  it.live("a spoofed from is overwritten", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      alice.send({ type: "command", node: "a:b", from: "mallory|x", to: bob.address })
      expect(yield* bob.next(isType("command"))).toMatchObject({ from: alice.address, node: "a:b" })
      alice.send({ type: "event", name: "ping", from: "mallory|x", to: bob.address })
      expect(yield* bob.next(isType("event"))).toMatchObject({ from: alice.address, name: "ping" })
    }).pipe(Effect.scoped))

  it.live("own full address is echoed back", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice")
      alice.send({ type: "message", to: alice.address, data: { text: "me" } })
      expect(yield* alice.next(isMessage())).toMatchObject({ from: alice.address, data: { text: "me" } })
    }).pipe(Effect.scoped))

  it.live("odd to values", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      yield* settle(bob)
      for (const to of [null, {}, 5, true, "", "|", `bob|${bob.id}|extra`]) {
        alice.send({ type: "message", to, data: { text: "odd" } })
      }
      yield* bob.none(isMessage())
      alice.send({ type: "message", to: `|${bob.id}`, data: { text: "no user" } })
      yield* bob.next(isMessage(text("no user")))
      alice.send({ type: "message", to: `nobody|${bob.id}`, data: { text: "wrong user" } })
      yield* bob.next(isMessage(text("wrong user")))
      expect(alice.isClosed()).toBe(false)
    }).pipe(Effect.scoped))
})

describe("route cache", () => {
  /** The protocol's router, recording every `to` it resolves. */
  const countingRouter = (resolved: Array<unknown>) =>
    SympleServer.Router.make({
      resolve: (state, sender, to) => {
        resolved.push(to)
        return SympleServer.Router.resolve(state, sender, to)
      }
    })

  it.live("an address is cached by its id: x|id, y|id and z|id are resolved once, and all delivered", () =>
    Effect.gen(function*() {
      const resolved: Array<unknown> = []
      const server = yield* startServerWith(Layer.succeed(SympleServer.Router.Router, countingRouter(resolved)))
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      const carol = yield* peer(server, "carol", { rooms: ["lobby"] })
      yield* settle(alice, bob, carol)
      resolved.length = 0
      for (const user of ["x", "y", "z", "bob", ""]) {
        alice.send({ type: "message", to: `${user}|${bob.id}`, data: { text: user } })
      }
      alice.send({ type: "message", to: `x|${carol.id}`, data: { text: "carol" } })
      for (const user of ["x", "y", "z", "bob", ""]) {
        expect(yield* bob.next(isMessage())).toMatchObject({ from: alice.address, data: { text: user } })
      }
      expect(yield* carol.next(isMessage())).toMatchObject({ from: alice.address, data: { text: "carol" } })
      expect(resolved).toEqual([`x|${bob.id}`, `x|${carol.id}`])
    }).pipe(Effect.scoped))

  it.live("a room name never hits the cached route of another kind of `to`", () =>
    Effect.gen(function*() {
      const resolved: Array<unknown> = []
      const server = yield* startServerWith(Layer.succeed(SympleServer.Router.Router, countingRouter(resolved)))
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      yield* settle(alice, bob)
      resolved.length = 0
      // Each pair: a `to` that reaches bob, then a room name (of a room nobody is in) once keyed alike.
      alice.send({ type: "message", data: { text: "everyone" } })
      alice.send({ type: "message", to: "\u0000", data: { text: "room \\0" } })
      alice.send({ type: "message", to: ["lobby"], data: { text: "lobby" } })
      alice.send({ type: "message", to: "\u0000lobby", data: { text: "room \\0lobby" } })
      alice.send({ type: "message", to: `bob|${bob.id}`, data: { text: "bob" } })
      alice.send({ type: "message", to: bob.id, data: { text: "bob by id" } })
      yield* bob.next(isMessage(text("everyone")))
      yield* bob.next(isMessage(text("lobby")))
      yield* bob.next(isMessage(text("bob")))
      yield* bob.next(isMessage(text("bob by id")))
      yield* bob.none(isMessage())
      expect(resolved).toHaveLength(6)
    }).pipe(Effect.scoped))
})
