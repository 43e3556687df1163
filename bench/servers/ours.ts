/**
 * Our server as the benchmark starts it: `SympleServer.makeWithDefaults` with default options, except that the per-peer rate
 * limit is disabled (`rateLimit: 0`), because the benchmark sends far more than the default 100 frames per 10 s
 * per peer. `BENCH_RATE_LIMIT=<n>` keeps the limiter running instead, to measure what it costs: a bucket of n
 * frames (pick more than a case sends) refilled at the default 10 frames per second, so that the limiter does the
 * same work per frame as with the defaults. `BENCH_MAX_ROOMS=<n>` raises the rooms a peer may be in (the runner
 * sets it for `--rooms n`). `BENCH_REDIS=<url>` makes it a node of a cluster on that Redis (`bench/cluster.ts`).
 * `BENCH_RATE_LIMIT_REDIS=<url>` puts the buckets in `RedisRateLimit` (the cluster's rate-limit store) on that Redis,
 * the server staying a single node (`ours-limited-redis` in `bench/run.ts`).
 * `BENCH_MAX_CONNECTIONS=<n>` sets `maxConnections` (the idle cases need more than the default, the open-file limit
 * less a tenth). Run with `--expose-gc`, it also serves `GET /bench/memory`: `process.memoryUsage()` after a full
 * collection (see `bench/stats.ts`). Loopback only unless HOST says otherwise.
 *
 * Usage: node ours.mjs [port]   (or PORT / HOST in the environment; port 0 picks a free port)
 * Prints one line `{"listening":<port>,"pid":<pid>}` on stdout once it accepts connections; SIGTERM or SIGINT shuts
 * it down gracefully (which also lets `--cpu-prof` write its profile) and it exits 0, as `symple-ts serve` does.
 */
// Imported the way `examples/server.ts` (`npm start`) and most applications do, from the package roots, which load
// every module they re-export: the server is measured as it is run.
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Runtime } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import * as SympleServer from "../../src/server/index.js"
import { canCollect, collectedMemory, memoryPath } from "../stats.js"

const port = Number(process.argv[2] ?? process.env["PORT"] ?? 4500)
const host = process.env["HOST"] ?? "127.0.0.1"

const program = Effect.gen(function*() {
  const raised = Number(process.env["BENCH_RATE_LIMIT"] ?? "0")
  const rateLimit = Number.isFinite(raised) && raised > 0 ? raised : 0
  const maxRooms = Number(process.env["BENCH_MAX_ROOMS"] ?? "0")
  const maxConnections = Number(process.env["BENCH_MAX_CONNECTIONS"] ?? "")
  // Only when the process can collect on demand, so that other cases run the server exactly as configured above.
  const routes = !canCollect()
    ? undefined
    : HttpRouter.add("GET", memoryPath, Effect.sync(() => HttpServerResponse.jsonUnsafe(collectedMemory())))
  const server = yield* SympleServer.makeWithDefaults({
    port,
    host,
    rateLimit,
    rateSeconds: Math.max(1, rateLimit / 10),
    ...(Number.isInteger(maxRooms) && maxRooms > 0 ? { maxRoomsPerPeer: maxRooms } : {}),
    ...(process.env["BENCH_REDIS"] ? { redis: process.env["BENCH_REDIS"] } : {}),
    ...(Number.isInteger(maxConnections) && maxConnections >= 0 ? { maxConnections } : {}),
    ...(routes === undefined ? {} : { routes })
  })
  process.stdout.write(`${JSON.stringify({ listening: server.port, pid: process.pid, rateLimit })}\n`)
  return yield* Effect.never
})

// Loaded only when asked for, so that other cases run exactly the server above.
const rateLimitRedis = process.env["BENCH_RATE_LIMIT_REDIS"]
const withStore = rateLimitRedis === undefined || rateLimitRedis === ""
  ? Effect.scoped(program)
  : Effect.flatMap(
    Effect.promise(() => import("../../src/redis/RedisRateLimit.js")),
    (RedisRateLimit) => program.pipe(Effect.provide(RedisRateLimit.layer({ url: rateLimitRedis })), Effect.scoped)
  )

// Effect's runMain exits with 130 once a signal has interrupted the program, even after a clean stop; a graceful stop
// exits 0 here, failures keep their code.
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

NodeRuntime.runMain(withStore, { teardown })
