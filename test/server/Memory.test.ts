import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import type * as Net from "node:net"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as OutboundBudget from "../../src/server/internal/outboundBudget.js"
import {
  type Client,
  eventually,
  expectEffect,
  isMessage,
  type Peer,
  peer,
  rawClient,
  type Received,
  settle,
  startServer
} from "./support.js"

const KiB = 1024
const MiB = 1024 * KiB

/** Stops reading: the socket is paused, so what the server sends piles up in the kernel, then in the server. */
const pause = (client: Client) => socketOf(client).pause()
const resume = (client: Client) => socketOf(client).resume()
const socketOf = (client: Client) => (client.ws as unknown as { readonly _socket: Net.Socket })._socket

const messages = (client: Client): Array<Received> => client.all.filter(isMessage())
const numbers = (client: Client): Array<unknown> => messages(client).map((f) => f.data?.n)
const upTo = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

/** A peer as the budget sees it, whose socket may have sent bytes since its figure was last taken (`actual`). */
const fakePeer = (budget: OutboundBudget.OutboundBudget, name: string, waiting: number, closed: Array<string>) => {
  const peer = {
    name,
    waiting: 0,
    actual: waiting,
    recount: () => {
      const before = peer.waiting
      peer.waiting = peer.actual
      OutboundBudget.update(budget, peer, before, peer.waiting)
    },
    shed: () => {
      closed.push(name)
      OutboundBudget.update(budget, peer, peer.waiting, 0)
      peer.waiting = 0
    }
  }
  peer.recount()
  return peer
}

describe("OutboundBudget", () => {
  it("sheds the peers with the most waiting first, until under the budget, never one within the floor", () => {
    const budget = OutboundBudget.make({ maxQueuedBytes: 100, maxOutboundBytes: 100, maxMessageSize: 10 })
    const closed: Array<string> = []
    fakePeer(budget, "small", 10, closed)
    fakePeer(budget, "big", 60, closed)
    fakePeer(budget, "middle", 40, closed)
    fakePeer(budget, "bigger", 70, closed)
    expect(budget.bytes).toBe(180)
    expect(OutboundBudget.isOver(budget)).toBe(true)
    expect(OutboundBudget.shedSlowest(budget)).toBe(2)
    expect(closed).toEqual(["bigger", "big"])
    expect(budget.bytes).toBe(50)
    expect(budget.peers.size).toBe(2)
    // Over again with only small peers left: the one within the floor stays whatever the total.
    const tight = OutboundBudget.make({ maxQueuedBytes: 100, maxOutboundBytes: 5, maxMessageSize: 10 })
    const kept: Array<string> = []
    fakePeer(tight, "fast", 10, kept)
    fakePeer(tight, "slow", 11, kept)
    OutboundBudget.shedSlowest(tight)
    expect(kept).toEqual(["slow"])
  })

  it("takes the figures anew before shedding: nobody is closed for bytes its socket has sent since", () => {
    const budget = OutboundBudget.make({ maxQueuedBytes: 100, maxOutboundBytes: 100, maxMessageSize: 10 })
    const closed: Array<string> = []
    const drained = fakePeer(budget, "drained", 90, closed)
    fakePeer(budget, "slow", 50, closed)
    drained.actual = 0
    expect(OutboundBudget.shedSlowest(budget)).toBe(0)
    expect(closed).toEqual([])
    expect(budget.bytes).toBe(50)
    expect(budget.peers.size).toBe(1)
  })

  it("a total over budget that nobody can relieve is not recounted on every frame", () => {
    const budget = OutboundBudget.make({ maxQueuedBytes: 100, maxOutboundBytes: 50, maxMessageSize: 10 })
    const peers = Array.from({ length: 8 }, (_, i) => fakePeer(budget, `keeps-up-${i}`, 10, []))
    let recounts = 0
    for (const peer of peers) {
      const recount = peer.recount
      peer.recount = () => {
        recounts++
        recount()
      }
    }
    expect(OutboundBudget.isOver(budget)).toBe(true)
    expect(OutboundBudget.shedSlowest(budget)).toBe(0)
    expect(recounts).toBe(8)
    for (let i = 0; i < 100; i++) OutboundBudget.shedSlowest(budget)
    expect(recounts).toBe(8)
    // Once the pause is over, a peer that fell behind meanwhile is found and closed.
    const closed: Array<string> = []
    fakePeer(budget, "slow", 60, closed)
    budget.quietUntil = 0
    expect(OutboundBudget.shedSlowest(budget)).toBe(1)
    expect(closed).toEqual(["slow"])
  })

  it("0 means no budget, per peer or global", () => {
    const budget = OutboundBudget.make({ maxQueuedBytes: 0, maxOutboundBytes: 0, maxMessageSize: 10 })
    fakePeer(budget, "huge", 1e12, [])
    expect(OutboundBudget.isOver(budget)).toBe(false)
    expect(budget.perPeer).toBe(Infinity)
  })
})

describe("outbound memory", () => {
  it.live("per-peer budget: a peer that stops reading is closed with 1013 past maxQueuedBytes, the others go on", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ maxQueuedBytes: 256 * KiB, rateLimit: 0 })
      const sender = yield* peer(server, "sender", { rooms: ["room"] })
      const reader = yield* peer(server, "reader", { rooms: ["room"] })
      const slow = yield* peer(server, "slow", { rooms: ["room"] })
      yield* settle(sender, reader, slow)
      pause(slow)
      const text = "x".repeat(60 * KiB)
      // Well under the 1024 frames of the mailbox: only the byte budget can close the slow peer.
      let sent = 0
      while ((yield* server.stats).slowConsumers === 0 && sent < 400) {
        sender.send({ type: "message", data: { n: sent++, text } })
        // Paced so that the reading peer (in this process) keeps up.
        if (sent % 4 === 0) yield* Effect.sleep(2)
      }
      expect((yield* server.stats).slowConsumers).toBe(1)
      for (let i = 0; i < 20; i++) sender.send({ type: "message", data: { n: sent++, text } })
      const total = sent
      yield* expectEffect(Effect.sync(() => messages(reader).length), (n) => n === total, "reader has every frame")
      expect(numbers(reader)).toEqual(upTo(total))
      // Reading again within the close handshake's deadline, the slow peer learns why it was closed: what its
      // socket held (the frames in order, none missing before the last), then the close frame.
      resume(slow)
      expect(yield* slow.closed).toEqual({ code: 1013, reason: "Too many pending messages" })
      const got = messages(slow).length
      expect(got).toBeLessThan(total)
      expect(numbers(slow)).toEqual(upTo(got))
      yield* expectEffect(server.peerCount, (n) => n === 2, "slow peer removed")
      sender.send({ type: "message", data: { n: -1 } })
      yield* reader.next(isMessage((f) => f.data?.n === -1))
      expect(reader.isClosed() || sender.isClosed()).toBe(false)
    }).pipe(Effect.scoped))

  it.live("global budget: past maxOutboundBytes the peers with most waiting are closed first, never a fast one", () =>
    Effect.gen(function*() {
      // A mailbox that never fills: the budget alone closes peers.
      const server = yield* startServer({
        maxOutboundBytes: 16 * MiB,
        maxQueuedBytes: 256 * MiB,
        mailboxSize: 1_000_000,
        rateLimit: 0
      })
      const fast = yield* peer(server, "fast")
      const a = yield* peer(server, "a")
      const b = yield* peer(server, "b")
      const c = yield* peer(server, "c")
      yield* settle(fast, a, b, c)
      for (const slow of [a, b, c]) pause(slow)
      const text = "x".repeat(60 * KiB)
      const sent = new Map<Peer, number>([[fast, 0], [a, 0], [b, 0], [c, 0]])
      const send = (to: Peer, times: number) =>
        Effect.gen(function*() {
          for (let i = 0; i < times; i++) {
            const n = sent.get(to)!
            sent.set(to, n + 1)
            yield* server.sendTo(to.id, { type: "message", data: { n, text } })
          }
        })
      /** Rounds of frames in these proportions until `closed` peers have been closed (or far more was sent). */
      const rounds = (weights: ReadonlyArray<readonly [Peer, number]>, closed: number) =>
        Effect.gen(function*() {
          for (let round = 0; round < 150 && (yield* server.stats).slowConsumers < closed; round++) {
            for (const [to, times] of weights) yield* send(to, times)
            yield* Effect.sleep(1)
          }
          expect((yield* server.stats).slowConsumers).toBe(closed)
        })
      // The kernel takes a few MiB for each socket whatever its peer does; the proportions are steep enough that
      // the peer sent the most also has the most waiting in the server when the total crosses the budget.
      yield* rounds([[a, 16], [b, 4], [c, 1], [fast, 1]], 1)
      resume(a)
      expect((yield* a.closed).code).toBe(1013)
      yield* rounds([[b, 4], [c, 1], [fast, 1]], 2)
      resume(b)
      expect((yield* b.closed).code).toBe(1013)
      // The last slow peer, alone under the budget, stays; reading again, it gets all it was sent.
      resume(c)
      yield* eventually(
        Effect.suspend(() =>
          messages(c).length === sent.get(c) ? Effect.void : Effect.fail(new Error(`c has ${messages(c).length}`))
        ),
        10_000
      )
      yield* expectEffect(Effect.sync(() => messages(fast).length), (n) => n === sent.get(fast), "fast has every frame")
      expect(numbers(c)).toEqual(upTo(sent.get(c)!))
      expect(numbers(fast)).toEqual(upTo(sent.get(fast)!))
      yield* Effect.sleep(100)
      expect(c.isClosed() || fast.isClosed()).toBe(false)
      expect((yield* server.stats).slowConsumers).toBe(2)
    }).pipe(Effect.scoped))
})

interface Usage {
  readonly rss: number
  readonly arrayBuffers: number
}

interface Child {
  readonly port: number
  readonly ask: (command: unknown) => Effect.Effect<Record<string, unknown>, Error>
}

const fixture = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "../fixtures/memory-server.ts")

/** The fixture server in a child process with `gc` exposed; killed when the scope closes. */
const childServer: Effect.Effect<Child, Error, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => spawn(process.execPath, ["--expose-gc", "--import", "tsx", fixture], { stdio: "pipe" })),
  (child) => Effect.sync(() => child.kill("SIGKILL"))
).pipe(
  Effect.flatMap((child) => {
    const answers: Array<Record<string, unknown>> = []
    const waiting: Array<() => void> = []
    Readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      answers.push(JSON.parse(line) as Record<string, unknown>)
      for (const wake of waiting.splice(0)) wake()
    })
    let errors = ""
    child.stderr!.on("data", (chunk: Buffer) => void (errors += chunk.toString()))
    const nextAnswer = Effect.callback<Record<string, unknown>, Error>((resume) => {
      const take = () => {
        const answer = answers.shift()
        if (answer === undefined) return false
        clearTimeout(timer)
        resume(Effect.succeed(answer))
        return true
      }
      const timer = setTimeout(() => resume(Effect.fail(new Error(`no answer from the server: ${errors}`))), 20_000)
      if (!take()) waiting.push(() => void take())
    })
    return Effect.map(nextAnswer, (ready): Child => ({
      port: ready["port"] as number,
      ask: (command) =>
        Effect.andThen(Effect.sync(() => child.stdin!.write(`${JSON.stringify(command)}\n`)), nextAnswer)
    }))
  })
)

describe("outbound memory (a server in a process of its own)", () => {
  it.live("RSS: 8 peers that stop reading, sent large frames, cost no more than their budgets (defaults)", () =>
    Effect.gen(function*() {
      const server = yield* childServer
      const health = Effect.promise(() =>
        fetch(`http://127.0.0.1:${server.port}/health`).then((r) => r.json() as Promise<{ peers: number }>)
      )
      for (let i = 0; i < 8; i++) {
        const slow = yield* rawClient(server.port)
        slow.sendText(JSON.stringify({ type: "auth", user: `slow${i}`, rooms: ["r"] }))
        slow.socket.pause()
      }
      yield* expectEffect(health, (h) => h.peers === 8)
      const before = (yield* server.ask({ measure: true })) as unknown as Usage
      // 600 frames of 64 KiB each (37.5 MiB a peer): fewer than the mailbox's 1024, and far more than the kernel
      // takes. Measured before the slow peers' close deadline, while their sockets still hold what they hold.
      const flooded = yield* server.ask({ flood: { room: "r", frames: 600, size: 65_000 } })
      const after = (yield* server.ask({ measure: true })) as unknown as Usage
      const growth = { rss: after.rss - before.rss, arrayBuffers: after.arrayBuffers - before.arrayBuffers }
      const budget = 8 * 4 * MiB
      // Buffers held: within the budget (the socket buffers of peers being closed are part of it).
      expect(growth.arrayBuffers, JSON.stringify({ growth, flooded })).toBeLessThan(budget + 8 * MiB)
      // The process: the same, plus what the allocator keeps of the buffers it freed.
      expect(growth.rss, JSON.stringify({ growth, flooded })).toBeLessThan(budget + 64 * MiB)
      expect((flooded["stats"] as { slowConsumers: number }).slowConsumers).toBe(8)
    }).pipe(Effect.scoped))
})
