/**
 * The benchmark cases: fixed counts and hard time limits per mode. Shared by the runner and the generator CLI.
 */

export type Mode = "smoke" | "quick" | "full"

interface Common {
  /** Unique case name, e.g. "fanout-10x100". */
  readonly name: string
  /** Hard limit for the whole case in the generator, connects and drain included. */
  readonly limitMs: number
  /** Handshakes in flight at once while connecting clients. */
  readonly connectConcurrency: number
}

interface Timed {
  readonly warmupMs: number
  readonly measureMs: number
}

export interface ConnectSpec extends Common {
  readonly kind: "connect"
  readonly connections: number
}

export interface PingPongSpec extends Common, Timed {
  readonly kind: "pingpong"
  readonly pairs: number
  /**
   * Rooms each peer is in, its personal room and the pair's room included; the others are its own, with names
   * alike up to the end. Unset: 2 (personal and pair).
   */
  readonly roomsPerPeer?: number | undefined
  /**
   * Address each message with a new user part (`x<n>|id`): routing goes by the id and ignores the user part, so a
   * server must not do the routing work again for every such message.
   */
  readonly varyTo?: boolean | undefined
}

export interface FanoutSpec extends Common, Timed {
  readonly kind: "fanout"
  readonly rooms: number
  readonly members: number
  /** Closed loop: messages in flight per room (a message is done when every member got it). */
  readonly window: number
  /** Open loop instead: deliveries per second across all rooms, sent on schedule whatever the server does. */
  readonly rate?: number | undefined
}

export interface StormSpec extends Common {
  readonly kind: "storm"
  readonly clients: number
}

/**
 * Many authenticated peers that then stay idle, in rooms of `roomSize` (consecutive connections share a room): what
 * the server holds per connection once they settle. The connections are split over `processes` generator processes
 * (one process cannot hold them all under an open-file limit the server itself must fit in) and spread over
 * `sourceAddresses` loopback source addresses, 127.0.0.2 and up, so that no source address runs out of ephemeral
 * ports. See `serverSetup` for what the servers are started with.
 */
export interface IdleSpec extends Common {
  readonly kind: "idle"
  readonly connections: number
  readonly roomSize: number
  readonly processes: number
  readonly sourceAddresses: number
}

export type Spec = ConnectSpec | PingPongSpec | FanoutSpec | StormSpec | IdleSpec

const LIMIT = 60_000

/**
 * Cases too slow for `quick`: part of `full`, and runnable in any mode when named with `--only`. 19,000
 * connections: what fits, with room to spare, under an open-file limit of 20,000 per process (the server holds a
 * descriptor per connection).
 */
export const onDemand: ReadonlyArray<Spec> = [
  {
    kind: "idle",
    name: "idle-19000",
    connections: 19_000,
    roomSize: 100,
    processes: 2,
    sourceAddresses: 8,
    limitMs: 3 * LIMIT,
    connectConcurrency: 50
  }
]

/**
 * What a case needs of the server processes, beyond the defaults of `bench/servers/ours.ts`:
 *
 * - idle cases: `--expose-gc`, so that the server's `GET /bench/memory` (both servers have it then) can report the
 *   live heap after a full collection; `maxConnections` raised to the case's connections (our server's default is the
 *   open-file limit less a tenth, 18,000 under a limit of 20,000); and the rate limiter on as shipped (100 frames per
 *   10 s per peer), since an idle peer never reaches it and its per-session state is part of what a connection holds.
 */
export const serverSetup = (
  spec: Spec
): { readonly nodeFlags: ReadonlyArray<string>; readonly env: Record<string, string> } =>
  spec.kind === "idle"
    ? {
      nodeFlags: ["--expose-gc"],
      env: { BENCH_MAX_CONNECTIONS: String(spec.connections), BENCH_RATE_LIMIT: "100" }
    }
    : { nodeFlags: [], env: {} }

/** A case by name: those of the mode, then those run on demand. */
export const findSpec = (mode: Mode, name: string): Spec | undefined =>
  [...specs(mode), ...onDemand].find((s) => s.name === name)

export const specs = (mode: Mode): ReadonlyArray<Spec> => {
  if (mode === "smoke") {
    const t = { warmupMs: 100, measureMs: 300, limitMs: 15_000, connectConcurrency: 20 }
    return [
      { kind: "connect", name: "connect-50", connections: 50, limitMs: t.limitMs, connectConcurrency: 20 },
      { kind: "pingpong", name: "pingpong-5", pairs: 5, ...t },
      { kind: "pingpong", name: "rooms-100", pairs: 2, roomsPerPeer: 100, varyTo: true, ...t },
      { kind: "fanout", name: "fanout-2x10", rooms: 2, members: 10, window: 2, ...t },
      { kind: "fanout", name: "fanout-open-2x10@500", rooms: 2, members: 10, window: 0, rate: 500, ...t },
      { kind: "fanout", name: "fanout-1x20", rooms: 1, members: 20, window: 2, ...t },
      { kind: "storm", name: "storm-20", clients: 20, limitMs: t.limitMs, connectConcurrency: 20 },
      {
        kind: "idle",
        name: "idle-250",
        connections: 250,
        roomSize: 100,
        processes: 2,
        sourceAddresses: 2,
        limitMs: t.limitMs,
        connectConcurrency: 20
      }
    ]
  }
  const t = mode === "quick" ?
    { warmupMs: 500, measureMs: 1_500, limitMs: LIMIT, connectConcurrency: 50 } :
    { warmupMs: 2_000, measureMs: 10_000, limitMs: 2 * LIMIT, connectConcurrency: 50 }
  return [
    { kind: "connect", name: "connect-1000", connections: 1_000, limitMs: t.limitMs, connectConcurrency: 50 },
    { kind: "connect", name: "connect-5000", connections: 5_000, limitMs: t.limitMs, connectConcurrency: 50 },
    { kind: "pingpong", name: "pingpong-100", pairs: 100, ...t },
    { kind: "pingpong", name: "rooms-100", pairs: 50, roomsPerPeer: 100, varyTo: true, ...t },
    { kind: "fanout", name: "fanout-10x100", rooms: 10, members: 100, window: 16, ...t },
    { kind: "fanout", name: "fanout-open-10x100@20k", rooms: 10, members: 100, window: 0, rate: 20_000, ...t },
    { kind: "fanout", name: "fanout-1x500", rooms: 1, members: 500, window: 16, ...t },
    { kind: "storm", name: "storm-500", clients: 500, limitMs: t.limitMs, connectConcurrency: 500 },
    ...(mode === "full" ? onDemand : [])
  ]
}

/**
 * The figures a case reports, keyed by metric name, and which way is better. CPU busy is diagnostic: well below 1
 * in a throughput case means the generator, not the server, was the bottleneck.
 */
export const metricInfo: Record<string, { readonly label: string; readonly better: "higher" | "lower" | "info" }> = {
  connectsPerSec: { label: "connects/s", better: "higher" },
  rssPerConnKiB: { label: "server RSS per connection (KiB)", better: "lower" },
  rssMarginalPerConnKiB: { label: "server RSS per connection, second half (KiB)", better: "lower" },
  heapPerConnKiB: { label: "server live heap per connection (KiB)", better: "lower" },
  externalPerConnKiB: { label: "server external memory per connection (KiB)", better: "info" },
  cpuPerConnUs: { label: "server CPU per connection (µs)", better: "lower" },
  msgsPerSec: { label: "msgs/s", better: "higher" },
  deliveriesPerSec: { label: "deliveries/s", better: "higher" },
  p50Ms: { label: "latency p50 (ms)", better: "lower" },
  p99Ms: { label: "latency p99 (ms)", better: "lower" },
  stormMs: { label: "time until all have seen all (ms)", better: "lower" },
  cpuPerDeliveryUs: { label: "server CPU per delivery (µs)", better: "lower" },
  serverCpuUtil: { label: "server CPU busy (fraction of one core)", better: "info" }
}
