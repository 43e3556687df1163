import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import WebSocket from "ws"
import { firstWins } from "../protocol/jsonText.js"
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

describe("compression", () => {
  it.live("permessage-deflate is never negotiated: outbound frames are pre-framed, uncompressed, shared buffers", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const negotiated = yield* Effect.callback<{ readonly header: unknown; readonly extensions: string }, Error>(
        (resume) => {
          // The client offers compression (the header is in the request whatever `ws` defaults to).
          const ws = new WebSocket(server.url, { perMessageDeflate: { threshold: 0 } })
          let header: unknown
          ws.on("upgrade", (response) => {
            header = response.headers["sec-websocket-extensions"]
          })
          ws.on("open", () => {
            resume(Effect.succeed({ header, extensions: ws.extensions }))
            ws.terminate()
          })
          ws.on("error", (error) => resume(Effect.fail(error)))
        }
      )
      // Turning compression on would make every pre-framed write invalid on the wire (RSV1 unset on deflated
      // payloads, or raw payloads the peer tries to inflate): this test fails first.
      expect(negotiated).toEqual({ header: undefined, extensions: "" })
    }).pipe(Effect.scoped))
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
        Effect.map(
          b.next(isMessage((f) => f.data?.n === n)),
          () => texts.find((t) => t.includes(`"n" : ${n}`) || t.includes(`"n":${n}`))!
        )

      // No from: the text as sent (spacing and number spelling included), closed with the sender's address.
      const spaced = `{ "type" : "message", "to" : ${JSON.stringify(b.address)}, "data" : { "n" : 1, "x" : 1.50 } }  `
      a.sendRaw(spaced)
      expect(yield* next(1)).toBe(
        `{ "type" : "message", "to" : ${JSON.stringify(b.address)}, "data" : { "n" : 1, "x" : 1.50 } ,"from":${
          JSON.stringify(a.address)
        }}`
      )

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

describe("repeated keys", () => {
  it.live("a routed frame that repeats a top-level key reaches recipients with one of each key", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const a = yield* peer(server, "a", { rooms: ["r"] })
      const b = yield* peer(server, "b", { rooms: ["r"] })
      const c = yield* peer(server, "c", { rooms: ["r"] })
      yield* settle(a, b, c)
      const texts: Array<string> = []
      b.ws.on("message", (data) => texts.push(String(data)))
      const next = (n: number) =>
        Effect.map(b.next((f) => f.data?.n === n), () => texts.find((t) => t.includes(`"n":${n}`))!)
      const from = JSON.stringify(a.address)
      const spoofs = [
        // A forged from first, the true one last (where JSON.parse looks).
        `{"type":"message","from":"c|${c.id}","data":{"n":1},"to":["r"],"from":${from}}`,
        // The forged from spelled with an escape.
        `{"type":"message","fr\\u006fm":"c|${c.id}","data":{"n":2},"to":["r"],"from":${from}}`,
        // Space between a repeated key and its colon.
        `{"type":"message","from" : "c|${c.id}","data":{"n":3},"to":["r"],"from":${from}}`,
        // No from at all, but a repeated type: a first-wins parser would read a presence of someone else.
        `{"type":"presence","data":{"n":4,"id":"${c.id}","user":"c","online":false},"type":"message","to":["r"]}`,
        // Any other key: to.
        `{"type":"message","to":"nobody","data":{"n":5},"to":["r"]}`
      ]
      for (const [i, text] of spoofs.entries()) {
        a.sendRaw(text)
        const got = yield* next(i + 1)
        expect(got.match(/"from"/g)).toHaveLength(1)
        expect(got.match(/"type"/g)).toHaveLength(1)
        expect(got).not.toContain("\\u006f")
        const frame = firstWins(got)
        expect(frame).toEqual(JSON.parse(got))
        expect(frame.from).toBe(a.address)
        expect(frame.type).toBe("message")
      }

      // Clean frames keep the verbatim path, nested keys of the same names included.
      const nested = `{"type":"message","data":{"n":6,"type":"x","from":"y","to":{"to":1}},"to":["r"]}`
      a.sendRaw(nested)
      expect(yield* next(6)).toBe(`${nested.slice(0, -1)},"from":${from}}`)
      const quoted = `{"type":"message","data":{"n":7,"s":"\\"type\\":1,\\"from\\":2"},"from":${from},"to":["r"]}`
      a.sendRaw(quoted)
      expect(yield* next(7)).toBe(quoted)
    }).pipe(Effect.scoped))
})
