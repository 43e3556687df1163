/**
 * The streamer example (examples/streamer.ts) as a real process against a real server: its presence, the
 * `call:*` frames it answers with, the MJPEG it streams (from a real ffmpeg), and what it does without ffmpeg.
 */
import { it } from "@effect/vitest"
import { Effect, Exit, Option, Scope } from "effect"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect } from "vitest"
import WebSocket from "ws"
import { engine, jpegSplitter } from "../../examples/streamer.js"
import { Call } from "../../src/protocol/index.js"
import type * as SympleServer from "../../src/server/index.js"
import { isMessage, isPresenceOf, peer, type Received, startServer } from "../server/support.js"
import { fc, prop } from "../support/prop.js"
import { spawnStreamer, startStreamer, type StreamerProcess } from "./streamer.js"

/** A JPEG as far as the markers go: SOI, then data in which every FF is stuffed with 00, then EOI. */
const jpeg = fc.uint8Array({ maxLength: 300 }).map((bytes) => {
  const body = Array.from(bytes).flatMap((b) => b === 0xff ? [0xff, 0x00] : [b])
  return Buffer.from([0xff, 0xd8, ...body, 0xff, 0xd9])
})
/** Bytes before the first image (no FF, so no marker). */
const noise = fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes.filter((b) => b !== 0xff)))

describe("JPEG splitting", () => {
  prop(
    "a byte stream cut anywhere gives back exactly the images it carries",
    [noise, fc.array(jpeg, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 })],
    ([before, images, cuts]) => {
      const stream = Buffer.concat([before, ...images])
      const points = Array.from(new Set(cuts.map((c) => c % (stream.length + 1)))).sort((a, b) => a - b)
      const split = jpegSplitter()
      const out: Array<Buffer> = []
      let from = 0
      for (const point of [...points, stream.length]) {
        out.push(...split(stream.subarray(from, point)))
        from = point
      }
      expect(out.map((b) => b.toString("hex"))).toEqual(images.map((b) => b.toString("hex")))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("an image split between its FF and D9 is still found", () => {
    const split = jpegSplitter()
    expect(split(Buffer.from([0xff, 0xd8, 1, 2, 0xff]))).toEqual([])
    expect(split(Buffer.from([0xd9, 0xff]))).toEqual([Buffer.from([0xff, 0xd8, 1, 2, 0xff, 0xd9])])
    expect(split(Buffer.from([0xd8, 3, 0xff, 0xd9]))).toEqual([Buffer.from([0xff, 0xd8, 3, 0xff, 0xd9])])
  })
})

interface Stream {
  readonly socket: WebSocket
  readonly frames: Array<Buffer>
  readonly closed: Promise<number>
}

const openStream = (url: string) =>
  Effect.promise(() =>
    new Promise<Stream>((resolve, reject) => {
      const socket = new WebSocket(url)
      const frames: Array<Buffer> = []
      const closed = new Promise<number>((done) => socket.on("close", (code) => done(code)))
      socket.on("message", (data: Buffer, binary) => {
        if (binary) frames.push(data)
      })
      socket.once("open", () => resolve({ socket, frames, closed }))
      socket.once("error", reject)
    })
  )

const waitUntil = (check: () => boolean, what: string, timeout = 10_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeout
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })

describe("the streamer example", () => {
  let scope: Scope.Closeable
  let server: SympleServer.Server
  let streamer: StreamerProcess

  beforeAll(async () => {
    scope = Effect.runSync(Scope.make())
    // A viewer whose socket drops is announced offline once its resume window has passed.
    server = await Effect.runPromise(Scope.provide(startServer({ resumeWindow: 200 }), scope))
    streamer = await startStreamer(server.port, ["--user", "cam", "--name", "Camera 1", "--room", "lobby"])
  }, 40_000)

  afterAll(async () => {
    await streamer?.stop()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  const viewer = (user: string) =>
    Effect.gen(function*() {
      const client = yield* peer(server, user, { rooms: ["lobby"] })
      const presence = yield* client.next((f) => f.type === "presence" && f.data?.user === "cam")
      return { client, cam: `cam|${String(presence.data?.id)}`, presence }
    })

  const isCall = (action: Call.Action) => isMessage((f) => f.subtype === Call.subtype(action))

  it.live("joins as a peer of type streamer", () =>
    Effect.gen(function*() {
      const { presence } = yield* viewer("looker")
      expect(presence.data).toMatchObject({ user: "cam", name: "Camera 1", peerType: "streamer", online: true })
    }))

  it.live("answers call:init with call:accept {url, engine}, streams one JPEG per binary frame, stops on hangup", () =>
    Effect.gen(function*() {
      const { cam, client } = yield* viewer("alice")
      client.send({ type: "message", to: cam, subtype: "call:init", data: {} })
      const accept = yield* client.next(isCall("accept"), 10_000)
      expect(accept).toMatchObject({ type: "message", from: cam, to: client.address, subtype: "call:accept" })
      expect(Object.keys(accept.data ?? {}).sort()).toEqual(["engine", "url"])
      expect(accept.data?.engine).toBe(engine)
      expect(accept.data?.engine).toBe("MJPEGWebSocket")
      const url = String(accept.data?.url)
      expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/stream\/[\w-]+$/)
      // Our own call parser reads it as an accept (the extra keys are the streamer's, as in the seed).
      expect(Option.map(Call.parse(accept as never), (c) => c.signal._tag)).toEqual(Option.some("Accept"))

      const stream = yield* openStream(url)
      yield* waitUntil(() => stream.frames.length >= 3, "three frames")
      for (const frame of stream.frames) {
        expect(frame.subarray(0, 2).toString("hex")).toBe("ffd8")
        expect(frame.subarray(-2).toString("hex")).toBe("ffd9")
      }
      // testsrc draws a counter: pictures differ.
      expect(new Set(stream.frames.map((f) => f.toString("base64"))).size).toBeGreaterThan(1)
      // A stream's URL serves one socket; an unknown one none.
      const again = yield* openStream(url)
      expect(yield* Effect.promise(() => again.closed)).toBe(1008)
      const unknown = yield* openStream(url.replace(/[\w-]+$/, "nope"))
      expect(yield* Effect.promise(() => unknown.closed)).toBe(1008)

      const mark = streamer.output().length
      client.send({ type: "message", to: cam, subtype: "call:hangup", data: { reason: "hangup" } })
      expect(yield* Effect.promise(() => stream.closed)).toBe(1000)
      yield* Effect.promise(() => streamer.waitForLine(/ffmpeg stopped: nobody is watching/, 10_000, mark))
    }))

  it.live("a viewer that goes offline has its stream closed", () =>
    Effect.gen(function*() {
      const { cam, client } = yield* viewer("bob")
      client.send({ type: "message", to: cam, subtype: "call:init" })
      const accept = yield* client.next(isCall("accept"), 10_000)
      const stream = yield* openStream(String(accept.data?.url))
      yield* waitUntil(() => stream.frames.length >= 1, "a frame")
      client.ws.terminate()
      expect(yield* Effect.promise(() => stream.closed)).toBe(1000)
    }))

  it.live("a WebRTC offer is answered with call:hangup {reason: unsupported}", () =>
    Effect.gen(function*() {
      const { cam, client } = yield* viewer("carol")
      client.send({ type: "message", to: cam, subtype: "call:init", data: {} })
      yield* client.next(isCall("accept"), 10_000)
      client.send({ type: "message", to: cam, subtype: "call:offer", data: { type: "offer", sdp: "v=0\r\n" } })
      const hangup: Received = yield* client.next(isCall("hangup"), 10_000)
      expect(hangup.data).toEqual({ reason: "unsupported" })
      expect(Call.isStrict(hangup as never)).toBe(true)
    }))
})

describe("the streamer example without ffmpeg", () => {
  it("says ffmpeg is missing and exits with status 1", async () => {
    // A PATH with node alone: no ffmpeg to be found.
    const streamer = spawnStreamer([], { ...process.env, PATH: Path.dirname(process.execPath) })
    expect(await streamer.exited).toBe(1)
    expect(streamer.output()).toMatch(/ffmpeg is not found/)
    expect(streamer.output()).toMatch(/apt-get install ffmpeg/)
  }, 30_000)
})
