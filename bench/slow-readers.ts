/**
 * What peers that stop reading cost the server: its resident memory while non-reading peers are sent large frames.
 *
 *   npx tsx bench/slow-readers.ts [--peers 8] [--frames 1000] [--size 65000] [--settle 5000] [--control]
 *
 * The server runs in a child process with the default options (`SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })`,
 * rate limit included). `--peers` raw TCP clients authenticate into room `r` and then never read a byte. Reading
 * senders in the same room send each of them `--frames` direct messages of `--size` characters (about 64 KiB on the
 * wire with the default), 100 frames per sender so that no sender meets the default rate limit; every frame is a
 * distinct buffer, as when each peer is sent its own messages. Prints the server's RSS before, its peak (VmHWM),
 * right after the last frame was handled, and `--settle` ms later, with the sockets still open at each point.
 * `--control` makes the receiving peers read (in a process of their own), for the cost of the same traffic when
 * nobody holds it up.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { WebSocket } from "ws"

const args = process.argv.slice(2)
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(args[i + 1])
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const serve = async (): Promise<void> => {
  const { Effect } = await import("effect")
  const SympleServer = await import("../src/server/index.js")
  const program = Effect.gen(function*() {
    const server = yield* SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })
    process.stdout.write(`${JSON.stringify({ listening: server.port, pid: process.pid })}\n`)
    return yield* Effect.never
  }).pipe(Effect.scoped)
  await Effect.runPromise(program)
}

/** VmRSS and VmHWM (peak RSS) of a process, in MiB. */
const memory = (pid: number): { readonly rss: number; readonly peak: number } => {
  const status = readFileSync(`/proc/${pid}/status`, "latin1")
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status)?.[1]) / 1024
  return { rss: field("VmRSS"), peak: field("VmHWM") }
}

const health = async (port: number): Promise<{ readonly peers: number; readonly connections: number }> => {
  const response = await fetch(`http://127.0.0.1:${port}/health`)
  return (await response.json()) as { peers: number; connections: number }
}

/** A WebSocket client that sends `auth` and then never reads (its socket is paused once the upgrade is answered). */
const silentPeer = (port: number, user: string): Promise<Net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.on("error", () => {})
    let head = ""
    const onData = (chunk: Buffer) => {
      head += chunk.toString("latin1")
      if (!head.includes("\r\n\r\n")) return
      socket.off("data", onData)
      socket.pause()
      if (!head.startsWith("HTTP/1.1 101")) return reject(new Error(head))
      const payload = Buffer.from(JSON.stringify({ type: "auth", user, rooms: ["r"] }))
      const mask = Buffer.from([1, 2, 3, 4])
      const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!))
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]))
      resolve(socket)
    }
    socket.on("data", onData)
    socket.write(
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
  })

/** A reading peer in room `r`; `online` collects the addresses of the peers it sees come online. */
const readingPeer = (port: number, user: string, online?: Map<string, string>): Promise<WebSocket> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
    ws.on("error", reject)
    ws.on("open", () => ws.send(JSON.stringify({ type: "auth", user, rooms: ["r"] })))
    ws.on("message", (data) => {
      const text = String(data)
      if (text.startsWith("{\"type\":\"welcome\"")) resolve(ws)
      if (online !== undefined && text.includes("\"presence\"")) {
        const frame = JSON.parse(text) as { data?: { id?: string; user?: string; online?: boolean } }
        if (frame.data?.online === true && frame.data.id !== undefined) {
          online.set(frame.data.user ?? "", `${frame.data.user}|${frame.data.id}`)
        }
      }
    })
  })

/** Runs in a process of its own: `count` peers that read everything, named `slow<i>`. */
const read = async (port: number, count: number): Promise<void> => {
  for (let i = 0; i < count; i++) await readingPeer(port, `slow${i}`)
  process.stdout.write("ready\n")
}

const child = (argv: ReadonlyArray<string>) =>
  spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...argv], {
    stdio: ["ignore", "pipe", "inherit"]
  })

/** The first line a child prints. */
const firstLine = (running: ReturnType<typeof child>): Promise<string> =>
  new Promise((resolve) => {
    let out = ""
    running.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const end = out.indexOf("\n")
      if (end >= 0) resolve(out.slice(0, end))
    })
  })

const main = async (): Promise<void> => {
  const peers = flag("peers", 8)
  const frames = flag("frames", 1000)
  const size = flag("size", 65000)
  const settleMs = flag("settle", 5000)
  const control = args.includes("--control")
  const perSender = 100
  const server = child(["serve"])
  const { listening: port, pid } = JSON.parse(await firstLine(server)) as { listening: number; pid: number }
  let readers: ReturnType<typeof child> | undefined
  try {
    const online = new Map<string, string>()
    const watcher = await readingPeer(port, "watcher", online)
    const senders: Array<WebSocket> = []
    const senderCount = Math.ceil((peers * frames) / perSender)
    for (let i = 0; i < senderCount; i++) senders.push(await readingPeer(port, `sender${i}`))
    await sleep(1000)
    const before = memory(pid)
    const silent: Array<Net.Socket> = []
    if (control) await firstLine(readers = child(["read", String(port), String(peers)]))
    else for (let i = 0; i < peers; i++) silent.push(await silentPeer(port, `slow${i}`))
    while (online.size < peers + senderCount) await sleep(10)
    const targets = Array.from({ length: peers }, (_, i) => online.get(`slow${i}`)!)
    const text = "x".repeat(size)
    const started = Date.now()
    let next = 0
    for (const sender of senders) {
      for (let k = 0; k < perSender && next < peers * frames; k++, next++) {
        sender.send(`{"type":"message","to":${JSON.stringify(targets[next % peers])},"data":{"text":"${text}"}}`)
      }
    }
    // Handled once every sender's bytes have left and the server has had a moment to route the last of them.
    while (senders.some((sender) => sender.bufferedAmount > 0)) await sleep(10)
    await sleep(500)
    const sent = memory(pid)
    const sentHealth = await health(port)
    const sentMs = Date.now() - started
    await sleep(settleMs)
    const settled = memory(pid)
    const settledHealth = await health(port)
    const others = senderCount + 1
    const kind = control ? "reading (control)" : "non-reading"
    const mib = (n: number) => `${n.toFixed(1)} MiB`
    console.log(
      `server: SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" }) (default options), node ${process.version}`
    )
    console.log(
      `${peers} ${kind} peers, each sent ${frames} frames of ${size} characters ` +
        `(${mib((peers * frames * (size + 100)) / 1048576)} in all) by ${senderCount} reading senders`
    )
    console.log(`RSS before:                    ${mib(before.rss)}`)
    console.log(`RSS peak (VmHWM):              ${mib(settled.peak)}  (+${mib(settled.peak - before.rss)})`)
    console.log(
      `RSS after the last frame:      ${mib(sent.rss)}  (+${mib(sent.rss - before.rss)}), ` +
        `${sentHealth.connections - others} of ${peers} ${kind} peers still connected (${sentMs} ms)`
    )
    console.log(
      `RSS ${settleMs} ms later:`.padEnd(31) + `${mib(settled.rss)}  (+${mib(settled.rss - before.rss)}), ` +
        `${settledHealth.connections - others} of ${peers} ${kind} peers still connected`
    )
    for (const socket of silent) socket.destroy()
    for (const sender of senders) sender.terminate()
    watcher.terminate()
  } finally {
    readers?.kill("SIGKILL")
    server.kill("SIGKILL")
  }
}

if (process.argv[2] === "serve") void serve()
else if (process.argv[2] === "read") void read(Number(process.argv[3]), Number(process.argv[4]))
else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    }
  )
}
