/**
 * The client against the project's own server on port 0.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, HashMap, Option, PubSub, Queue, Scope, Stream } from "effect"
import type { ClientOptions } from "../../src/client/ClientConfig.js"
import { AuthRefused, RequestError } from "../../src/client/ClientError.js"
import * as NodeSympleClient from "../../src/client/NodeSympleClient.js"
import * as SympleClient from "../../src/client/SympleClient.js"
import type * as Frame from "../../src/protocol/Frame.js"
import * as Message from "../../src/protocol/Message.js"
import * as SympleServer from "../../src/server/index.js"
import { eventually, noneWithin, recordStates, rosterIds, waitFor } from "./helpers.js"

const serverOptions = { port: 0, host: "127.0.0.1", authTimeout: 2000, shutdownTimeout: 200 } as const
const fast = { reconnectDelay: 20, reconnectMaxDelay: 200, requestTimeout: 2000 } as const

const connect = (url: string, options: Omit<ClientOptions, "url">) =>
  Effect.gen(function*() {
    const client = yield* NodeSympleClient.make({ url, ...fast, ...options })
    const peer = yield* client.awaitOnline
    return { client, peer } as const
  })

describe("client against the Symple server", () => {
  it.live("connects, fills the roster from the snapshot, sees presence both ways", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults(serverOptions)
      const alice = yield* connect(server.url, { user: "alice", name: "Alice", rooms: ["lobby"] })
      expect(alice.peer).toMatchObject({ user: "alice", name: "Alice", online: true })
      expect(yield* alice.client.currentRooms).toEqual(expect.arrayContaining(["alice", "lobby"]))
      const aliceChanges = yield* alice.client.roster.subscribe
      const bob = yield* connect(server.url, { user: "bob", rooms: ["lobby"], type: "bot" })
      // Bob's roster: himself plus Alice from the server's snapshot.
      yield* eventually(rosterIds(bob.client), (ids) => ids.length === 2, "bob's roster")
      expect(yield* rosterIds(bob.client)).toEqual([alice.peer.id, bob.peer.id].sort())
      // Alice learns about Bob from his online presence.
      const connected = yield* PubSub.take(aliceChanges)
      assert(connected._tag === "Connected")
      expect(connected.peer).toMatchObject({ id: bob.peer.id, user: "bob", online: true, peerType: "bot" })
      // Bob's probe answer reaches Alice's full address; her roster stays the same (idempotent).
      yield* bob.client.sendPresence()
      yield* Effect.sleep("50 millis")
      expect(yield* rosterIds(alice.client)).toEqual([alice.peer.id, bob.peer.id].sort())
      // Bob leaves: Alice sees him go.
      yield* bob.client.close
      const gone = yield* PubSub.take(aliceChanges)
      assert(gone._tag === "Disconnected")
      expect(gone.peer.id).toBe(bob.peer.id)
      expect(yield* rosterIds(alice.client)).toEqual([alice.peer.id])
      expect(yield* server.peerCount).toBe(1)
    }))

  it.live("direct message, respond, request success and timeout", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults(serverOptions)
      const alice = yield* connect(server.url, { user: "alice", rooms: ["lobby"] })
      const bob = yield* connect(server.url, { user: "bob", rooms: ["lobby"] })
      const bobAddress = `bob|${bob.peer.id}`
      const inbox = yield* bob.client.subscribe
      // Bob answers every "ping" message with status 200.
      yield* bob.client.messages.pipe(
        Stream.filter((m) => m.subtype === "ping" && Message.isRequest(m)),
        Stream.runForEach((m) => bob.client.respond(m, { status: 200, data: { pong: true } })),
        Effect.forkScoped
      )
      yield* Effect.sleep("20 millis")
      const sent = yield* alice.client.send(Message.message({ to: bobAddress, subtype: "chat", data: { text: "hi" } }))
      const got = yield* PubSub.take(inbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))
      expect(got).toEqual({ ...sent, from: `alice|${alice.peer.id}` })
      const reply = yield* alice.client.request(Message.message({ to: bobAddress, subtype: "ping" }))
      expect(reply).toMatchObject({ status: 200, data: { pong: true }, from: bobAddress })
      const silent = yield* Effect.flip(
        alice.client.request(Message.message({ to: bobAddress, subtype: "unanswered" }), { timeout: 100 })
      )
      assert(silent instanceof RequestError)
      expect(silent.reason).toBe("Timeout")
    }))

  it.live("commands are routed by wildcard; unhandled requests get 404; events carry a time", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults(serverOptions)
      const alice = yield* connect(server.url, { user: "alice", rooms: ["lobby"] })
      const bob = yield* connect(server.url, { user: "bob", rooms: ["lobby"] })
      const bobAddress = `bob|${bob.peer.id}`
      yield* bob.client.onCommand(
        "media:video:*",
        (command) => Effect.succeed({ data: { quality: Message.param(command.node ?? "", 3) ?? "" } })
      )
      const ok = yield* alice.client.request(Message.command("media:video:hd", { to: bobAddress }))
      expect(ok).toMatchObject({ status: 200, data: { quality: "hd" }, node: "media:video:hd" })
      const missing = yield* Effect.flip(alice.client.request(Message.command("media:audio:mute", { to: bobAddress })))
      assert(missing instanceof RequestError)
      expect(missing.status).toBe(404)

      const events = yield* bob.client.subscribe
      yield* alice.client.send({ type: "event", name: "typing", to: bobAddress })
      const event = yield* PubSub.take(events).pipe(Effect.repeat({ until: (f) => f.type === "event" }))
      assert(event.type === "event")
      expect(event.name).toBe("typing")
      expect(typeof event.time).toBe("number")
      expect(Math.abs((event.time ?? 0) - Date.now() / 1000)).toBeLessThan(60)
    }))

  it.live("rooms: join, route to the room, leave", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults(serverOptions)
      const alice = yield* connect(server.url, { user: "alice" })
      const bob = yield* connect(server.url, { user: "bob" })
      yield* alice.client.joinRoom("team")
      expect(yield* alice.client.currentRooms).toContain("team")
      const bobChanges = yield* bob.client.roster.subscribe
      yield* bob.client.joinRoom("team")
      // join:ok is followed by a snapshot of the room: Bob now knows Alice.
      const change = yield* PubSub.take(bobChanges)
      expect(change._tag === "Connected" && change.peer.id).toBe(alice.peer.id)
      const inbox = yield* bob.client.subscribe
      yield* alice.client.send(Message.message({ to: ["team"], data: "to the team" }))
      const got = yield* PubSub.take(inbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))
      expect(got).toMatchObject({ data: "to the team", from: `alice|${alice.peer.id}` })
      yield* alice.client.leaveRoom("team")
      expect(yield* alice.client.currentRooms).not.toContain("team")
      expect(yield* alice.client.desiredRooms).not.toContain("team")
      yield* alice.client.send(Message.message({ to: ["team"], data: "after leaving" }))
      expect(yield* noneWithin(PubSub.take(inbox).pipe(Effect.repeat({ until: (f) => f.type === "message" })), 150))
        .toBe(true)
    }))

  it.live("with dynamic rooms disabled, joinRoom fails at once with the server's 400, not by timeout", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({ ...serverOptions, dynamicRooms: false })
      const alice = yield* NodeSympleClient.make({ url: server.url, ...fast, requestTimeout: 60_000, user: "alice" })
      yield* alice.awaitOnline
      const refused = yield* alice.joinRoom("team").pipe(Effect.flip, Effect.timeout("5 seconds"))
      assert(refused instanceof RequestError)
      expect(refused).toMatchObject({ reason: "Status", status: 400, id: "join:team" })
      expect(yield* alice.desiredRooms).not.toContain("team")
      expect(yield* alice.currentRooms).not.toContain("team")
      // The connection stays up and usable.
      expect((yield* alice.currentState)._tag).toBe("Online")
    }))

  it.live("a join the server refuses for that room (403, 400) fails that join only, with the server's status", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({ ...serverOptions, maxRoomNameLength: 8 })
      yield* connect(server.url, { user: "carol" })
      const mallory = yield* NodeSympleClient.make({
        url: server.url,
        ...fast,
        requestTimeout: 60_000,
        user: "mallory"
      })
      yield* mallory.awaitOnline
      const both = yield* Effect.all([
        mallory.joinRoom("carol").pipe(Effect.flip),
        mallory.joinRoom("far-too-long"),
        mallory.joinRoom("team")
      ], { concurrency: "unbounded", mode: "result" }).pipe(Effect.timeout("5 seconds"))
      const [personal, long, team] = both
      assert(personal._tag === "Success" && personal.success instanceof RequestError)
      expect(personal.success).toMatchObject({ reason: "Status", status: 403, id: "join:carol" })
      assert(long._tag === "Failure")
      expect(long.failure).toMatchObject({ reason: "Status", status: 400, id: "join:far-too-long" })
      expect(team._tag).toBe("Success")
      expect(yield* mallory.currentRooms).toEqual(expect.arrayContaining(["mallory", "team"]))
      expect(yield* mallory.desiredRooms).not.toContain("carol")
      expect((yield* mallory.currentState)._tag).toBe("Online")
    }))

  it.live("reconnects after the server restarts on the same port: new id, rooms rejoined, roster rebuilt (no grace)", () =>
    Effect.gen(function*() {
      const first = yield* Scope.make()
      const server = yield* SympleServer.makeWithDefaults(serverOptions).pipe(Scope.provide(first))
      const port = server.port
      // Without a grace period the roster empties when the connection is lost.
      const alice = yield* connect(server.url, { user: "alice", rooms: ["lobby"], rosterGracePeriod: 0 })
      const bob = yield* connect(server.url, { user: "bob", rooms: ["lobby"] })
      yield* alice.client.joinRoom("dynamic")
      yield* eventually(rosterIds(alice.client), (ids) => ids.length === 2, "alice sees bob")
      const states = yield* recordStates(alice.client)
      yield* Scope.close(first, Exit.void)
      yield* eventually(alice.client.currentState, (s) => s._tag !== "Online", "alice offline")
      // While the server is down the roster is empty and a message waits.
      expect(yield* rosterIds(alice.client)).toEqual([])
      const waiting = yield* Effect.forkChild(alice.client.send(Message.message({ to: ["lobby"], data: "queued" })))
      const restarted = yield* SympleServer.makeWithDefaults({ ...serverOptions, port })
      expect(restarted.port).toBe(port)
      // A virtual peer in the lobby sees the queued message whichever client gets back first.
      const watcherInbox = yield* Queue.unbounded<Frame.Frame>()
      yield* restarted.addVirtualPeer(
        { id: "watcher", user: "watcher" },
        ["lobby"],
        (frame) => Queue.offer(watcherInbox, frame)
      )
      const aliceAgain = yield* waitFor(alice.client, "Online")
      assert(aliceAgain._tag === "Online")
      expect(aliceAgain.peer.id).not.toBe(alice.peer.id)
      const bobAgain = yield* bob.client.awaitOnline
      expect(bobAgain.id).not.toBe(bob.peer.id)
      yield* eventually(alice.client.currentRooms, (rs) => rs.includes("lobby") && rs.includes("dynamic"), "rooms")
      yield* eventually(rosterIds(alice.client), (ids) => ids.length === 3, "roster")
      expect(yield* rosterIds(alice.client)).toEqual([aliceAgain.peer.id, bobAgain.id, "watcher"].sort())
      yield* Fiber.join(waiting)
      const got = yield* Queue.take(watcherInbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))
      expect(got).toMatchObject({ data: "queued", from: `alice|${aliceAgain.peer.id}` })
      // The shutdown notice made it a clean close.
      const tags = states.map((s) => s._tag)
      expect(tags).toContain("Closed")
      expect(tags.indexOf("Closed")).toBeLessThan(tags.lastIndexOf("Online"))
    }))

  it.live("an auth refusal is not retried", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({
        ...serverOptions,
        authentication: true,
        authenticate: (_peer, auth) =>
          Effect.succeed(auth.token === "good" ? { allowed: true } : { allowed: false, message: "Bad token" })
      })
      const connections = yield* server.events.pipe(
        Stream.filter((e) => e._tag === "PeerConnected"),
        Stream.runCount,
        Effect.forkChild
      )
      const eve = yield* NodeSympleClient.make({ url: server.url, user: "eve", token: "bad", ...fast })
      const refused = yield* Effect.flip(eve.awaitOnline)
      assert(refused instanceof AuthRefused)
      expect(refused).toMatchObject({ status: 401, message: "Bad token" })
      const states = yield* recordStates(eve)
      yield* Effect.sleep("300 millis")
      expect(states.map((s) => s._tag)).toEqual(["Error"])
      expect(yield* server.connectionCount).toBe(0)
      const gina = yield* connect(server.url, { user: "gina", token: "good" })
      expect(gina.peer.user).toBe("gina")
      expect(yield* server.peerCount).toBe(1)
      yield* Fiber.interrupt(connections)
    }))

  it.live("close() sends the close frame: the server drops the session at once", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults(serverOptions)
      const alice = yield* connect(server.url, { user: "alice", rooms: ["lobby"] })
      const bob = yield* connect(server.url, { user: "bob", rooms: ["lobby"] })
      const gone = yield* bob.client.roster.peerDisconnected.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* Effect.sleep("20 millis")
      yield* alice.client.close
      const [peer] = Array.from(yield* Fiber.join(gone))
      expect(peer?.id).toBe(alice.peer.id)
      expect((yield* alice.client.currentState)._tag).toBe("Closed")
      yield* eventually(server.peerCount, (n) => n === 1, "one peer left")
      expect(Option.isNone(yield* server.getPeer(alice.peer.id))).toBe(true)
    }))
})

describe("client as a layer", () => {
  it.live("NodeSympleClient.layer provides the SympleClient service; the roster is a Stream", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults(serverOptions)
      const other = yield* connect(server.url, { user: "bob", rooms: ["lobby"] })
      const program = Effect.gen(function*() {
        const client = yield* SympleClient.SympleClient
        const me = yield* client.awaitOnline
        const users = yield* client.roster.changes.pipe(
          Stream.map((peers) => Array.from(HashMap.values(peers), (p) => p.user).sort()),
          Stream.filter((names) => names.length === 2),
          Stream.runHead,
          Effect.timeout("5 seconds")
        )
        return { me, users }
      })
      const { me, users } = yield* program.pipe(
        Effect.provide(NodeSympleClient.layer({ url: server.url, user: "alice", rooms: ["lobby"], ...fast }))
      )
      expect(me.user).toBe("alice")
      expect(users).toEqual(Option.some(["alice", "bob"]))
      // The layer's scope is closed: the server saw Alice leave.
      yield* eventually(server.peerCount, (n) => n === 1, "alice gone")
      // Bob hears of it through the offline presence, which may still be on its way.
      yield* eventually(rosterIds(other.client), (ids) => ids.length === 1, "bob's roster without alice")
      expect(yield* rosterIds(other.client)).toEqual([other.peer.id])
    }))
})
