/**
 * The example Symple server: `npm start` (or `PORT=4600 HOST=0.0.0.0 npm start`).
 *
 * Binds 127.0.0.1:4500 unless HOST / PORT say otherwise (SYMPLE_* variables tune the rest, see ServerConfig),
 * and stops gracefully on SIGINT / SIGTERM: every peer gets the shutdown event and close 1001. `npm start` execs
 * node in place of npm's shell, so a signal sent to npm alone (as Docker and systemd send it) reaches this process.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import * as SympleServer from "../src/server/index.js"

const Address = Config.all({
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.port("PORT").pipe(Config.withDefault(4500))
})

const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/version", HttpServerResponse.unsafeJson({ name: "symple-ts", protocol: "symple/4" }))
)

const ServerLive = Layer.unwrapEffect(
  Effect.map(Address, ({ host, port }) => SympleServer.layerConfig({ host, port, routes }))
)

const LogAddress = Layer.effectDiscard(
  Effect.flatMap(SympleServer.SympleServer, (server) =>
    Effect.log(`Symple server listening on ${server.url} (health: http://${server.host}:${server.port}/health)`))
)

LogAddress.pipe(Layer.provide(ServerLive), Layer.launch, NodeRuntime.runMain)
