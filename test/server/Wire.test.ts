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
