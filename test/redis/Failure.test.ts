/**
 * Failures with real processes: a node killed with SIGKILL (a separate `symple-ts serve --redis` process), and
 * Redis going away and coming back, under nodes in this process and under two `symple-ts serve --redis` processes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import {
  eventually,
  expectEffect,
  isMessage,
  isPresenceOf,
  type Peer,
  peer,
  type Received,
  settle
} from "../server/support.js"
import { startRedis } from "./redisServer.js"
import { serveNode } from "./serveNode.js"
import { converged, startNode } from "./support.js"

const text = (t: string) => (f: Received) => f.data?.text === t
const count = (client: Peer, predicate: (f: Received) => boolean) => client.all.filter(predicate).length

describe("failures", () => {
  it.live(
    "a node killed with SIGKILL: its sessions go offline to each neighbour on the other nodes, once",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const ttl = 900
        const a = yield* startNode(redis.url, {}, ttl)
        const b = yield* startNode(redis.url, {}, ttl)
        const { node, url } = yield* serveNode(redis.url, ttl)
        const alice = yield* peer(a, "alice", { rooms: ["lobby"] })
        const bob = yield* peer(b, "bob", { rooms: ["lobby"] })
        const doomed = yield* peer({ url }, "doomed", { rooms: ["lobby"] })
        yield* alice.next(isPresenceOf(doomed, true))
        yield* bob.next(isPresenceOf(doomed, true))
        yield* converged([a, b], 3)
        node.child.kill("SIGKILL")
        yield* node.exited()
        // Both survivors sweep the dead node; each neighbour hears of it once.
        yield* alice.next(isPresenceOf(doomed, false), 5000)
        yield* bob.next(isPresenceOf(doomed, false), 5000)
        yield* converged([a, b], 2)
        yield* Effect.sleep(ttl)
        expect(count(alice, isPresenceOf(doomed, false))).toBe(1)
        expect(count(bob, isPresenceOf(doomed, false))).toBe(1)
        expect(count(alice, isPresenceOf(bob, false))).toBe(0)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "a node stalled past its TTL (SIGSTOP) is swept; when it runs again (SIGCONT) it rejoins, its peers online again",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const ttl = 900
        const a = yield* startNode(redis.url, {}, ttl)
        const { node, url } = yield* serveNode(redis.url, ttl)
        const alice = yield* peer(a, "alice", { rooms: ["lobby"] })
        const sleeper = yield* peer({ url }, "sleeper", { rooms: ["lobby"] })
        yield* alice.next(isPresenceOf(sleeper, true))
        node.child.kill("SIGSTOP")
        yield* alice.next(isPresenceOf(sleeper, false), 5000)
        node.child.kill("SIGCONT")
        // Its heartbeat finds that it was taken for dead: it writes itself back, and the others take its peers back.
        yield* alice.next(isPresenceOf(sleeper, true), 5000)
        yield* converged([a], 2)
        alice.send({ type: "message", to: sleeper.address, data: { text: "awake?" } })
        yield* sleeper.next(isMessage(text("awake?")))
        sleeper.send({ type: "message", to: "lobby", data: { text: "yes" } })
        yield* alice.next(isMessage(text("yes")))
        yield* Effect.sleep(ttl)
        expect(count(alice, isPresenceOf(sleeper, false))).toBe(1)
        expect(count(alice, isPresenceOf(sleeper, true))).toBe(2)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "Redis goes away: local peers still served, cross-node frames dropped and counted; on return it converges",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const a = yield* startNode(redis.url, {}, 1500)
        const b = yield* startNode(redis.url, {}, 1500)
        const alice = yield* peer(a, "alice", { rooms: ["lobby"] })
        const alice2 = yield* peer(a, "alice2", { rooms: ["lobby"] })
        const bob = yield* peer(b, "bob", { rooms: ["lobby"] })
        yield* converged([a, b], 3)
        yield* settle(alice, alice2, bob)

        yield* redis.stop
        yield* expectEffect(a.brokerStatus, (s) => s.state === "disconnected", "A sees Redis gone")
        const health = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${a.port}/health`).then((r) => r.json() as Promise<{ broker: { state: string } }>)
        )
        expect(health.broker.state).toBe("disconnected")
        const ready = yield* Effect.promise(() => fetch(`http://127.0.0.1:${a.port}/ready`))
        expect(ready.status).toBe(503)
        expect(yield* Effect.promise(() => ready.json())).toEqual({ status: "unready", failing: ["broker"] })
        alice.send({ type: "message", to: "lobby", data: { text: "during" } })
        yield* alice2.next(isMessage(text("during")))
        yield* bob.none(isMessage(text("during")), 200)
        expect((yield* a.brokerStatus).dropped).toBeGreaterThan(0)
        // Meanwhile: bob leaves, carol arrives on B. Nobody on A can know yet.
        bob.ws.close()
        const carol = yield* peer(b, "carol", { rooms: ["lobby"] })

        // Redis comes back empty (no persistence): each node resubscribes, republishes its sessions, reads the others'.
        yield* redis.restart
        yield* eventually(
          Effect.flatMap(a.brokerStatus, (s) => s.state === "connected" ? Effect.void : Effect.fail(s)),
          5000
        )
        yield* eventually(
          Effect.flatMap(b.brokerStatus, (s) => s.state === "connected" ? Effect.void : Effect.fail(s)),
          5000
        )
        yield* alice.next(isPresenceOf(bob, false), 5000)
        yield* alice.next(isPresenceOf(carol, true), 5000)
        yield* carol.next(isPresenceOf(alice, true), 5000)
        yield* converged([a, b], 3)
        expect((yield* Effect.promise(() => fetch(`http://127.0.0.1:${a.port}/ready`))).status).toBe(200)
        alice.send({ type: "message", to: "lobby", data: { text: "after" } })
        yield* carol.next(isMessage(text("after")))
        carol.send({ type: "message", to: alice.address, data: { text: "back" } })
        yield* alice.next(isMessage(text("back")))
        yield* Effect.sleep(200)
        expect(count(alice, isPresenceOf(bob, false))).toBe(1)
        expect(count(alice, isPresenceOf(carol, true))).toBe(1)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "Redis drops the subscriber connections (CLIENT KILL TYPE pubsub): each node resubscribes by itself and resyncs",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const a = yield* startNode(redis.url, {}, 1500)
        const b = yield* startNode(redis.url, {}, 1500)
        const alice = yield* peer(a, "alice", { rooms: ["lobby"] })
        const bob = yield* peer(b, "bob", { rooms: ["lobby"] })
        yield* converged([a, b], 2)
        yield* alice.next(isPresenceOf(bob, true))
        const syncs = (yield* a.brokerStatus).syncs + (yield* b.brokerStatus).syncs
        const killed = execFileSync("redis-cli", ["-p", String(redis.port), "CLIENT", "KILL", "TYPE", "pubsub"])
        expect(Number(killed.toString().trim())).toBe(2)
        // Only the subscriber connections went: the nodes notice the loss on their own, with nothing published.
        yield* eventually(
          Effect.gen(function*() {
            const now = (yield* a.brokerStatus).syncs + (yield* b.brokerStatus).syncs
            if (now < syncs + 2) return yield* Effect.fail(new Error(`${now - syncs} resyncs`))
          }),
          5000
        )
        const carol = yield* peer(b, "carol", { rooms: ["lobby"] })
        yield* alice.next(isPresenceOf(carol, true), 5000)
        alice.send({ type: "message", to: "lobby", data: { text: "again" } })
        yield* bob.next(isMessage(text("again")))
        yield* carol.next(isMessage(text("again")))
        bob.send({ type: "message", to: alice.address, data: { text: "back" } })
        yield* alice.next(isMessage(text("back")))
        expect(count(alice, isPresenceOf(bob, false))).toBe(0)
        expect(count(alice, isPresenceOf(bob, true))).toBe(1)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "Redis restarted under `symple-ts serve --redis` processes: each serves its own peers meanwhile, then the live ones act as one again and the one that died is swept",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis
        const serve = serveNode(redis.url, 1500)
        const [one, two, three] = yield* Effect.all([serve, serve, serve], { concurrency: 3 })
        const ready = (node: { readonly http: string }) =>
          Effect.promise(() => fetch(`${node.http}/ready`).then((r) => r.status))
        const alice = yield* peer(one!, "alice", { rooms: ["lobby"] })
        const alice2 = yield* peer(one!, "alice2", { rooms: ["lobby"] })
        const bob = yield* peer(two!, "bob", { rooms: ["lobby"] })
        const doomed = yield* peer(three!, "doomed", { rooms: ["lobby"] })
        yield* alice.next(isPresenceOf(bob, true), 5000)
        yield* bob.next(isPresenceOf(alice2, true), 5000)
        yield* alice.next(isPresenceOf(doomed, true), 5000)
        yield* bob.next(isPresenceOf(doomed, true), 5000)
        alice.send({ type: "message", to: "lobby", data: { text: "before" } })
        yield* bob.next(isMessage(text("before")))

        yield* redis.stop
        yield* eventually(Effect.flatMap(ready(one!), (status) => status === 503 ? Effect.void : Effect.fail(status)))
        alice.send({ type: "message", to: "lobby", data: { text: "during" } })
        yield* alice2.next(isMessage(text("during")))
        yield* bob.none(isMessage(text("during")), 200)
        // A node that dies while Redis is away never comes back to it.
        three!.node.child.kill("SIGKILL")
        yield* three!.node.exited()

        yield* redis.restart
        for (const node of [one!, two!]) {
          yield* eventually(
            Effect.flatMap(ready(node), (status) => status === 200 ? Effect.void : Effect.fail(status)),
            5000
          )
        }
        // Both came back with the sessions they held: cross-node frames flow again, both ways, with no presence
        // repeated (nobody went offline).
        yield* eventually(
          Effect.suspend(() => {
            alice.send({ type: "message", to: bob.address, data: { text: "after" } })
            return bob.next(isMessage(text("after")), 200)
          }),
          5000
        )
        bob.send({ type: "message", to: "lobby", data: { text: "back" } })
        yield* alice.next(isMessage(text("back")))
        yield* alice2.next(isMessage(text("back")))
        expect(count(alice, isPresenceOf(bob, false))).toBe(0)
        expect(count(bob, isPresenceOf(alice, false))).toBe(0)
        expect(count(alice, isPresenceOf(bob, true))).toBe(1)
        expect(count(bob, isPresenceOf(alice, true))).toBe(1)
        // The dead node is swept once the nodes that came back have had one TTL to do so: its peer goes offline to
        // each neighbour, once.
        yield* alice.next(isPresenceOf(doomed, false), 5000)
        yield* bob.next(isPresenceOf(doomed, false), 5000)
        yield* Effect.sleep(300)
        expect(count(alice, isPresenceOf(doomed, false))).toBe(1)
        expect(count(bob, isPresenceOf(doomed, false))).toBe(1)
      }).pipe(Effect.scoped),
    30_000
  )
})
