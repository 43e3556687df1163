/**
 * Session resume against the server, over real sockets: a connection that drops (no close frame) leaves its session
 * detached for `resumeWindow`; an `auth` offering the session's token takes it back (same id, rooms, bucket, what
 * was routed to it meanwhile) while its neighbours see nothing; anything else is a new session.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Context, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import * as PeerRegistry from "../../src/server/PeerRegistry.js"
import * as State from "../../src/server/State.js"
import type * as SympleServer from "../../src/server/SympleServer.js"
import {
  type Client,
  clusterConnections,
  clusterStats,
  connect,
  expectEffect,
  isPresenceOf,
  type Peer,
  peer,
  rawClient,
  type Received,
  settle,
  startServerWith
} from "./support.js"

/**
 * A server whose registry the test can read (to see sessions detached). In the spread run each node builds the
 * layer, so each has a registry of its own; a session is detached or not on the node that holds it.
 */
const start = (options: Partial<SympleServer.ServerOptions> = {}) =>
  Effect.gen(function*() {
    const registries: Array<Context.Service.Shape<typeof PeerRegistry.PeerRegistry>> = []
    const registry = Layer.effect(
      PeerRegistry.PeerRegistry,
      Effect.tap(PeerRegistry.make, (made) => Effect.sync(() => registries.push(made)))
    )
    const server = yield* startServerWith(registry, options)
    const detached = (id: string) =>
      Effect.sync(() => {
        for (const held of registries) {
          const session = State.session(held.snapshotUnsafe(), id)
          if (session !== undefined && session.member.handle.node === undefined) return session.detached
        }
        return undefined
      })
    return { server, detached } as const
  })

type Started = Effect.Success<ReturnType<typeof start>>

const tokenOf = (welcome: Received): string => {
  expect(typeof welcome.resume).toBe("string")
  expect(welcome.resume).not.toBe("")
  return welcome.resume as string
}

/** The socket dies under the peer (no close frame); returns once the server holds the session detached. */
const blip = (started: Started, p: Peer) =>
  Effect.gen(function*() {
    p.ws.terminate()
    yield* expectEffect(started.detached(p.id), (d) => d === true, "session detached")
  })

/** A new socket offering `token` for `user`; returns the client and its welcome (or error). */
const comeBack = (server: SympleServer.Server, user: string, token: string, auth: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const client = yield* connect(server.url)
    client.send({ type: "auth", user, resume: token, ...auth })
    const welcome = yield* client.next((f) => f.type === "welcome" || f.type === "error")
    return { client, welcome } as const
  })

const messages = (client: Client) => client.all.filter((f) => f.type === "message")

/** What a client receives from now on. */
const from = (client: Client) => {
  const at = client.all.length
  return () => client.all.slice(at)
}
const presencesOf = (frames: ReadonlyArray<Received>, id: string) => frames.filter(isPresenceOf({ id }))

describe("session resume", () => {
  it.live("a blip: the same session back, every frame routed meanwhile once and in order, neighbours see nothing", () =>
    Effect.gen(function*() {
      const started = yield* start({ resumeWindow: 300 })
      const { server } = started
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      const carol = yield* peer(server, "carol", { rooms: ["lobby"] })
      yield* settle(alice, bob, carol)
      const atBob = from(bob)
      const atCarol = from(carol)
      const first = tokenOf(alice.welcome)
      yield* blip(started, alice)
      // Still a peer, reachable, in its rooms; no longer a connection.
      expect(yield* server.peerCount).toBe(3)
      expect(yield* clusterConnections(server)).toBe(2)
      expect((yield* server.peersInRoom("lobby")).map((p) => p.id)).toContain(alice.id)

      // Frames for the absent peer: direct, to its room, to its user, through the server's API.
      for (let n = 0; n < 40; n++) bob.send({ type: "message", to: alice.address, data: { n } })
      // Frames of different senders are in the order the server receives them: carol's goes after bob's.
      yield* expectEffect(clusterStats(server), (s) => s.received === 40)
      carol.send({ type: "message", to: "lobby", data: { n: 40 } })
      yield* expectEffect(clusterStats(server), (s) => s.received === 41)
      bob.send({ type: "message", to: "alice", data: { n: 41 } })
      yield* expectEffect(clusterStats(server), (s) => s.received === 42)
      expect(yield* server.sendTo(alice.id, { type: "message", data: { n: 42 } })).toBe(true)

      const back = yield* comeBack(server, "alice", first, { rooms: ["lobby"] })
      expect(back.welcome).toMatchObject({
        type: "welcome",
        status: 200,
        resumed: true,
        peer: { id: alice.id, user: "alice" },
        rooms: ["alice", "lobby"]
      })
      const second = tokenOf(back.welcome)
      expect(second).not.toBe(first)
      // What came next, live, follows what was held.
      bob.send({ type: "message", to: alice.address, data: { n: 43 } })
      yield* expectEffect(Effect.sync(() => messages(back.client).length), (n) => n === 44)
      expect(messages(back.client).map((f) => f.data?.n)).toEqual(Array.from({ length: 44 }, (_, n) => n))
      // Nothing but the messages after the welcome: no presence snapshot, no duplicate.
      expect(back.client.all.map((f) => f.type)).toEqual(["welcome", ...Array(44).fill("message")])
      expect(yield* started.detached(alice.id)).toBe(false)

      // Past the window: the neighbours never saw alice go or come, and she never got a frame twice.
      yield* Effect.sleep(400)
      expect(presencesOf(atBob(), alice.id)).toEqual([])
      expect(presencesOf(atCarol(), alice.id)).toEqual([])
      expect(messages(back.client)).toHaveLength(44)
      // Neither token ever reached anyone else.
      for (const other of [bob, carol]) {
        expect(JSON.stringify(other.all)).not.toContain(first.slice(0, 20))
        expect(JSON.stringify(other.all)).not.toContain(second.slice(0, 20))
      }
      // The resumed session is an ordinary one: it sends, joins, and its neighbours answer it.
      back.client.send({ type: "message", to: bob.address, data: "back" })
      expect(yield* bob.next((f) => f.type === "message" && f.from === alice.address)).toMatchObject({ data: "back" })
      back.client.send({ type: "join", room: "extra" })
      expect(yield* back.client.next((f) => f.type === "join:ok")).toMatchObject({ room: "extra" })
    }).pipe(Effect.scoped))

  it.live("a session dropped for missing pings is held too, and resumed with the token of its welcome", () =>
    Effect.gen(function*() {
      const started = yield* start({ pingInterval: 40, resumeWindow: 5000 })
      const bob = yield* peer(started.server, "bob", { rooms: ["lobby"] })
      const dead = yield* rawClient(started.server.port)
      dead.sendText(JSON.stringify({ type: "auth", user: "dan", rooms: ["lobby"] }))
      yield* expectEffect(Effect.sync(() => /"resume":"([^"]+)"/.exec(dead.received())), (m) => m !== null)
      const token = /"resume":"([^"]+)"/.exec(dead.received())![1]!
      const id = /"id":"([^"]+)"/.exec(dead.received())![1]!
      dead.socket.pause()
      yield* expectEffect(started.detached(id), (d) => d === true, "held after the ping timeout")
      const atBob = from(bob)
      bob.send({ type: "message", to: `dan|${id}`, data: "are you there?" })
      const back = yield* comeBack(started.server, "dan", token)
      expect(back.welcome).toMatchObject({ resumed: true, peer: { id } })
      expect(yield* back.client.next()).toMatchObject({ type: "message", data: "are you there?" })
      yield* Effect.sleep(100)
      expect(presencesOf(atBob(), id)).toEqual([])
    }).pipe(Effect.scoped))

  it.live("the window passes: one offline presence, then the token gives a new session", () =>
    Effect.gen(function*() {
      const started = yield* start({ resumeWindow: 300 })
      const alice = yield* peer(started.server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(started.server, "bob", { rooms: ["lobby"] })
      yield* settle(alice, bob)
      const atBob = from(bob)
      const token = tokenOf(alice.welcome)
      yield* blip(started, alice)
      expect(presencesOf(atBob(), alice.id)).toEqual([])
      const offline = yield* bob.next(isPresenceOf(alice, false))
      expect(offline.from).toBe(alice.address)
      expect(yield* started.detached(alice.id)).toBeUndefined()
      expect(yield* started.server.peerCount).toBe(1)
      // A frame for the old session reaches nobody now.
      bob.send({ type: "message", to: alice.address, data: "too late" })

      const back = yield* comeBack(started.server, "alice", token, { rooms: ["lobby"] })
      expect(back.welcome).toMatchObject({ type: "welcome", resumed: false, rooms: ["alice", "lobby"] })
      expect(back.welcome.peer!.id).not.toBe(alice.id)
      expect(tokenOf(back.welcome)).not.toBe(token)
      // A new session: a presence snapshot, and bob sees it come online.
      expect(yield* back.client.next(isPresenceOf(bob, true))).toBeDefined()
      yield* bob.next(isPresenceOf({ id: back.welcome.peer!.id }, true))
      yield* settle(bob)
      expect(presencesOf(atBob(), alice.id)).toHaveLength(1)
      expect(messages(back.client)).toEqual([])
    }).pipe(Effect.scoped))

  it.live("forged, reused and foreign tokens get a new session (resumed: false), never an error", () =>
    Effect.gen(function*() {
      const started = yield* start({ resumeWindow: 5000 })
      const { server } = started
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      yield* settle(alice, bob)
      const first = tokenOf(alice.welcome)
      const [secret] = first.split(".")
      yield* blip(started, alice)

      const attempts = [
        { user: "alice", token: "not-a-token" },
        { user: "alice", token: `${secret}.nobody` },
        { user: "alice", token: `${"A".repeat(secret!.length)}.${alice.id}` },
        { user: "alice", token: `${secret!.slice(0, -1)}.${alice.id}` },
        // alice's own token, offered by someone else.
        { user: "mallory", token: first }
      ]
      for (const attempt of attempts) {
        const other = yield* comeBack(server, attempt.user, attempt.token)
        expect(other.welcome, attempt.token).toMatchObject({ type: "welcome", resumed: false })
        expect(other.welcome.peer!.id).not.toBe(alice.id)
        other.client.send({ type: "close" })
      }
      // None of them disturbed alice's session: it is still held, and her token still works, once.
      expect(yield* started.detached(alice.id)).toBe(true)
      bob.send({ type: "message", to: alice.address, data: "held" })
      const back = yield* comeBack(server, "alice", first)
      expect(back.welcome).toMatchObject({ resumed: true, peer: { id: alice.id } })
      expect(yield* back.client.next((f) => f.type === "message")).toMatchObject({ data: "held" })

      // Dropped again: the token used once is worth nothing now; the one of the last welcome works.
      const again: Peer = { ...alice, ...back.client, welcome: back.welcome }
      yield* blip(started, again)
      const reused = yield* comeBack(server, "alice", first)
      expect(reused.welcome).toMatchObject({ resumed: false })
      expect(reused.welcome.peer!.id).not.toBe(alice.id)
      const current = yield* comeBack(server, "alice", tokenOf(back.welcome))
      expect(current.welcome).toMatchObject({ resumed: true, peer: { id: alice.id } })
      // And no token of alice's ever reached another peer.
      expect(JSON.stringify(bob.all)).not.toContain(secret)
    }).pipe(Effect.scoped))

  it.live("a token of a session that is still connected does not take it over", () =>
    Effect.gen(function*() {
      const started = yield* start({ resumeWindow: 5000 })
      const alice = yield* peer(started.server, "alice")
      const other = yield* comeBack(started.server, "alice", tokenOf(alice.welcome))
      expect(other.welcome).toMatchObject({ resumed: false })
      expect(other.welcome.peer!.id).not.toBe(alice.id)
      expect(alice.isClosed()).toBe(false)
      expect(yield* started.detached(alice.id)).toBe(false)
    }).pipe(Effect.scoped))

  it.live("token mode: the credentials are checked again before a session is resumed", () =>
    Effect.gen(function*() {
      const started = yield* start({
        resumeWindow: 5000,
        authentication: true,
        authFailureDelay: 0,
        authenticate: (_peer, auth) =>
          Effect.succeed(auth.token === "good" ? { allowed: true } : { allowed: false, message: "Invalid token" })
      })
      const alice = yield* peer(started.server, "alice", { token: "good" })
      const token = tokenOf(alice.welcome)
      yield* blip(started, alice)
      const refused = yield* comeBack(started.server, "alice", token, { token: "bad" })
      expect(refused.welcome).toMatchObject({ type: "error", status: 401, message: "Invalid token" })
      expect(yield* started.detached(alice.id)).toBe(true)
      const back = yield* comeBack(started.server, "alice", token, { token: "good" })
      expect(back.welcome).toMatchObject({ resumed: true, peer: { id: alice.id } })
    }).pipe(Effect.scoped))

  it.live("a resumed session keeps its rate-limit bucket: a blip does not refill it", () =>
    Effect.gen(function*() {
      const started = yield* start({ resumeWindow: 5000, rateLimit: 5, rateSeconds: 60 })
      const alice = yield* peer(started.server, "alice", { rooms: ["lobby"] })
      for (let n = 0; n < 4; n++) alice.send({ type: "message", to: "lobby", data: n })
      yield* expectEffect(clusterStats(started.server), (s) => s.received === 4)
      yield* blip(started, alice)
      const back = yield* comeBack(started.server, "alice", tokenOf(alice.welcome))
      expect(back.welcome).toMatchObject({ resumed: true })
      back.client.send({ type: "message", to: "lobby", data: 4 })
      back.client.send({ type: "message", to: "lobby", data: 5 })
      expect(yield* back.client.next((f) => f.type === "error")).toMatchObject({ status: 429 })
      expect((yield* back.client.closed).code).toBe(1008)
    }).pipe(Effect.scoped))

  it.live("too much routed to a held session ends it, as for a slow consumer: by count, and by bytes", () =>
    Effect.gen(function*() {
      for (const limit of ["frames", "bytes"] as const) {
        const scope = yield* Scope.make()
        // Every frame is the same size: the text as bob sends it, `from` added, in a WebSocket frame (4-byte header).
        const data = "x".repeat(150)
        const size = 4 + Buffer.byteLength(JSON.stringify({ type: "message", to: "alice|0123456789abcdef", data })) +
          Buffer.byteLength(",\"from\":\"bob|0123456789abcdef\"")
        const limits = limit === "frames"
          ? { resumeBufferSize: 5 }
          : { resumeBufferBytes: Math.floor(size * 5.5), resumeBufferSize: 100 }
        const started = yield* start({ resumeWindow: 5000, ...limits }).pipe(Scope.provide(scope))
        const alice = yield* peer(started.server, "alice", { rooms: ["lobby"] }).pipe(Scope.provide(scope))
        const bob = yield* peer(started.server, "bob", { rooms: ["lobby"] }).pipe(Scope.provide(scope))
        expect(alice.id).toHaveLength(16)
        yield* settle(alice, bob)
        const atBob = from(bob)
        yield* blip(started, alice)
        // Five frames fit; the sixth does not.
        for (let n = 0; n < 5; n++) bob.send({ type: "message", to: alice.address, data })
        yield* expectEffect(clusterStats(started.server), (s) => s.received === 5)
        expect(yield* started.detached(alice.id), limit).toBe(true)
        bob.send({ type: "message", to: alice.address, data })
        yield* bob.next(isPresenceOf(alice, false))
        expect((yield* clusterStats(started.server)).slowConsumers).toBe(1)
        expect(yield* started.detached(alice.id)).toBeUndefined()
        const back = yield* comeBack(started.server, "alice", tokenOf(alice.welcome)).pipe(Scope.provide(scope))
        expect(back.welcome).toMatchObject({ resumed: false })
        yield* settle(bob)
        expect(presencesOf(atBob(), alice.id)).toHaveLength(1)
        yield* Scope.close(scope, Exit.void)
      }
    }).pipe(Effect.scoped))

  it.live("clean closes are never resumable: close frame, WebSocket close, limit violation, shutdown", () =>
    Effect.gen(function*() {
      const started = yield* start({ resumeWindow: 30_000, rateLimit: 3, rateSeconds: 60 })
      const bob = yield* peer(started.server, "bob", { rooms: ["lobby"] })
      const ends: ReadonlyArray<readonly [string, (p: Peer) => void]> = [
        ["close frame", (p) => p.send({ type: "close" })],
        ["WebSocket close", (p) => p.ws.close(1000)],
        ["WebSocket close, no code", (p) => p.ws.close()],
        ["rate limit", (p) => {
          for (let n = 0; n < 4; n++) p.send({ type: "message", to: "lobby", data: n })
        }]
      ]
      for (const [label, leave] of ends) {
        const alice = yield* peer(started.server, "alice", { rooms: ["lobby"] })
        yield* bob.next(isPresenceOf(alice, true))
        leave(alice)
        // Offline at once, without waiting for the window.
        yield* bob.next(isPresenceOf(alice, false))
        expect(yield* started.detached(alice.id), label).toBeUndefined()
        const back = yield* comeBack(started.server, "alice", tokenOf(alice.welcome), { rooms: ["lobby"] })
        expect(back.welcome, label).toMatchObject({ resumed: false })
        back.client.send({ type: "close" })
        yield* bob.next(isPresenceOf({ id: back.welcome.peer!.id }, false))
      }

      // Shutdown: the sessions held end with it (nothing waits for their window), each with its PeerDisconnected.
      const scope = yield* Scope.make()
      const other = yield* start({ resumeWindow: 30_000 }).pipe(Scope.provide(scope))
      const events = yield* other.server.events.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      const dan = yield* peer(other.server, "dan")
      yield* blip(other, dan)
      yield* Scope.close(scope, Exit.void)
      expect((yield* Fiber.join(events)).map((event) => event._tag)).toEqual(["PeerConnected", "PeerDisconnected"])
    }).pipe(Effect.scoped))

  it.live("resumeWindow 0: no token in welcome, a dropped session ends at once, an offered token is ignored", () =>
    Effect.gen(function*() {
      const started = yield* start({ resumeWindow: 0 })
      const alice = yield* peer(started.server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(started.server, "bob", { rooms: ["lobby"] })
      expect(alice.welcome).not.toHaveProperty("resume")
      alice.ws.terminate()
      yield* bob.next(isPresenceOf(alice, false))
      const back = yield* comeBack(started.server, "alice", "anything")
      expect(back.welcome).not.toHaveProperty("resume")
      expect(back.welcome).not.toHaveProperty("resumed")
    }).pipe(Effect.scoped))

  it.live("tokens: a new one in every welcome, unguessable, never in presence", () =>
    Effect.gen(function*() {
      const started = yield* start()
      const watcher = yield* peer(started.server, "watcher", { rooms: ["lobby"] })
      const tokens = new Set<string>()
      for (let n = 0; n < 20; n++) {
        const p = yield* peer(started.server, "same", { rooms: ["lobby"] })
        const token = tokenOf(p.welcome)
        // At least 128 random bits: 22 characters of base64url before the session id.
        expect(token.split(".")[0]!.length).toBeGreaterThanOrEqual(22)
        expect(p.welcome).not.toHaveProperty("resumed")
        expect(p.welcome.peer).not.toHaveProperty("resume")
        tokens.add(token)
        p.send({ type: "presence", data: { status: "here" } })
        p.send({ type: "close" })
      }
      expect(tokens.size).toBe(20)
      yield* expectEffect(Effect.sync(() => watcher.all.filter((f) => f.type === "presence").length), (n) => n === 60)
      const seen = JSON.stringify(watcher.all)
      for (const token of tokens) expect(seen).not.toContain(token.split(".")[0])
    }).pipe(Effect.scoped))
})
