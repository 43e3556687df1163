/**
 * The Redis broker: any number of server processes, on any machines, sharing one Redis, act as one server. Wire it
 * with `SympleServer.layer(options).pipe(Layer.provide(RedisBroker.layer({ url })))`, or set the server option
 * `redis` (env `SYMPLE_REDIS_URL`, `symple-ts serve --redis`).
 *
 * Each node keeps a replica of the cluster's directory in its registry (see `Broker`): built from Redis when it
 * starts, kept current by the directory channel. Frames are routed on the sending node, from the replica, and the
 * bytes it rendered travel to the nodes of their recipients only, one envelope per node and frame, to be written
 * to the sockets as they are; envelopes and the changes of local sessions leave on a publishing connection of the
 * node's own, in the order they were made (`internal/publisher`). Nodes send heartbeats with a TTL; the sessions of
 * a node whose heartbeat expires go offline. When Redis goes away, local peers are still served and cross-node
 * frames are dropped and counted; when it returns, the node subscribes again by itself (a new subscriber connection,
 * not the client's automatic resubscription), republishes its sessions and reads the directory again.
 *
 * This module is the contract and the assembly; the machinery is in `internal/`, one part each: `directory` (the
 * records on the wire), `replica` (other nodes' sessions in the registry), `changes` (local sessions' changes
 * published), `envelope` and `outbox` (frames to other nodes), `subscriber` (the node's channels, resubscribing),
 * `sync` (writing this node's part, reading the others'), `liveness` (heartbeats, sweeps, leaving), `connection`
 * and `publisher` (the connections), `status` (counters and readiness), `handover` (a detached session moved to
 * the node its peer came back to).
 *
 * Keys and channels (prefix `symple:v2`, see the README's "Scaling out"; v2 since the envelope's ids became binary:
 * nodes of different versions do not share a cluster):
 *
 * - `symple:v2:nodes` (set): ids of the nodes that joined.
 * - `symple:v2:node:<node>:alive` (string, TTL): the node's heartbeat.
 * - `symple:v2:node:<node>:sessions` (hash): session id to `{"peer":…,"rooms":[…],"virtual":bool}`.
 * - channel `symple:v2:directory`: membership events (JSON, see `Event`).
 * - channel `symple:v2:node:<node>`: frames for the node's sessions (binary envelope, see `envelope`).
 * - channel `symple:v2:node:<node>:handover`: session handovers asked of or answered to the node (see
 *   `internal/handover`; directory event `move` when a session changed nodes).
 * - channel `symple:broadcast` (the JavaScript server's): frames routed as `inject` routes them.
 * - `symple:v2:ratelimit:<session>` and `symple:v2:ratelimit:<session>:refill` (strings, TTL): the sessions'
 *   rate-limit buckets (`RedisRateLimit`, provided by `layer`).
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Message from "../protocol/Message.js"
import type * as Peer from "../protocol/Peer.js"
import * as Broker from "../server/Broker.js"
import { ServerError } from "../server/ServerError.js"
import { publishing } from "./internal/changes.js"
import { connect } from "./internal/connection.js"
import * as internal from "./internal/envelope.js"
import { Handovers } from "./internal/handover.js"
import { leave, Liveness } from "./internal/liveness.js"
import { Outbox, publishTo, RemoteHandle } from "./internal/outbox.js"
import { encodeCommand } from "./internal/publisher.js"
import { Replica } from "./internal/replica.js"
import { Status } from "./internal/status.js"
import { receiver, Subscriber } from "./internal/subscriber.js"
import { Sync } from "./internal/sync.js"
import * as RedisRateLimit from "./RedisRateLimit.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** `redis://host:port` (any URL node-redis accepts). */
  readonly url: string
  /** How long a node without heartbeats is taken as alive (default 10 s); heartbeats go out every third of it. */
  readonly ttl?: Duration.Input | undefined
  /** Key and channel prefix of the cluster's own traffic (default `symple:v2`). */
  readonly prefix?: string | undefined
  /**
   * How long a node that received a resume token for another node's session waits for that node to hand the
   * session over before it gives the peer a new session instead (default 2 s, at most the TTL).
   */
  readonly handoverTimeout?: Duration.Input | undefined
  /**
   * How often the sessions' rate-limit buckets are reconciled with Redis (`RedisRateLimit`'s `syncInterval`, default
   * 500 ms).
   */
  readonly rateLimitSyncInterval?: Duration.Input | undefined
}

/**
 * A session as the directory records it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Entry {
  readonly peer: Peer.Peer
  readonly rooms: ReadonlyArray<string>
  readonly virtual: boolean
}

/**
 * A membership event on the directory channel. `sync` lists every session of a node (sent when it joins the
 * cluster and whenever it comes back to Redis); `down` says a node is gone (stopped, or its heartbeat expired);
 * `move` says a session of node `from` now lives on `node` (handed over on a resume, see `internal/handover`): no
 * presence goes out for it.
 *
 * @since 0.2.0
 * @category models
 */
export type Event =
  | { readonly op: "connect"; readonly node: string; readonly entry: Entry }
  | { readonly op: "disconnect"; readonly node: string; readonly id: string }
  | { readonly op: "join" | "leave"; readonly node: string; readonly id: string; readonly room: string }
  | { readonly op: "sync"; readonly node: string; readonly sessions: ReadonlyArray<Entry> }
  | { readonly op: "down"; readonly node: string }
  | { readonly op: "move"; readonly node: string; readonly from: string; readonly entry: Entry }

/**
 * The names of the cluster's keys and channels.
 *
 * @since 0.2.0
 * @category names
 */
export const names = (prefix = "symple:v2") => ({
  nodes: `${prefix}:nodes`,
  alive: (node: string) => `${prefix}:node:${node}:alive`,
  sessions: (node: string) => `${prefix}:node:${node}:sessions`,
  directory: `${prefix}:directory`,
  node: (node: string) => `${prefix}:node:${node}`,
  handover: (node: string) => `${prefix}:node:${node}:handover`,
  /** The JavaScript server's channel. */
  broadcast: "symple:broadcast"
})

/**
 * A record of an envelope: a frame as a complete WebSocket text frame, and its recipients' session ids.
 *
 * @since 0.2.0
 * @category encoding
 */
export interface EnvelopeRecord {
  readonly ids: ReadonlyArray<string>
  readonly bytes: Uint8Array
}

/**
 * An envelope to another node: frames, each with its recipients' ids and the bytes rendered on the sending node.
 * Each record is a 4-byte big-endian count of ids, each id as a 4-byte length and its UTF-8 bytes, then a 4-byte
 * length and the frame as a complete WebSocket text frame. (Binary ids rather than a JSON array: the receiving
 * node reads each id with one string slice, no parse, no array.)
 *
 * @since 0.2.0
 * @category encoding
 */
export const envelope: (records: ReadonlyArray<EnvelopeRecord>) => Buffer = internal.envelope

/**
 * The `PUBLISH` of an envelope to `channel`, as RESP renders it: the envelope is written in place, in the one buffer
 * that goes to the socket (no envelope of its own, no second copy of the frames).
 *
 * @since 0.2.0
 * @category encoding
 */
export const publishEnvelope: (channel: Buffer, records: ReadonlyArray<EnvelopeRecord>) => Buffer =
  internal.publishEnvelope

/**
 * Calls `visit` with each record of an envelope, in order; `false` (and no call) when it is not one. The ids and
 * bytes handed to `visit` are valid during the call only: `bytes` is a view of `message`, and the ids array is
 * reused for the next record.
 *
 * @since 0.2.0
 * @category encoding
 */
export const forEachRecord: (
  message: Buffer,
  visit: (ids: ReadonlyArray<string>, bytes: Buffer) => void
) => boolean = internal.forEachRecord

/**
 * The records of an envelope, in order; `undefined` when it is not one.
 *
 * @since 0.2.0
 * @category encoding
 */
export const openEnvelope: (
  message: Buffer
) => ReadonlyArray<{ readonly ids: ReadonlyArray<string>; readonly bytes: Buffer }> | undefined = internal.openEnvelope

/**
 * A Redis broker (one per server: each has its own node id and connections, opened by `start`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Broker.Broker["Service"]> =>
  Effect.sync(() => {
    const keys = names(options.prefix)
    const ttl = Math.max(300, Duration.toMillis(Duration.fromInputUnsafe(options.ttl ?? Duration.seconds(10))))
    const status = new Status(Message.randomId())
    const node = status.node
    const channels = new Map<string, Buffer>()
    const outbox = new Outbox(publishTo(status, keys.node, channels))
    const handoverTimeout = Math.min(
      ttl,
      Duration.toMillis(Duration.fromInputUnsafe(options.handoverTimeout ?? Duration.seconds(2)))
    )
    /** Session handovers (made by `start`). */
    let handovers: Handovers | undefined
    /** The registry the server was given back (`attach`). */
    let published: Broker.Local["registry"] | undefined

    const start = (local: Broker.Local): Effect.Effect<void, ServerError, Scope.Scope> =>
      Effect.gen(function*() {
        status.registry = local.registry
        const runNow = Effect.runSyncWith(yield* Effect.context<never>())
        const replica = new Replica(node, local, runNow, outbox, channels)
        const handing = new Handovers({
          node,
          registry: local.registry,
          published: published ?? local.registry,
          local,
          runNow,
          channel: keys.handover,
          publish: (channel, message) => {
            const publisher = status.publisher
            if (publisher === undefined || !publisher.ready) return false
            outbox.flush()
            return publisher.send(encodeCommand(["PUBLISH", channel, message]), 0)
          },
          remote: (to, id) => new RemoteHandle(to, id, outbox),
          removed: (id) => {
            const publisher = status.publisher
            if (publisher !== undefined && publisher.ready) {
              publisher.send(encodeCommand(["HDEL", keys.sessions(node), id]), 0)
            }
          },
          timeoutMillis: handoverTimeout,
          forwardMillis: ttl
        })
        handovers = handing
        replica.moved = (to, from, id) => handing.moved(to, from, id)
        // The subscriber and the sync need each other (a resync follows each new subscription; a resync leaves the
        // node `connected` only if subscribed): each reaches the other through a function, called once `start`
        // subscribes or a connection comes back after a loss, when both exist.
        const client = yield* connect(options.url, status, () => subscriber.refresh())
        const subscriber: Subscriber = new Subscriber(
          client,
          keys,
          status,
          {
            ...receiver(local, status.counters, handing),
            directory: replica.onDirectory,
            handover: (message) => handing.onMessage(message)
          },
          () => sync.resync()
        )
        const sync: Sync = new Sync(client, keys, ttl, status, outbox, replica, () => subscriber.current !== undefined)
        const liveness = new Liveness(client, keys, node, ttl, replica, sync, subscriber)

        // The client back after a loss: whatever was published meanwhile is lost, so the node resyncs.
        client.on("ready", subscriber.refresh)

        yield* Effect.addFinalizer(() =>
          Effect.promise(async () => {
            handing.close()
            subscriber.stop()
            status.connected = false
            outbox.flush()
            if (client.isReady) await leave(client, keys, node)
            subscriber.close()
            status.client = undefined
            status.publisher?.close()
            status.publisher = undefined
            client.destroy()
          })
        )

        yield* Effect.tryPromise({
          try: () => subscriber.subscribe().then(sync.resync),
          catch: (cause) =>
            new ServerError({ reason: "Broker", message: `Cannot join the cluster at ${options.url}`, cause })
        })
        yield* liveness.run()
      })

    return Broker.Broker.of({
      attach: (registry) =>
        Effect.sync(() => {
          published = publishing(registry, status, outbox, keys, (id) => handovers?.arrived(id))
          return {
            registry: published,
            start,
            handover: (request) => handovers === undefined ? Effect.succeed(undefined) : handovers.request(request)
          }
        }),
      status: Effect.sync(() => status.read())
    })
  })

/**
 * The Redis broker as the server's `Broker`, and the cluster's rate-limit store (`RedisRateLimit`, same URL and
 * prefix) as its `RateLimit.Store`, so that the sessions' buckets are shared by the nodes (a reference: the layer's
 * type names the broker alone). A new broker and store wherever it is provided.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Broker.Broker> =>
  Layer.fresh(Layer.merge(
    Layer.effect(Broker.Broker, make(options)),
    RedisRateLimit.layer({ url: options.url, prefix: options.prefix, syncInterval: options.rateLimitSyncInterval })
  ))
