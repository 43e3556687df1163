import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect, expectEffect, isMessage, peer, rawClient, settle, startServer } from "./support.js"

/** Rate limited peers go through the connection fiber; unlimited ones are routed in the socket listener. */
const modes = [{ label: "rate limited", rateLimit: 100 }, { label: "no rate limit", rateLimit: 0 }]

describe.each(modes)("limits and bad input ($label)", (mode) => {
  it.live("non-JSON and non-object JSON: 400 before and after auth, connection kept, others unaffected", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      const anon = yield* connect(server.url)
      const bad = ["this is not json", "null", "[1,2,3]", "42", "\"x\"", "", "{"]
      for (const text of bad) anon.sendRaw(text)
      for (const _ of bad) expect(yield* anon.next()).toMatchObject({ type: "error", status: 400 })
      anon.send({ type: "auth", user: "alice", rooms: ["r"] })
      const alice = { ...anon, id: (yield* anon.next((f) => f.type === "welcome")).peer!.id }
      for (const text of bad) anon.sendRaw(text)
      for (const _ of bad) expect(yield* anon.next((f) => f.type === "error")).toMatchObject({ status: 400 })
      yield* anon.none((f) => f.type === "error")
      anon.send({ type: "message", data: { text: "still here" } })
      expect((yield* bob.next(isMessage())).from).toBe(`alice|${alice.id}`)
    }).pipe(Effect.scoped))

  it.live("unknown or absent type after auth: 400 with a readable message", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice")
      alice.send({ type: "bogus" })
      expect(yield* alice.next()).toEqual({ type: "error", status: 400, message: "Unknown message type \"bogus\"" })
      alice.send({})
      expect(yield* alice.next()).toEqual({ type: "error", status: 400, message: "Missing message type" })
      alice.send({ type: "welcome" })
      expect(yield* alice.next()).toMatchObject({ type: "error", status: 400 })
      expect(alice.isClosed()).toBe(false)
    }).pipe(Effect.scoped))

  it.live("binary frames carrying JSON are handled like text; invalid UTF-8 gets 400", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const client = yield* connect(server.url)
      client.sendRaw(Buffer.from(JSON.stringify({ type: "auth", user: "alice", rooms: ["r"] })), true)
      expect((yield* client.next()).type).toBe("welcome")
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      client.sendRaw(Buffer.from(JSON.stringify({ type: "message", data: { text: "bin" } })), true)
      expect((yield* bob.next(isMessage())).data).toEqual({ text: "bin" })
      client.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), true)
      const error = yield* client.next((f) => f.type === "error")
      expect(error).toEqual({ type: "error", status: 400, message: "Invalid UTF-8" })
    }).pipe(Effect.scoped))

  it.live("a frame nested too deeply to render again: 400, connection kept, nobody gets it", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      yield* settle(alice, bob)
      // 10,000 levels: JSON.parse takes them, JSON.stringify (which recurses) does not.
      const deep = "[".repeat(10_000) + "]".repeat(10_000)
      const refused = [
        { data: `{"type":"message","from":"bob|forged","data":${deep}}`, binary: false },
        { data: `{"type":"presence","data":{"x":${deep}}}`, binary: false },
        { data: Buffer.from(`{"type":"message","data":${deep}}`), binary: true },
        // Addressed to nobody: refused all the same (the answer must not tell who would have got it).
        { data: `{"type":"event","name":"e","from":"x","to":"nobody|1","data":${deep}}`, binary: false }
      ]
      for (const { binary, data } of refused) {
        alice.sendRaw(data, binary)
        expect(yield* alice.next()).toEqual({
          type: "error",
          status: 400,
          message: "Frame cannot be forwarded: nested too deeply"
        })
      }
      // Forwarded as received, it needs no rendering.
      alice.sendRaw(`{"type":"message","data":${deep}}`)
      yield* bob.next(isMessage())
      alice.send({ type: "message", data: { text: "still here" } })
      expect((yield* bob.next(isMessage())).data).toEqual({ text: "still here" })
      yield* bob.none()
      expect(alice.isClosed()).toBe(false)
    }).pipe(Effect.scoped))

  it.live("oversize frame: 413, then close 1009 (after auth and before)", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ ...mode, maxMessageSize: 128 })
      const alice = yield* peer(server, "alice")
      alice.send({ type: "message", data: { text: "x".repeat(256) } })
      expect(yield* alice.next()).toEqual({ type: "error", status: 413, message: "Message too large" })
      expect((yield* alice.closed).code).toBe(1009)
      const early = yield* connect(server.url)
      early.sendRaw("y".repeat(256))
      expect(yield* early.next()).toEqual({ type: "error", status: 413, message: "Message too large" })
      expect((yield* early.closed).code).toBe(1009)
    }).pipe(Effect.scoped))

  it.live("the default limit is 64 KiB; above the hard cap the WebSocket layer closes with 1009", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ ...mode, maxPayload: 100_000 })
      const alice = yield* peer(server, "alice")
      alice.send({ type: "message", data: { text: "x".repeat(65_000) } })
      yield* alice.none((f) => f.type === "error")
      alice.send({ type: "message", data: { text: "x".repeat(70_000) } })
      expect(yield* alice.next()).toEqual({ type: "error", status: 413, message: "Message too large" })
      expect((yield* alice.closed).code).toBe(1009)
      const bob = yield* peer(server, "bob")
      bob.sendRaw("z".repeat(200_000))
      expect((yield* bob.closed).code).toBe(1009)
    }).pipe(Effect.scoped))

  it.live("rate limit: frames past the bucket get 429, then close 1008", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ ...mode, rateLimit: 3, rateSeconds: 10 })
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      for (let i = 1; i <= 20; i++) alice.send({ type: "message", data: { n: i } })
      expect(yield* alice.next((f) => f.type === "error")).toEqual({
        type: "error",
        status: 429,
        message: "Rate limit exceeded"
      })
      expect((yield* alice.closed).code).toBe(1008)
      yield* bob.next((f) => f.type === "presence" && f.data?.online === false)
      expect(bob.all.filter((f) => f.type === "message").map((f) => f.data?.n)).toEqual([1, 2, 3])
    }).pipe(Effect.scoped))

  it.live("the bucket refills", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ ...mode, rateLimit: 2, rateSeconds: 0.1 })
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      const delivered = Effect.sync(() => bob.all.filter((f) => f.type === "message").length)
      for (let round = 0; round < 3; round++) {
        alice.send({ type: "message", data: { round } })
        alice.send({ type: "message", data: { round } })
        // Each round is handled before the refill time starts, even on a busy machine (where frames sent apart
        // can otherwise reach the server together).
        yield* expectEffect(delivered, (n) => n === 2 * (round + 1))
        yield* Effect.sleep(120)
      }
      yield* alice.none((f) => f.type === "error")
      expect(alice.isClosed()).toBe(false)
    }).pipe(Effect.scoped))

  it.live("a client ping gets a pong and no Symple frame", () =>
    Effect.gen(function*() {
      const server = yield* startServer(mode)
      const alice = yield* peer(server, "alice")
      const pong = Effect.callback<string>((resume) => {
        alice.ws.once("pong", (data) => resume(Effect.succeed(data.toString())))
      })
      alice.ws.ping("hello")
      expect(yield* pong).toBe("hello")
      yield* alice.none()
    }).pipe(Effect.scoped))

  it.live("server pings drop peers that stop answering, and keep those that answer", () =>
    Effect.gen(function*() {
      // The dropped peer's session is held for `resumeWindow` (see Resume.test.ts), then ends. The interval leaves
      // the answering peer (in this process, like the server) room for a stalled event loop: its pong must be read
      // before the next round of pings, or it would be dropped too.
      const server = yield* startServer({ ...mode, pingInterval: 200, resumeWindow: 100 })
      const alive = yield* peer(server, "alive")
      const dead = yield* rawClient(server.port)
      dead.sendText(JSON.stringify({ type: "auth", user: "dead" }))
      yield* expectEffect(server.peerCount, (n) => n === 2)
      dead.socket.pause()
      yield* expectEffect(server.connectionCount, (n) => n === 1)
      yield* expectEffect(server.peerCount, (n) => n === 1)
      expect(alive.isClosed()).toBe(false)
    }).pipe(Effect.scoped))

  it.live("slow consumer: closed with 1013 while a fast peer in the same room gets every frame", () =>
    Effect.gen(function*() {
      const server = yield* startServer({
        ...mode,
        mailboxSize: 16,
        highWaterMark: 64 * 1024,
        rateLimit: 0,
        shutdownTimeout: 100
      })
      const fast = yield* peer(server, "fast", { rooms: ["room"] })
      const slow = yield* rawClient(server.port)
      slow.sendText(JSON.stringify({ type: "auth", user: "slow", rooms: ["room"] }))
      yield* expectEffect(server.peerCount, (n) => n === 2)
      slow.socket.pause()
      const payload = "x".repeat(16 * 1024)
      const total = 1500
      for (let i = 0; i < total; i += 10) {
        for (let j = i; j < i + 10; j++) {
          yield* server.broadcast("room", { type: "message", data: { n: j, payload } })
        }
        yield* Effect.sleep(1)
      }
      yield* expectEffect(server.stats, (s) => s.slowConsumers === 1)
      yield* expectEffect(Effect.sync(() => fast.all.filter((f) => f.type === "message").length), (n) => n === total)
      yield* expectEffect(server.peerCount, (n) => n === 1, "slow peer removed")
      expect(fast.isClosed()).toBe(false)
    }).pipe(Effect.scoped))
})
