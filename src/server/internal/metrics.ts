/**
 * Owns `GET /metrics`: the server's figures as Effect `Metric`s, rendered in the Prometheus text format by Effect's
 * own `PrometheusMetrics`. Nothing is pushed on the hot path: each series is registered once with a hook that reads
 * the server's plain counters (`counters`), its registry or the process when the metrics are scraped.
 *
 * The series live in a registry of the server's own, so that servers in one process report their own figures;
 * the metrics of the application (the `MetricRegistry` of the context the server started in) follow them.
 *
 * @since 0.2.0
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Metric from "effect/Metric"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"
import * as ServerConfig from "../ServerConfig.js"
import * as State from "../State.js"
import type { Tally } from "./counters.js"
import type { Hub } from "./hub.js"

/**
 * @since 0.2.0
 * @internal
 */
export interface Metrics {
  /** The Prometheus text: the server's series, then the application's (from `context`). */
  readonly render: (context: Context.Context<never>) => string
}

const ignore = () => {}

const openFiles = (): number | undefined => {
  try {
    return Fs.readdirSync("/proc/self/fd").length
  } catch {
    return undefined
  }
}

/**
 * Registers the server's series for the life of the scope.
 *
 * @since 0.2.0
 * @internal
 */
export const make = (hub: Hub): Effect.Effect<Metrics, never, Scope.Scope> =>
  Effect.gen(function*() {
    // The server's series, then the process's: two registries, rendered in that order.
    const own = Context.make(Metric.MetricRegistry, new Map())
    const host = Context.make(Metric.MetricRegistry, new Map())
    const series = (registry: Context.Context<never>) => ({
      gauge: (name: string, description: string, read: () => number, attributes?: Record<string, string>) =>
        void Metric.registerUnsafe(Metric.gauge(name, { description, attributes }), registry, {
          get: () => ({ value: read() }),
          update: ignore,
          modify: ignore
        }),
      counter: (name: string, description: string, read: () => number, attributes?: Record<string, string>) =>
        void Metric.registerUnsafe(Metric.counter(name, { description, attributes, incremental: true }), registry, {
          get: () => ({ count: read(), incremental: true }),
          update: ignore,
          modify: ignore
        })
    })
    const { counter, gauge } = series(own)

    const snapshot = () => hub.registry.snapshotUnsafe()
    gauge("symple_connections", "Open WebSocket connections, authenticated or not", () => hub.connections.size)
    gauge("symple_peers", "Peers online: authenticated sessions and virtual peers", () => State.size(snapshot()))
    gauge("symple_rooms", "Rooms with at least one member", () => HashMap.size(snapshot().rooms))
    counter(
      "symple_deliveries_total",
      "Copies of frames handed to recipients (routed frames, presence, server notices)",
      () => hub.stats.delivered
    )
    counter(
      "symple_connections_refused_total",
      "Sockets refused at capacity (error 503, close 1013)",
      () => hub.stats.refusedConnections
    )
    const drops = "Frames and peers dropped, by reason: rate (over the rate limit, closed 1008), size (over " +
      "maxMessageSize, closed 1009), no_route (a routed frame that reached nobody), slow_consumer (a peer closed " +
      "with 1013 for falling behind), broker (frames a broker could not carry; none without a broker)"
    counter("symple_drops_total", drops, () => hub.stats.undeliverable, { reason: "no_route" })
    counter("symple_drops_total", drops, () => hub.stats.slowConsumers, { reason: "slow_consumer" })

    // Tallies gain label values as they are met: each new one is registered when the metrics are next read.
    const tallies: ReadonlyArray<readonly [string, string, string, Tally]> = [
      [
        "symple_frames_received_total",
        "Frames received, by type (invalid: not a valid frame); frames refused by the rate limit are not counted",
        "type",
        hub.stats.framesIn
      ],
      ["symple_frames_sent_total", "Frames sent to peers, by type, one per recipient", "type", hub.stats.framesOut],
      ["symple_drops_total", drops, "reason", hub.stats.drops],
      [
        "symple_auth_failures_total",
        "Error frames sent before authentication, by status (401 refused, 408 too late, 400 invalid auth, 429 " +
        "too many frames)",
        "status",
        hub.stats.authFailures
      ],
      ["symple_closes_total", "Connections ended, by WebSocket close code", "code", hub.stats.closes]
    ]
    const seen = new Set<string>()
    const registerNew = () => {
      for (const [name, description, label, tally] of tallies) {
        for (const key of tally.keys()) {
          const id = `${name}\u0000${key}`
          if (seen.has(id)) continue
          seen.add(id)
          counter(name, description, () => tally.get(key) ?? 0, { [label]: key })
        }
      }
    }

    // The process: event-loop delay over the last scrape interval, CPU, memory, descriptors.
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    yield* Effect.addFinalizer(() => Effect.sync(() => delay.disable()))
    const seconds = (nanos: number) => (Number.isFinite(nanos) ? nanos / 1e9 : 0)
    const lag = "Event-loop delay since the previous scrape, in seconds"
    const proc = series(host)
    proc.gauge("nodejs_eventloop_lag_mean_seconds", `${lag}: mean`, () => seconds(delay.mean))
    proc.gauge("nodejs_eventloop_lag_max_seconds", `${lag}: maximum`, () => seconds(delay.max))
    proc.gauge("nodejs_eventloop_lag_p50_seconds", `${lag}: median`, () => seconds(delay.percentile(50)))
    proc.gauge("nodejs_eventloop_lag_p99_seconds", `${lag}: 99th percentile`, () => seconds(delay.percentile(99)))
    proc.counter("process_cpu_user_seconds_total", "User CPU time, in seconds", () => process.cpuUsage().user / 1e6)
    proc.counter(
      "process_cpu_system_seconds_total",
      "System CPU time, in seconds",
      () => process.cpuUsage().system / 1e6
    )
    proc.gauge("process_resident_memory_bytes", "Resident memory, in bytes", () => process.memoryUsage.rss())
    proc.gauge(
      "process_start_time_seconds",
      "Start of the process, in Unix seconds",
      () => Math.round(Date.now() / 1000 - process.uptime())
    )
    proc.gauge("nodejs_heap_size_used_bytes", "V8 heap in use, in bytes", () => process.memoryUsage().heapUsed)
    proc.gauge("nodejs_heap_size_total_bytes", "V8 heap reserved, in bytes", () => process.memoryUsage().heapTotal)
    proc.gauge(
      "nodejs_external_memory_bytes",
      "Memory of C++ objects bound to JavaScript, in bytes",
      () => process.memoryUsage().external
    )
    if (openFiles() !== undefined) {
      proc.gauge("process_open_fds", "Open file descriptors", () => openFiles() ?? 0)
      const limit = ServerConfig.openFileLimit()
      if (limit !== undefined) proc.gauge("process_max_fds", "Limit on open file descriptors", () => limit)
    }

    return {
      render: (context) => {
        registerNew()
        const text = PrometheusMetrics.formatUnsafe(own) + PrometheusMetrics.formatUnsafe(host)
        delay.reset()
        return text + PrometheusMetrics.formatUnsafe(context)
      }
    }
  })
