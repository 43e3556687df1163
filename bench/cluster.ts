/**
 * Scale-out benchmark: two of our servers on one Redis (a redis-server of its own, on a free loopback port)
 * against one of our servers alone, and the same two setups of Socket.IO 4 with `@socket.io/redis-adapter`
 * (`servers/socketio.ts`), in the same run.
 *
 *   npx tsx bench/cluster.ts [--measure ms] [--warmup ms] [--before dir] [--pairs n] [--receivers n] [--repeat n] [--cpu-prof] [--only direct|room]
 *
 * - `direct`: `pairs` closed-loop ping-pongs, one peer of each pair on each node (cross-node), both on the single
 *   server, or both on one node of the two (same-node: half the pairs on each, so the load and both nodes share the
 *   machine's cores as in cross-node, and only Redis is out of the path): round trips per second, and server CPU
 *   (both nodes together) per delivered frame.
 * - `room`: one sender and `receivers` peers in one room (spread over both nodes, the sender on the first), the
 *   sender keeping a window of frames in flight: deliveries per second, and server CPU per delivery.
 *
 * Servers are bundled (`servers/ours.ts` and `servers/socketio.ts`, `BENCH_REDIS` makes either a cluster node);
 * the load comes from this process, so rates are bounded by it too: compare rows of one run. Prints a table, our
 * cross-node / single-node ratios and ours / Socket.IO; writes the raw results to bench/results/.
 */
import * as esbuild from "esbuild"
import { spawn } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import * as SocketIoClient from "socket.io-client"
import WebSocket from "ws"
import { bundleOptions } from "../scripts/build-command.js"
import { freePort } from "../test/support/freePort.js"
import { benchDir, build, outDir } from "./build.js"
import { startRedis } from "./redis.js"
import { cpuMillis, median, round } from "./stats.js"

const args = process.argv.slice(2)
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(args[i + 1])
}
const measureMs = flag("measure", 3000)
const pairs = flag("pairs", 16)
const receivers = flag("receivers", 40)
const repeat = flag("repeat", 2)
const window = 8
/**
 * Load before a case's measurement starts. The cluster nodes run more code per frame (envelopes, Redis) at about
 * half the frames per node, so they take longer than a single server to have it compiled: with a short warm-up the
 * cross-node figures are mostly JIT compilation and unoptimised code (e.g. 31 µs per delivery after 0.3 s against
 * 24 µs after 9 s in one run; 22.6 µs after 3 s against 19.4 µs after 10 s in two runs of the same checkout),
 * which a long-running server pays once.
 */
const warmupMs = flag("warmup", 10_000)
/**
 * `--before <dir>`: also our server as built from another checkout (e.g. a worktree of the previous commit), run
 * the same way in the same run, its rows prefixed `before`: on a shared machine, figures of separate runs differ
 * more than a change does.
 */
const before = args.includes("--before") ? args[args.indexOf("--before") + 1] : undefined
/**
 * `--cpu-prof`: V8 CPU profiles of our servers (the single one and the two cluster nodes, their pids printed), in
 * bench/results/prof/ (read with bench/profile.ts). The profiler samples wall time while the process is busy: time
 * in a syscall during which the process was preempted (common on a loaded 2-core machine) counts as that syscall's,
 * so compare JavaScript costs there, and CPU time in the table (`sys` is the kernel's part).
 */
const cpuProf = args.includes("--cpu-prof")
/** `--only direct|room`: that kind of case only (e.g. to profile it alone). */
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined

interface Proc {
  readonly pid: number
  readonly port: number
  readonly stop: () => void
}

const profDir = Path.join(benchDir, "results", "prof")

const startServer = (file: string, env: Record<string, string>, profile = false): Promise<Proc> =>
  new Promise((resolve, reject) => {
    const prof = profile ? ["--cpu-prof", "--cpu-prof-dir", profDir] : []
    const child = spawn(process.execPath, [...prof, file, "0"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const line = out.split("\n").find((l) => l.includes("listening"))
      if (line !== undefined) {
        const { listening } = JSON.parse(line) as { listening: number }
        resolve({ pid: child.pid!, port: listening, stop: () => child.kill("SIGTERM") })
      }
    })
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)))
  })

/** A load client of either server: `key` is how others address it (a Symple address, a Socket.IO socket id). */
interface Client {
  readonly key: string
  readonly sendTo: (key: string, n: number) => void
  readonly sendRoom: (room: string, n: number) => void
  onMessage: (n: number) => void
  readonly close: () => void
}

type Connect = (port: number, user: string, room: string) => Promise<Client>

const symple: Connect = (port, user, room) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    ws.once("error", reject)
    ws.once("open", () => ws.send(JSON.stringify({ type: "auth", user, rooms: [room] })))
    const self: { -readonly [K in keyof Client]?: Client[K] } = {
      sendTo: (to, n) => ws.send(JSON.stringify({ type: "message", to, data: { n } })),
      sendRoom: (to, n) => ws.send(JSON.stringify({ type: "message", to, data: { n } })),
      onMessage: () => {},
      close: () => ws.terminate()
    }
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as {
        type?: string
        peer?: { id: string; user: string }
        data?: { n?: number }
      }
      if (frame.type === "welcome") {
        self.key = `${frame.peer!.user}|${frame.peer!.id}`
        resolve(self as Client)
      } else if (frame.type === "message") self.onMessage!(frame.data?.n ?? 0)
    })
  })

const socketIo: Connect = (port, _user, room) =>
  new Promise((resolve, reject) => {
    const socket = SocketIoClient.io(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true })
    socket.once("connect_error", reject)
    socket.once("connect", () => {
      const self: Client = {
        key: socket.id!,
        sendTo: (to, n) => socket.emit("direct", { to, n }),
        sendRoom: (to, n) => socket.emit("room", { room: to, n }),
        onMessage: () => {},
        close: () => socket.disconnect()
      }
      socket.on("msg", (message: { n?: number }) => self.onMessage(message.n ?? 0))
      socket.emit("join", room, () => resolve(self))
    })
  })

/** System (kernel) CPU time of a process in milliseconds: the part of `cpuMillis` spent in syscalls. */
const sysMillis = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    return (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[12]) * 1000) / 100
  } catch {
    return Number.NaN
  }
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Measured {
  readonly rate: number
  readonly cpuMicrosPerDelivery: number
  /** The kernel's part of it. */
  readonly sysMicrosPerDelivery: number
}

/**
 * After the warm-up, the measurement window: what `count` counted in it per second, and the servers' CPU (all of
 * `pids`) per delivery, each counted unit being `deliveriesPerUnit` deliveries (a round trip is two).
 */
const measure = async (
  pids: ReadonlyArray<number>,
  count: () => number,
  deliveriesPerUnit: number
): Promise<Measured> => {
  await settle(warmupMs)
  const cpuOf = () => pids.reduce((sum, pid) => sum + cpuMillis(pid), 0)
  const sysOf = () => pids.reduce((sum, pid) => sum + sysMillis(pid), 0)
  const cpu0 = cpuOf()
  const sys0 = sysOf()
  const count0 = count()
  const t0 = Date.now()
  await settle(measureMs)
  const elapsed = Date.now() - t0
  const done = count() - count0
  const deliveries = deliveriesPerUnit * done
  return {
    rate: (done * 1000) / elapsed,
    cpuMicrosPerDelivery: ((cpuOf() - cpu0) * 1000) / deliveries,
    sysMicrosPerDelivery: ((sysOf() - sys0) * 1000) / deliveries
  }
}

/**
 * Closed-loop ping-pong between pairs, pair `i` connected to the ports `place(i)` gives (ping's, then pong's).
 */
const direct = async (
  connect: Connect,
  place: (i: number) => readonly [number, number],
  pids: ReadonlyArray<number>
): Promise<Measured> => {
  const clients: Array<Client> = []
  let trips = 0
  let running = true
  for (let i = 0; i < pairs; i++) {
    const [pingPort, pongPort] = place(i)
    const ping = await connect(pingPort, `ping${i}`, "pairs")
    const pong = await connect(pongPort, `pong${i}`, "pairs")
    clients.push(ping, pong)
    pong.onMessage = (n) => pong.sendTo(ping.key, n)
    ping.onMessage = () => {
      trips++
      if (running) ping.sendTo(pong.key, trips)
    }
  }
  await settle(500)
  for (let i = 0; i < pairs; i++) clients[2 * i]!.sendTo(clients[2 * i + 1]!.key, 0)
  const measured = await measure(pids, () => trips, 2)
  running = false
  for (const c of clients) c.close()
  return measured
}

/** One sender on `ports[0]`, receivers spread over `ports`, a window of frames in flight (acknowledged by the last). */
const room = async (connect: Connect, ports: ReadonlyArray<number>, pids: ReadonlyArray<number>): Promise<Measured> => {
  const sender = await connect(ports[0]!, "sender", "fan")
  const members: Array<Client> = []
  let delivered = 0
  let sent = 0
  let acked = 0
  let running = true
  const pump = () => {
    while (running && sent - acked < window) sender.sendRoom("fan", ++sent)
  }
  for (let i = 0; i < receivers; i++) members.push(await connect(ports[i % ports.length]!, `r${i}`, "fan"))
  const last = members.length - 1
  members.forEach((member, i) => {
    member.onMessage = (n) => {
      delivered++
      if (i === last) {
        acked = Math.max(acked, n)
        pump()
      }
    }
  })
  await settle(500)
  pump()
  const measured = await measure(pids, () => delivered, 1)
  running = false
  for (const c of [sender, ...members]) c.close()
  return measured
}

const kinds = ["direct single", "direct same-node", "direct cross-node", "room single", "room two nodes"]
const names = [
  ...kinds,
  ...(before === undefined ? [] : kinds.map((k) => `before ${k}`)),
  ...kinds.map((k) => `sio ${k}`)
]

const main = async () => {
  const { built, skipped } = await build({ ours: "servers/ours.ts", socketio: "servers/socketio.ts" })
  if (built["ours"] === undefined) throw new Error(`cannot build our server: ${skipped["ours"]}`)
  if (built["socketio"] === undefined) throw new Error(`cannot build the Socket.IO server: ${skipped["socketio"]}`)
  if (before !== undefined) {
    // Bundled as `build` bundles ours (as the command is deployed), from the other checkout's sources.
    built["before"] = Path.join(outDir, "before.mjs")
    await esbuild.build({
      ...bundleOptions(Path.resolve(before, "bench/servers/ours.ts")),
      minify: false,
      minifyWhitespace: true,
      minifySyntax: true,
      outfile: built["before"],
      sourcemap: "linked",
      logLevel: "silent"
    })
  }
  const servers: Array<readonly [string, string, Connect]> = [
    ["", built["ours"], symple],
    ...(before === undefined ? [] : [["before ", built["before"]!, symple] as const]),
    ["sio ", built["socketio"], socketIo]
  ]
  const redis = await startRedis()
  const url = `redis://127.0.0.1:${redis.port}`
  const rows: Array<Record<string, number | string>> = []
  try {
    for (let r = 0; r < repeat; r++) {
      for (const [prefix, file, connect] of r % 2 === 0 ? servers : [...servers].reverse()) {
        const single = await startServer(file, {}, cpuProf && prefix === "")
        const a = await startServer(file, { BENCH_REDIS: url }, cpuProf && prefix === "")
        const b = await startServer(file, { BENCH_REDIS: url }, cpuProf && prefix === "")
        if (cpuProf && prefix === "") console.error(`profiles: single ${single.pid}, nodes ${a.pid} ${b.pid}`)
        await settle(500)
        const cases: Array<[string, () => Promise<Measured>]> = [
          [`${prefix}direct single`, () => direct(connect, () => [single.port, single.port], [single.pid])],
          [
            `${prefix}direct same-node`,
            () => direct(connect, (i) => i % 2 === 0 ? [a.port, a.port] : [b.port, b.port], [a.pid, b.pid])
          ],
          [`${prefix}direct cross-node`, () => direct(connect, () => [a.port, b.port], [a.pid, b.pid])],
          [`${prefix}room single`, () => room(connect, [single.port], [single.pid])],
          [`${prefix}room two nodes`, () => room(connect, [a.port, b.port], [a.pid, b.pid])]
        ]
        const chosen = cases.filter(([name]) => only === undefined || name.includes(only))
        for (const [name, run] of r % 2 === 0 ? chosen : [...chosen].reverse()) {
          const m = await run()
          rows.push({
            case: name,
            repeat: r,
            rate: round(m.rate),
            cpuMicrosPerDelivery: round(m.cpuMicrosPerDelivery),
            sysMicrosPerDelivery: round(m.sysMicrosPerDelivery)
          })
          await settle(300)
        }
        for (const s of [single, a, b]) s.stop()
        await settle(300)
      }
    }
  } finally {
    redis.stop()
  }
  type Key = "rate" | "cpuMicrosPerDelivery" | "sysMicrosPerDelivery"
  const by = (name: string, key: Key) =>
    median(rows.filter((row) => row.case === name).map((row) => row[key] as number))
  const spread = (name: string, key: Key) => {
    const values = rows.filter((row) => row.case === name).map((row) => row[key] as number)
    return `${round(Math.min(...values))}-${round(Math.max(...values))}`
  }
  // Medians of the repeats, and their range (min-max): the machine is shared, so the range says how far to trust them.
  console.log(
    `${"case".padEnd(22)} ${"rate/s".padStart(9)} ${"(range)".padEnd(17)} ${"cpu µs/delivery".padStart(15)} ${
      "(range)".padEnd(11)
    } ${"of it sys".padStart(9)}`
  )
  for (const name of names.filter((n) => only === undefined || n.includes(only))) {
    console.log(
      `${name.padEnd(22)} ${String(round(by(name, "rate"))).padStart(9)} ${spread(name, "rate").padEnd(17)} ${
        String(round(by(name, "cpuMicrosPerDelivery"))).padStart(15)
      } ${spread(name, "cpuMicrosPerDelivery").padEnd(11)} ${
        String(round(by(name, "sysMicrosPerDelivery"))).padStart(9)
      }`
    )
  }
  const ratio = (a: string, b: string, key: Key) => round(by(a, key) / by(b, key), 2)
  console.log(
    `ours cross-node / ours single: direct rate ${ratio("direct cross-node", "direct single", "rate")}, cpu ${
      ratio("direct cross-node", "direct single", "cpuMicrosPerDelivery")
    }; room rate ${ratio("room two nodes", "room single", "rate")}, cpu ${
      ratio("room two nodes", "room single", "cpuMicrosPerDelivery")
    }`
  )
  console.log(
    `ours cross-node / ours same-node on the same two nodes: direct rate ${
      ratio("direct cross-node", "direct same-node", "rate")
    }, cpu ${ratio("direct cross-node", "direct same-node", "cpuMicrosPerDelivery")}`
  )
  console.log(
    `ours / Socket.IO, cross-node: direct rate ${ratio("direct cross-node", "sio direct cross-node", "rate")}, cpu ${
      ratio("direct cross-node", "sio direct cross-node", "cpuMicrosPerDelivery")
    }; room rate ${ratio("room two nodes", "sio room two nodes", "rate")}, cpu ${
      ratio("room two nodes", "sio room two nodes", "cpuMicrosPerDelivery")
    }`
  )
  if (before !== undefined) {
    console.log(
      `ours / before: direct cross-node rate ${ratio("direct cross-node", "before direct cross-node", "rate")}, cpu ${
        ratio("direct cross-node", "before direct cross-node", "cpuMicrosPerDelivery")
      }; room two nodes rate ${ratio("room two nodes", "before room two nodes", "rate")}, cpu ${
        ratio("room two nodes", "before room two nodes", "cpuMicrosPerDelivery")
      }; before cross-node / single: direct cpu ${
        ratio("before direct cross-node", "before direct single", "cpuMicrosPerDelivery")
      }, room cpu ${ratio("before room two nodes", "before room single", "cpuMicrosPerDelivery")}`
    )
  }
  const dir = Path.join(benchDir, "results")
  mkdirSync(dir, { recursive: true })
  const out = Path.join(dir, `cluster-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
  writeFileSync(out, JSON.stringify({ measureMs, pairs, receivers, repeat, rows }, null, 2))
  console.log(`raw results: ${Path.relative(process.cwd(), out)}`)
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
