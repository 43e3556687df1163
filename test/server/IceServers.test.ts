import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect } from "effect"
import * as Frame from "../../src/protocol/Frame.js"
import * as IceServers from "../../src/server/IceServers.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import { peer, startServer } from "./support.js"

const turn = { secret: "north-wind", urls: ["turn:turn.example.org:3478", "turns:turn.example.org:5349"] }

const http = (url: string) => url.replace(/^ws/, "http")

const get = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { headers })
    return { status: response.status, cache: response.headers.get("cache-control"), body: await response.json() }
  })

describe("server/IceServers", () => {
  it("credential is base64(HMAC-SHA1(secret, username)): known answers", () => {
    // RFC 2202, HMAC-SHA1 test case 2 (digest effcdf6ae5eb2fa2d27416d5f184df9c259a7c79).
    expect(IceServers.credential("Jefe", "what do ya want for nothing?")).toBe("7/zfauXrL6LSdBbV8YTfnCWafHk=")
    // A TURN REST username, checked with `openssl dgst -sha1 -hmac north-wind -binary | base64`.
    expect(IceServers.credential("north-wind", "1700086400:alice")).toBe("2cdv8ItP/4kX53j3SEoTDhjFpeM=")
  })

  it("a TURN server entry: username \"<expiry>:<user>\", expiring ttl seconds from now, with its credential", () => {
    const now = 1_700_000_000_123
    expect(IceServers.turnServer(turn, "alice", now)).toEqual({
      urls: turn.urls,
      username: "1700086400:alice",
      credential: "2cdv8ItP/4kX53j3SEoTDhjFpeM="
    })
    const short = IceServers.turnServer({ ...turn, ttl: "10 minutes" }, "bob", now)
    expect(short.username).toBe("1700000600:bob")
    expect(short.credential).toBe(IceServers.credential("north-wind", "1700000600:bob"))
    expect(IceServers.ttlSeconds(turn)).toBe(86400)
    expect(IceServers.ttlSeconds({ ...turn, ttl: Duration.millis(1) })).toBe(1)
  })

  it("the list for a user: the static servers first, then TURN; nothing when nothing is configured", () => {
    const stun = { urls: "stun:stun.example.org:3478" }
    const list = IceServers.forUser({ iceServers: [stun], turn }, "alice", 1_700_000_000_000)
    expect(list).toHaveLength(2)
    expect(list[0]).toEqual(stun)
    expect(list[1]).toMatchObject({ urls: turn.urls, username: "1700086400:alice" })
    expect(IceServers.forUser({}, "alice", 0)).toEqual([])
    expect(IceServers.isConfigured({})).toBe(false)
    expect(IceServers.isConfigured({ iceServers: [] })).toBe(false)
    expect(IceServers.isConfigured({ turn: { ...turn, urls: [] } })).toBe(false)
    expect(IceServers.isConfigured({ iceServers: [stun] })).toBe(true)
    expect(IceServers.isConfigured({ turn })).toBe(true)
  })

  it.effect("SYMPLE_ICE_SERVERS, SYMPLE_TURN_SECRET, SYMPLE_TURN_URLS and SYMPLE_TURN_TTL (ms) configure them", () =>
    Effect.gen(function*() {
      const read = (env: Record<string, string>) =>
        ServerConfig.config.pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })))
      const options = yield* read({
        SYMPLE_ICE_SERVERS: "stun:a.example.org:3478, stun:b.example.org",
        SYMPLE_TURN_SECRET: "north-wind",
        SYMPLE_TURN_URLS: "turn:turn.example.org:3478,turns:turn.example.org:5349",
        SYMPLE_TURN_TTL: "600000"
      })
      expect(options.iceServers).toEqual([{ urls: "stun:a.example.org:3478" }, { urls: "stun:b.example.org" }])
      expect(options.turn?.secret).toBe("north-wind")
      expect(options.turn?.urls).toEqual(turn.urls)
      expect(IceServers.ttlSeconds(options.turn!)).toBe(600)
      const untimed = yield* read({ SYMPLE_TURN_SECRET: "s", SYMPLE_TURN_URLS: "turn:t" })
      expect(untimed.turn).toEqual({ secret: "s", urls: ["turn:t"] })
      const none = yield* read({})
      expect(none.iceServers).toBeUndefined()
      expect(none.turn).toBeUndefined()
    }))

  it.live("the welcome carries iceServers, with TURN credentials minted for the session's user", () =>
    Effect.gen(function*() {
      const stun = { urls: "stun:stun.example.org:3478" }
      const server = yield* startServer({ iceServers: [stun], turn: { ...turn, ttl: "1 hour" } })
      const before = Math.floor(Date.now() / 1000)
      const alice = yield* peer(server, "alice")
      const iceServers = alice.welcome.iceServers as ReadonlyArray<{ username?: string; credential?: string }>
      expect(iceServers[0]).toEqual(stun)
      const minted = iceServers[1]!
      const [expiry, user] = minted.username!.split(":")
      expect(user).toBe("alice")
      expect(Number(expiry) - before).toBeGreaterThanOrEqual(3600)
      expect(Number(expiry) - before).toBeLessThanOrEqual(3601)
      expect(minted.credential).toBe(IceServers.credential(turn.secret, minted.username!))
      // The client decodes it as part of the welcome.
      const decoded = Frame.decode(JSON.stringify(alice.welcome))
      expect(decoded._tag === "Success" && decoded.success.type === "welcome" && decoded.success.iceServers)
        .toEqual(iceServers)
      // Nothing configured (and resume off, whose token is the other extension): the welcome is the plain one the
      // reference clients know.
      const plain = yield* startServer({ resumeWindow: 0 })
      const bob = yield* peer(plain, "bob")
      expect(Object.keys(bob.welcome).sort()).toEqual(["peer", "protocol", "rooms", "status", "type"])
    }))

  it.live("GET /ice is authenticated like auth (Bearer token or ?token=): 200 with the user's servers, else 401", () =>
    Effect.gen(function*() {
      const server = yield* startServer({
        authentication: true,
        authFailureDelay: 0,
        authenticate: (_peer, auth) => Effect.succeed({ allowed: auth.token === `${auth.user}-pass` }),
        turn
      })
      const base = `${http(server.url)}/ice`
      const bearer = yield* get(`${base}?user=alice`, { authorization: "Bearer alice-pass" })
      expect(bearer.status).toBe(200)
      expect(bearer.cache).toBe("no-store")
      expect(bearer.body.ttl).toBe(86400)
      expect(bearer.body.iceServers).toHaveLength(1)
      expect(bearer.body.iceServers[0].username).toMatch(/^\d+:alice$/)
      expect(bearer.body.iceServers[0].credential).toBe(
        IceServers.credential(turn.secret, bearer.body.iceServers[0].username)
      )
      const query = yield* get(`${base}?user=bob&token=bob-pass`)
      expect(query.status).toBe(200)
      expect(query.body.iceServers[0].username).toMatch(/^\d+:bob$/)
      for (
        const [url, headers] of [
          [`${base}?user=alice`, {}],
          [`${base}?user=alice&token=bob-pass`, {}],
          [`${base}?user=alice`, { authorization: "Bearer wrong" }],
          [`${base}?user=alice`, { authorization: "Basic alice-pass" }],
          [`${base}?token=alice-pass`, {}]
        ] as const
      ) {
        const refused = yield* get(url, headers)
        expect(refused.status, url).toBe(401)
        expect(refused.body.status).toBe(401)
        expect(refused.body.iceServers).toBeUndefined()
      }
      // A server without ICE servers has no such route.
      const plain = yield* startServer()
      expect((yield* Effect.promise(() => fetch(`${http(plain.url)}/ice?user=a`))).status).toBe(404)
    }))
})
