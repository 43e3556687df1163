/**
 * Session resume across nodes, with real servers on a real redis-server: a peer whose socket dropped on node A and
 * that comes back to node B with its token gets its session from A (same id, rooms, held frames in order), while
 * its neighbours on every node see nothing and every sender's frames reach it once and in order, also those sent
 * during the handover. Bad tokens, and a node that does not answer, give a new session within the bound.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import * as PeerRegistry from "../../src/server/PeerRegistry.js"
import * as State from "../../src/server/State.js"
import type * as SympleServer from "../../src/server/SympleServer.js"
import {
  type Client,
  connect,
  expectEffect,
  isPresenceOf,
  type Peer,
  peer,
  type Received,
  settle
} from "../server/support.js"
import { startRedis } from "./redisServer.js"
import { serveNode } from "./serveNode.js"
import { converged, type NodeOptions, startNodeWith } from "./support.js"

/** A node whose registry the test reads (where each session is, and whether it is detached). */
const startNode = (url: string, options: Partial<SympleServer.ServerOptions> = {}, node: NodeOptions = {}) =>
  Effect.gen(function*() {
    const registry = yield* PeerRegistry.make
    const server = yield* startNodeWith(
      Layer.succeed(PeerRegistry.PeerRegistry, registry),
      url,
      { resumeWindow: 5000, ...options },
      node
    )
    const id = (yield* server.brokerStatus).node
    /** Where this node places session `sid`: `"here"`, another node's id, or `undefined` (unknown). */
    const where = (sid: string) =>
      Effect.sync(() => {
        const session = State.session(registry.snapshotUnsafe(), sid)
        return session === undefined ? undefined : session.member.handle.node ?? "here"
      })
    const detached = (sid: string) => Effect.sync(() => State.session(registry.snapshotUnsafe(), sid)?.detached)
    return { server, id, where, detached } as const
  })

type Node = Effect.Success<ReturnType<typeof startNode>>

const tokenOf = (welcome: Received): string => {
  expect(typeof welcome.resume).toBe("string")
  return welcome.resume as string
}

/** The socket dies under the peer (no close frame); returns once its node holds the session detached. */
const blip = (node: Node, p: { readonly ws: Client["ws"]; readonly id: string }) =>
  Effect.gen(function*() {
    p.ws.terminate()
    yield* expectEffect(node.detached(p.id), (d) => d === true, "session detached")
  })

/** A new socket to `node` offering `token` for `user`; `after` is sent right behind the auth. */
const comeBack = (
  node: { readonly url: string },
  user: string,
  token: string,
  after: ReadonlyArray<unknown> = []
) =>
  Effect.gen(function*() {
    const client = yield* connect(node.url)
    client.send({ type: "auth", user, resume: token, rooms: ["lobby"] })
    for (const frame of after) client.send(frame)
    const welcome = yield* client.next((f) => f.type === "welcome" || f.type === "error", 5000)
    return { client, welcome } as const
  })

/** The `n` of each message from `sender`, in the order received. */
const stream = (client: Client, sender: string) =>
  client.all.filter((f) => f.type === "message" && f.data?.s === sender).map((f) => f.data?.n)

const upTo = (count: number) => Array.from({ length: count }, (_, n) => n)

/** `from` sends `count` numbered messages to `to`, a few milliseconds apart. */
const sendStream = (from: Peer, to: string, count: number) =>
  Effect.gen(function*() {
    for (let n = 0; n < count; n++) {
      from.send({ type: "message", to, data: { s: from.user, n } })
      yield* Effect.sleep(1)
    }
  })

/** Presences of session `id` that `client` received from now on. */
const presences = (client: Client, id: string) => {
  const at = client.all.length
  return () => client.all.slice(at).filter(isPresenceOf({ id }))
}

describe("session handover between nodes", () => {
  it.live(
    "resumed on another node: same session, held frames then live ones, each sender's once and in order, " +
      "no presence anywhere",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const a = yield* startNode(redis.url)
        const b = yield* startNode(redis.url)
        const c = yield* startNode(redis.url)
        const alice = yield* peer(a.server, "alice", { rooms: ["lobby"] })
        const bob = yield* peer(a.server, "bob", { rooms: ["lobby"] })
        const carol = yield* peer(b.server, "carol", { rooms: ["lobby"] })
        const dave = yield* peer(c.server, "dave", { rooms: ["lobby"] })
        yield* converged([a.server, b.server, c.server], 4)
        yield* settle(alice, bob, carol, dave)
        const seen = [bob, carol, dave].map((other) => presences(other, alice.id))
        const token = tokenOf(alice.welcome)
        yield* blip(a, alice)

        // Senders on A, B and C, before, during and after the handover (within the default rate limit).
        const count = 90
        const senders = yield* Effect.forkChild(
          Effect.all([bob, carol, dave].map((p) => sendStream(p, alice.address, count)), { concurrency: "unbounded" })
        )
        yield* Effect.sleep(40)
        // A frame behind the auth waits for the handover: it is answered after the welcome.
        const back = yield* comeBack(b.server, "alice", token, [{ type: "join", room: "extra" }])
        expect(back.welcome).toMatchObject({
          type: "welcome",
          status: 200,
          resumed: true,
          peer: { id: alice.id, user: "alice" },
          rooms: ["alice", "lobby"]
        })
        expect(tokenOf(back.welcome)).not.toBe(token)
        expect(yield* back.client.next((f) => f.type === "join:ok")).toMatchObject({ room: "extra" })
        yield* Fiber.join(senders)

        // Every node places the session on B.
        yield* expectEffect(a.where(alice.id), (w) => w === b.id, "A places alice on B")
        yield* expectEffect(c.where(alice.id), (w) => w === b.id, "C places alice on B")
        expect(yield* b.where(alice.id)).toBe("here")
        expect(yield* b.detached(alice.id)).toBe(false)
        // The server API of either node reaches it on B.
        expect(yield* a.server.sendTo(alice.id, { type: "message", data: { s: "api", n: 0 } })).toBe(true)
        yield* expectEffect(Effect.sync(() => stream(back.client, "api")), (s) => s.length === 1)
        expect(yield* c.server.sendTo(alice.id, { type: "message", data: { s: "api", n: 1 } })).toBe(true)
        yield* expectEffect(Effect.sync(() => stream(back.client, "api")), (s) => s.length === 2)

        for (const sender of ["bob", "carol", "dave"]) {
          yield* expectEffect(Effect.sync(() => stream(back.client, sender)), (s) => s.length >= count, sender)
        }
        // Live frames after the handover, from each node.
        for (const [n, sender] of [bob, carol, dave].entries()) {
          sender.send({ type: "message", to: alice.address, data: { s: sender.user, n: count } })
          yield* expectEffect(
            Effect.sync(() => stream(back.client, sender.user)),
            (s) => s.length === count + 1,
            `${sender.user} ${n}`
          )
        }
        yield* Effect.sleep(100)
        for (const sender of ["bob", "carol", "dave"]) expect(stream(back.client, sender)).toEqual(upTo(count + 1))
        // Nothing else before the join's answer than the welcome and messages; no presence snapshot.
        expect(back.client.all.filter((f) => f.type === "presence")).toEqual([])
        // The neighbours never saw alice go or come.
        for (const other of seen) expect(other()).toEqual([])
        // The session is an ordinary one on B: it sends and its neighbours on every node answer.
        back.client.send({ type: "message", to: "lobby", data: "back" })
        for (const other of [bob, carol, dave]) {
          expect(yield* other.next((f) => f.type === "message" && f.from === alice.address)).toMatchObject({
            data: "back"
          })
        }
        // The token never went anywhere but to alice.
        for (const other of [bob, carol, dave]) expect(JSON.stringify(other.all)).not.toContain(token.slice(0, 20))
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("wrong, foreign and reused tokens at another node get a new session (resumed: false)", () =>
    Effect.gen(function*() {
      const redis = yield* startRedis
      const a = yield* startNode(redis.url)
      const b = yield* startNode(redis.url)
      const alice = yield* peer(a.server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(b.server, "bob", { rooms: ["lobby"] })
      yield* converged([a.server, b.server], 2)
      yield* settle(alice, bob)
      const seen = presences(bob, alice.id)
      const token = tokenOf(alice.welcome)
      const [secret] = token.split(".")
      yield* blip(a, alice)
      const attempts = [
        { user: "alice", token: `${"A".repeat(secret!.length)}.${alice.id}` },
        { user: "alice", token: `${secret!.slice(0, -1)}.${alice.id}` },
        // alice's own token, offered by someone else.
        { user: "mallory", token }
      ]
      for (const attempt of attempts) {
        const other = yield* comeBack(b.server, attempt.user, attempt.token)
        expect(other.welcome, attempt.token).toMatchObject({ type: "welcome", resumed: false })
        expect(other.welcome.peer!.id).not.toBe(alice.id)
        other.client.send({ type: "close" })
      }
      // None of them disturbed the session: still held on A, and placed on A everywhere.
      expect(yield* a.detached(alice.id)).toBe(true)
      expect(yield* b.where(alice.id)).toBe(a.id)
      bob.send({ type: "message", to: alice.address, data: { s: "bob", n: 0 } })
      const back = yield* comeBack(b.server, "alice", token)
      expect(back.welcome).toMatchObject({ resumed: true, peer: { id: alice.id } })
      expect(yield* back.client.next((f) => f.type === "message")).toMatchObject({ data: { s: "bob", n: 0 } })
      // Used once: offered again, at either node, it is worth nothing.
      for (const node of [b, a]) {
        const reused = yield* comeBack(node.server, "alice", token)
        expect(reused.welcome).toMatchObject({ resumed: false })
        expect(reused.welcome.peer!.id).not.toBe(alice.id)
        reused.client.send({ type: "close" })
      }
      expect(back.client.isClosed()).toBe(false)
      expect(yield* b.where(alice.id)).toBe("here")
      yield* Effect.sleep(100)
      expect(seen()).toEqual([])
    }).pipe(Effect.scoped))

  it.live(
    "handed over, then dropped again: resumed on its new node, back on the first, and on the second again",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        // A short TTL: the first node's forwarding is long over by the later resumes.
        const a = yield* startNode(redis.url, {}, { ttl: 600 })
        const b = yield* startNode(redis.url, {}, { ttl: 600 })
        let alice = yield* peer(a.server, "alice", { rooms: ["lobby"] })
        const bob = yield* peer(a.server, "bob", { rooms: ["lobby"] })
        const carol = yield* peer(b.server, "carol", { rooms: ["lobby"] })
        yield* converged([a.server, b.server], 3)
        yield* settle(alice, bob, carol)
        const seen = [bob, carol].map((other) => presences(other, alice.id))
        let at = a
        let n = 0
        for (const next of [b, b, a, b]) {
          yield* blip(at, alice)
          yield* Effect.sleep(700)
          for (const sender of [bob, carol]) {
            sender.send({ type: "message", to: alice.address, data: { s: sender.user, n } })
          }
          const back = yield* comeBack(next.server, "alice", tokenOf(alice.welcome))
          expect(back.welcome, `resume ${n} on ${next === a ? "A" : "B"}`).toMatchObject({
            resumed: true,
            peer: { id: alice.id }
          })
          yield* expectEffect(
            Effect.sync(() => [stream(back.client, "bob"), stream(back.client, "carol")]),
            ([x, y]) => x!.length === 1 && y!.length === 1,
            "held frames"
          )
          expect(stream(back.client, "bob")).toEqual([n])
          expect(stream(back.client, "carol")).toEqual([n])
          yield* expectEffect(a.where(alice.id), (w) => w === (next === a ? "here" : b.id), "A's view")
          yield* expectEffect(b.where(alice.id), (w) => w === (next === b ? "here" : a.id), "B's view")
          alice = { ...alice, ...back.client, welcome: back.welcome }
          at = next
          n++
        }
        for (const other of seen) expect(other()).toEqual([])
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "the node holding the session does not answer (stopped): a new session within the bound, never an error",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const b = yield* startNode(redis.url, {}, { handoverTimeout: 400 })
        const { node, url } = yield* serveNode(redis.url)
        const carol = yield* peer(b.server, "carol", { rooms: ["lobby"] })
        const alice = yield* peer({ url }, "alice", { rooms: ["lobby"] })
        yield* carol.next(isPresenceOf(alice, true))
        alice.ws.terminate()
        // The process is stopped, not gone: its heartbeat is still alive, so B still places alice on it.
        yield* Effect.sleep(200)
        node.child.kill("SIGSTOP")
        expect(yield* b.where(alice.id)).not.toBe("here")
        expect(yield* b.where(alice.id)).not.toBeUndefined()
        const back = yield* comeBack(b.server, "alice", tokenOf(alice.welcome), [{ type: "join", room: "extra" }])
        node.child.kill("SIGKILL")
        expect(back.welcome).toMatchObject({ type: "welcome", status: 200, resumed: false })
        expect(back.welcome.peer!.id).not.toBe(alice.id)
        expect(yield* back.client.next((f) => f.type === "join:ok")).toMatchObject({ room: "extra" })
        // A new session, announced as any other.
        yield* carol.next(isPresenceOf({ id: back.welcome.peer!.id }, true))
        yield* node.exited()
      }).pipe(Effect.scoped),
    30_000
  )
})
