/**
 * The README's server example: a Symple server composed into an application, with token authentication through
 * a hook, an extra HTTP route on the same port, and a log of peers coming and going.
 *
 *   npx tsx examples/auth-server.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Stream } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import * as SympleServer from "../src/server/index.js"

const sessions = new Map([["secret-token", { user: "alice", name: "Alice", rooms: ["staff"] }]])

const ServerLive = SympleServer.layerConfig({ // SYMPLE_* environment variables override these
  host: "127.0.0.1",
  port: 4500,
  authentication: true,
  authenticate: (_peer, auth) => {
    const session = auth.token === undefined ? undefined : sessions.get(auth.token)
    return Effect.succeed(
      session === undefined
        ? { allowed: false, message: "Invalid token" }
        : { allowed: true, peer: { user: session.user, name: session.name }, rooms: session.rooms }
    )
  },
  routes: HttpRouter.add("GET", "/version", HttpServerResponse.text("1.0.0")) // more: Layer.mergeAll(route, ...)
})

const App = Layer.effectDiscard(Effect.gen(function*() {
  const server = yield* SympleServer.SympleServer
  yield* Effect.log(`Symple listening on ${server.url}`)
  yield* server.events.pipe(Stream.runForEach((e) => Effect.log(`${e._tag}: ${e.peer.user}`)), Effect.forkScoped)
}))

App.pipe(Layer.provide(ServerLive), Layer.launch, NodeRuntime.runMain)
