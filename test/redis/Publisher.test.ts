/**
 * The publishing connection (`src/redis/internal/publisher.ts`) against a real redis-server: commands rendered as
 * RESP, delivered in order, replies counted, error replies and losses counted as drops, reconnection by itself.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createClient } from "redis"
import { encodeCommand, Publisher, target } from "../../src/redis/internal/publisher.js"
import { eventually } from "../server/support.js"
import { startRedis } from "./redisServer.js"

const subscribe = (url: string, channel: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const received: Array<string> = []
      const client = createClient({ url })
      client.on("error", () => {})
      await client.connect()
      await client.subscribe(channel, (message) => received.push(message))
      return { client, received }
    }),
    ({ client }) => Effect.sync(() => client.destroy())
  )

const publisher = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const seen = { dropped: 0, ready: 0 }
      const to = target(url)
      if (to === undefined) throw new Error(`not a Redis URL: ${url}`)
      const publisher = new Publisher(to, {
        dropped: (n) => {
          seen.dropped += n
        },
        onReady: () => {
          seen.ready++
        }
      })
      await publisher.start()
      return { publisher, seen }
    }),
    ({ publisher }) => Effect.sync(() => publisher.close())
  )

const expectThat = (check: () => void) => eventually(Effect.try({ try: check, catch: (e) => e }), 3000)

describe("the publishing connection", () => {
  it("renders commands as RESP arrays of bulk strings, bytes kept as they are", () => {
    expect(encodeCommand(["PUBLISH", "ch", Buffer.from([0, 255, 13, 10])]).toString("latin1")).toBe(
      "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$4\r\n\u0000\u00ff\r\n\r\n"
    )
    expect(encodeCommand(["HSET", "k", "é"]).toString("utf8")).toBe("*3\r\n$4\r\nHSET\r\n$1\r\nk\r\n$2\r\né\r\n")
  })

  it("reads redis:// and rediss:// URLs as node-redis does, and nothing else", () => {
    expect(target("redis://u%40x:p%3Aw@example.org:7000/3")).toEqual({
      host: "example.org",
      port: 7000,
      tls: false,
      username: "u@x",
      password: "p:w",
      database: 3
    })
    expect(target("rediss://:secret@[::1]")).toEqual({
      host: "::1",
      port: 6379,
      tls: true,
      username: undefined,
      password: "secret",
      database: undefined
    })
    expect(target("http://example.org")).toBeUndefined()
    expect(target("redis://example.org/x")).toBeUndefined()
    expect(target("not a url")).toBeUndefined()
  })

  it.live("publishes in order; an error reply counts its recipients as dropped, the others are not", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const sub = yield* subscribe(redis.url, "ch")
      const { publisher: pub, seen } = yield* publisher(redis.url)
      for (let i = 0; i < 200; i++) expect(pub.send(encodeCommand(["PUBLISH", "ch", `m${i}`]), 2)).toBe(true)
      // Wrong arity: Redis answers with an error, in its place among the replies.
      pub.send(encodeCommand(["PUBLISH", "ch"]), 5)
      pub.send(encodeCommand(["PUBLISH", "ch", "last"]), 1)
      yield* expectThat(() => expect(sub.received.length).toBe(201))
      expect(sub.received).toEqual([...Array.from({ length: 200 }, (_, i) => `m${i}`), "last"])
      yield* expectThat(() => expect(seen.dropped).toBe(5))
    }).pipe(Effect.scoped))

  it.live("a publish that no subscriber receives counts its recipients as dropped (the node is not listening)", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const { publisher: pub, seen } = yield* publisher(redis.url)
      expect(pub.send(encodeCommand(["PUBLISH", "nobody", "lost"]), 4)).toBe(true)
      // Replies of 10 and more subscribers are not zeros: ten of them, then one more publish with nobody.
      const subs = yield* Effect.forEach(Array.from({ length: 10 }), () => subscribe(redis.url, "ch"))
      expect(pub.send(encodeCommand(["PUBLISH", "ch", "kept"]), 2)).toBe(true)
      expect(pub.send(encodeCommand(["PUBLISH", "nobody", "lost"]), 3)).toBe(true)
      // Commands without frames answered 0 are not counted.
      expect(pub.send(encodeCommand(["PUBLISH", "nobody", "directory"]), 0)).toBe(true)
      yield* expectThat(() => expect(subs.every((sub) => sub.received.length === 1)).toBe(true))
      yield* expectThat(() => expect(seen.dropped).toBe(7))
    }).pipe(Effect.scoped))

  it.live("Redis away: frames dropped and counted; it reconnects by itself and says so", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const { publisher: pub, seen } = yield* publisher(redis.url)
      yield* redis.stop
      yield* expectThat(() => expect(pub.ready).toBe(false))
      expect(pub.send(encodeCommand(["PUBLISH", "ch", "lost"]), 3)).toBe(false)
      // Other commands are not counted: they carry no frames.
      expect(pub.send(encodeCommand(["PUBLISH", "ch", "lost"]), 0)).toBe(false)
      expect(seen.dropped).toBe(3)
      yield* redis.restart
      yield* expectThat(() => expect(seen.ready).toBe(1))
      const sub = yield* subscribe(redis.url, "ch")
      expect(pub.send(encodeCommand(["PUBLISH", "ch", "back"]), 1)).toBe(true)
      yield* expectThat(() => expect(sub.received).toEqual(["back"]))
    }).pipe(Effect.scoped))

  it.live("a password in the URL is sent first; a wrong one makes every frame count as dropped", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const admin = createClient({ url: redis.url })
      yield* Effect.promise(async () => {
        await admin.connect()
        await admin.configSet("requirepass", "s3cret")
        admin.destroy()
      })
      const authed = `redis://:s3cret@127.0.0.1:${redis.port}`
      const sub = yield* subscribe(authed, "ch")
      const good = yield* publisher(authed)
      good.publisher.send(encodeCommand(["PUBLISH", "ch", "hello"]), 1)
      yield* expectThat(() => expect(sub.received).toEqual(["hello"]))
      const bad = yield* publisher(`redis://:wrong@127.0.0.1:${redis.port}`)
      bad.publisher.send(encodeCommand(["PUBLISH", "ch", "nope"]), 4)
      yield* expectThat(() => expect(bad.seen.dropped).toBe(4))
      expect(good.seen.dropped).toBe(0)
      expect(sub.received).toEqual(["hello"])
    }).pipe(Effect.scoped))

  it.live("the first connection failing fails the start, with no retries", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      yield* redis.stop
      const to = target(redis.url)!
      const pub = new Publisher(to, { dropped: () => {}, onReady: () => {} })
      const outcome = yield* Effect.promise(() => pub.start().then(() => "started", (e: Error) => e.message))
      expect(outcome).toContain("Cannot reach Redis")
      expect(pub.ready).toBe(false)
      yield* redis.restart
      yield* Effect.sleep("150 millis")
      expect(pub.ready).toBe(false)
    }).pipe(Effect.scoped))
})
