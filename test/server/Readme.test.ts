/**
 * The README's example of services provided by Layer, run against real peers, and checked to be the README's text.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as SympleServer from "../../src/server/index.js"
import { readme, snippet } from "../support/readmeSnippet.js"
import { connect, isMessage, peer, settle } from "./support.js"

describe("README server examples", () => {
  it("the example of custom services is the README's", () => {
    const source = Fs.readFileSync(new URL(import.meta.url), "utf8")
    const code = snippet(source, "custom services").replace("port: 0, host: \"127.0.0.1\"", "port: 4500")
    expect(code.length).toBeGreaterThan(500)
    expect(readme()).toContain(code)
  })

  it.live("a custom Router and a custom Authenticator provided by Layer", () =>
    Effect.gen(function*() {
      // --- README (custom services) ---
      const { Authenticator, Router } = SympleServer

      // Routing: the protocol's table, plus `to: "everyone"` for every peer sharing a room with the sender.
      const MyRouter = Layer.succeed(
        Router.Router,
        Router.make({
          resolve: (state, sender, to) => Router.resolve(state, sender, to === "everyone" ? undefined : to)
        })
      )

      // Authentication: one key per user, checked by the application; everyone starts in "lobby".
      const keys = new Map([["alice", "key-alice"], ["bob", "key-bob"]])
      const MyAuthenticator = Layer.succeed(
        Authenticator.Authenticator,
        Authenticator.Authenticator.of({
          authenticate: (auth, connecting) =>
            auth.token !== undefined && keys.get(auth.user) === auth.token
              ? Effect.succeed({ peer: Authenticator.peerFromAuth(auth, connecting), rooms: [auth.user, "lobby"] })
              : Effect.fail(new Authenticator.AuthError({ message: "Unknown key" }))
        })
      )

      const options = { port: 0, host: "127.0.0.1", authentication: true }
      const ServerLive = SympleServer.layerWithoutDefaults(options).pipe(
        Layer.provide(Layer.mergeAll(MyRouter, MyAuthenticator)),
        Layer.provide(SympleServer.layerDefaults(options)) // JoinPolicy, RateLimit, PeerRegistry: the built-in ones
      )
      // --- end ---
      const server = Context.get(yield* Layer.build(ServerLive), SympleServer.SympleServer)
      const eve = yield* connect(server.url)
      eve.send({ type: "auth", user: "eve", token: "key-alice" })
      expect(yield* eve.next()).toEqual({ type: "error", status: 401, message: "Unknown key" })
      const alice = yield* peer(server, "alice", { token: "key-alice" })
      const bob = yield* peer(server, "bob", { token: "key-bob", rooms: ["ignored"] })
      expect(bob.welcome.rooms).toEqual(["bob", "lobby"])
      yield* settle(alice, bob)
      alice.send({ type: "message", to: "everyone", data: { hello: "all" } })
      expect(yield* bob.next(isMessage())).toMatchObject({ from: alice.address, data: { hello: "all" } })
      // Without the custom router, "everyone" is a room nobody is in.
      yield* alice.none(isMessage())
    }).pipe(Effect.scoped))
})
