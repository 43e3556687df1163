/**
 * The Redis broker: any number of server processes, on any machines, sharing one Redis, act as one server. Wire it
 * with `SympleServer.layer(options).pipe(Layer.provide(RedisBroker.layer({ url })))`, or set the server option
 * `redis` (env `SYMPLE_REDIS_URL`, `symple-ts serve --redis`).
 *
 * Each node keeps a replica of the cluster's directory in its registry (see `Broker`): built from Redis when it
 * starts, kept current by the directory channel. Frames are routed on the sending node, from the replica, and the
 * bytes it rendered travel to the nodes of their recipients only, one envelope per node and frame, to be written
 * to the sockets as they are; envelopes and the changes of local sessions leave on a publishing connection of the
 * node's own, in the order they were made (`internal/publisher`). Nodes send heartbeats with a TTL; the sessions of a node whose heartbeat expires go
 * offline. When Redis goes away, local peers are still served and cross-node frames are dropped and counted; when
 * it returns, the node subscribes again by itself (a new subscriber connection, not the client's automatic
 * resubscription), republishes its sessions and reads the directory again.
 *
 * Keys and channels (prefix `symple:v2`, see the README's "Scaling out"; v2 since the envelope's ids became binary:
 * nodes of different versions do not share a cluster):
 *
 * - `symple:v2:nodes` (set): ids of the nodes that joined.
 * - `symple:v2:node:<node>:alive` (string, TTL): the node's heartbeat.
 * - `symple:v2:node:<node>:sessions` (hash): session id to `{"peer":…,"rooms":[…],"virtual":bool}`.
 * - channel `symple:v2:directory`: membership events (JSON, see `Event`).
 * - channel `symple:v2:node:<node>`: frames for the node's sessions (binary envelope, see `envelope`).
 * - channel `symple:broadcast` (the JavaScript server's): frames routed as `inject` routes them.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { createClient } from "redis"
import * as Frame from "../protocol/Frame.js"
import * as Message from "../protocol/Message.js"
import type * as Peer from "../protocol/Peer.js"
import * as Broker from "../server/Broker.js"
import type * as PeerRegistry from "../server/PeerRegistry.js"
import { ServerError } from "../server/ServerError.js"
import * as State from "../server/State.js"
import { encodeCommand, Publisher, target } from "./internal/publisher.js"

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
 * cluster and whenever it comes back to Redis); `down` says a node is gone (stopped, or its heartbeat expired).
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
  /** The JavaScript server's channel. */
  broadcast: "symple:broadcast"
})

type Client = ReturnType<typeof createClient>
type Registry = Broker.Local["registry"]

const isString = (value: unknown): value is string => typeof value === "string"

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** An entry read from Redis or a directory event; `undefined` when it is not one. */
const toEntry = (value: unknown): Entry | undefined => {
  if (!isRecord(value) || !isRecord(value.peer)) return undefined
  const peer = value.peer
  if (!isString(peer.id) || peer.id === "" || !isString(peer.user) || peer.user === "") return undefined
  if (!Array.isArray(value.rooms) || !value.rooms.every(isString)) return undefined
  return { peer: peer as unknown as Peer.Peer, rooms: value.rooms, virtual: value.virtual === true }
}

const toEvent = (text: string): Event | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isRecord(value) || !isString(value.node)) return undefined
  const node = value.node
  switch (value.op) {
    case "connect": {
      const entry = toEntry(value.entry)
      return entry === undefined ? undefined : { op: "connect", node, entry }
    }
    case "disconnect":
      return isString(value.id) ? { op: "disconnect", node, id: value.id } : undefined
    case "join":
    case "leave":
      return isString(value.id) && isString(value.room)
        ? { op: value.op, node, id: value.id, room: value.room }
        : undefined
    case "sync": {
      if (!Array.isArray(value.sessions)) return undefined
      const sessions = value.sessions.map(toEntry).filter((e): e is Entry => e !== undefined)
      return { op: "sync", node, sessions }
    }
    case "down":
      return { op: "down", node }
    default:
      return undefined
  }
}

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

/** Bytes of the records as `writeRecords` writes them. */
const recordsSize = (records: ReadonlyArray<EnvelopeRecord>): number => {
  let size = 0
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const ids = record.ids
    size += 8 + 4 * ids.length + record.bytes.length
    for (let j = 0; j < ids.length; j++) size += Buffer.byteLength(ids[j]!)
  }
  return size
}

const writeRecords = (out: Buffer, at: number, records: ReadonlyArray<EnvelopeRecord>): number => {
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const ids = record.ids
    out.writeUInt32BE(ids.length, at)
    at += 4
    for (let j = 0; j < ids.length; j++) {
      const written = out.write(ids[j]!, at + 4, "utf8")
      out.writeUInt32BE(written, at)
      at += 4 + written
    }
    const bytes = record.bytes
    out.writeUInt32BE(bytes.length, at)
    out.set(bytes, at + 4)
    at += 4 + bytes.length
  }
  return at
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
export const envelope = (records: ReadonlyArray<EnvelopeRecord>): Buffer => {
  const out = Buffer.allocUnsafe(recordsSize(records))
  writeRecords(out, 0, records)
  return out
}

/**
 * The `PUBLISH` of an envelope to `channel`, as RESP renders it: the envelope is written in place, in the one buffer
 * that goes to the socket (no envelope of its own, no second copy of the frames).
 *
 * @since 0.2.0
 * @category encoding
 */
export const publishEnvelope = (channel: Buffer, records: ReadonlyArray<EnvelopeRecord>): Buffer => {
  const size = recordsSize(records)
  const head = `*3\r\n$7\r\nPUBLISH\r\n$${channel.length}\r\n`
  const sizeLine = `\r\n$${size}\r\n`
  const out = Buffer.allocUnsafe(head.length + channel.length + sizeLine.length + size + 2)
  let at = out.write(head, 0, "latin1")
  at += channel.copy(out, at)
  at += out.write(sizeLine, at, "latin1")
  at = writeRecords(out, at, records)
  out[at] = 13
  out[at + 1] = 10
  return out
}

/** Whether `message` is a whole envelope: every length within it, and nothing left over. */
const isEnvelope = (message: Buffer): boolean => {
  const end = message.length
  let at = 0
  while (at < end) {
    if (at + 4 > end) return false
    const count = message.readUInt32BE(at)
    at += 4
    for (let j = 0; j < count; j++) {
      if (at + 4 > end) return false
      at += 4 + message.readUInt32BE(at)
    }
    if (at + 4 > end) return false
    at += 4 + message.readUInt32BE(at)
    if (at > end) return false
  }
  return true
}

/**
 * Calls `visit` with each record of an envelope, in order; `false` (and no call) when it is not one. The ids and
 * bytes handed to `visit` are valid during the call only: `bytes` is a view of `message`, and the ids array is
 * reused for the next record.
 *
 * @since 0.2.0
 * @category encoding
 */
export const forEachRecord = (
  message: Buffer,
  visit: (ids: ReadonlyArray<string>, bytes: Buffer) => void
): boolean => {
  if (!isEnvelope(message)) return false
  const ids: Array<string> = []
  let at = 0
  while (at < message.length) {
    const count = message.readUInt32BE(at)
    at += 4
    ids.length = count
    for (let j = 0; j < count; j++) {
      const length = message.readUInt32BE(at)
      ids[j] = message.toString("utf8", at + 4, at + 4 + length)
      at += 4 + length
    }
    const length = message.readUInt32BE(at)
    visit(ids, message.subarray(at + 4, at + 4 + length))
    at += 4 + length
  }
  return true
}

/**
 * The records of an envelope, in order; `undefined` when it is not one.
 *
 * @since 0.2.0
 * @category encoding
 */
export const openEnvelope = (
  message: Buffer
): ReadonlyArray<{ readonly ids: ReadonlyArray<string>; readonly bytes: Buffer }> | undefined => {
  const out: Array<{ readonly ids: ReadonlyArray<string>; readonly bytes: Buffer }> = []
  return forEachRecord(message, (ids, bytes) => out.push({ ids: [...ids], bytes })) ? out : undefined
}

/** The frame inside a complete WebSocket text frame (as `socketWriter.encode` renders it). */
const frameOf = (bytes: Uint8Array): Frame.Frame => {
  const length = bytes[1]! & 127
  const offset = length < 126 ? 2 : length === 126 ? 4 : 10
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + offset, bytes.length - offset).toString("utf8"))
}

/**
 * Frames for other nodes, gathered while the current round of I/O is handled and published once it is over
 * (`setImmediate`): one envelope per node, holding each frame once with its recipients there, whatever their
 * number. Under load, one publish carries the frames of many senders.
 */
class Outbox {
  pending = new Map<string, Array<{ readonly bytes: Uint8Array; readonly ids: Array<string> }>>()
  scheduled: ReturnType<typeof setImmediate> | undefined = undefined
  /** The node of the previous frame and its records: a run of frames for one node skips the map. */
  lastNode: string | undefined = undefined
  lastRecords: Array<{ readonly bytes: Uint8Array; readonly ids: Array<string> }> = []
  constructor(
    readonly publish: (node: string, records: ReadonlyArray<EnvelopeRecord>) => void
  ) {}

  push(node: string, id: string, bytes: Uint8Array): void {
    let records = this.lastRecords
    if (node !== this.lastNode) {
      const found = this.pending.get(node)
      if (found === undefined) this.pending.set(node, records = [])
      else records = found
      this.lastNode = node
      this.lastRecords = records
    }
    const last = records[records.length - 1]
    if (last !== undefined && last.bytes === bytes) last.ids.push(id)
    else records.push({ bytes, ids: [id] })
    this.scheduled ??= setImmediate(this.flush)
  }

  readonly flush = (): void => {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled)
      this.scheduled = undefined
    }
    if (this.pending.size === 0) return
    const pending = this.pending
    this.pending = new Map()
    this.lastNode = undefined
    for (const [node, records] of pending) this.publish(node, records)
  }
}

/** A session of another node: what is sent to it goes into that node's envelope. */
class RemoteHandle implements PeerRegistry.Handle {
  constructor(readonly node: string, readonly id: string, readonly outbox: Outbox) {}
  send(bytes: Uint8Array): void {
    this.outbox.push(this.node, this.id, bytes)
  }
}

const ignore = () => {}

const entryOf = (session: State.Session<PeerRegistry.Handle>): Entry => ({
  peer: session.peer,
  rooms: session.rooms,
  virtual: session.virtual
})

/** The sessions of the replica, by the node holding them (`""` for this node's own). */
const byNode = (state: State.State<PeerRegistry.Handle>): Map<string, Array<State.Session<PeerRegistry.Handle>>> => {
  const out = new Map<string, Array<State.Session<PeerRegistry.Handle>>>()
  for (const session of HashMap.values(state.sessions)) {
    const node = session.member.handle.node ?? ""
    let list = out.get(node)
    if (list === undefined) out.set(node, list = [])
    list.push(session)
  }
  return out
}

/**
 * A Redis broker (one per server: each has its own node id and connections, opened by `start`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Broker.Broker["Service"]> =>
  Effect.sync(() => {
    const node = Message.randomId()
    const keys = names(options.prefix)
    const ttl = Math.max(300, Duration.toMillis(Duration.fromInputUnsafe(options.ttl ?? Duration.seconds(10))))
    const counters = { published: 0, received: 0, dropped: 0, syncs: 0 }
    let connected = false
    let own: Registry | undefined
    let publisher: Client | undefined
    /** Frames and directory changes go this way (see `internal/publisher`). */
    let lean: Publisher | undefined

    /** The channels of other nodes, rendered once each. */
    const channels = new Map<string, Buffer>()
    const outbox = new Outbox((to, records) => {
      let recipients = 0
      for (const record of records) recipients += record.ids.length
      if (lean === undefined || !lean.ready) {
        counters.dropped += recipients
        return
      }
      let channel = channels.get(to)
      if (channel === undefined) channels.set(to, channel = Buffer.from(keys.node(to)))
      if (lean.send(publishEnvelope(channel, records), recipients)) {
        counters.published += records.length
      }
    })

    /** Publishes a change of a local session (its hash entry, then the event); lost changes are resynced. */
    const publishChange = (id: string, event: Event) => {
      if (lean === undefined || !lean.ready || own === undefined) return
      // Frames queued before the change go first, on the same connection: a receiver sees them in the order they
      // happened here.
      outbox.flush()
      const session = State.session(own.snapshotUnsafe(), id)
      lean.send(
        encodeCommand(
          session === undefined
            ? ["HDEL", keys.sessions(node), id]
            : ["HSET", keys.sessions(node), id, JSON.stringify(entryOf(session))]
        ),
        0
      )
      lean.send(encodeCommand(["PUBLISH", keys.directory, JSON.stringify(event)]), 0)
    }

    const wrap = (registry: Registry): Registry => ({
      ...registry,
      connect: (member, peer, rooms, connectOptions) =>
        Effect.map(registry.connect(member, peer, rooms, connectOptions), (state) => {
          if (state !== undefined && member.handle.node === undefined) {
            const session = State.session(state, member.id)
            if (session !== undefined) publishChange(member.id, { op: "connect", node, entry: entryOf(session) })
          }
          return state
        }),
      disconnect: (id) =>
        Effect.map(registry.disconnect(id), (removed) => {
          if (removed !== undefined && removed.session.member.handle.node === undefined) {
            publishChange(id, { op: "disconnect", node, id })
          }
          return removed
        }),
      join: (id, room) =>
        Effect.suspend(() => {
          const before = registry.snapshotUnsafe()
          return Effect.map(registry.join(id, room), (after) => {
            if (after !== before && State.session(after, id)?.member.handle.node === undefined) {
              publishChange(id, { op: "join", node, id, room })
            }
            return after
          })
        }),
      leave: (id, room) =>
        Effect.suspend(() => {
          const before = registry.snapshotUnsafe()
          return Effect.map(registry.leave(id, room), (after) => {
            if (after !== before && State.session(after, id)?.member.handle.node === undefined) {
              publishChange(id, { op: "leave", node, id, room })
            }
            return after
          })
        })
    })

    const start = (local: Broker.Local): Effect.Effect<void, ServerError, Scope.Scope> =>
      Effect.gen(function*() {
        const registry = local.registry
        own = registry
        const runNow = Effect.runSyncWith(yield* Effect.context<never>())
        let stopped = false
        let everReady = false
        /** Ids that went offline while a resync was reading the directory: what it read of them is stale. */
        let tombstones: Set<string> | undefined

        const connectRemote = (from: string, entry: Entry) => {
          const id = entry.peer.id
          if (tombstones?.has(id) === true) return
          const current = State.session(registry.snapshotUnsafe(), id)
          if (current !== undefined) {
            if (current.member.handle.node === from) updateRooms(current, entry.rooms)
            return
          }
          const member = { id, user: entry.peer.user, handle: new RemoteHandle(from, id, outbox) }
          const state = runNow(registry.connect(member, entry.peer, entry.rooms, {
            virtual: entry.virtual,
            claimPersonalRoom: local.claimPersonalRoom,
            evicted: local.evicted
          }))
          const session = state === undefined ? undefined : State.session(state, id)
          if (state !== undefined && session !== undefined) {
            local.announce(session, State.neighbours(state, id, session.rooms), true)
          }
        }

        const updateRooms = (current: State.Session<PeerRegistry.Handle>, rooms: ReadonlyArray<string>) => {
          const wanted = new Set(rooms)
          for (const room of current.rooms) if (!wanted.has(room)) runNow(registry.leave(current.member.id, room))
          for (const room of rooms) if (!current.roomSet.has(room)) runNow(registry.join(current.member.id, room))
        }

        const disconnectRemote = (from: string, id: string) => {
          tombstones?.add(id)
          const current = State.session(registry.snapshotUnsafe(), id)
          if (current === undefined || current.member.handle.node !== from) return
          const removed = runNow(registry.disconnect(id))
          if (removed !== undefined) local.announce(removed.session, removed.neighbours, false)
        }

        /** Makes the replica hold exactly the given sessions of a node. */
        const reconcile = (from: string, entries: ReadonlyArray<Entry>) => {
          if (entries.length === 0) channels.delete(from)
          const listed = new Set(entries.map((entry) => entry.peer.id))
          const held = byNode(registry.snapshotUnsafe()).get(from) ?? []
          for (const session of held) if (!listed.has(session.member.id)) disconnectRemote(from, session.member.id)
          for (const entry of entries) connectRemote(from, entry)
        }

        const onDirectory = (text: string) => {
          const event = toEvent(text)
          if (event === undefined || event.node === node) return
          switch (event.op) {
            case "connect":
              return connectRemote(event.node, event.entry)
            case "disconnect":
              return disconnectRemote(event.node, event.id)
            case "join":
            case "leave": {
              const current = State.session(registry.snapshotUnsafe(), event.id)
              if (current === undefined || current.member.handle.node !== event.node) return
              runNow(event.op === "join" ? registry.join(event.id, event.room) : registry.leave(event.id, event.room))
              return
            }
            case "sync":
              return reconcile(event.node, event.sessions)
            case "down":
              return reconcile(event.node, [])
          }
        }

        // One visitor and one decoder for every record (no closure per frame): `deliver` calls `decode` only
        // while it handles `current`.
        let current: Uint8Array = new Uint8Array(0)
        const decode = () => frameOf(current)
        const visit = (ids: ReadonlyArray<string>, bytes: Buffer) => {
          counters.received++
          current = bytes
          local.deliver(ids, bytes, decode)
        }
        const onEnvelope = (message: Buffer) => {
          forEachRecord(message, visit)
        }

        const onBroadcast = (text: string) => {
          const decoded = Frame.decode(text)
          if (Result.isSuccess(decoded)) local.inject(decoded.success)
        }

        const client: Client = createClient({
          url: options.url,
          // Commands fail at once while Redis is away (frames are dropped and counted, changes resynced later)
          // instead of piling up in the client.
          disableOfflineQueue: true,
          socket: {
            // The first connection fails the start; once in, the node keeps trying.
            reconnectStrategy: (retries, cause) => everReady ? Math.min(50 * 2 ** retries, 1000) : cause,
            connectTimeout: 5000
          }
        })
        client.on("error", ignore)
        yield* Effect.tryPromise({
          try: () => client.connect(),
          catch: (cause) =>
            new ServerError({ reason: "Broker", message: `Cannot reach Redis at ${options.url}`, cause })
        })
        everReady = true
        publisher = client
        const to = target(options.url)
        if (to === undefined) {
          client.destroy()
          return yield* new ServerError({
            reason: "Broker",
            message: `Not a redis:// or rediss:// URL: ${options.url}`
          })
        }
        const frames = new Publisher(to, {
          dropped: (recipients) => {
            counters.dropped += recipients
          },
          // Changes written while it was away are lost: the node republishes itself.
          onReady: () => {
            if (!stopped && subscriber !== undefined) resync().catch(() => scheduleResubscribe())
          }
        })
        yield* Effect.tryPromise({
          try: () => frames.start(),
          catch: (cause) => {
            client.destroy()
            return new ServerError({ reason: "Broker", message: `Cannot reach Redis at ${options.url}`, cause })
          }
        })
        lean = frames

        let subscriber: Client | undefined
        /** Gives up the current subscriber connection (it is replaced by a new one). */
        let lose: () => void = ignore
        let retry: ReturnType<typeof setTimeout> | undefined
        let retries = 0

        /** A new subscriber connection and its subscriptions: after a loss, the node resubscribes by itself. */
        const subscribe = async (): Promise<void> => {
          const sub = client.duplicate({ socket: { reconnectStrategy: false, connectTimeout: 5000 } })
          let lost = false
          const onLost = () => {
            if (lost) return
            lost = true
            connected = false
            if (subscriber === sub) subscriber = undefined
            if (sub.isOpen) sub.destroy()
            if (!stopped) scheduleResubscribe()
          }
          // Without reconnection, a lost socket is an error after which the client is closed.
          sub.on("error", () => {
            if (!sub.isOpen) onLost()
          })
          sub.on("end", onLost)
          lose = onLost
          try {
            await sub.connect()
            await sub.subscribe(keys.node(node), onEnvelope, true)
            await sub.subscribe(keys.directory, onDirectory)
            await sub.subscribe(keys.broadcast, onBroadcast)
          } catch (cause) {
            if (sub.isOpen) sub.destroy()
            throw cause
          }
          if (stopped) {
            sub.destroy()
            return
          }
          subscriber = sub
        }

        let syncing = false
        let again = false
        /** Writes this node's part of the directory, announces it, then reads the others' into the replica. */
        const resync = async (): Promise<void> => {
          if (syncing) {
            again = true
            return
          }
          syncing = true
          tombstones = new Set()
          try {
            outbox.flush()
            const mine = (byNode(registry.snapshotUnsafe()).get("") ?? []).map(entryOf)
            const write = client.multi().del(keys.sessions(node))
            if (mine.length > 0) {
              write.hSet(keys.sessions(node), Object.fromEntries(mine.map((e) => [e.peer.id, JSON.stringify(e)])))
            }
            await write.sAdd(keys.nodes, node).set(keys.alive(node), String(Date.now()), {
              expiration: { type: "PX", value: ttl }
            }).exec()
            await client.publish(keys.directory, JSON.stringify({ op: "sync", node, sessions: mine }))
            const nodes = new Set(await client.sMembers(keys.nodes))
            nodes.delete(node)
            for (const other of nodes) {
              if ((await client.exists(keys.alive(other))) === 0) {
                await sweep(other)
                continue
              }
              const stored = await client.hGetAll(keys.sessions(other))
              const entries: Array<Entry> = []
              for (const text of Object.values(stored)) {
                try {
                  const entry = toEntry(JSON.parse(text))
                  if (entry !== undefined) entries.push(entry)
                } catch {
                  // A malformed entry is skipped: its node's next sync rewrites it.
                }
              }
              reconcile(other, entries)
            }
            for (const known of byNode(registry.snapshotUnsafe()).keys()) {
              if (known !== "" && !nodes.has(known)) reconcile(known, [])
            }
            counters.syncs++
            connected = subscriber !== undefined && client.isReady
          } finally {
            syncing = false
            tombstones = undefined
          }
          if (again) {
            again = false
            await resync()
          }
        }

        /** A node whose heartbeat expired: its sessions go offline here; its keys go (idempotent on every node). */
        const sweep = async (dead: string): Promise<void> => {
          reconcile(dead, [])
          await client.multi().del(keys.sessions(dead)).sRem(keys.nodes, dead).exec()
          await client.publish(keys.directory, JSON.stringify({ op: "down", node: dead }))
        }

        const recover = () => {
          subscribe().then(resync).then(() => {
            retries = 0
          }, () => {
            if (!stopped) scheduleResubscribe()
          })
        }

        function scheduleResubscribe() {
          if (retry !== undefined || stopped) return
          const delay = Math.min(50 * 2 ** retries++, 1000)
          retry = setTimeout(() => {
            retry = undefined
            if (subscriber !== undefined) {
              resync().catch(() => scheduleResubscribe())
              return
            }
            recover()
          }, delay)
        }

        // The publisher back after a loss: whatever was published meanwhile is lost, so the node resyncs.
        client.on("ready", () => {
          if (!stopped && subscriber !== undefined) resync().catch(() => scheduleResubscribe())
        })

        const heartbeat = async (): Promise<void> => {
          // A subscriber that lost its socket without saying so is replaced.
          if (subscriber !== undefined && !subscriber.isReady) lose()
          if (!client.isReady) return
          // The previous beat tells whether this node was taken for dead (e.g. Redis lost its keys): then it resyncs.
          const previous = await client.sendCommand([
            "SET",
            keys.alive(node),
            String(Date.now()),
            "PX",
            String(ttl),
            "GET"
          ])
          if (previous === null && !syncing) await resync()
          const known = new Set(await client.sMembers(keys.nodes))
          for (const other of byNode(registry.snapshotUnsafe()).keys()) if (other !== "") known.add(other)
          known.delete(node)
          for (const other of known) if ((await client.exists(keys.alive(other))) === 0) await sweep(other)
        }

        yield* Effect.addFinalizer(() =>
          Effect.promise(async () => {
            stopped = true
            connected = false
            if (retry !== undefined) clearTimeout(retry)
            outbox.flush()
            if (client.isReady) {
              const leave = async () => {
                await client.multi().del(keys.sessions(node)).del(keys.alive(node)).sRem(keys.nodes, node).exec()
                await client.publish(keys.directory, JSON.stringify({ op: "down", node }))
              }
              // A Redis that does not answer must not hold the shutdown: the node's heartbeat expires instead.
              let timer: ReturnType<typeof setTimeout> | undefined
              await Promise.race([
                leave().catch(ignore),
                new Promise((resolve) => timer = setTimeout(resolve, 1000))
              ])
              clearTimeout(timer)
            }
            subscriber?.destroy()
            subscriber = undefined
            publisher = undefined
            lean?.close()
            lean = undefined
            client.destroy()
          })
        )

        yield* Effect.tryPromise({
          try: () => subscribe().then(resync),
          catch: (cause) =>
            new ServerError({ reason: "Broker", message: `Cannot join the cluster at ${options.url}`, cause })
        })
        yield* Effect.forkScoped(
          Effect.repeat(
            Effect.promise(() => heartbeat().catch(ignore)),
            Schedule.spaced(Math.max(100, Math.floor(ttl / 3)))
          )
        )
      })

    return Broker.Broker.of({
      attach: (registry) => Effect.succeed({ registry: wrap(registry), start }),
      status: Effect.sync(() => {
        const nodes = own === undefined ? 0 : byNode(own.snapshotUnsafe()).size
        const hasOwn = own !== undefined && byNode(own.snapshotUnsafe()).has("")
        return {
          state: connected && publisher?.isReady === true && lean?.ready === true ? "connected" : "disconnected",
          node,
          nodes: hasOwn ? nodes - 1 : nodes,
          ...counters
        }
      })
    })
  })

/**
 * The Redis broker as the server's `Broker` (a new one wherever it is provided).
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Broker.Broker> =>
  Layer.fresh(Layer.effect(Broker.Broker, make(options)))
