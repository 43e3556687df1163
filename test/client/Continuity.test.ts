/**
 * Continuity over real sockets: session resume against a scripted server that offers it and against the project's
 * own server, the fallback (the roster kept through a reconnection and reconciled) against scripted servers and the
 * project's own server without resume, the cleaning of our own peer record, and the inbound frame size limit.
 */
import { NodeWS } from "@effect/platform-node"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, PubSub, Scope } from "effect"
import type { ClientOptions } from "../../src/client/ClientConfig.js"
import * as NodeSympleClient from "../../src/client/NodeSympleClient.js"
import type * as Roster from "../../src/client/Roster.js"
import * as SympleClient from "../../src/client/SympleClient.js"
import * as Message from "../../src/protocol/Message.js"
import * as SympleServer from "../../src/server/index.js"
import { relay } from "../support/relay.js"
import { drain, eventually, recordStates, rosterIds, waitAfter, waitFor } from "./helpers.js"
import * as Scripted from "./ScriptedServer.js"

const fast = { reconnectDelay: 20, reconnectMaxDelay: 100, requestTimeout: 2000 } as const
const serverOptions = { port: 0, host: "127.0.0.1", authTimeout: 2000, shutdownTimeout: 200 } as const
/** A server that offers no resume: what the client does with a server without the extension. */
const noResume = { ...serverOptions, resumeWindow: 0 } as const

const describeChange = (c: Roster.Change) =>
  c._tag === "Updated" ? `Updated:${c.previous.id}>${c.peer.id}` : `${c._tag}:${c.peer.id}`

/** Waits until a marker message has gone through the client: every frame sent before it was handled. */
const flush = (client: SympleClient.SympleClient, conn: Scripted.Connection) =>
  Effect.gen(function*() {
    const frames = yield* client.subscribe
    const id = Message.randomId()
    conn.send({ type: "message", id, from: "x|marker" })
    yield* PubSub.take(frames).pipe(Effect.repeat({ until: (f) => f.type === "message" && f.id === id }))
  }).pipe(Effect.scoped)

describe("client session resume (a scripted server that offers it)", () => {
  it.live("resumed: same session, the roster untouched, buffered frames delivered, the token rotated", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({
        url: server.url,
        user: "alice",
        rooms: ["lobby"],
        rosterGracePeriod: 300,
        ...fast
      })
      const first = yield* server.nextConnection
      const auth1 = yield* first.nextOf("auth")
      expect(auth1).not.toHaveProperty("resume")
      first.send({ ...Scripted.welcome(auth1, "a1", ["lobby"]), resume: "token-1" })
      yield* first.nextOf("presence")
      first.send(Scripted.presence("bob", "b1", true))
      first.send(Scripted.presence("carol", "c1", true))
      yield* eventually(rosterIds(client), (ids) => ids.length === 3, "bob and carol")
      const changes = yield* client.roster.subscribe
      const states = yield* recordStates(client)

      // The socket dies under the client; frames sent meanwhile wait.
      yield* waitAfter(client, "Error", Effect.sync(() => first.socket.terminate()))
      expect(yield* rosterIds(client)).toEqual(["a1", "b1", "c1"])
      expect((yield* client.roster.pending).map((p) => p.id).sort()).toEqual(["a1", "b1", "c1"])
      const sending = yield* Effect.forkChild(client.send(Message.message({ to: "bob|b1", data: "while away" })))
      const second = yield* server.nextConnection
      const auth2 = yield* second.nextOf("auth")
      expect(auth2).toMatchObject({ type: "auth", user: "alice", rooms: ["lobby"], resume: "token-1" })
      second.send({ ...Scripted.welcome(auth2, "a1", ["lobby"]), resume: "token-2", resumed: true })
      // What the server buffered follows the welcome.
      second.send({ type: "message", id: "m1", from: "bob|b1", data: "buffered" })
      // The queued frame is the first thing the client writes: no joins (the rooms were kept), no probe.
      expect(yield* second.next).toMatchObject({ type: "message", from: "alice|a1", data: "while away" })
      yield* Fiber.join(sending)
      yield* flush(client, second)
      expect((yield* drain(changes)).map(describeChange)).toEqual([])
      expect(yield* rosterIds(client)).toEqual(["a1", "b1", "c1"])
      expect(yield* client.roster.pending).toEqual([])
      expect(states.map((s) => s._tag)).toEqual(["Online", "Error", "Connecting", "Authenticating", "Online"])

      // Next blip: the new token is offered; this time the server cannot resume (a new session): bob is still
      // there (the snapshot lists him, no event), carol is gone (removed when the grace period ends).
      second.socket.terminate()
      const third = yield* server.nextConnection
      const auth3 = yield* third.nextOf("auth")
      expect(auth3.resume).toBe("token-2")
      third.send({ ...Scripted.welcome(auth3, "a2", ["lobby"]), resumed: false })
      third.send(Scripted.presence("bob", "b1", true))
      expect((yield* third.nextOf("presence")).probe).toBe(true)
      yield* eventually(rosterIds(client), (ids) => ids.length === 2, "carol removed after the grace period")
      expect((yield* drain(changes)).map(describeChange)).toEqual(["Updated:a1>a2", "Disconnected:c1"])
      expect(yield* rosterIds(client)).toEqual(["a2", "b1"])
    }))

  it.live("a server without the extension: a new session each time, the roster reconciled, nothing offered", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", rosterGracePeriod: 5000, ...fast })
      const first = yield* Scripted.accept(server, "a1")
      yield* first.conn.nextOf("presence")
      first.conn.send(Scripted.presence("bob", "b1", true))
      first.conn.send(Scripted.presence("dave", "d1", true))
      yield* eventually(rosterIds(client), (ids) => ids.length === 3, "roster")
      const changes = yield* client.roster.subscribe
      first.conn.socket.terminate()
      const second = yield* server.nextConnection
      const auth = yield* second.nextOf("auth")
      expect(auth).not.toHaveProperty("resume")
      second.send(Scripted.welcome(auth, "a2"))
      // bob is still online; dave came back as a new session (his old one is gone).
      second.send(Scripted.presence("bob", "b1", true))
      second.send(Scripted.presence("dave", "d2", true))
      yield* flush(client, second)
      expect((yield* drain(changes)).map(describeChange)).toEqual(["Updated:a1>a2", "Updated:d1>d2"])
      expect(yield* client.roster.pending).toEqual([])
      expect(yield* rosterIds(client)).toEqual(["a2", "b1", "d2"])
    }))
})

describe("client hygiene", () => {
  it.live("our presence carries none of what a JavaScript server echoes from auth (recorded welcome)", () =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const client = yield* NodeSympleClient.make({
        url: server.url,
        user: "gina",
        name: "Gina",
        token: "good",
        ...fast
      })
      const conn = yield* server.nextConnection
      yield* conn.nextOf("auth")
      // ../shared/reference/wire-transcripts.md, JS-S: the token comes back inside the peer.
      conn.send(
        "{\"type\":\"welcome\",\"protocol\":\"symple/4\",\"status\":200,\"peer\":{\"type\":\"auth\",\"user\":\"gina\"," +
          "\"name\":\"Gina\",\"token\":\"good\",\"id\":\"atej2y2xh26jhb7p7g3kti\",\"online\":true," +
          "\"host\":\"127.0.0.1\"},\"rooms\":[\"gina\",\"team-a\"]}"
      )
      const probe = yield* conn.nextOf("presence")
      expect(probe.data).toEqual({
        type: "Peer",
        user: "gina",
        name: "Gina",
        id: "atej2y2xh26jhb7p7g3kti",
        online: true,
        host: "127.0.0.1"
      })
      const online = yield* waitFor(client, "Online")
      assert(online._tag === "Online")
      expect(online.peer).not.toHaveProperty("token")
      // And every presence after it (a probe answer).
      conn.send({ ...Scripted.presence("bob", "b1", true), probe: true })
      const answer = yield* conn.nextOf("presence")
      expect(JSON.stringify(answer)).not.toContain("good")
      expect(answer.data).not.toHaveProperty("rooms")
    }))

  const oversize = (
    client: (url: string) => Effect.Effect<SympleClient.SympleClient, never, Scope.Scope>,
    readBytes: boolean
  ) =>
    Effect.gen(function*() {
      const server = yield* Scripted.make()
      const c = yield* client(server.url)
      const { conn } = yield* Scripted.accept(server, "a1")
      yield* conn.nextOf("presence")
      const error = yield* waitAfter(
        c,
        "Error",
        Effect.gen(function*() {
          conn.send({ type: "message", from: "bob|b1", data: "x".repeat(4000) })
          expect(yield* Effect.promise(() => conn.closed)).toBe(1009)
        })
      )
      assert(error._tag === "Error")
      expect(error.message).toBe(
        `The server sent a frame ${readBytes ? "of 4044 bytes " : ""}over the client's maxFrameSize of 1024 bytes`
      )
      expect(error.retrying).toBe(true)
      // The connection is retried; frames within the limit are read as always.
      const again = yield* Scripted.accept(server, "a2")
      yield* again.conn.nextOf("presence")
      const inbox = yield* c.subscribe
      again.conn.send({ type: "message", from: "bob|b1", data: "x".repeat(900) })
      expect(yield* PubSub.take(inbox)).toMatchObject({ type: "message", from: "bob|b1" })
    })

  it.live("on Node, a frame over maxFrameSize is refused by the socket before it is buffered", () =>
    oversize((url) => NodeSympleClient.make({ url, user: "alice", maxFrameSize: 1024, ...fast }), false))

  it.live("with any WebSocket (a browser's), a frame over maxFrameSize closes the connection with 1009", () =>
    oversize(
      (url) =>
        SympleClient.make({ url, user: "alice", maxFrameSize: 1024, ...fast }).pipe(
          Effect.provide(NodeWS.layerWebSocketConstructor)
        ),
      true
    ))
})

// --- against the project's own server ---------------------------------------------------------------------------

const connect = (url: string, options: Omit<ClientOptions, "url">) =>
  Effect.gen(function*() {
    const client = yield* NodeSympleClient.make({ url, ...fast, ...options })
    const peer = yield* client.awaitOnline
    return { client, peer } as const
  })

describe("client continuity against the Symple server (no resume)", () => {
  it.live("a network failure under one client: peers still online raise no event, only our own entry moves", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults(noResume)
      const line = yield* relay(server.port)
      const bob = yield* connect(server.url, { user: "bob", rooms: ["lobby"] })
      const carol = yield* connect(server.url, { user: "carol", rooms: ["lobby"] })
      const alice = yield* connect(line.url, { user: "alice", rooms: ["lobby"] })
      yield* eventually(rosterIds(alice.client), (ids) => ids.length === 3, "alice sees bob and carol")
      const changes = yield* alice.client.roster.subscribe
      yield* waitAfter(alice.client, "Error", line.cut)
      const again = yield* waitFor(alice.client, "Online")
      assert(again._tag === "Online")
      expect(again.peer.id).not.toBe(alice.peer.id)
      // The snapshot after the welcome confirms bob and carol.
      yield* eventually(alice.client.roster.pending, (pending) => pending.length === 0, "roster reconciled")
      expect(yield* rosterIds(alice.client)).toEqual([again.peer.id, bob.peer.id, carol.peer.id].sort())
      expect((yield* drain(changes)).map(describeChange)).toEqual([`Updated:${alice.peer.id}>${again.peer.id}`])
      // The session works: bob reaches the new one.
      const inbox = yield* alice.client.subscribe
      yield* bob.client.send(Message.message({ to: `alice|${again.peer.id}`, data: "still here?" }))
      expect(yield* PubSub.take(inbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))).toMatchObject({
        data: "still here?"
      })
    }))

  it.live("a server restart: peers that came back raise no flap, the one that did not goes at the end of the grace period", () =>
    Effect.gen(function*() {
      const first = yield* Scope.make()
      const server = yield* SympleServer.makeWithDefaults(serverOptions).pipe(Scope.provide(first))
      const port = server.port
      const options = { rooms: ["lobby"], rosterGracePeriod: 1500 } as const
      const alice = yield* connect(server.url, { user: "alice", ...options })
      const bob = yield* connect(server.url, { user: "bob", ...options })
      const carolScope = yield* Scope.make()
      const carol = yield* connect(server.url, { user: "carol", ...options }).pipe(Scope.provide(carolScope))
      yield* eventually(rosterIds(alice.client), (ids) => ids.length === 3, "alice sees bob and carol")
      const changes = yield* alice.client.roster.subscribe
      yield* Scope.close(first, Exit.void)
      yield* eventually(alice.client.currentState, (s) => s._tag !== "Online", "alice offline")
      // While the server is down the roster is kept, pending; carol stops for good.
      expect(yield* rosterIds(alice.client)).toEqual([alice.peer.id, bob.peer.id, carol.peer.id].sort())
      yield* Scope.close(carolScope, Exit.void)
      const restarted = yield* SympleServer.makeWithDefaults({ ...serverOptions, port })
      expect(restarted.port).toBe(port)
      const aliceAgain = yield* waitFor(alice.client, "Online")
      assert(aliceAgain._tag === "Online")
      const bobAgain = yield* bob.client.awaitOnline
      expect(bobAgain.id).not.toBe(bob.peer.id)
      yield* eventually(rosterIds(alice.client), (ids) => ids.includes(bobAgain.id), "bob back")
      yield* eventually(rosterIds(alice.client), (ids) => ids.length === 2, "carol removed after the grace period")
      expect(yield* rosterIds(alice.client)).toEqual([aliceAgain.peer.id, bobAgain.id].sort())
      expect((yield* drain(changes)).map(describeChange).sort()).toEqual([
        `Disconnected:${carol.peer.id}`,
        `Updated:${alice.peer.id}>${aliceAgain.peer.id}`,
        `Updated:${bob.peer.id}>${bobAgain.id}`
      ].sort())
      expect(Option.isSome(yield* restarted.getPeer(aliceAgain.peer.id))).toBe(true)
    }))
})

describe("client continuity against the Symple server (resume)", () => {
  it.live("a blip under one client: the same session back, what was sent to it meanwhile once and in order, no roster change anywhere", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({ ...serverOptions, resumeWindow: 5000 })
      const line = yield* relay(server.port)
      const bob = yield* connect(server.url, { user: "bob", rooms: ["lobby"] })
      const carol = yield* connect(server.url, { user: "carol", rooms: ["lobby"] })
      const alice = yield* connect(line.url, { user: "alice", rooms: ["lobby"] })
      for (const party of [alice, bob, carol]) {
        yield* eventually(rosterIds(party.client), (ids) => ids.length === 3, `${party.peer.user} sees everyone`)
      }
      const changes = yield* Effect.all([alice, bob, carol].map((party) => party.client.roster.subscribe))
      const inbox = yield* alice.client.subscribe

      // The network goes away under alice; the server notices (the session is held), bob and carol write to her.
      yield* waitAfter(alice.client, "Error", line.down)
      yield* eventually(server.connectionCount, (n) => n === 2, "the server noticed")
      expect(yield* server.peerCount).toBe(3)
      const to = `alice|${alice.peer.id}`
      for (let n = 0; n < 20; n++) yield* bob.client.send(Message.message({ to, data: { n } }))
      yield* carol.client.send(Message.message({ to: ["lobby"], data: { n: 20 } }))
      yield* line.up

      const again = yield* waitFor(alice.client, "Online")
      assert(again._tag === "Online")
      expect(again.peer.id).toBe(alice.peer.id)
      const received: Array<unknown> = []
      while (received.length < 21) {
        const frame = yield* PubSub.take(inbox)
        if (frame.type === "message") received.push((frame.data as { readonly n: number }).n)
      }
      // bob and carol each wrote in order; carol's frame went out after bob's were all written.
      expect(received.filter((n) => n !== 20)).toEqual(Array.from({ length: 20 }, (_, n) => n))
      // Once: a marker after them comes next, and nothing else.
      yield* bob.client.send(Message.message({ to, data: { n: "marker" } }))
      const next = yield* PubSub.take(inbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))
      expect(next.data).toEqual({ n: "marker" })
      // Nobody's roster moved: alice kept hers (no reconciliation needed), bob and carol never saw her leave.
      for (const subscription of changes) expect((yield* drain(subscription)).map(describeChange)).toEqual([])
      expect(yield* alice.client.roster.pending).toEqual([])
      expect(yield* rosterIds(bob.client)).toContain(alice.peer.id)
      // And the resumed session works both ways.
      const bobInbox = yield* bob.client.subscribe
      yield* alice.client.send(Message.message({ to: `bob|${bob.peer.id}`, data: "back" }))
      expect(yield* PubSub.take(bobInbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))).toMatchObject({
        from: to,
        data: "back"
      })
    }))
})
