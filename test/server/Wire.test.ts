import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { isMessage, peer, settle, startServer } from "./support.js"

// Outbound frames are framed by the server itself (one buffer per frame, shared by all recipients): every payload
// length class of the WebSocket header (7-bit, 16-bit, 64-bit) must reach a real client intact.
const lengths = [0, 60, 125, 126, 1000, 65535 - 80, 65536, 70000, 150000]

describe("outbound framing", () => {
  for (const mode of [{ rateLimit: 0 }, { rateLimit: 1000 }]) {
    it.live(`every payload length class arrives intact (rateLimit ${mode.rateLimit})`, () =>
      Effect.gen(function*() {
        const server = yield* startServer({ ...mode, maxMessageSize: 200_000 })
        const a = yield* peer(server, "a", { rooms: ["r"] })
        const b = yield* peer(server, "b", { rooms: ["r"] })
        const c = yield* peer(server, "c", { rooms: ["r"] })
        yield* settle(a, b, c)
        for (const n of lengths) {
          // Multi-byte characters: the header carries the byte length, not the string length.
          const text = "é".repeat(Math.floor(n / 4)) + "x".repeat(n - 2 * Math.floor(n / 4))
          a.send({ type: "message", to: ["r"], data: { n, text } })
          for (const recipient of [b, c]) {
            const got = yield* recipient.next(isMessage((f) => f.data?.n === n))
            expect(got.data?.text).toBe(text)
            expect(got.from).toBe(a.address)
          }
        }
      }).pipe(Effect.scoped))
  }
})

describe("forwarded text", () => {
  it.live("a routed frame is forwarded as sent, with from added at the end or kept when it is already right", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const a = yield* peer(server, "a", { rooms: ["r"] })
      const b = yield* peer(server, "b", { rooms: ["r"] })
      yield* settle(a, b)
      const texts: Array<string> = []
      b.ws.on("message", (data) => texts.push(String(data)))
      const next = (n: number) =>
        Effect.map(b.next(isMessage((f) => f.data?.n === n)), () => texts.find((t) => t.includes(`"n" : ${n}`) || t.includes(`"n":${n}`))!)

      // No from: the text as sent (spacing and number spelling included), closed with the sender's address.
      const spaced = `{ "type" : "message", "to" : ${JSON.stringify(b.address)}, "data" : { "n" : 1, "x" : 1.50 } }  `
      a.sendRaw(spaced)
      expect(yield* next(1)).toBe(`{ "type" : "message", "to" : ${JSON.stringify(b.address)}, "data" : { "n" : 1, "x" : 1.50 } ,"from":${JSON.stringify(a.address)}}`)

      // The right from: forwarded byte for byte.
      const honest = `{"type":"message","from":${JSON.stringify(a.address)},"data":{"n":2},"to":["r"]}`
      a.sendRaw(honest)
      expect(yield* next(2)).toBe(honest)

      // A forged from: rendered again, with from overwritten where it stood.
      a.sendRaw(`{"type":"message","from":"b|forged","data":{"n":3},"to":["r"]}`)
      expect(yield* next(3)).toBe(`{"type":"message","from":${JSON.stringify(a.address)},"data":{"n":3},"to":["r"]}`)

      // A binary frame: rendered again.
      a.sendRaw(Buffer.from(`{"type":"message","data":{"n":4},"to":["r"]}`), true)
      expect(yield* next(4)).toBe(`{"type":"message","data":{"n":4},"to":["r"],"from":${JSON.stringify(a.address)}}`)

      // Presence: its data is rewritten by the server, so it is always rendered again.
      a.sendRaw(`{"type":"presence","from":${JSON.stringify(a.address)},"data":{"online":false,"mood":"ok"}}`)
      const presence = yield* b.next((f) => f.type === "presence" && f.data?.mood === "ok")
      expect(presence.data).toMatchObject({ id: a.id, user: "a", online: true, mood: "ok" })
    }).pipe(Effect.scoped))
})
