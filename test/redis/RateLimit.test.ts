/**
 * The cluster's rate-limit store (`RedisRateLimit`) on a real redis-server: takes answered at once from local
 * buckets, reconciled with Redis in the background, so that a session that moved to another node keeps what was
 * left of its bucket, two stores on one key converge, and Redis going away never blocks or fails a take.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import { createClient } from "redis"
import * as RedisRateLimit from "../../src/redis/RedisRateLimit.js"
import * as RateLimit from "../../src/server/RateLimit.js"
import * as SympleServer from "../../src/server/SympleServer.js"
import { connect, eventually, expectEffect, isMessage, peer, settle } from "../server/support.js"
import { startRedis } from "./redisServer.js"
import { converged, startNodeWith } from "./support.js"

/** A plain client to read what the store wrote, closed with the scope. */
const reader = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = createClient({ url })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.close().catch(() => {}))
  )

/** A take of one token from `key`'s bucket of 10, refilled one token a minute (nothing refills during a test). */
const take = (key: string): RateLimit.Take => ({ key, tokens: 1, limit: 10, refillMillis: 60_000 })

const takeN = (store: RateLimit.Store, key: string, n: number) =>
  Array.from({ length: n }, () => store.takeUnsafe(take(key), Date.now()))

describe("RedisRateLimit", () => {
  it.live(
    "a session that resumes on another node keeps what was left of its bucket: refused after its last tokens",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const options = { resumeWindow: 5000, rateLimit: 10, rateSeconds: 600 }
        const node = { rateLimitSyncInterval: 50 }
        const a = yield* startNodeWith(Layer.empty, redis.url, options, node)
        const b = yield* startNodeWith(Layer.empty, redis.url, options, node)
        const alice = yield* peer(a, "alice", { rooms: ["lobby"] })
        const bob = yield* peer(b, "bob", { rooms: ["lobby"] })
        yield* converged([a, b], 2)
        yield* settle(alice, bob)
        // 8 of alice's 10 tokens spent on A.
        for (let n = 0; n < 8; n++) alice.send({ type: "message", to: "lobby", data: n })
        yield* expectEffect(Effect.sync(() => bob.all.filter(isMessage()).length), (n) => n === 8, "8 on A")
        alice.ws.terminate()
        yield* expectEffect(Effect.map(a.peerCount, (n) => n), (n) => n === 2, "alice still held")
        yield* Effect.sleep(100)

        const client = yield* connect(b.url)
        client.send({ type: "auth", user: "alice", resume: alice.welcome.resume, rooms: ["lobby"] })
        const welcome = yield* client.next((f) => f.type === "welcome", 5000)
        expect(welcome).toMatchObject({ resumed: true, peer: { id: alice.id } })
        // The first frame on B makes B's bucket for alice; the next round sets it to what Redis has: 1 left.
        const keys = RedisRateLimit.names()
        client.send({ type: "message", to: "lobby", data: 8 })
        const redisClient = yield* reader(redis.url)
        yield* expectEffect(
          Effect.promise(() => redisClient.get(keys.bucket(alice.id))),
          (left) => left === "1",
          "Redis counts 9 taken"
        )
        yield* Effect.sleep(150)
        for (let n = 9; n < 14; n++) client.send({ type: "message", to: "lobby", data: n })
        expect(yield* client.next((f) => f.type === "error")).toMatchObject({ status: 429 })
        expect((yield* client.closed).code).toBe(1008)
        // Frames 8 and 9 got through on B; with a full bucket there, all of 8..13 would have.
        yield* Effect.sleep(50)
        expect(bob.all.filter(isMessage()).map((f) => f.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      }).pipe(Effect.scoped),
    20_000
  )

  it.live("two stores on one Redis converge on a key within a round; Effect's RateLimiter on it is shared", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const options = { url: redis.url, prefix: "symple:test", syncInterval: 30 }
      const one = yield* RedisRateLimit.make(options)
      const two = yield* RedisRateLimit.make(options)
      expect(one.connected() && two.connected()).toBe(true)
      const keys = RedisRateLimit.names("symple:test")
      const redisClient = yield* reader(redis.url)

      // The first store takes 6: answered at once from its bucket, then sent by its own round.
      expect(takeN(one, "k", 6)).toEqual([9, 8, 7, 6, 5, 4])
      expect(one.pending("k")).toBe(6)
      yield* expectEffect(Effect.promise(() => redisClient.get(keys.bucket("k"))), (left) => left === "4", "sent")
      expect(one.pending("k")).toBe(0)
      // The second's first take starts from a full local bucket; its round brings it what the first took.
      expect(takeN(two, "k", 1)).toEqual([9])
      yield* expectEffect(Effect.promise(() => redisClient.get(keys.bucket("k"))), (left) => left === "3", "sent")
      yield* Effect.sleep(60)
      expect(takeN(two, "k", 4)).toEqual([2, 1, 0, -1])
      yield* expectEffect(Effect.promise(() => redisClient.get(keys.bucket("k"))), (left) => left === "0", "sent")
      // The first learns of the second's takes at its next round: until then its bucket is as it left it.
      expect(takeN(one, "k", 1)).toEqual([3])
      yield* expectEffect(Effect.promise(() => redisClient.get(keys.bucket("k"))), (left) => left === "-1", "both")
      yield* Effect.sleep(60)
      expect(takeN(one, "k", 1)).toEqual([-2])

      // The RateLimiterStore methods go to Redis: Effect's RateLimiter on either store counts for both.
      const limiter = (store: RedisRateLimit.Store) =>
        RateLimiter.make.pipe(Effect.provideService(RateLimiter.RateLimiterStore, store))
      const consume = { key: "api", limit: 2, window: "1 minute" } as const
      expect(yield* RateLimit.tryTake(yield* limiter(one), consume)).toBe(true)
      expect(yield* RateLimit.tryTake(yield* limiter(two), consume)).toBe(true)
      expect(yield* RateLimit.tryTake(yield* limiter(one), consume)).toBe(false)
    }).pipe(Effect.scoped))

  it.live(
    "Redis away: takes answer at once as the local bucket says; reconciling resumes when it is back",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        // A long interval: the test runs the rounds itself.
        const store = yield* RedisRateLimit.make({ url: redis.url, prefix: "symple:test", syncInterval: 60_000 })
        const keys = RedisRateLimit.names("symple:test")
        yield* redis.stop
        yield* expectEffect(Effect.sync(() => store.connected()), (c) => !c, "disconnected")
        const started = performance.now()
        expect(takeN(store, "k", 11)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1])
        expect(performance.now() - started).toBeLessThan(50)
        // A round without Redis fails quietly: what was taken is still owed.
        yield* store.reconcile
        expect(store.pending("k")).toBe(10)
        // The fixedWindow & co. fail with a typed error meanwhile.
        const failed = yield* Effect.flip(RateLimiter.make.pipe(
          Effect.provideService(RateLimiter.RateLimiterStore, store),
          Effect.flatMap((limiter) => limiter.consume({ key: "api", limit: 2, window: "1 minute" }))
        ))
        expect(failed.reason._tag).toBe("RateLimitStoreError")

        yield* redis.restart
        const redisClient = yield* reader(redis.url)
        yield* eventually(
          Effect.andThen(store.reconcile, () =>
            Effect.flatMap(
              Effect.promise(() => redisClient.get(keys.bucket("k"))),
              (left) => left === "0" ? Effect.void : Effect.fail(new Error(`left ${left}`))
            )),
          8000,
          100
        )
        expect(store.pending("k")).toBe(0)
        expect(takeN(store, "k", 1)).toEqual([-1])
      }).pipe(Effect.scoped),
    20_000
  )

  it.live("forget sends what is pending, then drops the bucket: nothing left to reconcile", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const store = yield* RedisRateLimit.make({ url: redis.url, prefix: "symple:test", syncInterval: 60_000 })
      const keys = RedisRateLimit.names("symple:test")
      const redisClient = yield* reader(redis.url)
      takeN(store, "k", 3)
      takeN(store, "other", 1)
      expect(store.pending("k")).toBe(3)
      yield* store.forget("k")
      expect(store.pending("k")).toBe(0)
      expect(store.size()).toBe(1)
      expect(yield* Effect.promise(() => redisClient.get(keys.bucket("k")))).toBe("7")
      // The next round sends the other key alone.
      yield* store.reconcile
      expect(store.pending("other")).toBe(0)
      expect(yield* Effect.promise(() => redisClient.get(keys.bucket("other")))).toBe("9")
      expect(yield* Effect.promise(() => redisClient.get(keys.bucket("k")))).toBe("7")
      // A key taken again after being forgotten starts from its local full bucket, and Redis's answer follows.
      expect(takeN(store, "k", 1)).toEqual([9])
      yield* store.reconcile
      expect(takeN(store, "k", 1)).toEqual([5])
    }).pipe(Effect.scoped))

  it.live("the server option `redis` keeps the sessions' buckets in Redis, under the broker's prefix", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      // One token back every 6 s: the key, which expires once the bucket would be full again, outlives the test.
      const server = yield* SympleServer.makeWithDefaults({
        port: 0,
        host: "127.0.0.1",
        redis: redis.url,
        rateSeconds: 600
      })
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      for (let n = 0; n < 3; n++) alice.send({ type: "message", to: "lobby", data: n })
      const redisClient = yield* reader(redis.url)
      yield* eventually(
        Effect.flatMap(
          Effect.promise(() => redisClient.get(RedisRateLimit.names().bucket(alice.id))),
          (left) => left === "97" ? Effect.void : Effect.fail(new Error(`left ${left}`))
        ),
        3000
      )
    }).pipe(Effect.scoped))
})
