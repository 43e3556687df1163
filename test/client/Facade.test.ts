/**
 * The Promise / callback facade against the project's server.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { AuthRefused, RequestError } from "../../src/client/ClientError.js"
import type { ClientState } from "../../src/client/ClientState.js"
import * as NodeSympleClient from "../../src/client/NodeSympleClient.js"
import type * as Frame from "../../src/protocol/Frame.js"
import * as Message from "../../src/protocol/Message.js"
import * as SympleServer from "../../src/server/index.js"
import { eventually } from "./helpers.js"

const serverOptions = { port: 0, host: "127.0.0.1", shutdownTimeout: 200 } as const

const facadeFor = (
  url: string,
  user: string,
  extra: { readonly token?: string; readonly rooms?: Array<string> } = {}
) =>
  Effect.acquireRelease(
    Effect.sync(() => NodeSympleClient.createClient({ url, user, reconnectDelay: 20, ...extra })),
    (client) => Effect.promise(() => client.close())
  )

describe("facade", () => {
  it.live("connect, listeners, send, request, onCommand, roster, close", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults(serverOptions)
      const alice = yield* facadeFor(server.url, "alice", { rooms: ["lobby"] })
      const bob = yield* facadeFor(server.url, "bob", { rooms: ["lobby"] })
      const states: Array<ClientState["_tag"]> = []
      alice.on("state", (s) => states.push(s._tag))
      const alicePeer = yield* Effect.promise(() => alice.connect())
      const bobPeer = yield* Effect.promise(() => bob.connect())
      // The listener sees the state the client was in when it was registered, then every transition.
      const order: Array<ClientState["_tag"]> = ["Closed", "Connecting", "Authenticating", "Online"]
      expect(order.filter((s) => states.includes(s))).toEqual(states)
      expect(states.slice(-2)).toEqual(["Authenticating", "Online"])
      expect(alice.state()?._tag).toBe("Online")
      expect(alice.peer()?.id).toBe(alicePeer.id)
      yield* eventually(Effect.sync(() => alice.roster().length), (n) => n === 2, "alice sees bob")
      expect(alice.getPeer(`bob|${bobPeer.id}`)?.user).toBe("bob")
      expect(alice.rooms()).toContain("lobby")

      const received: Array<Frame.Message> = []
      const off = bob.on("message", (m) => received.push(m))
      yield* Effect.promise(() => alice.send(Message.message({ to: `bob|${bobPeer.id}`, data: "hello" })))
      yield* eventually(Effect.sync(() => received.length), (n) => n === 1, "bob's message")
      expect(received[0]).toMatchObject({ data: "hello", from: `alice|${alicePeer.id}` })
      off()

      const remove = bob.onCommand("math:*", async (command) => ({
        data: Number(Message.param(command.node ?? "", 2)) * 2
      }))
      yield* Effect.sleep("20 millis")
      const reply = yield* Effect.promise(() => alice.request(Message.command("math:21", { to: `bob|${bobPeer.id}` })))
      expect(reply).toMatchObject({ status: 200, data: 42 })
      remove()
      yield* Effect.sleep("20 millis")
      const missing = yield* Effect.promise(() =>
        alice.request(Message.command("math:1", { to: `bob|${bobPeer.id}` })).then(() => undefined, (e: unknown) => e)
      )
      expect(missing).toBeInstanceOf(RequestError)
      expect((missing as RequestError).status).toBe(404)

      const gone: Array<string> = []
      alice.on("peerDisconnected", (p) => gone.push(p.id))
      yield* Effect.promise(() => bob.close())
      yield* eventually(Effect.sync(() => gone), (g) => g.includes(bobPeer.id), "bob gone")
      expect(alice.roster().map((p) => p.id)).toEqual([alicePeer.id])
      expect(bob.state()?._tag).toBe("Closed")
    }))

  it.live("connect rejects with AuthRefused when the server refuses", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({
        ...serverOptions,
        authentication: true,
        authenticate: () => Effect.succeed({ allowed: false, message: "Bad token" })
      })
      const eve = yield* facadeFor(server.url, "eve", { token: "nope" })
      const error = yield* Effect.promise(() => eve.connect().then(() => undefined, (e: unknown) => e))
      expect(error).toBeInstanceOf(AuthRefused)
      expect(error).toMatchObject({ status: 401, message: "Bad token" })
      const state = eve.state()
      expect(state?._tag === "Error" && state.retrying).toBe(false)
    }))
})
