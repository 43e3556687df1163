/**
 * Compatibility with deployments of the JavaScript Symple server: token sessions at `symple:session:<token>`, and
 * frames published on `symple:broadcast` (routed as `inject` routes them, on every node, each recipient once).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createClient } from "redis"
import { connect, isMessage, peer, type Received } from "../server/support.js"
import { startRedis } from "./redisServer.js"
import { converged, startNode } from "./support.js"

const text = (t: string) => (f: Received) => f.data?.text === t

const redisClient = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = createClient({ url })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

describe("JavaScript server compatibility", () => {
  it.live("token mode with no hook: sessions stored at symple:session:<token>", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const client = yield* redisClient(redis.url)
      yield* Effect.promise(() =>
        client.set(
          "symple:session:tok-hank",
          JSON.stringify({ user: "hank", name: "Hank (from session)", rooms: ["team-r"], role: "admin" })
        )
      )
      yield* Effect.promise(() => client.set("symple:session:tok-nina", JSON.stringify({ user: "nina" })))
      yield* Effect.promise(() => client.set("symple:session:tok-string", JSON.stringify("hank")))
      const server = yield* startNode(redis.url, { authentication: true, redis: redis.url })
      const hank = yield* peer(server, "someone-else", { name: "Claimed", token: "tok-hank" })
      expect(hank.welcome.peer).toMatchObject({ user: "hank", name: "Hank (from session)", role: "admin" })
      expect(hank.welcome.rooms).toEqual(["hank", "team-r"])
      const nina = yield* peer(server, "nina", { token: "tok-nina", rooms: ["admins"] })
      expect(nina.welcome.rooms).toEqual(["nina", "admins"])
      for (const [token, message] of [["nope", "No session"], ["tok-string", "Session must be an object"]]) {
        const refused = yield* connect(server.url)
        refused.send({ type: "auth", user: "x", token })
        expect(yield* refused.next()).toEqual({
          type: "error",
          status: 401,
          message: `Authentication failed: ${message}`
        })
      }
    }).pipe(Effect.scoped))

  it.live("symple:broadcast: routed by its to on every node, from kept, each recipient once", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const client = yield* redisClient(redis.url)
      const a = yield* startNode(redis.url)
      const b = yield* startNode(redis.url)
      const hank = yield* peer(a, "hank", { rooms: ["team-r"] })
      const ivan = yield* peer(b, "ivan", { rooms: ["team-r"] })
      yield* converged([a, b], 2)
      const publish = (payload: unknown) =>
        Effect.promise(() => client.publish("symple:broadcast", JSON.stringify(payload)))
      yield* publish({ type: "message", from: "rails", to: hank.address, data: { text: "to hank" } })
      yield* publish({ type: "event", name: "x", to: ["team-r"], data: { text: "to team-r" } })
      yield* publish({ type: "message", from: "rails", to: "ivan", data: { text: "to ivan's room" } })
      yield* Effect.promise(() => client.publish("symple:broadcast", "not json"))
      expect((yield* hank.next(isMessage(text("to hank")))).from).toBe("rails")
      yield* hank.next(text("to team-r"))
      yield* ivan.next(text("to team-r"))
      yield* ivan.next(isMessage(text("to ivan's room")))
      yield* Effect.sleep(150)
      expect(hank.all.filter(text("to team-r")).length).toBe(1)
      expect(ivan.all.filter(text("to team-r")).length).toBe(1)
      expect(ivan.all.filter(text("to hank")).length).toBe(0)
    }).pipe(Effect.scoped))
})
