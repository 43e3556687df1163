/**
 * A streamer (the seed's symplestreamer): joins a Symple server as a peer of type `streamer` and answers every
 * `call:init` with a `call:accept` whose `data` names a WebSocket of its own, `{ url, engine: "MJPEGWebSocket" }`.
 * That socket streams MJPEG, one JPEG per binary frame: ffmpeg's test pattern (`ffmpeg -f lavfi -i testsrc`), split
 * on the JPEG start and end markers. A `call:hangup` (or the viewer going offline, or closing the socket) stops
 * that viewer's stream; ffmpeg runs while someone watches. The demo page lists streamers and can watch one.
 *
 *   npx tsx examples/streamer.ts [--url ws://127.0.0.1:4500] [--user streamer] [--name "Test pattern"]
 *     [--room lobby] [--media-host 127.0.0.1] [--media-port 0] [--size 320x240] [--fps 10]
 *
 * Needs ffmpeg (`apt-get install ffmpeg`); without it, it says so and exits with status 1.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, FiberSet, Stream } from "effect"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import type { AddressInfo } from "node:net"
import { pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { type WebSocket, WebSocketServer } from "ws"
import { NodeSympleClient } from "../src/client/node.js"
import { Call, Message, Peer } from "../src/protocol/index.js"

/** The engine name the Symple players know this stream by. */
export const engine = "MJPEGWebSocket"

/**
 * Splits a stream of bytes into JPEG images: each runs from a start-of-image marker (FF D8) to the next
 * end-of-image marker (FF D9). Inside the compressed data every FF byte is followed by 00, so the markers cannot
 * occur there. Returns a function that takes the next chunk and gives the images it completes.
 */
export const jpegSplitter = () => {
  let pending: Buffer = Buffer.alloc(0)
  return (chunk: Buffer): ReadonlyArray<Buffer> => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    const images: Array<Buffer> = []
    for (;;) {
      const start = pending.indexOf(soi)
      if (start < 0) {
        // Keep a trailing FF: it may be the first half of a marker.
        pending = pending.length > 0 && pending[pending.length - 1] === 0xff ? pending.subarray(-1) : Buffer.alloc(0)
        return images
      }
      const end = pending.indexOf(eoi, start + 2)
      if (end < 0) {
        pending = pending.subarray(start)
        return images
      }
      images.push(Buffer.from(pending.subarray(start, end + 2)))
      pending = pending.subarray(end + 2)
    }
  }
}
const soi = Buffer.from([0xff, 0xd8])
const eoi = Buffer.from([0xff, 0xd9])

const options = () =>
  parseArgs({
    options: {
      url: { type: "string", default: "ws://127.0.0.1:4500" },
      user: { type: "string", default: "streamer" },
      name: { type: "string", default: "Test pattern" },
      room: { type: "string", multiple: true, default: ["lobby"] },
      "media-host": { type: "string", default: "127.0.0.1" },
      "media-port": { type: "string", default: "0" },
      size: { type: "string", default: "320x240" },
      fps: { type: "string", default: "10" }
    }
  }).values

/** FFMPEG names another binary; the default is the `ffmpeg` on the PATH. */
const ffmpegPath = process.env.FFMPEG ?? "ffmpeg"

const requireFfmpeg = () => {
  const probe = spawnSync(ffmpegPath, ["-version"], { stdio: "ignore" })
  if (probe.error === undefined && probe.status === 0) return
  const why = probe.error !== undefined && "code" in probe.error && probe.error.code === "ENOENT"
    ? "not found"
    : `not usable (${probe.error?.message ?? `exit status ${probe.status}`})`
  console.error(
    `streamer: ffmpeg is ${why} (${ffmpegPath}). The streamer makes its pictures with ffmpeg: install it ` +
      `(Debian/Ubuntu: apt-get install ffmpeg) or set FFMPEG to its path.`
  )
  process.exit(1)
}

interface Viewer {
  /** The caller's full address. */
  readonly address: string
  /** Waiting for the caller to open the stream, streaming to its socket, or its socket closed (until the hangup). */
  state: "waiting" | "streaming" | "closed"
  socket: WebSocket | undefined
}

const program = Effect.gen(function*() {
  const args = options()
  const run = yield* FiberSet.makeRuntime<never>()
  const viewers = new Map<string, Viewer>()

  // --- the pictures: one ffmpeg for everyone watching ---------------------------------------------------------
  let ffmpeg: ChildProcess | undefined
  const startFfmpeg = () => {
    if (ffmpeg !== undefined) return
    const split = jpegSplitter()
    const child = spawn(ffmpegPath, [
      ...["-hide_banner", "-loglevel", "error", "-nostdin", "-re"],
      ...["-f", "lavfi", "-i", `testsrc=size=${args.size}:rate=${args.fps}`],
      ...["-f", "mjpeg", "-q:v", "7", "pipe:1"]
    ], { stdio: ["ignore", "pipe", "inherit"] })
    ffmpeg = child
    console.log("ffmpeg started")
    child.stdout.on("data", (chunk: Buffer) => {
      for (const jpeg of split(chunk)) {
        for (const viewer of viewers.values()) {
          // A viewer that cannot keep up skips pictures instead of queueing them.
          if (viewer.socket !== undefined && viewer.socket.bufferedAmount < 1 << 20) viewer.socket.send(jpeg)
        }
      }
    })
    child.on("exit", (code, signal) => {
      if (ffmpeg !== child) return
      ffmpeg = undefined
      console.error(`streamer: ffmpeg stopped (${signal ?? `exit status ${code}`}): ending every stream`)
      for (const [token, viewer] of viewers) end(token, viewer, "failed")
    })
  }
  const stopFfmpegWhenUnwatched = () => {
    if (ffmpeg === undefined || Array.from(viewers.values()).some((v) => v.socket !== undefined)) return
    const child = ffmpeg
    ffmpeg = undefined
    child.kill("SIGTERM")
    console.log("ffmpeg stopped: nobody is watching")
  }
  yield* Effect.addFinalizer(() => Effect.sync(() => ffmpeg?.kill("SIGTERM")))

  // --- the stream sockets: ws://<media-host>:<port>/stream/<token>, one token per accepted call ----------------
  const wss = yield* Effect.acquireRelease(
    Effect.callback<WebSocketServer, Error>((resume) => {
      const server = new WebSocketServer({ host: args["media-host"], port: Number(args["media-port"]) })
      server.once("listening", () => resume(Effect.succeed(server)))
      server.once("error", (error) => resume(Effect.fail(error)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        for (const client of server.clients) client.terminate()
        server.close(() => resume(Effect.void))
      })
  )
  const mediaBase = `ws://${args["media-host"]}:${(wss.address() as AddressInfo).port}/stream/`
  wss.on("connection", (socket, request) => {
    const token = (request.url ?? "").replace(/^\/stream\//, "")
    const viewer = viewers.get(token)
    if (viewer === undefined || viewer.state !== "waiting") {
      socket.close(1008, "No such stream")
      return
    }
    viewer.state = "streaming"
    viewer.socket = socket
    socket.on("close", () => {
      if (viewer.socket !== socket) return
      // The call itself lasts until the hangup (which may arrive before or after the socket closes).
      viewer.state = "closed"
      viewer.socket = undefined
      console.log(`${viewer.address} closed the stream`)
      stopFfmpegWhenUnwatched()
    })
    startFfmpeg()
  })

  // --- signalling -----------------------------------------------------------------------------------------------
  const client = yield* NodeSympleClient.make({
    url: args.url,
    user: args.user,
    name: args.name,
    type: "streamer",
    rooms: args.room
  })
  const send = (to: string, subtype: Call.Action, data: Record<string, string>) =>
    client.send(Message.message({ to, subtype: Call.subtype(subtype), data })).pipe(Effect.ignore)

  /** Ends a viewer's stream; with a reason, the viewer is told with a `call:hangup`. */
  function end(token: string, viewer: Viewer, reason?: string) {
    viewers.delete(token)
    const socket = viewer.socket
    viewer.socket = undefined
    socket?.close(1000, "Stream ended")
    if (reason !== undefined) run(send(viewer.address, "hangup", { reason }))
    stopFfmpegWhenUnwatched()
  }
  const endAll = (address: string, why: string) => {
    for (const [token, viewer] of viewers) {
      if (viewer.address === address) {
        console.log(`${why} from ${address}: stopped streaming`)
        end(token, viewer)
      }
    }
  }

  yield* client.messages.pipe(
    Stream.runForEach((frame) =>
      Effect.gen(function*() {
        const call = Call.parse(frame)
        if (call._tag === "None") return
        const { from, signal } = call.value
        switch (signal._tag) {
          case "Init": {
            endAll(from, "new call")
            const token = randomBytes(12).toString("base64url")
            viewers.set(token, { address: from, state: "waiting", socket: undefined })
            // An accepted call whose viewer never connects expires.
            setTimeout(() => {
              const viewer = viewers.get(token)
              if (viewer !== undefined && viewer.state === "waiting") end(token, viewer, "timeout")
            }, 30_000).unref()
            yield* send(from, "accept", { url: mediaBase + token, engine })
            console.log(`call from ${from}: streaming on ${mediaBase}…`)
            return
          }
          case "Hangup":
          case "Reject":
            return endAll(from, "hangup")
          case "Offer":
            // This streamer speaks MJPEG over its own socket, not WebRTC.
            endAll(from, "WebRTC offer")
            return yield* send(from, "hangup", { reason: "unsupported" })
          default:
            return
        }
      })
    ),
    Effect.forkScoped
  )
  yield* client.roster.peerDisconnected.pipe(
    Stream.runForEach((peer) => Effect.sync(() => endAll(Peer.address(peer), "offline"))),
    Effect.forkScoped
  )

  const self = yield* client.awaitOnline
  console.log(
    `streamer online as ${Peer.address(self)} in ${args.room.join(", ")}; streams on ${mediaBase}… (Ctrl-C stops)`
  )
  return yield* Effect.never
})

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  requireFfmpeg()
  NodeRuntime.runMain(Effect.scoped(program))
}
