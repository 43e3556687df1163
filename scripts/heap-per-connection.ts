/**
 * Where a server's heap goes per idle connection: starts a benchmark server (bundled as `bench/run.ts` bundles it,
 * with the options of the benchmark's idle cases, see `serverSetup` in `bench/scenarios.ts`), connects authenticated
 * peers that then stay idle, in rooms of `--room` (consecutive peers share a room), takes a heap snapshot at each
 * count of `--counts` (the server's own `--heapsnapshot-signal`), and prints what grew between the first count and
 * the last, per connection: by category (what a node belongs to: the nearest of itself and its dominators that a
 * rule below names) and by label (see `heap-snapshot.ts`).
 *
 *   npx tsx scripts/heap-per-connection.ts [--servers ours,baseline] [--counts 2000,4000] [--room 100] [--top 40]
 *     [--keep dir]   (keep the snapshots there)
 *   npx tsx scripts/heap-per-connection.ts --diff a.heapsnapshot b.heapsnapshot --connections 2000
 *
 * The peers connect from this process, from 127.0.0.2 and up, 50 handshakes at a time.
 */
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { WebSocket } from "ws"
import { build } from "../bench/build.js"
import { serverSetup } from "../bench/scenarios.js"
import { cpuMillis } from "../bench/stats.js"
import * as HeapSnapshot from "./heap-snapshot.js"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i < 0 ? undefined : args[i + 1]
}
const topN = Number(flag("top") ?? 40)

const nativeCategory = "native (C++ objects and buffer contents, outside the JS heap)"

/**
 * Categories by label, first match wins (class names as a bundler may rename them: `_WebSocket`, `Receiver2`). A node whose own label matches none takes its dominator's category: the
 * parts of a `WebSocket` (its `Receiver` and `Sender` aside) count as the WebSocket's, and so on.
 */
const rules: ReadonlyArray<readonly [RegExp, string]> = [
  [/^_?(WebSocket|ConnectionSocket)\d*$/, "ws WebSocket"],
  [/^_?Receiver\d*$/, "ws Receiver (a Writable stream)"],
  [/^_?Sender\d*$/, "ws Sender"],
  [/^_?Socket\d*$/, "net.Socket"],
  [/^(TCP|native TCP|native TCPWrap)\b/, "TCP handle"],
  [/^_?Timeout\d*$/, "timers"],
  [/^_?ConnectionImpl\d*$/, "our connection (ConnectionImpl)"],
  [/^\{id,peer,admission,resume,routing\}|^_?Routing\d*$/, "Online (routing context)"],
  [/^_?Greeting\d*$/, "our connection (ConnectionImpl)"],
  [/^\{admit,release\}|^\{key,tokens,limit,refillMillis\}|^_?SessionAdmission\d*$/, "rate-limit admission"],
  [/^\{tokens,lastRefill\}/, "rate-limit bucket"],
  [/^\{member,peer,rooms,roomSet,virtual\}|^_?SessionRecord\d*$/, "registry Session"],
  [/^\{id,user,handle\}/, "registry Member"],
  [/^\{sessions,rooms,users\}/, "registry State"],
  [/HashMap|^(Leaf|Collision|Indexed|Array)Node/, "registry HashMap nodes"],
  [/^\{id,user,name/, "Peer record"],
  [/^\{frame,bytes\}|^Buffer$|^array in WeakMap/, "online presence, encoded once (and its cache)"],
  [
    /^array in Set in (\{open,|\{options,|\{fork,|\{_tag,backing\}|synthetic|system \/ Context in synthetic|WebSocketServer)/,
    "the server's sets of sockets"
  ],
  [/^\{ws,socket,corked/, "baseline Conn"],
  // The baseline's listeners are closures of each connection (ours are shared functions).
  [
    /^(system \/ Context in )?closure \(anonymous\)@\d+:\d+ in (Array in )?\{(message|error|close|pong),|^system \/ Context in \{(message|error|close|pong),/,
    "listener closures of the connection"
  ],
  [/^(array in )?Set in \{ws,socket,corked/, "baseline: a Conn's set of rooms"],
  [
    /^(array in )?(Set|Map) in (array in )?Map|^array in Map in system \/ Context/,
    "baseline: rooms and ids (Maps of Sets)"
  ],
  [/Fiber/, "fiber"]
]
/**
 * Categories of nodes that no categorised node dominates (held from several places at once). Effect.callback's
 * primitives, its resume and canceler closures and their contexts are held by the fiber and by the connection that
 * resumes it.
 */
const orphans: ReadonlyArray<readonly [RegExp, string]> = [
  [/^string in synthetic/, "strings with several owners (ids, user and room names)"],
  [/^PrimitiveImpl$|^closure \(anonymous\)@\d+:\d+ in (PrimitiveImpl|ConnectionImpl)/, "fiber"],
  [
    /^(closure \(anonymous\)@\d+:\d+ in )?(system \/ Context in )+synthetic/,
    "closures and contexts held from several places"
  ]
]
const orphanOf = (label: string): string | undefined => orphans.find(([re]) => re.test(label))?.[1]
const categoryOf = (label: string): string | undefined => rules.find(([re]) => re.test(label))?.[1]
/** C++ objects of Node (a socket's handle) and buffer contents: counted apart, not in the JS heap. */
const outside = (label: string): string | undefined =>
  /^native |^synthetic Node \//.test(label) ? nativeCategory : undefined

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Row {
  readonly key: string
  readonly bytes: number
  readonly count: number
}

/** What grew from `a` to `b`, per connection, largest first. */
const grown = (
  a: Map<string, { bytes: number; count: number }>,
  b: Map<string, { bytes: number; count: number }>,
  connections: number
): Array<Row> => {
  const keys = new Set([...a.keys(), ...b.keys()])
  return [...keys].map((key) => ({
    key,
    bytes: ((b.get(key)?.bytes ?? 0) - (a.get(key)?.bytes ?? 0)) / connections,
    count: ((b.get(key)?.count ?? 0) - (a.get(key)?.count ?? 0)) / connections
  })).sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes))
}

const print = (title: string, rows: ReadonlyArray<Row>, limit: number): void => {
  const total = rows.reduce((n, r) => n + r.bytes, 0)
  const native = rows.reduce((n, r) => n + (r.key === nativeCategory || outside(r.key) !== undefined ? r.bytes : 0), 0)
  process.stdout.write(
    `\n${title}: ${total.toFixed(0)} bytes per connection, ${(total - native).toFixed(0)} in the JS heap\n`
  )
  process.stdout.write(`${"bytes".padStart(8)} ${"objects".padStart(8)}  what\n`)
  for (const r of rows.slice(0, limit)) {
    if (Math.abs(r.bytes) < 0.5) break
    process.stdout.write(`${r.bytes.toFixed(1).padStart(8)} ${r.count.toFixed(2).padStart(8)}  ${r.key}\n`)
  }
}

const diff = (a: string, b: string, connections: number, name: string): void => {
  const first = HeapSnapshot.read(a)
  const second = HeapSnapshot.read(b)
  print(
    `${name}: by category`,
    grown(
      HeapSnapshot.byCategory(first, categoryOf, outside, orphanOf),
      HeapSnapshot.byCategory(second, categoryOf, outside, orphanOf),
      connections
    ),
    topN
  )
  print(`${name}: by label`, grown(HeapSnapshot.byLabel(first), HeapSnapshot.byLabel(second), connections), topN)
}

interface Server {
  readonly pid: number
  readonly port: number
  readonly snapshot: () => Promise<string>
  readonly stop: () => Promise<void>
}

const startServer = (file: string, maxConnections: number, dir: string): Promise<Server> =>
  new Promise((resolve, reject) => {
    const setup = serverSetup({
      kind: "idle",
      name: "heap",
      connections: maxConnections,
      roomSize: 1,
      processes: 1,
      sourceAddresses: 1,
      limitMs: 0,
      connectConcurrency: 1
    })
    const child = spawn(
      process.execPath,
      [...setup.nodeFlags, "--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${dir}`, file, "0"],
      { env: { ...process.env, ...setup.env, HOST: "127.0.0.1", PORT: "0" }, stdio: ["ignore", "pipe", "inherit"] }
    )
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    let buffered = ""
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString()
      const line = buffered.split("\n").find((l) => l.startsWith("{\"listening\""))
      if (line === undefined) return
      child.stdout.off("data", onData)
      child.stdout.resume()
      const port = (JSON.parse(line) as { listening: number }).listening
      const pid = child.pid!
      let taken = 0
      resolve({
        pid,
        port,
        // The server writes the snapshot on its main thread: once it answers a request, the file is complete.
        snapshot: async () => {
          const before = new Set(readdirSync(dir))
          process.kill(pid, "SIGUSR2")
          let name: string | undefined
          while (name === undefined) {
            await sleep(200)
            name = readdirSync(dir).find((f) => !before.has(f) && f.endsWith(".heapsnapshot"))
          }
          await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined)
          await fetch(`http://127.0.0.1:${port}/bench/memory`).catch(() => undefined)
          const target = Path.join(dir, `snapshot-${++taken}.heapsnapshot`)
          renameSync(Path.join(dir, name), target)
          return target
        },
        stop: async () => {
          child.kill("SIGTERM")
          const killer = setTimeout(() => child.kill("SIGKILL"), 10_000)
          await exited
          clearTimeout(killer)
        }
      })
    }
    child.stdout.on("data", onData)
    void exited.then(() => reject(new Error(`${file} exited before listening`)))
  })

/** Connects peers `from..to-1` (user `h<i>`, room `room<i / room>`), each resolved on its welcome. */
const connectPeers = async (
  port: number,
  from: number,
  to: number,
  room: number,
  sockets: Array<WebSocket>
): Promise<void> => {
  let next = from
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, {
        perMessageDeflate: false,
        localAddress: `127.0.0.${2 + (i % 8)}`
      })
      sockets.push(ws)
      ws.once("open", () =>
        ws.send(JSON.stringify({ type: "auth", user: `h${i}`, rooms: [`room${Math.floor(i / room)}`] })))
      ws.once("message", (data: Buffer) => {
        if (data.toString().includes("\"welcome\"")) {
          resolve()
        } else reject(new Error(`expected welcome, got ${data.toString().slice(0, 200)}`))
      })
      ws.once("error", reject)
    })
  const lane = async () => {
    while (next < to) await one(next++)
  }
  await Promise.all(Array.from({ length: 50 }, lane))
}

const idle = async (pid: number): Promise<void> => {
  for (let i = 0; i < 100; i++) {
    const before = cpuMillis(pid)
    await sleep(500)
    if (cpuMillis(pid) - before < 25) return
  }
}

const main = async (): Promise<void> => {
  const pair = flag("diff")
  if (pair !== undefined) {
    const second = args[args.indexOf("--diff") + 2]
    if (second === undefined) throw new Error("--diff takes two snapshot files")
    return diff(pair, second, Number(flag("connections") ?? Number.NaN), "snapshots")
  }
  const counts = (flag("counts") ?? "2000,4000").split(",").map(Number)
  const room = Number(flag("room") ?? 100)
  const servers = (flag("servers") ?? "ours,baseline").split(",")
  const keep = flag("keep")
  const { built, skipped } = await build({ ours: "servers/ours.ts", baseline: "baseline-server.ts" })
  for (const [name, reason] of Object.entries(skipped)) process.stdout.write(`(${name} not built: ${reason})\n`)
  const dir = keep ?? mkdtempSync(Path.join(Os.tmpdir(), "symple-heap-"))
  mkdirSync(dir, { recursive: true })
  try {
    for (const name of servers) {
      const file = built[name]
      if (file === undefined) throw new Error(`unknown or unbuilt server ${name}`)
      const serverDir = Path.join(dir, name)
      mkdirSync(serverDir, { recursive: true })
      const server = await startServer(file, Math.max(...counts) + 16, serverDir)
      const sockets: Array<WebSocket> = []
      const files: Array<string> = []
      try {
        let connected = 0
        for (const count of counts) {
          await connectPeers(server.port, connected, count, room, sockets)
          connected = count
          await idle(server.pid)
          files.push(await server.snapshot())
          process.stdout.write(`${name}: snapshot at ${count} connections: ${files.at(-1)}\n`)
        }
      } finally {
        for (const ws of sockets) ws.terminate()
        await server.stop()
      }
      diff(files[0]!, files.at(-1)!, counts.at(-1)! - counts[0]!, name)
    }
  } finally {
    if (keep === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
  process.exitCode = 1
})
