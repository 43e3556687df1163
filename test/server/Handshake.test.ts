import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as SympleServer from "../../src/server/index.js"
import { connect, expectEffect, isPresenceOf, peer, startServer } from "./support.js"

describe("handshake", () => {
  it.live("anonymous auth gets a welcome without token", () =>
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

  it.live("session ids are unique per connection and auth.data keys become peer fields", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const a = yield* peer(server, "alice", { data: { peerType: "bot", agent: "raw", id: "forged", online: false } })
      const b = yield* peer(server, "alice")
      expect(a.id).not.toBe(b.id)
      expect(a.welcome.peer).toMatchObject({ id: a.id, peerType: "bot", agent: "raw", online: true, type: "Peer" })
    }).pipe(Effect.scoped))

  it.live("session ids stay distinct and alphanumeric across many connections", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      // More sessions than the server draws random bytes for at once, so the pool is refilled at least once.
      const users = Array.from({ length: 300 }, (_, i) => `u${i}`)
      const peers = yield* Effect.forEach(users, (user) => peer(server, user), { concurrency: 20 })
      const ids = peers.map((p) => p.id)
      expect(new Set(ids).size).toBe(ids.length)
      for (const id of ids) expect(id).toMatch(/^[0-9A-Za-z]{16}$/)
    }).pipe(Effect.scoped))

  it.live("name defaults to user", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const dave = yield* peer(server, "dave")
      expect(dave.welcome.peer?.name).toBe("dave")
    }).pipe(Effect.scoped))

  it.live("missing user: 401, socket stays open, a later auth succeeds", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* connect(server.url)
      client.send({ type: "auth", name: "nobody" })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "Missing user field" })
      client.send({ type: "auth", user: "" })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "Missing user field" })
      client.send({ type: "auth", user: "alice" })
      expect((yield* client.next()).type).toBe("welcome")
    }).pipe(Effect.scoped))

  it.live("non-string user: 401 and no crash", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* connect(server.url)
      client.send({ type: "auth", user: 123 })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "Missing user field" })
      yield* peer(server, "still-up")
    }).pipe(Effect.scoped))

  it.live("a first frame that is not auth: 401 Not authenticated, then close", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* connect(server.url)
      client.send({ type: "message", to: "bob", data: {} })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "Not authenticated" })
      yield* client.closed
    }).pipe(Effect.scoped))

  it.live("auth timeout: 408, then close", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authTimeout: 100 })
      const client = yield* connect(server.url)
      expect(yield* client.next()).toEqual({ type: "error", status: 408, message: "Authentication timeout" })
      yield* client.closed
      yield* expectEffect(server.connectionCount, (n) => n === 0)
    }).pipe(Effect.scoped))

  it.live("a failed auth does not stop the auth timer", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authTimeout: 200 })
      const client = yield* connect(server.url)
      client.send({ type: "auth" })
      expect((yield* client.next()).status).toBe(401)
      expect(yield* client.next()).toEqual({ type: "error", status: 408, message: "Authentication timeout" })
      yield* client.closed
    }).pipe(Effect.scoped))

  it.live("a successful auth stops the timer", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authTimeout: 100 })
      const alice = yield* peer(server, "alice")
      yield* alice.none(undefined, 250)
      expect(alice.isClosed()).toBe(false)
    }).pipe(Effect.scoped))

  it.live("token mode without a token: 401", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authentication: true, authenticate: () => Effect.succeed({ allowed: true }) })
      const client = yield* connect(server.url)
      client.send({ type: "auth", user: "alice", token: "" })
      expect(yield* client.next()).toEqual({
        type: "error",
        status: 401,
        message: "Authentication failed: Missing token"
      })
      expect(client.isClosed()).toBe(false)
    }).pipe(Effect.scoped))

  it.live("token mode without a hook refuses everyone", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authentication: true })
      const client = yield* connect(server.url)
      client.send({ type: "auth", user: "alice", token: "t" })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "Authentication failed" })
    }).pipe(Effect.scoped))

  const sessions: Record<string, { readonly user: string; readonly name: string; readonly role: string }> = {
    "tok-hank": { user: "hank", name: "Hank H", role: "admin" }
  }
  const sessionHook: SympleServer.Authenticator.AuthHook = (_peer, auth) => {
    const session = auth.token === undefined ? undefined : sessions[auth.token]
    return Effect.succeed(
      session === undefined
        ? { allowed: false, message: "Authentication failed: No session" }
        : { allowed: true, peer: session, rooms: ["team-r"] }
    )
  }

  it.live("token mode, unknown token: 401 with the hook's message", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authentication: true, authenticate: sessionHook })
      const client = yield* connect(server.url)
      client.send({ type: "auth", user: "hank", token: "nope" })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "Authentication failed: No session" })
    }).pipe(Effect.scoped))

  it.live("token mode, valid session: the session's user, name, fields and rooms win; no token anywhere", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authentication: true, authenticate: sessionHook })
      const hank = yield* peer(server, "claimed", { token: "tok-hank", rooms: ["ignored"] })
      expect(hank.welcome.peer).toMatchObject({ user: "hank", name: "Hank H", role: "admin" })
      expect(hank.welcome.rooms).toEqual(["hank", "team-r"])
      expect(JSON.stringify(hank.welcome)).not.toContain("tok-hank")
    }).pipe(Effect.scoped))

  it.live("a hook refusal is a 401 with the hook's message; a failing hook too", () =>
    Effect.gen(function*() {
      const server = yield* startServer({
        authenticate: (_peer, auth) =>
          auth.user === "boom"
            ? Effect.fail(new Error("hook exploded"))
            : Effect.succeed({ allowed: auth.token === "good", message: "Bad token" })
      })
      const client = yield* connect(server.url)
      client.send({ type: "auth", user: "gina", token: "bad" })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "Bad token" })
      client.send({ type: "auth", user: "boom" })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "hook exploded" })
      client.send({ type: "auth", user: "gina", token: "good" })
      expect((yield* client.next()).type).toBe("welcome")
    }).pipe(Effect.scoped))

  it.live("a hook that never answers is cut off by the auth timeout; other peers are not held up", () =>
    Effect.gen(function*() {
      const server = yield* startServer({
        authTimeout: 150,
        authenticate: (_peer, auth) => auth.user === "stuck" ? Effect.never : Effect.succeed({ allowed: true })
      })
      const stuck = yield* connect(server.url)
      stuck.send({ type: "auth", user: "stuck" })
      yield* peer(server, "fine")
      expect(yield* stuck.next()).toEqual({ type: "error", status: 408, message: "Authentication timeout" })
      yield* stuck.closed
    }).pipe(Effect.scoped))

  it.live("frames sent behind an auth that a slow hook is still deciding are handled after it, in order", () =>
    Effect.gen(function*() {
      const server = yield* startServer({
        authenticate: () => Effect.as(Effect.sleep(80), { allowed: true })
      })
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* connect(server.url)
      bob.send({ type: "auth", user: "bob" })
      bob.send({ type: "join", room: "lobby" })
      bob.send({ type: "message", to: ["lobby"], data: { n: 1 } })
      bob.send({ type: "leave", room: "lobby" })
      bob.send({ type: "message", to: ["lobby"], data: { n: 2 } })
      bob.send({ type: "close" })
      bob.send({ type: "message", to: ["lobby"], data: { n: 3 } })
      expect((yield* bob.next()).type).toBe("welcome")
      expect(yield* bob.next()).toEqual({ type: "join:ok", room: "lobby" })
      expect(yield* bob.next(isPresenceOf(alice, true))).toMatchObject({ type: "presence" })
      expect(yield* bob.next()).toEqual({ type: "leave:ok", room: "lobby" })
      expect((yield* bob.closed).code).toBe(1000)
      // Only the message sent while bob was in the lobby reached it: not the one after leaving, nor after close.
      const got = yield* alice.next((f) => f.type === "message")
      expect(got.data).toEqual({ n: 1 })
      yield* alice.none((f) => f.type === "message", 200)
    }).pipe(Effect.scoped))

  it.live("a peer that leaves while a slow hook decides is never registered", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authenticate: () => Effect.as(Effect.sleep(100), { allowed: true }) })
      const gone = yield* connect(server.url)
      gone.send({ type: "auth", user: "gone" })
      gone.send({ type: "join", room: "lobby" })
      yield* Effect.sleep(20)
      gone.ws.terminate()
      yield* Effect.sleep(200)
      expect(yield* server.peerCount).toBe(0)
      expect(yield* server.connectionCount).toBe(0)
      expect(yield* server.rooms).toEqual([])
    }).pipe(Effect.scoped))

  it.live("hook rooms are joined after the personal room", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authenticate: () => Effect.succeed({ allowed: true, rooms: ["team-a"] }) })
      const gina = yield* peer(server, "gina", { rooms: ["lobby"] })
      expect(gina.welcome.rooms).toEqual(["gina", "lobby", "team-a"])
    }).pipe(Effect.scoped))

  it.live("auth with rooms: lobby members see the newcomer online", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const carol = yield* peer(server, "carol", { rooms: ["lobby"] })
      expect(carol.welcome.rooms).toEqual(["carol", "lobby"])
      const seen = yield* alice.next(isPresenceOf(carol, true))
      expect(seen.from).toBe(carol.address)
      expect(seen.data).toMatchObject({ id: carol.id, user: "carol", online: true })
    }).pipe(Effect.scoped))

  it.live("presence snapshot right after welcome, one per distinct peer", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const alice = yield* peer(server, "alice", { rooms: ["lobby", "other"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      const carol = yield* peer(server, "carol", { rooms: ["lobby", "other"] })
      // The snapshot is queued before anything else reaches Carol.
      const first = [carol.pending[0], carol.pending[1]]
      expect(first.map((f) => f?.data?.id).sort()).toEqual([alice.id, bob.id].sort())
      expect(first.every((f) => f?.type === "presence" && f.data?.online === true)).toBe(true)
      yield* carol.none((f) => f.type === "presence" && f.data?.id === alice.id && f !== first[0] && f !== first[1])
      expect(carol.pending.filter(isPresenceOf(alice)).length).toBe(1)
    }).pipe(Effect.scoped))

  it.live("the token never leaves the server", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ authentication: true, authenticate: () => Effect.succeed({ allowed: true }) })
      const alice = yield* peer(server, "alice", { token: "secret-a", rooms: ["r"], data: { token: "secret-d" } })
      const bob = yield* peer(server, "bob", { token: "secret-b", rooms: ["r"] })
      const presence = yield* alice.next(isPresenceOf(bob, true))
      for (const text of [JSON.stringify(alice.welcome), JSON.stringify(bob.welcome), JSON.stringify(presence)]) {
        expect(text).not.toContain("secret")
      }
      expect(bob.welcome.rooms).toEqual(["bob", "r"])
    }).pipe(Effect.scoped))

  it.live("max connections: 503, close 1013, peer count unchanged", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ maxConnections: 1 })
      yield* peer(server, "alice")
      const bob = yield* connect(server.url)
      expect(yield* bob.next()).toEqual({ type: "error", status: 503, message: "Server at capacity" })
      expect((yield* bob.closed).code).toBe(1013)
      expect(yield* server.peerCount).toBe(1)
    }).pipe(Effect.scoped))

  it.live("any path and subprotocol offer is accepted", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* connect(server.url, { path: "/any/path?x=1", protocols: ["symple", "other"] })
      expect(client.ws.protocol).toBe("symple")
      const plain = yield* connect(server.url, { path: "/other" })
      expect(plain.ws.protocol).toBe("")
      client.send({ type: "auth", user: "alice" })
      expect((yield* client.next()).type).toBe("welcome")
    }).pipe(Effect.scoped))
})
