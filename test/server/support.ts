import { Effect, Exit, Layer, Option, Scope } from "effect"
import * as Net from "node:net"
import WebSocket from "ws"
import { randomId } from "../../src/protocol/Message.js"
import * as SympleServer from "../../src/server/index.js"

/** A frame as a test reads it. */
export interface Received {
  readonly type?: string
  readonly from?: string
  readonly to?: unknown
  readonly id?: string
  readonly status?: number
  readonly message?: string
  readonly name?: string
  readonly room?: string
  readonly rooms?: ReadonlyArray<string>
  readonly probe?: boolean
  readonly data?: { readonly [key: string]: unknown }
  readonly peer?: {
    readonly id: string
    readonly user: string
    readonly name?: string
    readonly type?: string
    readonly online?: boolean
    readonly [key: string]: unknown
  }
  readonly [key: string]: unknown
}

export interface Closed {
  readonly code: number
  readonly reason: string
}

export interface Client {
  readonly ws: WebSocket
  /** Frames received and not yet taken by `next`. */
  readonly pending: Array<Received>
  /** Every frame received, in order. */
  readonly all: Array<Received>
  readonly send: (frame: unknown) => void
  readonly sendRaw: (data: string | Buffer, binary?: boolean) => void
  /** Waits for (and takes) the first frame matching `predicate`. */
  readonly next: (predicate?: (frame: Received) => boolean, timeoutMs?: number) => Effect.Effect<Received, Error>
  /** Succeeds if no matching frame arrives within `ms`. */
  readonly none: (predicate?: (frame: Received) => boolean, ms?: number) => Effect.Effect<void, Error>
  readonly closed: Effect.Effect<Closed, Error>
  readonly isClosed: () => boolean
}

export interface Peer extends Client {
  readonly welcome: Received
  readonly id: string
  readonly user: string
  readonly address: string
}

/**
 * How many server nodes `startServer` and `startServerWith` start: `SYMPLE_TEST_NODES=2` (the `spread` project of
 * vitest.config.ts) makes each a cluster of two nodes on a Redis of the test file's own, see `startCluster`.
 */
export const nodes = process.env.SYMPLE_TEST_NODES === "2" ? 2 : 1

export const startServer = (
  options: Partial<SympleServer.ServerOptions> = {}
): Effect.Effect<SympleServer.Server, SympleServer.ServerError, Scope.Scope> =>
  nodes === 1
    ? SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1", ...options })
    : startCluster(Layer.empty, options)

/** A server on the given services (built in the current scope), and the built-in ones for the rest. */
export const startServerWith = <ROut extends SympleServer.Services, E>(
  services: Layer.Layer<ROut, E>,
  options: Partial<SympleServer.ServerOptions> = {}
): Effect.Effect<SympleServer.Server, SympleServer.ServerError | E, Scope.Scope> =>
  nodes === 1
    ? Effect.gen(function*() {
      const resolved = { port: 0, host: "127.0.0.1", ...options }
      const own = yield* Layer.build(services)
      const defaults = yield* Layer.build(SympleServer.layerDefaults(resolved))
      return yield* SympleServer.make(resolved).pipe(Effect.provideContext(own), Effect.provideContext(defaults))
    })
    : startCluster(services, options)

/** The nodes of a cluster that `startCluster` started, by the url of the one the test holds. */
interface Cluster {
  readonly nodes: ReadonlyArray<SympleServer.Server>
  /** Connections made so far: the next goes to `nodes[turn % nodes.length]`. */
  turn: number
}

const clusters = new Map<string, Cluster>()

/** The test file's redis-server (spread mode), started by the first cluster and stopped by `stopRedis`. */
let redis: Promise<{ readonly url: string; readonly scope: Scope.Closeable }> | undefined

/** Stops the test file's redis-server, if one was started (after all of the file's tests). */
export const stopRedis = async (): Promise<void> => {
  const started = redis
  redis = undefined
  if (started !== undefined) await Effect.runPromise(Scope.close((await started).scope, Exit.void))
}

/**
 * Spread mode: two nodes with the same options and services (each node builds the layer afresh: a `Layer.succeed`
 * value is the one instance of both) on one Redis, as one cluster under a key prefix of their own. The first node
 * is returned, and its url leads `connect` to the two nodes in turn: the first client to that node, the next to
 * the other, and so on, so that neighbours in a test are on different nodes and what the first client does is
 * counted on the node the test holds. The server API called on the first node answers for the cluster; the second
 * node listens on a port of its own whatever `port` says.
 */
const startCluster = <ROut extends SympleServer.Services, E>(
  services: Layer.Layer<ROut, E>,
  options: Partial<SympleServer.ServerOptions>
): Effect.Effect<SympleServer.Server, SympleServer.ServerError | E, Scope.Scope> =>
  Effect.gen(function*() {
    const { url } = yield* Effect.promise(() =>
      redis ??= Effect.runPromise(Effect.gen(function*() {
        const { startRedis } = yield* Effect.promise(() => import("../redis/redisServer.js"))
        const scope = yield* Scope.make()
        const server = yield* startRedis.pipe(Scope.provide(scope), Effect.orDie)
        return { url: server.url, scope }
      }))
    )
    const { startNodeWith } = yield* Effect.promise(() => import("../redis/support.js"))
    const node = { prefix: `symple:test:${randomId()}` }
    const a = yield* startNodeWith(services, url, options, node)
    const b = yield* startNodeWith(services, url, { ...options, port: 0 }, node)
    yield* Effect.acquireRelease(
      Effect.sync(() => clusters.set(a.url, { nodes: [a, b], turn: 0 })),
      () => Effect.sync(() => clusters.delete(a.url))
    )
    return a
  })

/** The nodes of the server's cluster in spread mode, in the order `connect` takes them; otherwise the server alone. */
export const clusterNodes = (server: SympleServer.Server): ReadonlyArray<SympleServer.Server> =>
  clusters.get(server.url)?.nodes ?? [server]

/**
 * The server's counters; in spread mode the sums over its cluster's nodes, each of which counts what its own
 * connections did (a frame is counted on the node of its sender).
 */
export const clusterStats = (server: SympleServer.Server): Effect.Effect<SympleServer.Stats> =>
  Effect.map(Effect.forEach(clusterNodes(server), (node) => node.stats), (all) => {
    const total: SympleServer.Stats = { received: 0, delivered: 0, undeliverable: 0, slowConsumers: 0, refused: 0 }
    for (const stats of all) {
      for (const key of Object.keys(total) as Array<keyof SympleServer.Stats>) total[key] += stats[key]
    }
    return total
  })

/** The server's open connections; in spread mode the sum over its cluster's nodes. */
export const clusterConnections = (server: SympleServer.Server): Effect.Effect<number> =>
  Effect.map(
    Effect.forEach(clusterNodes(server), (node) => node.connectionCount),
    (counts) => counts.reduce((a, b) => a + b, 0)
  )

/**
 * Spread mode: waits until every node of the cluster sees session `id` as its own node does: known or not, and in
 * each of `rooms` or not. Membership travels between nodes as a directory event through Redis, so a test that has
 * its welcome, `join:ok` or `leave:ok` could otherwise act before the other node knows.
 */
const agreed = (cluster: Cluster, id: string, rooms: ReadonlyArray<string>) => {
  const view = (node: SympleServer.Server) =>
    Effect.gen(function*() {
      const known = Option.isSome(yield* node.getPeer(id))
      const member = yield* Effect.forEach(
        rooms,
        (room) => Effect.map(node.peersInRoom(room), (peers) => peers.some((p) => p.id === id))
      )
      return JSON.stringify([known, member])
    })
  return eventually(
    Effect.flatMap(Effect.forEach(cluster.nodes, view), (views) =>
      views.every((v) => v === views[0])
        ? Effect.void
        : Effect.fail(new Error(`the nodes disagree on session ${id} in ${JSON.stringify(rooms)}: ${views}`))),
    3000,
    2
  )
}

const any = () => true

/** Opens a raw `ws` client; it is terminated when the scope closes. */
export const connect = (
  url: string,
  options: { readonly path?: string; readonly protocols?: ReadonlyArray<string> } = {}
): Effect.Effect<Client, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Client, Error>((resume) => {
      const protocols = options.protocols === undefined ? [] : [...options.protocols]
      // Spread mode: the cluster's nodes in turn.
      const cluster = clusters.get(url)
      const target = cluster === undefined ? url : cluster.nodes[cluster.turn++ % cluster.nodes.length]!.url
      const ws = new WebSocket(target + (options.path ?? "/"), protocols)
      const pending: Array<Received> = []
      const all: Array<Received> = []
      const waiters = new Set<() => void>()
      let closedWith: Closed | undefined
      /** The session id of the welcome this client got, if any. */
      let session: string | undefined
      const closeWaiters = new Set<(c: Closed) => void>()
      ws.on("message", (data, isBinary) => {
        const text = isBinary ? Buffer.from(data as Buffer).toString("utf8") : String(data)
        const frame = JSON.parse(text) as Received
        if (frame.type === "welcome" && typeof frame.peer?.id === "string") session = frame.peer.id
        pending.push(frame)
        all.push(frame)
        for (const wake of [...waiters]) wake()
      })
      ws.on("close", (code, reason) => {
        closedWith = { code, reason: reason.toString() }
        for (const wake of [...closeWaiters]) wake(closedWith)
        for (const wake of [...waiters]) wake()
      })
      let opened = false
      ws.on("error", (error) => {
        if (!opened) resume(Effect.fail(error))
      })
      const take: Client["next"] = (predicate = any, timeoutMs = 3000) =>
        Effect.callback<Received, Error>((resumeNext) => {
          let settled = false
          const check = () => {
            if (settled) return false
            const index = pending.findIndex(predicate)
            if (index >= 0) {
              const [frame] = pending.splice(index, 1)
              cleanup()
              resumeNext(Effect.succeed(frame!))
              return true
            }
            return false
          }
          const timer = setTimeout(() => {
            cleanup()
            const detail = `no matching frame within ${timeoutMs} ms; pending: ${JSON.stringify(pending)}`
            resumeNext(Effect.fail(new Error(detail)))
          }, timeoutMs)
          // Effect 4 resumes the fiber within `resumeNext`, that is inside the socket's listener: the check waits for
          // the end of the current task, so that the frames that arrived with this one are received first (as they
          // were when the fiber went on in a later task).
          const wake = () => queueMicrotask(check)
          const cleanup = () => {
            settled = true
            clearTimeout(timer)
            waiters.delete(wake)
          }
          waiters.add(wake)
          check()
          return Effect.sync(cleanup)
        })
      // Spread mode: an acknowledged join or leave is known to every node before the test goes on.
      const next: Client["next"] = cluster === undefined ?
        take :
        (predicate, timeoutMs) =>
          Effect.tap(take(predicate, timeoutMs), (frame) =>
            (frame.type === "join:ok" || frame.type === "leave:ok") && session !== undefined &&
              typeof frame.room === "string"
              ? Effect.mapError(agreed(cluster, session, [frame.room]), toError)
              : Effect.void)
      const client: Client = {
        ws,
        pending,
        all,
        send: (frame) =>
          ws.send(JSON.stringify(frame)),
        sendRaw: (data, binary = false) =>
          ws.send(data, { binary }),
        next,
        none: (predicate = any, ms = 150) =>
          Effect.flatMap(Effect.sleep(ms), () => {
            const found = pending.find(predicate)
            return found === undefined
              ? Effect.void
              : Effect.fail(new Error(`unexpected frame ${JSON.stringify(found)}`))
          }),
        closed: Effect.callback<Closed, Error>((resumeClosed) => {
          if (closedWith !== undefined) return resumeClosed(Effect.succeed(closedWith))
          const timer = setTimeout(() => resumeClosed(Effect.fail(new Error("socket still open"))), 5000)
          const wake = (c: Closed) => {
            clearTimeout(timer)
            resumeClosed(Effect.succeed(c))
          }
          closeWaiters.add(wake)
          return Effect.sync(() => {
            clearTimeout(timer)
            closeWaiters.delete(wake)
          })
        }),
        isClosed: () => closedWith !== undefined
      }
      ws.once("open", () => {
        opened = true
        resume(Effect.succeed(client))
      })
    }),
    (client) => Effect.sync(() => client.ws.terminate())
  )

/** Connects and authenticates; the welcome is taken from the queue. */
export const peer = (
  server: { readonly url: string },
  user: string,
  auth: { readonly [key: string]: unknown } = {}
): Effect.Effect<Peer, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* connect(server.url)
    client.send({ type: "auth", user, ...auth })
    const welcome = yield* client.next((f) => f.type === "welcome" || f.type === "error")
    if (welcome.type !== "welcome") return yield* Effect.fail(new Error(`auth refused: ${JSON.stringify(welcome)}`))
    const id = welcome.peer!.id
    // Spread mode: the new session (and the rooms it was welcomed into) is known to every node.
    const cluster = clusters.get(server.url)
    if (cluster !== undefined) yield* Effect.mapError(agreed(cluster, id, welcome.rooms ?? []), toError)
    return { ...client, welcome, id, user: welcome.peer!.user, address: `${welcome.peer!.user}|${id}` }
  })

export const isPresenceOf = (p: { readonly id: string }, online?: boolean) => (f: Received) =>
  f.type === "presence" && f.data?.id === p.id && (online === undefined || f.data?.online === online)

export const isType = (type: string) => (f: Received) => f.type === type

export const isMessage = (predicate: (f: Received) => boolean = any) => (f: Received) =>
  f.type === "message" && predicate(f)

/** Drains frames currently pending (e.g. presence noise) after a short settle time. */
export const settle = (...clients: ReadonlyArray<Client>) =>
  Effect.map(Effect.sleep(60), () => {
    for (const client of clients) client.pending.length = 0
  })

/** Retries `check` (every `intervalMs`) until it succeeds or `timeoutMs` passes. */
export const eventually = <A>(
  check: Effect.Effect<A, unknown>,
  timeoutMs = 2000,
  intervalMs = 10
): Effect.Effect<A, unknown> =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const result = yield* Effect.result(check)
      if (result._tag === "Success") return result.success
      if (Date.now() > deadline) return yield* Effect.fail(result.failure)
      yield* Effect.sleep(intervalMs)
    }
  })

const toError = (e: unknown): Error => e instanceof Error ? e : new Error(String(e))

export const expectEffect = <A>(get: Effect.Effect<A>, predicate: (a: A) => boolean, label = "condition") =>
  eventually(
    Effect.flatMap(get, (a) =>
      predicate(a) ? Effect.succeed(a) : Effect.fail(new Error(`${label} not met: ${JSON.stringify(a)}`)))
  )

/** A bare TCP WebSocket client that speaks just enough of RFC 6455 to send frames and then stop reading. */
export interface RawClient {
  readonly socket: Net.Socket
  readonly sendText: (text: string) => void
  readonly received: () => string
  readonly ended: () => boolean
}

export const rawClient = (port: number): Effect.Effect<RawClient, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<RawClient, Error>((resume) => {
      const socket = Net.connect(port, "127.0.0.1")
      let buffer = Buffer.alloc(0)
      let upgraded = false
      let ended = false
      socket.on("error", (error) => {
        if (!upgraded) resume(Effect.fail(error))
      })
      socket.on("close", () => {
        ended = true
      })
      socket.on("data", (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk])
        if (!upgraded && buffer.includes("\r\n\r\n")) {
          upgraded = true
          if (!buffer.toString("latin1").startsWith("HTTP/1.1 101")) {
            resume(Effect.fail(new Error(buffer.toString("latin1"))))
            return
          }
          resume(Effect.succeed(client))
        }
      })
      const sendText = (text: string) => {
        const payload = Buffer.from(text)
        const mask = Buffer.from([1, 2, 3, 4])
        const header = payload.length < 126
          ? Buffer.from([0x81, 0x80 | payload.length])
          : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255])
        const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!))
        socket.write(Buffer.concat([header, mask, masked]))
      }
      const client: RawClient = {
        socket,
        sendText,
        received: () => buffer.toString("latin1"),
        ended: () => ended
      }
      socket.write(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
      )
    }),
    (client) => Effect.sync(() => client.socket.destroy())
  )
