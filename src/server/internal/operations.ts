/**
 * Owns the operations routes beside `GET /health`: `GET /metrics` (Prometheus text, see `metrics`) and
 * `GET /ready`, which answers 200 only while the server takes peers: 503 while it is starting, while it drains
 * (shutting down), and while any readiness check fails (a broker's link to the other processes, once there is a
 * broker; the application's own checks, `SympleServer.addReadinessCheck`).
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Hub } from "./hub.js"
import * as Metrics from "./metrics.js"

/** How long one readiness check may take before it counts as failing. */
const checkTimeoutMillis = 1000

/**
 * What `GET /ready` says: `ready`, or why not (with the names of the failing checks).
 *
 * @since 0.2.0
 * @internal
 */
export const readiness = (hub: Hub): Effect.Effect<{
  readonly status: "ready" | "starting" | "draining" | "unready"
  readonly failing?: ReadonlyArray<string>
}> =>
  Effect.gen(function*() {
    if (hub.shuttingDown) return { status: "draining" } as const
    if (!hub.started) return { status: "starting" } as const
    const results = yield* Effect.forEach(
      Array.from(hub.readiness),
      ([name, check]) =>
        check.pipe(
          Effect.timeoutOption(checkTimeoutMillis),
          Effect.map((ok) => ok._tag === "Some" && ok.value === true ? undefined : name),
          Effect.catchCause(() => Effect.succeed(name))
        ),
      { concurrency: "unbounded" }
    )
    const failing = results.filter((name): name is string => name !== undefined)
    return failing.length === 0 ? { status: "ready" } as const : { status: "unready", failing } as const
  })

/**
 * The two routes, for the life of the scope (the metrics' series are registered until it closes).
 *
 * @since 0.2.0
 * @internal
 */
export const routes = (hub: Hub): Effect.Effect<
  Layer.Layer<never, never, HttpRouter.HttpRouter>,
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const metrics = yield* Metrics.make(hub)
    // The application's metrics are those of the context the server starts in.
    const context = yield* Effect.context<never>()
    return Layer.mergeAll(
      HttpRouter.add(
        "GET",
        "/metrics",
        Effect.sync(() =>
          HttpServerResponse.text(metrics.render(context), { contentType: "text/plain; version=0.0.4; charset=utf-8" })
        )
      ),
      HttpRouter.add(
        "GET",
        "/ready",
        Effect.map(
          readiness(hub),
          (answer) => HttpServerResponse.jsonUnsafe(answer, { status: answer.status === "ready" ? 200 : 503 })
        )
      )
    )
  })
