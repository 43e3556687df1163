/**
 * A Symple server as a program of your own: `npx tsx examples/server.ts` (or `PORT=4600 HOST=0.0.0.0 npx tsx
 * examples/server.ts`), with an extra HTTP route and the demo page at `/`. Without code, `symple-ts serve`
 * (`npm start`) runs one.
 *
 * Binds 127.0.0.1:4500 unless HOST / PORT say otherwise (SYMPLE_* variables tune the rest, see ServerConfig),
 * and stops gracefully on SIGINT / SIGTERM: every peer gets the shutdown event and close 1001.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Config, Effect, Exit, Layer, Runtime } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import * as SympleServer from "../src/server/index.js"
import { DemoPage } from "../src/web/index.js"

const Address = Config.all({
  host: Config.String("HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.Port("PORT").pipe(Config.withDefault(4500))
})

const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/version", HttpServerResponse.jsonUnsafe({ name: "symple-ts", protocol: "symple/4" })),
  DemoPage.layer()
)

const ServerLive = Layer.unwrap(
  Effect.map(Address, ({ host, port }) => SympleServer.layerConfig({ host, port, routes }))
)

const LogAddress = Layer.effectDiscard(
  Effect.flatMap(
    SympleServer.SympleServer,
    (server) =>
      Effect.log(
        `Symple server listening on ${server.url} (demo page: http://${server.host}:${server.port}/, health: /health)`
      )
  )
)

// Effect 4's runMain exits with 130 once a signal has interrupted the program, even after a clean stop: a graceful
// stop on SIGINT / SIGTERM exits 0 here (a process manager reads anything else as a crash); failures keep their code.
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

LogAddress.pipe(Layer.provide(ServerLive), Layer.launch, NodeRuntime.runMain({ teardown }))
