import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect, startServer } from "./support.js"

const tokenMode = {
  authentication: true,
  authenticate: (_peer: unknown, auth: { readonly token?: string | undefined }) =>
    Effect.succeed({ allowed: auth.token === "right", message: "Invalid token" })
} as const

describe("authentication throttling", () => {
  it.live("a connection is closed after maxAuthFailures failed attempts (401 each, then close 1008)", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ ...tokenMode, authFailureDelay: 0 })
      const guesser = yield* connect(server.url)
      for (let i = 0; i < 10; i++) guesser.send({ type: "auth", user: "alice", token: `guess-${i}` })
      for (let i = 0; i < 3; i++) {
        expect(yield* guesser.next()).toEqual({ type: "error", status: 401, message: "Invalid token" })
      }
      expect((yield* guesser.closed).code).toBe(1008)
      // Only three were answered: the rest was never looked at.
      expect(guesser.all.filter((f) => f.type === "error").length).toBe(3)
      // A peer with the right token on a connection of its own is welcome.
      const alice = yield* connect(server.url)
      alice.send({ type: "auth", user: "alice", token: "right" })
      expect((yield* alice.next()).type).toBe("welcome")
    }).pipe(Effect.scoped))

  it.live("a guesser that floods frames behind delayed failures still gets its close 1008, not a dropped socket", () =>
    Effect.gen(function*() {
      // Over 512 frames wait behind the delayed answers: the server stops reading the socket meanwhile, and must
      // read again once it closes, or the peer's close frame is never seen.
      const server = yield* startServer({ ...tokenMode, authFailureDelay: 20, shutdownTimeout: 5000 })
      const guesser = yield* connect(server.url)
      for (let i = 0; i < 1000; i++) guesser.send({ type: "auth", user: "alice", token: `guess-${i}` })
      const closed = yield* guesser.closed
      expect(closed.code).toBe(1008)
      expect(guesser.all.filter((f) => f.type === "error").length).toBe(3)
    }).pipe(Effect.scoped))

  it.live("missing users count as failures; maxAuthFailures 0 allows any number", () =>
    Effect.gen(function*() {
      const strict = yield* startServer({ maxAuthFailures: 2, authFailureDelay: 0 })
      const a = yield* connect(strict.url)
      a.send({ type: "auth", user: "" })
      a.send({ type: "auth" })
      yield* a.next()
      yield* a.next()
      expect((yield* a.closed).code).toBe(1008)
      const lenient = yield* startServer({ ...tokenMode, maxAuthFailures: 0, authFailureDelay: 0, preAuthFrames: 50 })
      const b = yield* connect(lenient.url)
      for (let i = 0; i < 20; i++) b.send({ type: "auth", user: "bob", token: "wrong" })
      for (let i = 0; i < 20; i++) expect(yield* b.next()).toMatchObject({ status: 401 })
      b.send({ type: "auth", user: "bob", token: "right" })
      expect((yield* b.next()).type).toBe("welcome")
    }).pipe(Effect.scoped))

  it.live("a failed auth is answered after authFailureDelay, and what follows waits behind it", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ ...tokenMode, authFailureDelay: 150 })
      const client = yield* connect(server.url)
      const start = Date.now()
      client.send({ type: "auth", user: "alice", token: "wrong" })
      client.send({ type: "auth", user: "alice", token: "right" })
      expect(yield* client.next()).toEqual({ type: "error", status: 401, message: "Invalid token" })
      expect(Date.now() - start).toBeGreaterThanOrEqual(140)
      expect((yield* client.next()).type).toBe("welcome")
    }).pipe(Effect.scoped))

  it.live("frames before auth count against preAuthFrames: one more gets 429 and close 1008", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ preAuthFrames: 5 })
      const client = yield* connect(server.url)
      for (let i = 0; i < 8; i++) client.sendRaw("not json")
      for (let i = 0; i < 5; i++) expect(yield* client.next()).toMatchObject({ type: "error", status: 400 })
      expect(yield* client.next()).toEqual({
        type: "error",
        status: 429,
        message: "Too many frames before authentication"
      })
      expect((yield* client.closed).code).toBe(1008)
      // The budget is per connection, and an authenticated peer is past it.
      const other = yield* connect(server.url)
      for (let i = 0; i < 4; i++) other.sendRaw("[]")
      other.send({ type: "auth", user: "bob" })
      expect((yield* other.next((f) => f.type === "welcome")).type).toBe("welcome")
      for (let i = 0; i < 8; i++) other.send({ type: "message", to: "nobody|x" })
      yield* other.none((f) => f.type === "error" && f.status !== 400)
      expect(other.isClosed()).toBe(false)
    }).pipe(Effect.scoped))

  it.live("validation errors never quote the peer's token", () =>
    Effect.gen(function*() {
      const server = yield* startServer(tokenMode)
      const client = yield* connect(server.url)
      client.send({ type: "auth", user: "alice", token: ["secret-token"] })
      const typed = yield* client.next()
      expect(typed).toMatchObject({ type: "error", status: 400 })
      expect(typed.message).toContain("token")
      expect(JSON.stringify(typed)).not.toContain("secret-token")
      client.send({ type: "auth", user: "alice", token: "secret-token", name: { token: "secret-token" } })
      const other = yield* client.next()
      expect(other).toMatchObject({ type: "error", status: 400 })
      expect(other.message).toContain("name")
      // The name field's own content is quoted (it is not the token field), the token field is not.
      client.send({ type: "auth", user: "alice", token: "secret-token", name: 7 })
      const plain = yield* client.next()
      expect(plain).toMatchObject({ type: "error", status: 400 })
      expect(JSON.stringify(plain)).not.toContain("secret-token")
    }).pipe(Effect.scoped))
})
