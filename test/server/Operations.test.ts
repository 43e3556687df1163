/**
 * `GET /metrics` (Prometheus text from Effect's Metrics) and `GET /ready`, on a real server with real peers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Metric, Scope } from "effect"
import type { Hub } from "../../src/server/internal/hub.js"
import * as Operations from "../../src/server/internal/operations.js"
import { connect, eventually, peer, rawClient, startServer } from "./support.js"

const get = (url: string) =>
  Effect.promise(() => fetch(url).then(async (response) => ({ status: response.status, body: await response.text() })))

/** `name{labels}` -> value, from Prometheus text; fails the test on a line that is not valid exposition format. */
const parse = (text: string): Map<string, number> => {
  const samples = new Map<string, number>()
  const typed = new Set<string>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary)$/.exec(line)
    if (type !== null) {
      expect(typed.has(type[1]!), `TYPE of ${type[1]} twice`).toBe(false)
      typed.add(type[1]!)
      continue
    }
    if (line.startsWith("# HELP ")) continue
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (\S+)$/
        .exec(line)
    expect(sample, `not a sample: ${line}`).not.toBeNull()
    expect(typed.has(sample![1]!), `${sample![1]} has no TYPE before its samples`).toBe(true)
    const value = Number(sample![3])
    expect(Number.isNaN(value), line).toBe(false)
    samples.set(`${sample![1]}${sample![2] ?? ""}`, value)
  }
  return samples
}

const metrics = (port: number) =>
  Effect.gen(function*() {
    const response = yield* get(`http://127.0.0.1:${port}/metrics`)
    expect(response.status).toBe(200)
    return parse(response.body)
  })

describe("GET /metrics", () => {
  it.live(
    "counts connections, peers, rooms, frames by type, deliveries, drops, auth failures and close codes",
    () =>
      Effect.gen(function*() {
        const server = yield* startServer({ rateLimit: 3, rateSeconds: 60, maxMessageSize: 200, authFailureDelay: 0 })
        const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
        const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
        yield* alice.next((f) => f.type === "presence")
        alice.send({ type: "message", to: ["lobby"], data: { text: "hi" } })
        yield* bob.next((f) => f.type === "message")
        alice.send({ type: "message", to: "nobody", data: {} })
        alice.send({ type: "join", room: "staff" })
        yield* alice.next((f) => f.type === "join:ok")
        // A frame over maxMessageSize: 413 and close 1009.
        const carol = yield* peer(server, "carol")
        carol.sendRaw(JSON.stringify({ type: "message", data: { text: "x".repeat(300) } }))
        expect(yield* carol.closed).toMatchObject({ code: 1009 })
        // Over the rate limit: 429 and close 1008.
        const dave = yield* peer(server, "dave")
        for (let i = 0; i < 5; i++) dave.send({ type: "presence", data: {} })
        expect(yield* dave.closed).toMatchObject({ code: 1008 })
        // Refused handshakes: a missing user (401, stays open), then a first frame that is not auth (401, close).
        const eve = yield* connect(server.url)
        eve.send({ type: "auth" })
        expect(yield* eve.next((f) => f.type === "error")).toMatchObject({ status: 401 })
        eve.send({ type: "message" })
        expect(yield* eve.closed).toMatchObject({ code: 1008 })
        // A clean close by the peer.
        bob.send({ type: "close" })
        expect(yield* bob.closed).toMatchObject({ code: 1000 })

        const m = yield* eventually(
          Effect.flatMap(metrics(server.port), (m) =>
            m.get("symple_closes_total{code=\"1000\"}") === 1 ? Effect.succeed(m) : Effect.fail(new Error("not yet")))
        )
        expect(m.get("symple_connections")).toBe(1)
        expect(m.get("symple_peers")).toBe(1)
        // alice's personal room, lobby and staff.
        expect(m.get("symple_rooms")).toBe(3)
        expect(m.get("symple_frames_received_total{type=\"auth\"}")).toBe(5)
        expect(m.get("symple_frames_received_total{type=\"message\"}")).toBe(2)
        expect(m.get("symple_frames_received_total{type=\"join\"}")).toBe(1)
        expect(m.get("symple_frames_received_total{type=\"close\"}")).toBe(1)
        expect(m.get("symple_frames_received_total{type=\"invalid\"}")).toBe(1)
        expect(m.get("symple_frames_received_total{type=\"presence\"}")).toBe(3)
        expect(m.get("symple_frames_sent_total{type=\"welcome\"}")).toBe(4)
        expect(m.get("symple_frames_sent_total{type=\"message\"}")).toBe(1)
        expect(m.get("symple_frames_sent_total{type=\"join:ok\"}")).toBe(1)
        expect(m.get("symple_frames_sent_total{type=\"error\"}")).toBe(4)
        // bob saw alice in the snapshot, alice saw bob come and go.
        expect(m.get("symple_frames_sent_total{type=\"presence\"}")).toBe(3)
        expect(m.get("symple_deliveries_total")).toBe(3)
        // "nobody", and dave's three presences: he shares no room with anyone.
        expect(m.get("symple_drops_total{reason=\"no_route\"}")).toBe(4)
        expect(m.get("symple_drops_total{reason=\"size\"}")).toBe(1)
        expect(m.get("symple_drops_total{reason=\"rate\"}")).toBe(1)
        expect(m.get("symple_drops_total{reason=\"slow_consumer\"}")).toBe(0)
        expect(m.get("symple_drops_total{reason=\"broker\"}")).toBe(0)
        expect(m.get("symple_auth_failures_total{status=\"401\"}")).toBe(2)
        expect(m.get("symple_closes_total{code=\"1009\"}")).toBe(1)
        expect(m.get("symple_closes_total{code=\"1008\"}")).toBe(2)
        expect(m.get("symple_connections_refused_total")).toBe(0)
        // The process.
        expect(m.get("process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024)
        expect(m.get("process_cpu_user_seconds_total")).toBeGreaterThan(0)
        expect(m.get("process_open_fds")).toBeGreaterThan(0)
        expect(m.get("nodejs_heap_size_used_bytes")).toBeGreaterThan(0)
        for (const q of ["mean", "max", "p50", "p99"]) {
          expect(m.get(`nodejs_eventloop_lag_${q}_seconds`)).toBeGreaterThanOrEqual(0)
        }
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  it.live("a peer refused at capacity is counted", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ maxConnections: 1 })
      yield* peer(server, "alice")
      const second = yield* connect(server.url)
      yield* second.next((f) => f.type === "error")
      expect((yield* metrics(server.port)).get("symple_connections_refused_total")).toBe(1)
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live(
    "servers in one process report their own figures; the application's metrics follow the server's",
    () =>
      Effect.gen(function*() {
        const registry = new Map()
        const orders = Metric.counter("shop_orders_total", { description: "Orders placed" })
        yield* Metric.update(orders, 7).pipe(Effect.provideService(Metric.MetricRegistry, registry))
        const [busy, quiet] = yield* Effect.all([startServer(), startServer()]).pipe(
          Effect.provideService(Metric.MetricRegistry, registry)
        )
        const alice = yield* peer(busy, "alice")
        alice.send({ type: "message", to: "nobody" })
        yield* eventually(
          Effect.flatMap(metrics(busy.port), (m) =>
            m.get("symple_drops_total{reason=\"no_route\"}") === 1 ? Effect.void : Effect.fail(new Error("not yet")))
        )
        const still = yield* metrics(quiet.port)
        expect(still.get("symple_drops_total{reason=\"no_route\"}")).toBe(0)
        expect(still.get("symple_frames_received_total{type=\"auth\"}")).toBeUndefined()
        expect(still.get("shop_orders_total")).toBe(7)
        const text = (yield* get(`http://127.0.0.1:${quiet.port}/metrics`)).body
        expect(text.indexOf("shop_orders_total")).toBeGreaterThan(text.indexOf("symple_connections"))
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )
})

describe("GET /ready", () => {
  it.live(
    "200 while the server takes peers; 503 naming the checks that fail, until they pass or go",
    () =>
      Effect.gen(function*() {
        const server = yield* startServer()
        const ready = () =>
          Effect.map(get(`http://127.0.0.1:${server.port}/ready`), (r) => [r.status, JSON.parse(r.body)])
        expect(yield* ready()).toEqual([200, { status: "ready" }])
        let brokerUp = false
        const scope = yield* Scope.make()
        yield* server.addReadinessCheck("broker", Effect.sync(() => brokerUp)).pipe(Scope.provide(scope))
        yield* server.addReadinessCheck("database", Effect.die(new Error("no database"))).pipe(Scope.provide(scope))
        expect(yield* ready()).toEqual([503, { status: "unready", failing: ["broker", "database"] }])
        brokerUp = true
        expect(yield* ready()).toEqual([503, { status: "unready", failing: ["database"] }])
        yield* Scope.close(scope, Exit.void)
        expect(yield* ready()).toEqual([200, { status: "ready" }])
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  it.live(
    "503 draining while the server stops (peers still closing), while /health says stopping",
    () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const server = yield* startServer({ shutdownTimeout: 3000 }).pipe(Scope.provide(scope))
        // A peer that never answers the close keeps the server draining for shutdownTimeout.
        const stuck = yield* rawClient(server.port)
        stuck.sendText(JSON.stringify({ type: "auth", user: "stuck" }))
        yield* eventually(Effect.flatMap(server.peerCount, (n) => n === 1 ? Effect.void : Effect.fail(new Error("no"))))
        const stopping = yield* Deferred.make<void>()
        const stop = yield* Effect.forkChild(
          Scope.close(scope, Exit.void).pipe(
            Effect.ensuring(Deferred.succeed(stopping, undefined))
          )
        )
        const answer = yield* eventually(
          Effect.flatMap(
            get(`http://127.0.0.1:${server.port}/ready`),
            (r) => r.status === 503 ? Effect.succeed(JSON.parse(r.body)) : Effect.fail(new Error(`still ${r.status}`))
          ),
          2000
        )
        expect(answer).toEqual({ status: "draining" })
        expect(JSON.parse((yield* get(`http://127.0.0.1:${server.port}/health`)).body)).toMatchObject({
          status: "stopping"
        })
        expect(yield* Deferred.isDone(stopping)).toBe(false)
        yield* Fiber.join(stop)
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  it.effect("503 starting until the server has started", () =>
    Effect.gen(function*() {
      const hub = { shuttingDown: false, started: false, readiness: new Map() } as unknown as Hub
      expect(yield* Operations.readiness(hub)).toEqual({ status: "starting" })
      hub.started = true
      expect(yield* Operations.readiness(hub)).toEqual({ status: "ready" })
    }))
})
