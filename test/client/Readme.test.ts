/**
 * The README's client examples, run against a real server so that the documentation stays true.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, HashMap, PubSub, Stream } from "effect"
import { createClient, NodeSympleClient } from "../../src/client/node.js"
import { Message } from "../../src/protocol/index.js"
import * as SympleServer from "../../src/server/index.js"

describe("README client examples", () => {
  it.live("Effect style: roster as a Stream, command route, request", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })
      const bob = yield* NodeSympleClient.make({ url: server.url, user: "bob", rooms: ["lobby"] })
      // --- README (Effect) ---
      yield* bob.onCommand("media:video:*", (command) => Effect.succeed({ data: { started: command.node ?? "" } }))
      const bobPeer = yield* bob.awaitOnline

      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", rooms: ["lobby"] })
      const seen = yield* client.roster.changes.pipe(
        Stream.map((peers) => Array.from(HashMap.values(peers), (peer) => peer.user).sort()),
        Stream.takeUntil((users) => users.length === 2),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* client.awaitOnline
      const reply = yield* client.request(
        Message.command("media:video:start", { to: `bob|${bobPeer.id}` }),
        { timeout: "5 seconds" }
      )
      // --- end ---
      expect(reply.status).toBe(200)
      expect(reply.data).toEqual({ started: "media:video:start" })
      const users = Array.from(yield* Fiber.join(seen))
      expect(users.at(-1)).toEqual(["alice", "bob"])
    }))

  it.live("facade", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })
      const bob = yield* NodeSympleClient.make({ url: server.url, user: "bob", rooms: ["lobby"] })
      const bobPeer = yield* bob.awaitOnline
      const inbox = yield* bob.subscribe
      const log: Array<string> = []
      yield* Effect.promise(async () => {
        // --- README (facade) ---
        const client = createClient({ url: server.url, user: "alice", rooms: ["lobby"] })
        client.on("state", (state) => log.push(`state ${state._tag}`))
        client.on("peerConnected", (peer) => log.push(`+ ${peer.user}`))
        client.on("message", (message) => log.push(`${message.from}: ${JSON.stringify(message.data)}`))
        client.onCommand("time:*", () => ({ data: Date.now() }))
        const me = await client.connect()
        await client.send({ type: "message", to: ["lobby"], data: { text: `hello from ${me.user}` } })
        try {
          await client.request({ type: "command", node: "media:video:start", to: `bob|${bobPeer.id}` }, {
            timeout: 200
          })
        } catch (error) {
          log.push(String(error)) // a RequestError: bob has no route for it, so his client answered 404
        }
        log.push(`roster ${client.roster().map((peer) => peer.user).sort().join(",")}`)
        await client.close()
        // --- end ---
      })
      expect(log).toContain("state Online")
      expect(log).toContain("+ bob")
      expect(log).toContain("roster alice,bob")
      expect(log.some((line) => line.includes("404"))).toBe(true)
      const message = yield* PubSub.take(inbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))
      expect(message).toMatchObject({ data: { text: "hello from alice" } })
    }))
})
