import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Frame from "../../src/protocol/Frame.js"
import { fc } from "../support/prop.js"
import { type Client, clusterStats, connect, isMessage, peer, startServer } from "./support.js"

type Input = { readonly data: string | Buffer; readonly binary: boolean }

const text = (data: string): Input => ({ data, binary: false })

const deep = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth)
const deepObject = (depth: number) => deep(depth, "{\"a\":", "}").replace("}", "1}")
const longMessage = (length: number) => JSON.stringify({ type: "message", data: "x".repeat(length) })

const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ maxLength: 40 }),
  fc.constantFrom(null, 0, -1, 1e308, true, [], {}, "|", "a|b|c", "__proto__")
)

const input: fc.Arbitrary<Input> = fc.oneof(
  { weight: 4, arbitrary: fc.json({ maxDepth: 5 }).map((data) => ({ data, binary: false })) },
  {
    weight: 6,
    arbitrary: fc.record({
      type: fc.oneof(fc.constantFrom(...Frame.types), fc.string({ maxLength: 10 }), fieldValue),
      to: fieldValue,
      room: fieldValue,
      data: fieldValue,
      user: fieldValue,
      id: fieldValue,
      from: fieldValue,
      node: fieldValue,
      name: fieldValue,
      status: fieldValue,
      probe: fieldValue
    }, { requiredKeys: [] }).map((frame) => ({ data: JSON.stringify(frame), binary: false }))
  },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 30_000 }).map((n) => text(deep(n, "[", "]"))) },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 10_000 }).map((n) => text(deepObject(n))) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 70_000 }).map((n) => text(longMessage(n))) },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => ({
      data: Buffer.from([0xff, 0xfe, ...bytes]),
      binary: true
    }))
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((data) => ({ data, binary: false })) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map((data) => ({ data: Buffer.from(data), binary: true })) }
)

// With a hook that takes its time, the frames sent right behind each `auth` wait in the connection's backlog.
const authModes = [
  { label: "anonymous", options: {} },
  { label: "slow hook", options: { authenticate: () => Effect.as(Effect.sleep(3), { allowed: true }) } }
]

describe.each(authModes)("fuzz ($label)", ({ options }) => {
  it.live(
    "thousands of hostile frames from 3 peers do not disturb 2 others, and new peers still connect",
    () =>
      Effect.gen(function*() {
        const server = yield* startServer({ rateLimit: 0, maxPayload: 300_000, ...options })
        const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
        const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
        const inputs = fc.sample(input, { numRuns: 4500, seed: 4242 })
        let reconnects = 0

        const fuzzer = (n: number, slice: ReadonlyArray<Input>) =>
          Effect.gen(function*() {
            let client: Client = yield* connect(server.url)
            client.send({ type: "auth", user: `fuzz${n}`, rooms: ["lobby", `f${n}`] })
            for (let i = 0; i < slice.length; i++) {
              if (client.isClosed()) {
                reconnects++
                client = yield* connect(server.url)
                client.send({ type: "auth", user: `fuzz${n}`, rooms: ["lobby"] })
              }
              client.sendRaw(slice[i]!.data, slice[i]!.binary)
              if (i % 5 === 0) yield* Effect.sleep(1)
            }
          })

        const chat = Effect.gen(function*() {
          for (let i = 0; i < 100; i++) {
            alice.send({ type: "message", to: bob.address, data: { chat: i } })
            bob.send({ type: "message", to: alice.address, data: { chat: i } })
            yield* Effect.sleep(2)
          }
        })

        yield* Effect.all([
          fuzzer(0, inputs.slice(0, 1500)),
          fuzzer(1, inputs.slice(1500, 3000)),
          fuzzer(2, inputs.slice(3000)),
          chat
        ], { concurrency: "unbounded" })

        const chats = (client: Client, from: string) =>
          client.all.filter((f) => f.type === "message" && f.from === from && typeof f.data?.chat === "number")
            .map((f) => f.data?.chat)
        const expected = Array.from({ length: 100 }, (_, i) => i)
        yield* Effect.sleep(200)
        expect(chats(bob, alice.address)).toEqual(expected)
        expect(chats(alice, bob.address)).toEqual(expected)
        expect(alice.isClosed() || bob.isClosed()).toBe(false)

        alice.send({ type: "message", to: bob.address, data: { after: true } })
        yield* bob.next(isMessage((f) => f.data?.after === true))
        const carol = yield* peer(server, "carol", { rooms: ["lobby"] })
        carol.send({ type: "message", to: bob.address, data: { hello: "carol" } })
        yield* bob.next(isMessage((f) => f.from === carol.address))
        expect(reconnects).toBeGreaterThan(0)
        const stats = yield* clusterStats(server)
        expect(stats.received).toBeGreaterThan(2500)
        expect(stats.refused).toBeGreaterThan(1000)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
