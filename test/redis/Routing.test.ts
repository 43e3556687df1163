/**
 * The routing rules of ../shared/PROTOCOL.md across processes: three servers on one Redis, the peers spread over
 * them, each rule checked on recipients of other nodes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Queue } from "effect"
import type * as Frame from "../../src/protocol/Frame.js"
import { isMessage, isPresenceOf, isType, type Peer, peer, type Received, settle } from "../server/support.js"
import { startRedis } from "./redisServer.js"
import { converged, startNode } from "./support.js"

const text = (t: string) => (f: Received) => f.data?.text === t
const count = (client: Peer, predicate: (f: Received) => boolean) => client.all.filter(predicate).length

/** alice on A (lobby, games), bob on B (lobby, games), bob again on C (lobby), carol on C (no shared room). */
const cluster = Effect.gen(function*() {
  const redis = yield* startRedis
  const a = yield* startNode(redis.url)
  const b = yield* startNode(redis.url)
  const c = yield* startNode(redis.url)
  const alice = yield* peer(a, "alice", { rooms: ["lobby", "games"] })
  const bob = yield* peer(b, "bob", { rooms: ["lobby", "games"] })
  const bob2 = yield* peer(c, "bob", { rooms: ["lobby"] })
  const carol = yield* peer(c, "carol", { rooms: ["elsewhere"] })
  yield* converged([a, b, c], 4)
  yield* settle(alice, bob, bob2, carol)
  return { redis, a, b, c, alice, bob, bob2, carol }
})

describe("routing across nodes", () => {
  it.live("presence: snapshots list other nodes' peers; online and offline reach each neighbour exactly once", () =>
    Effect.gen(function*() {
      const { alice, bob, bob2, c, carol } = yield* cluster
      // Snapshots (taken with the welcome) name the peers of the other nodes that share a room.
      expect(count(bob2, isPresenceOf(alice, true)) + count(bob2, isPresenceOf(bob, true))).toBe(2)
      expect(count(carol, (f) => f.type === "presence")).toBe(0)
      const dave = yield* peer(c, "dave", { rooms: ["games"] })
      yield* alice.next(isPresenceOf(dave, true))
      yield* bob.next(isPresenceOf(dave, true))
      expect(count(dave, isPresenceOf(alice, true))).toBe(1)
      expect(count(dave, isPresenceOf(bob, true))).toBe(1)
      dave.ws.close()
      yield* alice.next(isPresenceOf(dave, false))
      yield* bob.next(isPresenceOf(dave, false))
      yield* Effect.sleep(150)
      for (const p of [alice, bob]) {
        expect(count(p, isPresenceOf(dave, true))).toBe(1)
        expect(count(p, isPresenceOf(dave, false))).toBe(1)
      }
      expect(count(bob2, isPresenceOf(dave))).toBe(0)
      expect(count(carol, isPresenceOf(dave))).toBe(0)
    }).pipe(Effect.scoped))

  it.live("user|id, bare session id, bare user: the addressed sessions on their nodes, from rewritten", () =>
    Effect.gen(function*() {
      const { alice, bob, bob2, carol } = yield* cluster
      alice.send({ type: "message", to: bob.address, from: "mallory|x", data: { text: "direct" } })
      expect((yield* bob.next(isMessage(text("direct")))).from).toBe(alice.address)
      alice.send({ type: "message", to: bob2.id, data: { text: "by id" } })
      expect((yield* bob2.next(isMessage(text("by id")))).from).toBe(alice.address)
      // A bare user name is that user's personal room: both of bob's sessions, on two nodes.
      alice.send({ type: "command", to: "bob", node: "ping", data: { text: "bare user" } })
      yield* bob.next((f) => f.type === "command" && text("bare user")(f))
      yield* bob2.next((f) => f.type === "command" && text("bare user")(f))
      yield* bob.none(isMessage(text("by id")))
      yield* bob2.none(isMessage(text("direct")))
      // Carol shares no room with alice: no `to` form reaches her.
      for (const to of [carol.address, carol.id, "carol", ["elsewhere"], "elsewhere"]) {
        alice.send({ type: "message", to, data: { text: "to carol" } })
      }
      alice.send({ type: "message", data: { text: "to all" } })
      yield* bob.next(isMessage(text("to all")))
      yield* carol.none(isMessage(text("to carol")), 200)
      expect(count(carol, isMessage(text("to all")))).toBe(0)
    }).pipe(Effect.scoped))

  it.live("room arrays and no to: the sender's rooms only, each recipient once across rooms and nodes", () =>
    Effect.gen(function*() {
      const { alice, bob, bob2, carol } = yield* cluster
      alice.send({ type: "message", to: ["lobby", "games", "elsewhere"], data: { text: "rooms" } })
      alice.send({ type: "message", data: { text: "own rooms" } })
      alice.send({ type: "event", name: "e", to: "games", data: { text: "games" } })
      yield* bob.next(isMessage(text("own rooms")))
      yield* bob2.next(isMessage(text("own rooms")))
      yield* bob.next((f) => f.type === "event" && text("games")(f))
      yield* Effect.sleep(150)
      expect(count(bob, isMessage(text("rooms")))).toBe(1)
      expect(count(bob2, isMessage(text("rooms")))).toBe(1)
      expect(count(bob, isMessage(text("own rooms")))).toBe(1)
      expect(count(bob2, (f) => text("games")(f))).toBe(0)
      expect(count(carol, (f) => f.from === alice.address)).toBe(0)
      expect(count(alice, isMessage())).toBe(0)
    }).pipe(Effect.scoped))

  it.live("presence sanitising and binary frames across nodes", () =>
    Effect.gen(function*() {
      const { alice, bob } = yield* cluster
      alice.send({ type: "presence", to: bob.address, data: { id: "forged", user: "eve", online: false, mood: "ok" } })
      const got = yield* bob.next((f) => f.type === "presence" && f.data?.mood === "ok")
      expect(got.data).toMatchObject({ id: alice.id, user: "alice", online: true })
      alice.sendRaw(Buffer.from(JSON.stringify({ type: "message", to: bob.address, data: { text: "binary" } })), true)
      expect((yield* bob.next(isMessage(text("binary")))).from).toBe(alice.address)
    }).pipe(Effect.scoped))

  it.live("join and leave on one node change what the others route to it", () =>
    Effect.gen(function*() {
      const { a, alice, bob2, c } = yield* cluster
      bob2.send({ type: "join", room: "games" })
      yield* bob2.next(isType("join:ok"))
      // The snapshot of the room joined lists its members on the other nodes.
      yield* bob2.next(isPresenceOf(alice, true))
      yield* Effect.sleep(100)
      alice.send({ type: "message", to: "games", data: { text: "games 1" } })
      yield* bob2.next(isMessage(text("games 1")))
      bob2.send({ type: "leave", room: "games" })
      yield* bob2.next(isType("leave:ok"))
      yield* Effect.sleep(100)
      alice.send({ type: "message", to: "games", data: { text: "games 2" } })
      yield* bob2.none(isMessage(text("games 2")), 200)
      expect((yield* a.peersInRoom("games")).map((p) => p.user).sort()).toEqual(["alice", "bob"])
      expect((yield* c.peersInRoom("games")).map((p) => p.user).sort()).toEqual(["alice", "bob"])
    }).pipe(Effect.scoped))

  it.live("the server API answers for the whole cluster", () =>
    Effect.gen(function*() {
      const { a, alice, b, bob, bob2, c, carol } = yield* cluster
      expect(yield* a.peerCount).toBe(4)
      expect(Option.map(yield* a.getPeer(carol.id), (p) => p.user)).toEqual(Option.some("carol"))
      expect((yield* a.peersInRoom("lobby")).length).toBe(3)
      expect(yield* a.sendTo(carol.id, { type: "message", data: { text: "api direct" } })).toBe(true)
      yield* carol.next(isMessage(text("api direct")))
      expect(yield* a.sendToUser("bob", { type: "message", data: { text: "api user" } })).toBe(2)
      yield* bob.next(isMessage(text("api user")))
      yield* bob2.next(isMessage(text("api user")))
      expect(yield* b.broadcast("lobby", { type: "message", data: { text: "api room" } }, alice.id)).toBe(2)
      yield* bob.next(isMessage(text("api room")))
      yield* bob2.next(isMessage(text("api room")))
      expect(yield* c.inject({ type: "message", to: alice.address, data: { text: "injected" } })).toBe(1)
      yield* alice.next(isMessage(text("injected")))
      // A virtual peer on A: in the snapshots of other nodes, routable from them, its handler gets the frames.
      const inbox = yield* Queue.unbounded<Frame.Frame>()
      const bot = yield* a.addVirtualPeer({ id: "bot", user: "bot" }, ["lobby"], (f) => Queue.offer(inbox, f))
      yield* bob.next(isPresenceOf(bot, true))
      yield* bob2.next(isPresenceOf(bot, true))
      yield* converged([a, b, c], 5)
      bob2.send({ type: "message", to: "bot|bot", data: { text: "to the bot" } })
      const frame = yield* Queue.take(inbox)
      expect(frame).toMatchObject({ type: "message", from: bob2.address, data: { text: "to the bot" } })
      expect(yield* a.removeVirtualPeer("bot")).toBe(true)
      yield* bob.next(isPresenceOf(bot, false))
      yield* converged([a, b, c], 4)
    }).pipe(Effect.scoped))

  it.live("a direct frame goes only to the node holding the session; a room frame once to each node with members", () =>
    Effect.gen(function*() {
      const { a, alice, b, bob, bob2, c } = yield* cluster
      const counters = Effect.map(
        Effect.all([a.brokerStatus, b.brokerStatus, c.brokerStatus]),
        (all) => all.map((s) => ({ published: s.published, received: s.received }))
      )
      const before = yield* counters
      alice.send({ type: "message", to: bob.address, data: { text: "one" } })
      yield* bob.next(isMessage(text("one")))
      const direct = yield* counters
      expect(direct[0]!.published - before[0]!.published).toBe(1)
      expect(direct[1]!.received - before[1]!.received).toBe(1)
      expect(direct[2]!.received - before[2]!.received).toBe(0)
      // games: bob on B only; lobby: bob on B, bob on C (one envelope each, whatever the number of recipients).
      alice.send({ type: "message", to: "games", data: { text: "games" } })
      yield* bob.next(isMessage(text("games")))
      alice.send({ type: "message", to: "lobby", data: { text: "lobby" } })
      yield* bob.next(isMessage(text("lobby")))
      yield* bob2.next(isMessage(text("lobby")))
      const rooms = yield* counters
      expect(rooms[0]!.published - direct[0]!.published).toBe(3)
      expect(rooms[1]!.received - direct[1]!.received).toBe(2)
      expect(rooms[2]!.received - direct[2]!.received).toBe(1)
      const status = yield* a.brokerStatus
      expect(status).toMatchObject({ state: "connected", nodes: 2, dropped: 0 })
    }).pipe(Effect.scoped))
})
