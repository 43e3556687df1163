/**
 * The client against scripted servers that replay what the reference servers put on the wire
 * (shared/reference/wire-transcripts.md).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, PubSub, Queue, Result, Scope, Stream } from "effect"
import { AuthRefused, ClientClosed, RequestError } from "../../src/client/ClientError.js"
import * as NodeSympleClient from "../../src/client/NodeSympleClient.js"
import * as Message from "../../src/protocol/Message.js"
import { drain, eventually, noneWithin, recordStates, rosterIds, waitAfter, waitFor } from "./helpers.js"
import * as Scripted from "./ScriptedServer.js"

const fast = { reconnectDelay: 20, reconnectMaxDelay: 100, requestTimeout: 2000 } as const

describe("client handshake", () => {
  it.live("sends auth like the C++ client, goes online, joins missing rooms, then probes", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({
        url: server.url,
        user: "alice",
        name: "Alice",
        token: "",
        type: "bot",
        data: { agent: "test" },
        rooms: ["lobby", "extra"],
        ...fast
      })
      const conn = yield* server.nextConnection
      const auth = yield* conn.next
      expect(auth).toEqual({
        type: "auth",
        user: "alice",
        name: "Alice",
        data: { agent: "test", peerType: "bot" },
        rooms: ["lobby", "extra"]
      })
      // The server put us in "lobby" only (as a server that ignores some auth rooms would).
      conn.send({
        type: "welcome",
        protocol: "symple/4",
        status: 200,
        peer: { id: "a1", user: "alice", name: "Alice", online: true, type: "Peer", agent: "test" },
        rooms: ["alice", "lobby"]
      })
      const online = yield* waitFor(client, "Online")
      assert(online._tag === "Online")
      expect(online.peer.id).toBe("a1")
      expect(yield* conn.next).toEqual({ type: "join", room: "extra" })
      const probe = yield* conn.next
      expect(probe.type).toBe("presence")
      expect(probe.probe).toBe(true)
      expect(probe.from).toBe("alice|a1")
      expect(probe.data).toMatchObject({ id: "a1", user: "alice", online: true, agent: "test" })
      expect(yield* client.currentRooms).toEqual(["alice", "lobby"])
      conn.send({ type: "join:ok", room: "extra" })
      yield* eventually(client.currentRooms, (rs) => rs.includes("extra"), "join:ok")
      // Self is in the roster.
      expect(yield* rosterIds(client)).toEqual(["a1"])
    }))

  it.live("omits empty name, token and rooms from auth", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      yield* NodeSympleClient.make({ url: server.url, user: "bob", name: "", token: "", ...fast })
      const conn = yield* server.nextConnection
      expect(yield* conn.next).toEqual({ type: "auth", user: "bob" })
    }))

  it.live("an auth refusal is announced, ends in Error and is not retried", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "eve", token: "bad", ...fast })
      const announced = yield* client.announce.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      const conn = yield* server.nextConnection
      yield* conn.nextOf("auth")
      const error = yield* waitAfter(
        client,
        "Error",
        Effect.sync(() => conn.send({ type: "error", status: 401, message: "Bad token" }))
      )
      assert(error._tag === "Error")
      expect(error.status).toBe(401)
      expect(error.retrying).toBe(false)
      expect(Array.from(yield* Fiber.join(announced))).toEqual([{ status: 401, message: "Bad token" }])
      const refused = yield* Effect.flip(client.awaitOnline)
      expect(refused).toBeInstanceOf(AuthRefused)
      const sent = yield* Effect.flip(client.send(Message.message({ data: "x" })))
      expect(sent).toBeInstanceOf(ClientClosed)
      expect(sent.reason).toBe("AuthRefused")
      // Well past several reconnect delays: no second connection.
      expect(yield* noneWithin(Queue.take(server.connections), 300)).toBe(true)
      // The client closed its socket itself.
      expect(yield* Effect.promise(() => conn.closed)).toBe(1000)
    }))

  it.live("a handshake error that is not a refusal is retried", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "carl", ...fast })
      const first = yield* server.nextConnection
      yield* first.nextOf("auth")
      first.send({ type: "error", status: 503, message: "Server at capacity" })
      yield* Scripted.accept(server, "c2")
      const online = yield* waitFor(client, "Online")
      assert(online._tag === "Online")
      expect(online.peer.id).toBe("c2")
    }))
})

describe("client against a JavaScript-server transcript", () => {
  it.live("no snapshot and duplicated presence: the roster holds each peer once, events fire once", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", rooms: ["r1", "r2"], ...fast })
      const changes = yield* client.roster.subscribe
      const conn = yield* server.nextConnection
      const auth = yield* conn.nextOf("auth")
      // JS-S welcome: peer echoes the auth frame (type "auth", token) and there is no snapshot (JS-1, JS-26).
      conn.send({
        type: "welcome",
        protocol: "symple/4",
        status: 200,
        peer: { ...auth, id: "8718pbd8f9swmftaoic7i", online: true, name: "alice", host: "127.0.0.1" },
        rooms: ["alice", "r1", "r2"]
      })
      yield* waitFor(client, "Online")
      const bob = {
        type: "presence",
        from: "bob|scj16n3gd6ysi5essx69p",
        data: {
          type: "auth",
          user: "bob",
          rooms: ["r1", "r2"],
          id: "scj16n3gd6ysi5essx69p",
          online: true,
          name: "bob",
          host: "127.0.0.1"
        }
      }
      // Once per shared room, as JS-S sends it (JS-26), then offline twice (JS-28).
      conn.send(bob)
      conn.send(bob)
      yield* eventually(rosterIds(client), (ids) => ids.length === 2, "bob online")
      expect(yield* rosterIds(client)).toEqual(["8718pbd8f9swmftaoic7i", "scj16n3gd6ysi5essx69p"])
      const bobPeer = yield* client.roster.get("bob|scj16n3gd6ysi5essx69p")
      expect(Option.map(bobPeer, (p) => p.host)).toEqual(Option.some("127.0.0.1"))
      expect(yield* client.roster.get("mallory|scj16n3gd6ysi5essx69p")).toEqual(Option.none())
      expect((yield* client.roster.getByHost("127.0.0.1")).length).toBe(2)
      const offline = { ...bob, data: { ...bob.data, online: false } }
      conn.send(offline)
      conn.send(offline)
      yield* eventually(rosterIds(client), (ids) => ids.length === 1, "bob offline")
      // A marker frame: once it is seen, every earlier frame was handled.
      const frames = yield* client.subscribe
      conn.send({ type: "message", id: "marker", from: "bob|x" })
      yield* PubSub.take(frames)
      const tags = Array.from(yield* drain(changes)).map((c) => `${c._tag}:${c.peer.user}`)
      expect(tags).toEqual(["Connected:alice", "Connected:bob", "Disconnected:bob"])
    }))

  it.live("the shutdown notice without name is a clean close: Closed, then a reconnection", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const events = yield* client.subscribe
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* waitFor(client, "Online")
      const states = yield* recordStates(client)
      conn.send({ type: "event", subtype: "shutdown", message: "Server shutting down" })
      conn.socket.close()
      yield* Scripted.accept(server, "a2")
      yield* eventually(client.peer, (p) => Option.isSome(p) && p.value.id === "a2", "second session")
      const tags = states.map((s) => s._tag)
      expect(tags.slice(0, 3)).toEqual(["Online", "Closed", "Connecting"])
      expect(tags).not.toContain("Error")
      // An event without name is dropped, as the C++ client does.
      expect(Array.from(yield* drain(events)).filter((f) => f.type === "event")).toEqual([])
    }))

  it.live("an error frame without status keeps the client online with its roster", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "frank", ...fast })
      const { conn } = yield* Scripted.accept(server, "f1")
      yield* waitFor(client, "Online")
      conn.send(Scripted.presence("gina", "g1", true))
      yield* eventually(rosterIds(client), (ids) => ids.length === 2, "gina online")
      const errors = yield* client.errors.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* Effect.sleep("20 millis")
      // JS-14: join refused with a status-less error.
      conn.send({ type: "error", message: "Dynamic rooms disabled" })
      expect(Array.from(yield* Fiber.join(errors))).toEqual([{ type: "error", message: "Dynamic rooms disabled" }])
      expect((yield* client.currentState)._tag).toBe("Online")
      expect(yield* rosterIds(client)).toEqual(["f1", "g1"])
    }))
})

describe("client frames", () => {
  it.live("binary frames carrying JSON are read like text, in order; junk and type-less frames are dropped", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* waitFor(client, "Online")
      const inbox = yield* client.subscribe
      conn.send("this is not json")
      conn.send({ hello: "no type" })
      conn.send({ type: "command", id: "x", from: "b|1" })
      conn.send({ type: "event", id: "y", from: "b|1" })
      conn.socket.send(Buffer.from(JSON.stringify({ type: "message", id: "bin", from: "b|1" })), { binary: true })
      conn.send({ type: "message", id: "text", from: "b|1" })
      const first = yield* PubSub.take(inbox)
      const second = yield* PubSub.take(inbox)
      expect([first, second].map((f) => f.type === "message" && f.id)).toEqual(["bin", "text"])
      // The command without node was not answered with 404 either.
      expect(yield* noneWithin(conn.nextOf("command"), 100)).toBe(true)
    }))
})

describe("client ordering (a publication may run the fiber it wakes before the publisher goes on)", () => {
  it.live("a roster change is announced once the roster holds it", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* waitFor(client, "Online")
      const changes = yield* client.roster.subscribe
      // The subscriber reads the roster in the same step as it receives the change.
      const nextSeen = PubSub.take(changes).pipe(
        Effect.flatMap((change) => Effect.map(rosterIds(client), (ids) => [change._tag, ids] as const)),
        Effect.forkChild
      )
      const connected = yield* nextSeen
      yield* Effect.sleep("20 millis")
      conn.send(Scripted.presence("bob", "b1", true))
      expect(yield* Fiber.join(connected)).toEqual(["Connected", ["a1", "b1"]])
      const disconnected = yield* nextSeen
      yield* Effect.sleep("20 millis")
      conn.send(Scripted.presence("bob", "b1", false))
      expect(yield* Fiber.join(disconnected)).toEqual(["Disconnected", ["a1"]])
    }))

  it.live("a fiber woken by Online sends after the session's joins and presence probe", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", rooms: ["extra"], ...fast })
      const sent = yield* client.awaitOnline.pipe(
        Effect.andThen(client.send(Message.message({ data: "first" }))),
        Effect.forkChild
      )
      const conn = yield* server.nextConnection
      const auth = yield* conn.nextOf("auth")
      conn.send(Scripted.welcome({ ...auth, rooms: [] }, "a1"))
      yield* Fiber.join(sent)
      expect(yield* conn.next).toEqual({ type: "join", room: "extra" })
      expect(yield* conn.next).toMatchObject({ type: "presence", probe: true })
      expect(yield* conn.next).toMatchObject({ type: "message", data: "first" })
    }))

  it.live("a fiber woken by the final state finds the client closed", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "eve", token: "bad", ...fast })
      const afterRefusal = yield* client.state.pipe(
        Stream.filter((s) => s._tag === "Error"),
        Stream.runHead,
        Effect.andThen(Effect.flip(client.send(Message.message()))),
        Effect.forkChild
      )
      const conn = yield* server.nextConnection
      yield* conn.nextOf("auth")
      conn.send({ type: "error", status: 403, message: "Forbidden" })
      const error = yield* Fiber.join(afterRefusal)
      expect(error).toBeInstanceOf(ClientClosed)
      expect(error.reason).toBe("AuthRefused")
    }))
})

describe("client presence", () => {
  it.live("answers a probe to the prober's full address, without probe, with createPresence fields", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      yield* NodeSympleClient.make({
        url: server.url,
        user: "bob",
        createPresence: () => ({ agent: "tester", id: "forged" }),
        ...fast
      })
      const { conn } = yield* Scripted.accept(server, "b1")
      yield* conn.nextOf("presence")
      conn.send({ ...Scripted.presence("alice", "a1", true), probe: true, id: "p1" })
      const answer = yield* conn.nextOf("presence")
      expect(answer.to).toBe("alice|a1")
      expect(answer.probe).toBeUndefined()
      expect(answer.data).toMatchObject({ id: "b1", user: "bob", online: true, agent: "tester" })
    }))

  it.live("sendPresence sets from, data and to", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "bob", ...fast })
      const { conn } = yield* Scripted.accept(server, "b1")
      yield* conn.nextOf("presence")
      const sent = yield* client.sendPresence({ to: ["lobby"] })
      const got = yield* conn.nextOf("presence")
      expect(got).toEqual(sent)
      expect(got).toMatchObject({ from: "bob|b1", to: ["lobby"], data: { id: "b1", online: true } })
    }))
})

describe("client sending", () => {
  it.live("frames sent while reconnecting are delivered after the next welcome, in order", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const first = yield* Scripted.accept(server, "a1")
      yield* waitFor(client, "Online")
      yield* waitAfter(client, "Error", Effect.sync(() => first.conn.socket.terminate()))
      const sending = yield* Effect.forEach(
        ["one", "two", "three"],
        (text) => Effect.forkChild(client.send(Message.message({ data: { text } }))),
        { concurrency: 1 }
      )
      const second = yield* server.nextConnection
      const auth = yield* second.next
      expect(auth.type).toBe("auth")
      // Nothing is written before the welcome.
      expect(yield* noneWithin(Queue.take(second.received), 100)).toBe(true)
      second.send(Scripted.welcome(auth, "a2"))
      yield* second.nextOf("presence")
      const got = [yield* second.next, yield* second.next, yield* second.next]
      expect(got.map((f) => (f.data as { text: string }).text)).toEqual(["one", "two", "three"])
      expect(got.every((f) => f.from === "alice|a2")).toBe(true)
      for (const fiber of sending) yield* Fiber.join(fiber)
    }))

  it.live("concurrent senders: every frame written once, each sender's frames in its order", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* conn.nextOf("presence")
      const senders = 5
      const each = 200
      yield* Effect.forEach(
        Array.from({ length: senders }, (_, s) => s),
        (s) =>
          Effect.forEach(
            Array.from({ length: each }, (_, i) => i),
            (i) => client.send(Message.message({ data: { s, i } })),
            { discard: true }
          ),
        { concurrency: "unbounded", discard: true }
      )
      const got: Array<{ s: number; i: number }> = []
      for (let n = 0; n < senders * each; n++) {
        got.push((yield* conn.nextOf("message")).data as { s: number; i: number })
      }
      for (let s = 0; s < senders; s++) {
        expect(got.filter((d) => d.s === s).map((d) => d.i)).toEqual(Array.from({ length: each }, (_, i) => i))
      }
      expect(yield* noneWithin(conn.nextOf("message"), 100)).toBe(true)
    }))

  it.live("frames waiting when the client gives up fail with ClientClosed", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", reconnectAttempts: 2, ...fast })
      yield* Scripted.accept(server, "a1")
      yield* waitFor(client, "Online")
      yield* waitAfter(client, "Error", server.kill)
      const pending = yield* Effect.forkChild(Effect.result(client.send(Message.message({ data: 1 }))))
      const result = yield* Fiber.join(pending)
      assert(Result.isFailure(result))
      expect(result.failure).toBeInstanceOf(ClientClosed)
      expect(result.failure.reason).toBe("GaveUp")
      const state = yield* client.currentState
      assert(state._tag === "Error")
      expect(state.retrying).toBe(false)
    }))

  it.live("send sets from and a fresh id, events get a time, respond swaps to and from", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* conn.nextOf("presence")
      yield* client.send({ type: "event", name: "typing", to: "bob|b1" })
      const event = yield* conn.next
      expect(event).toMatchObject({ type: "event", name: "typing", to: "bob|b1", from: "alice|a1" })
      expect(typeof event.id).toBe("string")
      expect(Math.abs((event.time as number) - Date.now() / 1000)).toBeLessThan(60)
      const incoming = yield* client.messages.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* Effect.sleep("20 millis")
      conn.send({ type: "message", id: "m1", from: "bob|b1", to: "alice|a1", data: { text: "hi" } })
      const [message] = Array.from(yield* Fiber.join(incoming))
      assert(message !== undefined)
      yield* client.respond(message, { data: { text: "hi back" } })
      expect(yield* conn.next).toEqual({
        type: "message",
        id: "m1",
        from: "alice|a1",
        to: "bob|b1",
        data: { text: "hi back" }
      })
    }))

  it.live("close() sends the close frame, closes the socket and fails later sends", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* conn.nextOf("presence")
      yield* client.close
      expect(yield* conn.next).toEqual({ type: "close" })
      expect(yield* Effect.promise(() => conn.closed)).toBe(1000)
      expect((yield* client.currentState)._tag).toBe("Closed")
      const error = yield* Effect.flip(client.send(Message.message()))
      expect(error.reason).toBe("Closed")
      yield* client.close
      expect(yield* noneWithin(Queue.take(server.connections), 100)).toBe(true)
    }))
})

describe("client transactions and commands", () => {
  it.live("request: 202 is progress, 200 resolves, another status or silence fails", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* conn.nextOf("presence")

      const progress = yield* Deferred.make<number>()
      const ok = yield* Effect.forkChild(client.request(Message.command("media:video:start", { to: "bob|b1" }), {
        onProgress: (reply) => Deferred.succeed(progress, reply.status ?? 0).pipe(Effect.asVoid)
      }))
      const req = yield* conn.nextOf("command")
      expect(req.status).toBeUndefined()
      conn.send({ ...req, from: "bob|b1", to: "alice|a1", status: 202 })
      expect(yield* Deferred.await(progress)).toBe(202)
      conn.send({ ...req, from: "bob|b1", to: "alice|a1", status: 200, data: { started: true } })
      const reply = yield* Fiber.join(ok)
      expect(reply.data).toEqual({ started: true })

      const refused = yield* Effect.forkChild(Effect.flip(client.request(Message.command("x", { to: "bob|b1" }))))
      const req2 = yield* conn.nextOf("command")
      conn.send({ ...req2, from: "bob|b1", status: 404 })
      const error = yield* Fiber.join(refused)
      assert(error instanceof RequestError)
      expect(error.reason).toBe("Status")
      expect(error.status).toBe(404)

      const silent = yield* Effect.flip(client.request(Message.message({ to: "bob|b1" }), { timeout: 50 }))
      assert(silent instanceof RequestError)
      expect(silent.reason).toBe("Timeout")
    }))

  it.live("unhandled command requests get 404; routes match wildcards and answer", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      yield* client.onCommand("media:video:*", (command) =>
        Effect.succeed({ data: { node: command.node ?? "", param: Message.param(command.node ?? "", 3) ?? "" } }))
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* conn.nextOf("presence")
      conn.send({ type: "command", id: "c1", node: "media:video:quality", from: "bob|b1", to: "alice|a1" })
      expect(yield* conn.next).toEqual({
        type: "command",
        id: "c1",
        node: "media:video:quality",
        from: "alice|a1",
        to: "bob|b1",
        status: 200,
        data: { node: "media:video:quality", param: "quality" }
      })
      conn.send({ type: "command", id: "c2", node: "media:audio:mute", from: "bob|b1", to: "alice|a1" })
      expect(yield* conn.next).toMatchObject({ id: "c2", status: 404, to: "bob|b1", from: "alice|a1" })
      // A command that is already a response is never answered.
      conn.send({ type: "command", id: "c3", node: "media:audio:mute", from: "bob|b1", status: 200 })
      conn.send({ type: "command", id: "c4", node: "zzz", from: "bob|b1" })
      expect(yield* conn.next).toMatchObject({ id: "c4", status: 404 })
    }))
})

describe("client reconnection", () => {
  it.live("the schedule starts over after every session that got online (reconnectAttempts counts per loss)", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", reconnectAttempts: 1, ...fast })
      const first = yield* Scripted.accept(server, "a1")
      yield* waitFor(client, "Online")
      // Each loss uses the one allowed attempt; it succeeds, so the next loss has one again.
      first.conn.socket.terminate()
      const second = yield* Scripted.accept(server, "a2")
      yield* eventually(client.peer, (p) => Option.isSome(p) && p.value.id === "a2", "second session")
      second.conn.socket.terminate()
      yield* Scripted.accept(server, "a3")
      yield* eventually(client.peer, (p) => Option.isSome(p) && p.value.id === "a3", "third session")
      // Offline with the attempt spent on a failure: the client gives up.
      const gaveUp = yield* waitAfter(client, "Error", server.kill)
      yield* eventually(client.currentState, (s) => s._tag === "Error" && !s.retrying, "gave up")
      expect(gaveUp._tag).toBe("Error")
      const error = yield* Effect.flip(client.send(Message.message()))
      expect(error.reason).toBe("GaveUp")
    }))

  it.live("keeps trying after failed attempts until the server is back", () =>
    Effect.gen(function*() {
      // Find a free port, then leave it closed.
      const probe = yield* Scope.make()
      const port = (yield* Scripted.make().pipe(Scope.provide(probe))).port
      yield* Scope.close(probe, Exit.void)
      const client = yield* NodeSympleClient.make({ url: `ws://127.0.0.1:${port}`, user: "alice", ...fast })
      const states = yield* recordStates(client)
      yield* eventually(
        Effect.sync(() => states.filter((s) => s._tag === "Connecting").length),
        (n) => n >= 3,
        "three failed attempts"
      )
      const server = yield* Scripted.make({ port })
      yield* Scripted.accept(server, "a1")
      yield* waitFor(client, "Online")
      const errors = states.filter((s) => s._tag === "Error")
      expect(errors.length).toBeGreaterThanOrEqual(2)
      expect(errors.every((s) => s._tag === "Error" && s.retrying)).toBe(true)
      // Attempts are counted since the client was last online.
      const attempts = states.flatMap((s) => s._tag === "Connecting" ? [s.attempt] : [])
      expect(attempts.slice(0, 3)).toEqual([1, 2, 3])
    }))

  it.live("a server that never answers auth is left after openTimeout and retried", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast, openTimeout: 300 })
      const silent = yield* server.nextConnection
      yield* silent.nextOf("auth")
      expect(yield* Effect.promise(() => silent.closed)).toBe(1000)
      yield* Scripted.accept(server, "a2")
      const online = yield* waitFor(client, "Online")
      expect(online._tag === "Online" && online.peer.id).toBe("a2")
    }))

  it.live("welcome.rooms is authoritative across reconnections; desired rooms are re-joined (scenario 46)", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const first = yield* Scripted.accept(server, "a1", ["alpha"])
      yield* waitFor(client, "Online")
      yield* first.conn.nextOf("presence")
      const joining = yield* Effect.forkChild(client.joinRoom("desired"))
      expect(yield* first.conn.next).toEqual({ type: "join", room: "desired" })
      first.conn.send({ type: "join:ok", room: "desired" })
      yield* Fiber.join(joining)
      expect(yield* client.currentRooms).toEqual(["alice", "alpha", "desired"])
      first.conn.socket.terminate()
      const second = yield* server.nextConnection
      const auth = yield* second.next
      expect(auth.rooms).toEqual(["desired"])
      // This server ignores auth.rooms and assigns "beta".
      second.send(Scripted.welcome({ ...auth, rooms: [] }, "a2", ["beta"]))
      expect(yield* second.next).toEqual({ type: "join", room: "desired" })
      second.send({ type: "join:ok", room: "desired" })
      yield* eventually(client.currentRooms, (rs) => rs.includes("desired"), "desired joined")
      expect(yield* client.currentRooms).toEqual(["alice", "beta", "desired"])
    }))
})

describe("client command routes", () => {
  it.live("a failing handler answers 500; a closed route scope removes the route; 404s can be turned off", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ...fast })
      const routeScope = yield* Scope.make()
      yield* client.onCommand("job:*", () => Effect.fail("boom")).pipe(Scope.provide(routeScope))
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* conn.nextOf("presence")
      conn.send({ type: "command", id: "c1", node: "job:run", from: "bob|b1" })
      expect(yield* conn.next).toMatchObject({ id: "c1", status: 500, to: "bob|b1" })
      yield* Scope.close(routeScope, Exit.void)
      conn.send({ type: "command", id: "c2", node: "job:run", from: "bob|b1" })
      expect(yield* conn.next).toMatchObject({ id: "c2", status: 404 })

      const quiet = yield* NodeSympleClient.make({
        url: server.url,
        user: "q",
        answerUnhandledCommands: false,
        ...fast
      })
      const other = yield* Scripted.accept(server, "q1")
      yield* other.conn.nextOf("presence")
      const commands = yield* quiet.subscribe
      other.conn.send({ type: "command", id: "c3", node: "job:run", from: "bob|b1" })
      const got = yield* PubSub.take(commands)
      expect(got).toMatchObject({ type: "command", id: "c3" })
      expect(yield* noneWithin(other.conn.next, 100)).toBe(true)
    }))
})
