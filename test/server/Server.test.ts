import { describe, expect, it, vi } from "@effect/vitest"
import {
  Cause,
  ConfigProvider,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Option,
  Scope,
  Stream
} from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import * as Net from "node:net"
import type { Frame } from "../../src/protocol/index.js"
import * as SympleServer from "../../src/server/index.js"
import {
  clusterNodes,
  connect,
  eventually,
  expectEffect,
  isMessage,
  isPresenceOf,
  peer,
  startServer,
  startServerWith
} from "./support.js"

describe("server", () => {
  it.live("a defect while handling a peer's frame (a custom router that throws) ends that connection only", () =>
    Effect.gen(function*() {
      const throwing = SympleServer.Router.make({
        resolve: (state, sender, to) => {
          if (to === "boom") throw new Error("router bug")
          return SympleServer.Router.resolve(state, sender, to)
        }
      })
      const server = yield* startServerWith(Layer.succeed(SympleServer.Router.Router, throwing))
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      const carol = yield* peer(server, "carol", { rooms: ["lobby"] })
      const logged = yield* Effect.acquireRelease(
        Effect.sync(() => vi.spyOn(console, "log").mockImplementation(() => {})),
        (spy) => Effect.sync(() => spy.mockRestore())
      )
      alice.send({ type: "message", to: "boom", data: {} })
      expect((yield* alice.closed).code).toBe(1006)
      // The defect is logged with its message and stack, not as `{}`.
      const line = yield* eventually(Effect.suspend(() => {
        const found = logged.mock.calls.map((args) => args.join(" ")).find((l) => l.includes("connection failed"))
        return found === undefined ? Effect.fail(new Error("not logged")) : Effect.succeed(found)
      }))
      expect(line).toContain("router bug")
      expect(line).toMatch(/\n\s+at /)
      logged.mockRestore()
      yield* bob.next(isPresenceOf(alice, false))
      bob.send({ type: "message", to: carol.address, data: { still: "here" } })
      expect((yield* carol.next(isMessage())).data).toEqual({ still: "here" })
      expect(yield* server.peerCount).toBe(2)
    }).pipe(Effect.scoped))

  it.live("a defect is logged through the application's Logger, not the default one", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const collect = Logger.make((options) => {
        lines.push(`${String(options.message)} ${Cause.pretty(options.cause)}`)
      })
      const throwing = SympleServer.Router.make({
        resolve: () => {
          throw new Error("router bug")
        }
      })
      const server = yield* startServerWith(Layer.succeed(SympleServer.Router.Router, throwing)).pipe(
        Effect.provide(Logger.layer([collect]))
      )
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      alice.send({ type: "message", data: {} })
      expect((yield* alice.closed).code).toBe(1006)
      const line = yield* eventually(Effect.suspend(() => {
        const found = lines.find((l) => l.includes("connection failed"))
        return found === undefined ? Effect.fail(new Error("not logged")) : Effect.succeed(found)
      }))
      expect(line).toContain("router bug")
    }).pipe(Effect.scoped))

  it.live("graceful shutdown: shutdown event, close 1001, finalizers ran", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const server = yield* startServer().pipe(Scope.provide(scope))
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      const pending = yield* connect(server.url)
      yield* alice.next(isPresenceOf(bob, true))
      yield* Scope.close(scope, Exit.void)
      for (const client of [alice, bob, pending]) {
        expect(yield* client.next((f) => f.type === "event")).toEqual({
          type: "event",
          name: "shutdown",
          subtype: "shutdown",
          message: "Server shutting down"
        })
        expect(yield* client.closed).toEqual({ code: 1001, reason: "Server shutting down" })
      }
      // Peers that all leave get no offline presence about each other.
      expect(alice.pending.filter(isPresenceOf(bob, false))).toEqual([])
      expect(yield* server.peerCount).toBe(0)
      expect(yield* server.connectionCount).toBe(0)
      const refused = yield* Effect.result(connect(server.url))
      expect(refused._tag).toBe("Failure")
    }).pipe(Effect.scoped))

  it.live("virtual peer: in snapshots, routable, its handler gets frames; removal announces offline", () =>
    Effect.gen(function*() {
      const server = yield* startServer({
        authenticate: () => Effect.succeed({ allowed: true, rooms: ["public"] })
      })
      const received = yield* Deferred.make<Frame.Frame>()
      const virtual = yield* server.addVirtualPeer(
        { id: "media-server", user: "media-server", type: "media-server", codecs: ["vp8"] },
        ["public"],
        (frame) => frame.type === "message" ? Deferred.succeed(received, frame) : Effect.void
      )
      expect(virtual).toMatchObject({ id: "media-server", name: "media-server", type: "media-server", online: true })
      const alice = yield* peer(server, "alice")
      const snapshot = yield* alice.next(isPresenceOf({ id: "media-server" }, true))
      expect(snapshot).toMatchObject({
        from: "media-server|media-server",
        data: { type: "media-server", user: "media-server", codecs: ["vp8"] }
      })
      alice.send({ type: "message", to: "media-server|media-server", subtype: "call:init", data: {} })
      expect(yield* Deferred.await(received)).toMatchObject({ from: alice.address, subtype: "call:init" })
      expect(yield* server.peerCount).toBe(2)
      // A virtual peer answers through the server API, bypassing routing.
      yield* server.sendTo(alice.id, { type: "message", from: "media-server|media-server", subtype: "call:accept" })
      const accept = yield* alice.next(isMessage())
      expect(accept).toMatchObject({ subtype: "call:accept", from: "media-server|media-server" })
      const duplicate = yield* Effect.result(
        server.addVirtualPeer({ id: "media-server", user: "x" }, [], () => Effect.void)
      )
      expect(duplicate._tag === "Failure" && duplicate.failure.reason).toBe("DuplicatePeer")
      expect(yield* server.removeVirtualPeer("media-server")).toBe(true)
      yield* alice.next(isPresenceOf({ id: "media-server" }, false))
      expect(yield* server.removeVirtualPeer("media-server")).toBe(false)
      expect(yield* server.removeVirtualPeer(alice.id)).toBe(false)
    }).pipe(Effect.scoped))

  it.live("plain HTTP on the same port: /health, /, user routes; WebSocket still works", () =>
    Effect.gen(function*() {
      const routes = Layer.mergeAll(
        HttpRouter.add("GET", "/hello", HttpServerResponse.text("hi there")),
        HttpRouter.add("GET", "/broken", Effect.fail(new Error("handler failed")))
      )
      const server = yield* startServer({ routes })
      yield* peer(server, "alice", { rooms: ["lobby"] })
      const base = `http://127.0.0.1:${server.port}`
      const get = (path: string) =>
        Effect.promise(async () => {
          const response = await fetch(base + path)
          return { status: response.status, body: await response.text() }
        })
      const health = yield* get("/health")
      expect(health.status).toBe(200)
      const body = JSON.parse(health.body) as Record<string, unknown>
      expect(body).toMatchObject({ status: "ok", peers: 1, rooms: 2 })
      expect(typeof body.uptime).toBe("number")
      expect((yield* get("/")).status).toBe(426)
      expect(yield* get("/hello")).toEqual({ status: 200, body: "hi there" })
      expect((yield* get("/nope")).status).toBe(404)
      expect((yield* get("/broken")).status).toBe(500)
      expect((yield* get("/?from=link")).status).toBe(426)
      yield* peer(server, "bob")
    }).pipe(Effect.scoped))

  it.live("a route on GET / replaces the 426, and the upgrade on / still works", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ routes: HttpRouter.add("GET", "/", HttpServerResponse.text("a page")) })
      const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${server.port}/`))
      expect(response.status).toBe(200)
      expect(yield* Effect.promise(() => response.text())).toBe("a page")
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      alice.send({ type: "message", to: bob.address, data: "over /" })
      expect((yield* bob.next(isMessage())).data).toBe("over /")
    }).pipe(Effect.scoped))

  it.live("a route that clashes with a built-in one (GET /health) fails the start with a ServerError", () =>
    Effect.gen(function*() {
      const error = yield* startServer({ routes: HttpRouter.add("GET", "/health", HttpServerResponse.text("mine")) })
        .pipe(Effect.flip)
      expect(error).toBeInstanceOf(SympleServer.ServerError)
      expect(error.reason).toBe("Routes")
      expect(error.message).toContain("/health")
    }).pipe(Effect.scoped))

  it.live("HTTP timeouts: a half-sent upgrade is cut off after headersTimeout; WebSockets outlive them", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ headersTimeout: 300, requestTimeout: 600 })
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      const started = Date.now()
      const closed = yield* Effect.callback<number, Error>((resume) => {
        const socket = Net.connect(server.port, "127.0.0.1")
        socket.on("error", () => {})
        // Read (and drop) the 408 that comes first: a socket that is not read never sees the end.
        socket.resume()
        socket.on("close", () => resume(Effect.succeed(Date.now() - started)))
        // The headers of an upgrade, without the blank line that ends them.
        socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        const timer = setTimeout(() => {
          socket.destroy()
          resume(Effect.fail(new Error("the half-sent request was not cut off within 3 s")))
        }, 3000)
        return Effect.sync(() => {
          clearTimeout(timer)
          socket.destroy()
        })
      })
      expect(closed).toBeGreaterThanOrEqual(250)
      expect(closed).toBeLessThan(3000)
      // The upgraded sockets are no HTTP requests any more: requestTimeout has long passed for them.
      yield* Effect.sleep(Math.max(0, 800 - (Date.now() - started)))
      alice.send({ type: "message", to: bob.address, data: { after: "timeouts" } })
      expect((yield* bob.next(isMessage())).data).toEqual({ after: "timeouts" })
      expect(alice.isClosed() || bob.isClosed()).toBe(false)
      // Node refuses a headersTimeout above requestTimeout, and infinite ones: the server starts all the same.
      yield* startServer({ headersTimeout: "20 seconds", requestTimeout: "10 seconds" })
      yield* startServer({ headersTimeout: Duration.infinity, requestTimeout: Duration.infinity })
    }).pipe(Effect.scoped))

  it.live("server API: broadcast, sendTo, sendToUser, getPeer, peersInRoom", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const alice2 = yield* peer(server, "alice")
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      const note = (text: string): Frame.Frame => ({ type: "message", data: { text } })
      expect(yield* server.broadcast("r", note("room"), bob.id)).toBe(1)
      expect((yield* alice.next(isMessage())).data).toEqual({ text: "room" })
      yield* bob.none(isMessage())
      expect(yield* server.sendTo(bob.id, note("direct"))).toBe(true)
      expect((yield* bob.next(isMessage())).data).toEqual({ text: "direct" })
      expect(yield* server.sendTo("nobody", note("x"))).toBe(false)
      expect(yield* server.sendToUser("alice", note("user"))).toBe(2)
      yield* alice.next(isMessage())
      yield* alice2.next(isMessage())
      expect(Option.getOrThrow(yield* server.getPeer(bob.id))).toMatchObject({ user: "bob", id: bob.id })
      expect(Option.isNone(yield* server.getPeer("nobody"))).toBe(true)
      expect((yield* server.peersInRoom("r")).map((p) => p.user).sort()).toEqual(["alice", "bob"])
      expect(yield* server.peerCount).toBe(3)
    }).pipe(Effect.scoped))

  it.live("inject: routed by its own to, from kept, no shared-room rule (what a Redis publisher needs)", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const hank = yield* peer(server, "hank", { rooms: ["team-r"] })
      const ivy = yield* peer(server, "ivy", { rooms: ["team-r"] })
      const loner = yield* peer(server, "loner")
      const frame = (to: unknown): Frame.Frame =>
        ({ type: "message", from: "ruby|emitter", to, data: { n: 1 } }) as Frame.Frame
      expect(yield* server.inject(frame(hank.address))).toBe(1)
      expect(yield* hank.next(isMessage())).toMatchObject({ from: "ruby|emitter", to: hank.address })
      expect(yield* server.inject(frame(["team-r", "team-r"]))).toBe(2)
      yield* hank.next(isMessage())
      yield* ivy.next(isMessage())
      expect(yield* server.inject(frame("loner"))).toBe(1)
      yield* loner.next(isMessage())
      expect(yield* server.inject(frame(undefined))).toBe(0)
      expect(yield* server.inject(frame(42))).toBe(0)
      yield* ivy.none(isMessage())
    }).pipe(Effect.scoped))

  // Events stay per node (README, Scaling out): in the spread run each node reports its own peer, not the other's.
  it.live("events: PeerConnected and PeerDisconnected of the node's own peers", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const nodes = clusterNodes(server)
      const collected = yield* Effect.forEach(
        nodes,
        (node) => node.events.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      )
      yield* Effect.sleep(20)
      // `connect` takes the nodes in turn, so peer i is on node i.
      const peers = yield* Effect.forEach(nodes, (_, i) => peer(server, `user${i}`))
      for (const p of peers) p.ws.close()
      const events = yield* Effect.forEach(collected, Fiber.join)
      events.forEach((seen, i) => {
        expect(seen.map((e) => e._tag)).toEqual(["PeerConnected", "PeerDisconnected"])
        expect(seen.map((e) => e.peer.id)).toEqual([peers[i]!.id, peers[i]!.id])
      })
    }).pipe(Effect.scoped))

  it.live("layer and layerConfig: SYMPLE_* environment variables override options", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromEnvRecord({ SYMPLE_HOST: "127.0.0.1", SYMPLE_MAX_CONNECTIONS: "1" })
      const server = yield* SympleServer.SympleServer.pipe(
        Effect.provide(SympleServer.layerConfig({ port: 0, host: "0.0.0.0" })),
        Effect.provideService(ConfigProvider.ConfigProvider, provider)
      )
      expect(server.host).toBe("127.0.0.1")
      expect(server.port).toBeGreaterThan(0)
      const options = yield* SympleServer.ServerConfig.config.pipe(
        Effect.provideService(ConfigProvider.ConfigProvider, provider)
      )
      expect(options).toEqual({ host: "127.0.0.1", maxConnections: 1 })
    }).pipe(Effect.scoped))

  it.live("listening on a taken port fails with ServerError", () =>
    Effect.gen(function*() {
      const first = yield* startServer()
      const second = yield* Effect.result(startServer({ port: first.port }))
      expect(second._tag === "Failure" && second.failure.reason).toBe("Listen")
    }).pipe(Effect.scoped))
})
